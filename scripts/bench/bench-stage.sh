#!/usr/bin/env bash
# Benchmark: the whole `sota-stage stage` (release build) against the same
# job done the meta-updater way, on examples/credentials.zip, interleaved in
# one run. See docs/benchmark.md.
#
#   scripts/bench/bench-stage.sh [N]        # N rounds (default 100)
#
# Environment: BENCH_DIR (where the trees are written; default a fresh
# folder under ${TMPDIR:-/tmp}), SOTA_STAGE (a binary to use instead of
# building target/release/sota-stage), CREDENTIALS (default
# examples/credentials.zip).
#
# The job, for shared-cred with a hardware ID, both sides:
#   device root: var/sota/sota_provisioning_credentials.zip (autoprov.url +
#     autoprov_credentials.p12), usr/lib/sota/conf.d/20-sota-shared-cred.toml,
#     usr/lib/sota/conf.d/40-hardware-id.toml, var/sota/import/repo/root.json
#   host root: the host tools' entries as files, and a credentials.zip
#   a sha256 listing of everything written.
# The meta-updater way: unzip the archive into a temporary folder, `zip -mj`
# the two device entries into the device zip, `install -m` the fragments
# and files, `sha256sum` the results, remove the temporary folder. It does
# not fsync and its zip is not reproducible; sota-stage also checks the
# archive (p12, certificates, keys, URLs), renders and checks the
# fragments, locks the roots and writes everything to temporary names
# first. A third side, `sota-stage stage --sync`, also fsyncs every file
# and each changed folder once.
#
# Timing uses bash's $EPOCHREALTIME (no process is started to read the
# clock). Each round runs both, in alternating order, into fresh folders.
set -euo pipefail

rounds=${1:-100}
here=$(cd "$(dirname "$0")/../.." && pwd)
. "$here/scripts/bench/bench-lib.sh"
creds=${CREDENTIALS:-$here/examples/credentials.zip}
creds=$(cd "$(dirname "$creds")" && pwd)/$(basename "$creds")

for tool in unzip zip install sha256sum; do
    command -v "$tool" >/dev/null || { echo "error: \`$tool\` is needed" >&2; exit 2; }
done

bench_tool

bench_workdir bench-stage

export SOURCE_DATE_EPOCH=1700000000
hwid=raspberrypi4-64

# meta-updater installs a static fragment from its layer; render it once,
# outside the timing, so both sides write the same bytes.
"$bin" render --method shared-cred --output "$work/20-sota-shared-cred.toml"

stage_tool() { # $1: round folder, then extra flags
    local dir=$1
    shift
    "$bin" stage --method shared-cred --credentials "$creds" \
        --hardware-id "$hwid" \
        --device-root "$dir/image" --host-root "$dir/native" \
        --manifest "$dir/manifest.json" "$@" 2>/dev/null
}

stage_meta_updater() { # $1: round folder
    local d=$1/image h=$1/native t
    t=$(mktemp -d "$1/tmp.XXXXXX")
    unzip -q "$creds" -d "$t"
    install -d -m 0700 "$d/var/sota" "$d/var/sota/import"
    install -d -m 0755 "$d/usr/lib/sota/conf.d" "$d/var/sota/import/repo" "$h"
    zip -mjq "$d/var/sota/sota_provisioning_credentials.zip" \
        "$t/autoprov.url" "$t/autoprov_credentials.p12"
    chmod 0600 "$d/var/sota/sota_provisioning_credentials.zip"
    printf '[provision]\nprimary_ecu_hardware_id = "%s"\n' "$hwid" >"$t/40-hardware-id.toml"
    install -m 0644 -t "$d/usr/lib/sota/conf.d" \
        "$work/20-sota-shared-cred.toml" "$t/40-hardware-id.toml"
    install -m 0644 "$t/root.json" "$d/var/sota/import/repo/root.json"
    install -m 0644 -t "$h" "$t/root.json" "$t/targets.pub" "$t/tufrepo.url" "$t/api_gateway.url"
    install -m 0600 -t "$h" "$t/targets.sec" "$t/treehub.json" "$creds"
    (cd "$1" && sha256sum image/usr/lib/sota/conf.d/* image/var/sota/*.zip \
        image/var/sota/import/repo/root.json native/* >"$1/manifest.sha256")
    rm -rf "$t"
}

# One untimed round each: both must produce the same device file list.
mkdir "$work/check-tool" "$work/check-mu"
stage_tool "$work/check-tool"
stage_meta_updater "$work/check-mu"
list() { (cd "$1/image" && find . -type f | sort); }
if [ "$(list "$work/check-tool")" != "$(list "$work/check-mu")" ]; then
    echo "error: the two ways stage different device files:" >&2
    diff <(list "$work/check-tool") <(list "$work/check-mu") >&2 || true
    exit 1
fi
"$bin" verify --manifest "$work/check-tool/manifest.json" \
    --device-root "$work/check-tool/image" --host-root "$work/check-tool/native" >/dev/null

tool_times=()
sync_times=()
mu_times=()
true_times=()
sides=(tool sync mu)
for ((i = 0; i < rounds; i++)); do
    # Rotate which side goes first.
    for ((k = 0; k < 3; k++)); do
        side=${sides[$(((i + k) % 3))]}
        dir=$work/r$i-$side
        mkdir "$dir"
        start=${EPOCHREALTIME/./}
        case $side in
        tool) stage_tool "$dir" ;;
        sync) stage_tool "$dir" --sync ;;
        mu) stage_meta_updater "$dir" ;;
        esac
        end=${EPOCHREALTIME/./}
        case $side in
        tool) tool_times+=($((end - start))) ;;
        sync) sync_times+=($((end - start))) ;;
        mu) mu_times+=($((end - start))) ;;
        esac
        rm -rf "$dir"
    done
    # The floor: what starting one process costs on this machine.
    start=${EPOCHREALTIME/./}
    /bin/true
    end=${EPOCHREALTIME/./}
    true_times+=($((end - start)))
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
tool_med=$(median "${tool_times[@]}")
sync_med=$(median "${sync_times[@]}")
mu_med=$(median "${mu_times[@]}")
true_med=$(median "${true_times[@]}")
ms() { awk -v t="$1" 'BEGIN {printf "%8.2f ms", t/1000}'; }
fs=$(df -T "$work" | awk 'NR==2 {print $2}')
echo "rounds:                   $rounds (interleaved), filesystem: $fs, load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "sota-stage stage:         median $(ms "$tool_med")"
echo "sota-stage stage --sync:  median $(ms "$sync_med")"
echo "meta-updater way:         median $(ms "$mu_med")"
echo "one process (/bin/true):  median $(ms "$true_med")"
printf 'ratio (meta-updater / sota-stage):        %.1fx (goal >= 10x)\n' "$(awk -v a="$mu_med" -v b="$tool_med" 'BEGIN {print a/b}')"
printf 'ratio (meta-updater / sota-stage --sync): %.1fx\n' "$(awk -v a="$mu_med" -v b="$sync_med" 'BEGIN {print a/b}')"
printf 'ratio (sota-stage / /bin/true):           %.1fx (goal <= 2x)\n' "$(awk -v a="$tool_med" -v b="$true_med" 'BEGIN {print a/b}')"
