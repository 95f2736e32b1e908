#!/usr/bin/env bash
# The floor of the stage job on this machine: one process that writes the
# same tree (`cp -a` of a staged copy: no checks, no hashing, no renames),
# next to /bin/true, `sota-stage --version` and `sota-stage stage` itself,
# interleaved. See docs/benchmark.md.
#
#   scripts/bench/bench-floor.sh [N]      # N rounds (default 100)
#
# Environment: SOTA_STAGE (the binary; default target/release/sota-stage,
# built), BENCH_DIR (where to write; default ${TMPDIR:-/tmp}).
set -euo pipefail
rounds=${1:-100}
here=$(cd "$(dirname "$0")/../.." && pwd)
creds=$here/examples/credentials.zip
if [ -n "${SOTA_STAGE:-}" ]; then
    bin=$SOTA_STAGE
else
    (cd "$here" && cargo build --release --quiet)
    bin=$here/target/release/sota-stage
fi
export SOURCE_DATE_EPOCH=1700000000
work=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/bench-floor.XXXXXX")
trap 'rm -rf "$work"' EXIT
stage() { # $1: folder
    "$bin" stage --method shared-cred --credentials "$creds" \
        --hardware-id raspberrypi4-64 --device-root "$1/image" \
        --host-root "$1/native" --manifest "$1/manifest.json" 2>/dev/null
}
stage "$work/src"
declare -A times
names=(true version cp_a stage)
for ((i = 0; i < rounds; i++)); do
    for n in "${names[@]}"; do
        rm -rf "$work/o"
        mkdir "$work/o"
        start=${EPOCHREALTIME/./}
        case $n in
        true) /bin/true ;;
        version) "$bin" --version >/dev/null ;;
        cp_a) cp -a "$work/src/." "$work/o/" ;;
        stage) stage "$work/o" ;;
        esac
        end=${EPOCHREALTIME/./}
        times[$n]+="$((end - start)) "
    done
done
median() { printf '%s\n' $1 | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)/1000}'; }
echo "rounds: $rounds, filesystem: $(df -T "$work" | awk 'NR==2 {print $2}'), load: $(cut -d' ' -f1-3 /proc/loadavg)"
for n in "${names[@]}"; do
    printf '%-8s median %7.2f ms\n' "$n" "$(median "${times[$n]}")"
done
