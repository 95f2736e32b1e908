#!/bin/sh
# Runs a BitBake command in a build folder made by oe-build-dir.sh, as
# OE_TEST_USER (default "oe") when called as root, with the host tool folder
# OE_TEST_HOST_BIN (if set) first on PATH for HOSTTOOLS.
#   oe-bitbake.sh RELEASE BUILDDIR COMMAND [ARGS...]    e.g. bitbake -p
set -eu
repo=$(cd "$(dirname "$0")/../.." && pwd)
release=${1:?usage: oe-bitbake.sh RELEASE BUILDDIR COMMAND...}
build=${2:?usage: oe-bitbake.sh RELEASE BUILDDIR COMMAND...}
shift 2
oe=$repo/target/oe/src/$release
path=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
[ -z "${OE_TEST_HOST_BIN:-}" ] || path=$OE_TEST_HOST_BIN:$path
# PYTHONHASHSEED=0: wrynose's bitbake.conf makes COMBINED_FEATURES from a
# Python set (oe.utils.set_intersect), so its order, the configuration's
# hash and with it the parse cache's name change from run to run (every run
# parsed every recipe again) unless string hashing is fixed.
script='cd "$0" && . ./oe-init-build-env "$1" >/dev/null && shift 2 && exec "$@"'
if [ "$(id -u)" = 0 ]; then
    user=${OE_TEST_USER:-oe}
    exec runuser -u "$user" -- env -i HOME="$(getent passwd "$user" | cut -d: -f6)" PATH="$path" PYTHONHASHSEED=0 LANG=en_US.UTF-8 \
        bash -c "$script" "$oe/openembedded-core" "$build" x "$@"
fi
exec env -i HOME="$HOME" PATH="$path" PYTHONHASHSEED=0 LANG=en_US.UTF-8 bash -c "$script" "$oe/openembedded-core" "$build" x "$@"
