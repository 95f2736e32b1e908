#!/bin/sh
# Runs OpenEmbedded-Core's yocto-check-layer on meta-layer-snippets, offline,
# with meta-updater and the meta-openembedded layers it needs as
# dependencies (../shared/tools/oe snapshots):
#   scripts/oe/oe-check-layer.sh RELEASE        RELEASE: scarthgap | wrynose
# It parses every recipe several times (`bitbake -S none world` with and
# without the layer): 20 to 30 minutes here on 2 cores. Not run by CI; its
# result is recorded in meta-layer-snippets/README.md. Run as root: bitbake
# runs as OE_TEST_USER (default "oe"). The build folder is
# target/oe/RELEASE/check-layer, made afresh.
set -eu
repo=$(cd "$(dirname "$0")/../.." && pwd)
release=${1:?usage: oe-check-layer.sh RELEASE}
user=${OE_TEST_USER:-oe}
mkdir -p "$repo/target/oe"
oe=$(flock "$repo/target/oe/.unpack.lock" "$repo/../shared/tools/oe/setup.sh" "$release" "$repo/target/oe/src")
chown -R "$user" "$oe"
build=$repo/target/oe/$release/check-layer
rm -rf "$build"
mkdir -p "$build"
chown "$user" "$build"
meta=$oe/meta-openembedded
# PYTHONHASHSEED=0: see scripts/oe/oe-bitbake.sh (wrynose's parse cache).
exec runuser -u "$user" -- env -i HOME="$(getent passwd "$user" | cut -d: -f6)" \
    PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin PYTHONHASHSEED=0 LANG=en_US.UTF-8 \
    bash -c 'cd "$1/openembedded-core" && . ./oe-init-build-env "$2" >/dev/null &&
        echo "BB_NO_NETWORK = \"1\"" >> conf/local.conf &&
        yocto-check-layer "$3/meta-layer-snippets" --dependency "$4/meta-oe" "$4/meta-python" \
            "$4/meta-networking" "$4/meta-filesystems" "$1/meta-updater"' \
    x "$oe" "$build" "$repo" "$meta"
