#!/bin/sh
# Makes a real OpenEmbedded-Core build folder for the layer's tests and build
# check, offline (../shared/tools/oe: OE-core, BitBake, meta-updater and
# meta-openembedded unpacked from snapshots).
#   oe-build-dir.sh RELEASE BUILDDIR KIND ARCHIVE [KEEP]
# RELEASE: scarthgap | wrynose. KIND:
#   plain   OE-core, meta-oe, meta-python, meta-networking, meta-filesystems,
#           meta-updater: what a meta-updater build has before this layer
#   layer   plain + meta-layer-snippets + BUILDDIR/meta-sota-stage-test (a
#           layer of empty bbappends the tests fill in)
#   opt-in  layer + DISTRO_FEATURES:append = " sota-stage" and
#           SOTA_STAGE_TOOL = "host"
# ARCHIVE: SOTA_PACKED_CREDENTIALS for the whole build (the same in every kind).
# KEEP: a file of recipe names (PN of the recipe files, one a line; default
# tests/oe/keep-recipes), or "all". Every recipe and bbappend of the
# snapshots' layers (OE-core, meta-openembedded, meta-updater) for another
# name is masked (BBMASK): the folder parses about 120 recipes instead of
# 2771, in a fraction of the time. Masking recipes outside a task graph
# changes no signature inside it; a graph that needs a masked recipe fails
# with "Nothing PROVIDES": regenerate the list with scripts/oe/oe-keep-recipes.sh.
# "all" masks nothing (what oe-keep-recipes.sh parses).
# All kinds take the packaging tools from the build host
# (../shared/tools/oe/host-natives), so that tasks can run and the kinds'
# signatures compare. Run as root: it installs Debian's pseudo, rpm and quilt
# when missing and gives the folder to OE_TEST_USER (default "oe"), the
# unprivileged user bitbake runs as (OE-core refuses root). A folder that
# exists is left as it is (its parse cache is what makes a second run fast).
set -eu
repo=$(cd "$(dirname "$0")/../.." && pwd)
release=${1:?usage: oe-build-dir.sh RELEASE BUILDDIR KIND ARCHIVE}
build=${2:?usage: oe-build-dir.sh RELEASE BUILDDIR KIND ARCHIVE}
kind=${3:?usage: oe-build-dir.sh RELEASE BUILDDIR KIND ARCHIVE}
archive=${4:?usage: oe-build-dir.sh RELEASE BUILDDIR KIND ARCHIVE}
keep=${5:-$repo/tests/oe/keep-recipes}
user=${OE_TEST_USER:-oe}
case $kind in plain|layer|opt-in) ;; *) echo "oe-build-dir.sh: unknown kind '$kind'" >&2; exit 2 ;; esac
shared=$repo/../shared/tools/oe
# One unpacking at a time: the tests make their folders in parallel.
mkdir -p "$repo/target/oe"
oe=$(flock "$repo/target/oe/.unpack.lock" "$shared/setup.sh" "$release" "$repo/target/oe/src")
if [ -f "$build/conf/.sota-stage-kind" ]; then
    echo "$build"
    exit 0
fi
# BitBake writes next to its sources (ply's tables): the user owns them.
chown -R "$user" "$oe"
mkdir -p "$build"
chown "$user" "$build"
runuser -u "$user" -- bash -c "cd '$oe/openembedded-core' && . ./oe-init-build-env '$build' >/dev/null"
layers="$oe/openembedded-core/meta $oe/meta-openembedded/meta-oe $oe/meta-openembedded/meta-python"
layers="$layers $oe/meta-openembedded/meta-networking $oe/meta-openembedded/meta-filesystems $oe/meta-updater"
if [ "$kind" != plain ]; then
    test=$build/meta-sota-stage-test
    mkdir -p "$test/conf" "$test/recipes"
    cat > "$test/conf/layer.conf" <<CONF
# The tests' own recipes and settings for single recipes (only that recipe is re-parsed
# when one changes).
BBPATH .= ":\${LAYERDIR}"
BBFILES += "\${LAYERDIR}/recipes/*.bb \${LAYERDIR}/recipes/*.bbappend"
BBFILE_COLLECTIONS += "sota-stage-test"
BBFILE_PATTERN_sota-stage-test = "^\${LAYERDIR}/"
LAYERSERIES_COMPAT_sota-stage-test = "$release"
CONF
    for recipe in sota-credentials sota-credentials-host-native sota-stage_%; do
        : > "$test/recipes/$recipe.bbappend"
    done
    layers="$layers $repo/meta-layer-snippets $test"
fi
{
    echo 'POKY_BBLAYERS_CONF_VERSION = "2"'
    echo 'BBPATH = "${TOPDIR}"'
    echo 'BBFILES ?= ""'
    echo "BBLAYERS = \"$layers\""
} > "$build/conf/bblayers.conf"
cat >> "$build/conf/local.conf" <<CONF
# oe-build-dir.sh ($kind)
BB_NO_NETWORK = "1"
SOTA_PACKED_CREDENTIALS = "$archive"
# The host's sota-stage, for SOTA_STAGE_TOOL = "host" (on PATH when bitbake starts).
HOSTTOOLS_NONFATAL += "sota-stage"
CONF
if [ "$kind" = opt-in ]; then
    cat >> "$build/conf/local.conf" <<'CONF'
DISTRO_FEATURES:append = " sota-stage"
SOTA_STAGE_TOOL = "host"
CONF
fi
if [ "$keep" != all ]; then
    [ -s "$keep" ] || { echo "oe-build-dir.sh: no recipe list '$keep'" >&2; exit 2; }
    names=$(python3 -c 'import re, sys; print("|".join(re.escape(l.strip()) for l in open(sys.argv[1]) if l.strip() and not l.startswith("#")))' "$keep")
    cat >> "$build/conf/local.conf" <<CONF
# Only the recipes (and bbappends) of the tests' graphs ($keep).
BBMASK += "^$oe/.*/(?!(?:$names)(?:_[^/]*)?\\.bb(?:append)?\$)[^/]+\\.bb(?:append)?\$"
# Layers left with no recipe by the mask: no warning.
BBFILE_PATTERN_IGNORE_EMPTY_meta-python = "1"
BBFILE_PATTERN_IGNORE_EMPTY_networking-layer = "1"
BBFILE_PATTERN_IGNORE_EMPTY_filesystems-layer = "1"
CONF
fi
"$shared/host-natives/setup.sh" "$build" >/dev/null
echo "$kind" > "$build/conf/.sota-stage-kind"
chown -R "$user" "$build"
echo "$build"
