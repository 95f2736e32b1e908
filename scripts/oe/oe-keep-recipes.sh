#!/bin/sh
# Writes tests/oe/keep-recipes: the names of every recipe that BitBake needs
# for the task graphs tests/oe.rs and oe_audit.rs and scripts/oe/oe-build-check.sh check
# (aktualizr, meta-updater's five provisioning recipes, the layer's recipes
# and the tool), for scarthgap and wrynose together. The test folders mask
# every other recipe of OE-core, meta-openembedded and meta-updater, so that
# they parse about 200 recipes instead of about 2800 (scripts/oe/oe-build-dir.sh).
#   scripts/oe/oe-keep-recipes.sh [RELEASE...]     default: scarthgap wrynose
# Run it as root after a change that could add a recipe to those graphs (a
# new DEPENDS in the layer, a new snapshot in ../shared/tools/oe), and
# commit the result: it parses every recipe once per release, unmasked (3
# to 5 minutes each here), in target/oe/<release>/all, and resolves the
# graph there with scripts/oe/oe-keep-recipes.py.
set -eu
repo=$(cd "$(dirname "$0")/../.." && pwd)
[ $# -gt 0 ] || set -- scarthgap wrynose
targets="aktualizr aktualizr-shared-prov-creds aktualizr-shared-prov aktualizr-device-prov
    aktualizr-device-prov-hsm aktualizr-hwid sota-credentials sota-credentials-host-native sota-stage-native"
out=$repo/tests/oe/keep-recipes
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
for release in "$@"; do
    build=$repo/target/oe/$release/all
    "$repo/scripts/oe/oe-build-dir.sh" "$release" "$build" layer "$repo/examples/credentials.zip" all >/dev/null
    # shellcheck disable=SC2086
    "$repo/scripts/oe/oe-bitbake.sh" "$release" "$build" python3 "$repo/scripts/oe/oe-keep-recipes.py" $targets >> "$tmp"
done
{
    echo "# Recipes of the tests' task graphs ($*): scripts/oe/oe-keep-recipes.sh writes this."
    sort -u "$tmp"
} > "$out"
echo "$out: $(grep -vc '^#' "$out") recipes" >&2
