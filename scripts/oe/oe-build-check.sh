#!/bin/bash
# Builds the layer's recipes for real with OpenEmbedded-Core, offline, and
# checks what they install and package against the contract (docs: the
# layer's README, "What goes where").
#   scripts/oe/oe-build-check.sh RELEASE [BUILDDIR]      RELEASE: scarthgap | wrynose
#
# Nothing can be compiled offline (every -native download fails), so the
# build takes what it would build from the build host: the packaging tools
# (pseudo, rpm, quilt: ../shared/tools/oe/host-natives) and sota-stage itself
# (SOTA_STAGE_TOOL = "host"). The folder is oe-build-dir.sh's "opt-in" kind
# (meta-updater's recipes switched over with DISTRO_FEATURES), the same one
# tests/oe.rs and oe_audit.rs parses, so a run after the tests starts from their parse cache.
#
# The host tool: OE_TEST_HOST_BIN names a folder holding a sota-stage (CI
# passes the one cargo test built); without it, this installs one with
# `cargo install --path . --locked --root target/oe/host-tool`, as a user
# would. Run as root: bitbake runs as OE_TEST_USER (default "oe").
#
# It builds sota-credentials (shared-cred) and meta-updater's five
# provisioning recipes from a fresh state (cleansstate first), then checks:
# every task ran and passed; ${D} holds exactly the contract's files, modes
# and folder modes; the rpm holds the same files with the same modes, owned
# by root:root; no warning (QA or other) names one of these recipes.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
release=${1:?usage: oe-build-check.sh RELEASE [BUILDDIR]}
build=${2:-$repo/target/oe/$release/opt-in}
started=$(date +%s)

if [ -z "${OE_TEST_HOST_BIN:-}" ]; then
    cargo install --quiet --path "$repo" --locked --root "$repo/target/oe/host-tool"
    OE_TEST_HOST_BIN=$repo/target/oe/host-tool/bin
fi
export OE_TEST_HOST_BIN
"$OE_TEST_HOST_BIN/sota-stage" --version >/dev/null

"$repo/scripts/oe/oe-build-dir.sh" "$release" "$build" opt-in "$repo/examples/credentials.zip" >/dev/null
user=${OE_TEST_USER:-oe}
# A PIN file for the HSM recipe (no example-PIN warning), and no
# test settings left by tests/oe.rs and oe_audit.rs.
tests=$build/meta-sota-stage-test
printf '%s\n' 'TEST-ONLY-pin-0042' > "$build/hsm-pin"
chown "$user" "$build/hsm-pin"
for recipe in sota-credentials sota-credentials-host-native sota-stage_%; do
    : > "$tests/recipes/$recipe.bbappend"
done
pin_append="SOTA_HSM_PIN_FILE = \"$build/hsm-pin\""
if [ "$(cat "$tests/recipes/aktualizr-device-prov-hsm.bbappend" 2>/dev/null)" != "$pin_append" ]; then
    echo "$pin_append" > "$tests/recipes/aktualizr-device-prov-hsm.bbappend"
fi
chown -R "$user" "$tests"

recipes=(sota-credentials aktualizr-shared-prov-creds aktualizr-shared-prov aktualizr-device-prov aktualizr-device-prov-hsm aktualizr-hwid)
bb() { "$repo/scripts/oe/oe-bitbake.sh" "$release" "$build" "$@"; }
log=$build/oe-build-check.log
bb bitbake -c cleansstate "${recipes[@]}" > "$log" 2>&1 || { tail -n 40 "$log"; echo "oe-build-check: cleansstate failed" >&2; exit 1; }
if ! bb bitbake "${recipes[@]}" > "$log" 2>&1; then
    grep -E '^(ERROR|WARNING)' "$log" | head -n 40 || tail -n 40 "$log"
    echo "oe-build-check ($release): bitbake ${recipes[*]} failed; the log: $log" >&2
    exit 1
fi
fail=0
bad() { echo "oe-build-check ($release): $*" >&2; fail=1; }

# No warning from these recipes (QA or the layer's own).
pattern=$(IFS='|'; echo "${recipes[*]}")
if grep -E '^WARNING:' "$log" | grep -E "($pattern)" ; then
    bad "warnings from the layer's recipes (above)"
fi
for recipe in "${recipes[@]}"; do
    grep -q "recipe $recipe-[^ ]*: task do_install: Succeeded" "$log" || bad "$recipe: do_install did not run"
    grep -q "recipe $recipe-[^ ]*: task do_package_qa: Succeeded" "$log" || bad "$recipe: do_package_qa did not run"
done
grep -q "recipe sota-credentials-[^ ]*: task do_sota_verify: Succeeded" "$log" || bad "sota-credentials: do_sota_verify did not run"
ran=$(grep -c 'task do_[a-z_]*: Succeeded' "$log" || true)

tmp=$(ls -d "$build"/tmp*/ | head -n 1)
# image RECIPE: the recipe's ${D}.
image() { find "$tmp/work" -mindepth 4 -maxdepth 4 -type d -path "*/$1/*/image" | head -n 1; }
# expect RECIPE "MODE PATH"...: ${D} and the rpm hold exactly these files
# (mode as `stat -c %a`), the rpm's owned by root:root; var/sota and
# var/sota/import, when present, are 0700.
expect() {
    local recipe=$1; shift
    local d want got rpmfile rpmlist
    d=$(image "$recipe")
    [ -n "$d" ] || { bad "$recipe: no \${D}"; return; }
    want=$(printf '%s\n' "$@" | sort)
    got=$(cd "$d" && find . -type f -printf '%m %P\n' | sort)
    [ "$want" = "$got" ] || bad "$recipe: \${D} holds
$got
instead of
$want"
    for dir in var/sota var/sota/import; do
        if [ -d "$d/$dir" ] && [ "$(stat -c %a "$d/$dir")" != 700 ]; then
            bad "$recipe: $dir is $(stat -c %a "$d/$dir"), not 700"
        fi
    done
    # "$recipe-<version>": not the -dbg and -dev packages.
    rpmfile=$(find "$tmp/deploy/rpm" -name "$recipe-[0-9]*.rpm" | head -n 1)
    [ -n "$rpmfile" ] || { bad "$recipe: no rpm"; return; }
    # "-rw-------  1 root root  2057 Apr  5 2011 /var/sota/..." -> "600 root root var/sota/..."
    rpmlist=$(rpm -qlvp "$rpmfile" 2>/dev/null | awk '$1 ~ /^-/ {
        m = 0; p = substr($1, 2);
        for (i = 0; i < 9; i++) { c = substr(p, i + 1, 1); if (c != "-") m += 2 ^ (8 - i) }
        printf "%o %s %s %s\n", m, $3, $4, substr($9, 2) }' | sort)
    got=$(printf '%s\n' "$@" | sed 's/^\([0-7]*\) /\1 root root /' | sort)
    [ "$rpmlist" = "$got" ] || bad "$recipe: $(basename "$rpmfile") holds
$rpmlist
instead of
$got"
    rpm -qlvp "$rpmfile" 2>/dev/null | awk '$1 ~ /^d/ && ($3 != "root" || $4 != "root") { print; bad = 1 } END { exit bad }' \
        || bad "$recipe: folders in the rpm not owned by root:root (above)"
}
hwid=usr/lib/sota/conf.d/40-hardware-id.toml
expect sota-credentials "600 var/sota/sota_provisioning_credentials.zip" "644 var/sota/import/repo/root.json" \
    "644 usr/lib/sota/conf.d/20-sota-shared-cred.toml" "644 $hwid"
expect aktualizr-shared-prov-creds "600 var/sota/sota_provisioning_credentials.zip" "644 var/sota/import/repo/root.json"
expect aktualizr-shared-prov "644 usr/lib/sota/conf.d/20-sota-shared-cred.toml"
expect aktualizr-device-prov "644 var/sota/import/gateway.url" "644 var/sota/import/root.crt" \
    "644 var/sota/import/repo/root.json" "644 usr/lib/sota/conf.d/20-sota-device-cred.toml"
expect aktualizr-device-prov-hsm "644 var/sota/import/gateway.url" "644 var/sota/import/root.crt" \
    "644 var/sota/import/repo/root.json" "600 usr/lib/sota/conf.d/20-sota-device-cred-hsm.toml"
expect aktualizr-hwid "644 $hwid"

# The device zip holds exactly the two entries; the hardware ID is quoted.
d=$(image sota-credentials)
names=$(unzip -Z1 "$d/var/sota/sota_provisioning_credentials.zip" | sort | tr '\n' ' ')
[ "$names" = "autoprov.url autoprov_credentials.p12 " ] || bad "sota-credentials: the device zip holds $names"
grep -q '^primary_ecu_hardware_id = "qemux86-64"$' "$(image aktualizr-hwid)/$hwid" || bad "aktualizr-hwid: $(cat "$(image aktualizr-hwid)/$hwid")"
grep -q 'pass = "TEST-ONLY-pin-0042"' "$(image aktualizr-device-prov-hsm)/usr/lib/sota/conf.d/20-sota-device-cred-hsm.toml" \
    || bad "aktualizr-device-prov-hsm: the PIN from SOTA_HSM_PIN_FILE is not in the fragment"

if [ "$fail" != 0 ]; then
    echo "oe-build-check ($release): FAILED; the log: $log" >&2
    exit 1
fi
echo "oe-build-check ($release): ok, $ran tasks ran, ${#recipes[@]} recipes checked, $(( $(date +%s) - started )) s"
