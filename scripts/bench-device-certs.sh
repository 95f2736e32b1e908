#!/usr/bin/env bash
# Benchmark: `sota-stage device-certs` (release build) against one process
# per device, the design of aktualizr-cert-provider, in one run. See
# docs/benchmark.md ("device-certs").
#
#   scripts/bench-device-certs.sh [N_TOOL] [N_PER_PROCESS] [ROUNDS]
#       N_TOOL          devices per sota-stage run (default 1000)
#       N_PER_PROCESS   devices per one-process-per-device run (default 50)
#       ROUNDS          rounds, each side once per round (default 3)
#
# Environment: SOTA_STAGE (a binary instead of building
# target/release/sota-stage), BENCH_DIR (where to write; default a fresh
# folder under ${TMPDIR:-/tmp}).
#
# No aktualizr-cert-provider build is available here (it needs aktualizr's
# C++ toolchain, boost and many -dev packages). Its stand-in is the same
# design with the openssl command: one process per device that makes the
# key and signs the certificate with the fleet CA,
#   openssl req -x509 -new -newkey KEY -nodes -CA ca.pem -CAkey ca.key ...
# with RSA 2048 keys (cert-provider's default, most of its ~140 ms) and with
# EC P-256 keys (the key type sota-stage makes by default), one device
# after the other as cert-provider is run, and also on all cores
# (xargs -P). sota-stage also checks the CA, writes the bundles all or
# nothing with their folders and modes, and devices.json/csv.
#
# Timing uses bash's $EPOCHREALTIME. Each round runs every side once, into
# fresh folders; the median round of each side is reported.
set -euo pipefail

n_tool=${1:-1000}
n_proc=${2:-50}
rounds=${3:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
command -v openssl >/dev/null || { echo "error: \`openssl\` is needed" >&2; exit 2; }

if [ -n "${SOTA_STAGE:-}" ]; then
    bin=$SOTA_STAGE
else
    (cd "$here" && cargo build --release --quiet)
    bin=$here/target/release/sota-stage
fi
if [ -n "${BENCH_DIR:-}" ]; then
    mkdir -p "$BENCH_DIR"
    work=$(mktemp -d "$BENCH_DIR/bench-device-certs.XXXXXX")
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/bench-device-certs.XXXXXX")
fi
trap 'rm -rf "$work"' EXIT
cd "$work"
cores=$(nproc)

# The fleet CA: EC P-256, CA:TRUE, keyCertSign, subject key identifier.
cat > ca.cnf <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = Bench Fleet CA
[ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key 2>/dev/null
openssl req -x509 -new -key ca.key -config ca.cnf -extensions ext -days 3650 -out ca.pem

# One device the cert-provider way: one process makes the key and the
# certificate, signed by the CA. $1: folder, $2: id, $3: -newkey argument.
one_device() {
    local out=$1 id=$2 key=$3
    mkdir -p "$out/$id"
    if [ "$key" = ec ]; then
        openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -keyout "$out/$id/pkey.pem" -CA ca.pem -CAkey ca.key -subj "/CN=$id" \
            -days 365 -sha256 -out "$out/$id/client.pem" 2>/dev/null
    else
        openssl req -x509 -new -newkey rsa:2048 -nodes \
            -keyout "$out/$id/pkey.pem" -CA ca.pem -CAkey ca.key -subj "/CN=$id" \
            -days 365 -sha256 -out "$out/$id/client.pem" 2>/dev/null
    fi
}
export -f one_device

# Seconds (float) a command takes.
took() {
    local t0=$EPOCHREALTIME
    "$@"
    local t1=$EPOCHREALTIME
    echo "$t0 $t1" | awk '{printf "%.6f\n", $2 - $1}'
}

side_tool() {
    "$bin" device-certs --fleet-ca ca.pem --fleet-ca-key ca.key --count "$n_tool" \
        --id-prefix dev- --out "$1" 2>/dev/null
}
side_tool_tar() {
    "$bin" device-certs --fleet-ca ca.pem --fleet-ca-key ca.key --count "$n_tool" \
        --id-prefix dev- --out "$1" --format tar 2>/dev/null
}
side_serial() {
    local i
    for i in $(seq 1 "$n_proc"); do one_device "$1" "dev-$i" "$2"; done
}
side_parallel() {
    seq 1 "$n_proc" | xargs -P "$cores" -I{} bash -c 'one_device "$0" "dev-{}" "$1"' "$1" "$2"
}

# Untimed check: each side makes certificates that verify.
side_tool check-tool
side_serial check-ec ec
for cert in check-tool/dev-0001/var/sota/import/client.pem check-ec/dev-1/client.pem; do
    openssl verify -CAfile ca.pem "$cert" >/dev/null
done
rm -rf check-*

declare -A times
for r in $(seq 1 "$rounds"); do
    times[tool]+="$(took side_tool "r$r-tool") "
    times[tool_tar]+="$(took side_tool_tar "r$r-tool-tar") "
    times[rsa_serial]+="$(took side_serial "r$r-rsa-serial" rsa) "
    times[ec_serial]+="$(took side_serial "r$r-ec-serial" ec) "
    times[rsa_parallel]+="$(took side_parallel "r$r-rsa-parallel" rsa) "
    times[ec_parallel]+="$(took side_parallel "r$r-ec-parallel" ec) "
    rm -rf r"$r"-*
done

median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
tool=$(echo "${times[tool]}" | median)
per_tool=$(awk -v t="$tool" -v n="$n_tool" 'BEGIN {printf "%.4f", t * 1000 / n}')
echo "machine: $cores cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(openssl version | cut -d' ' -f1-2)"
echo "rounds: $rounds (median shown); sota-stage $n_tool devices per run, one-process-per-device $n_proc"
printf '%-44s %10s %14s %8s\n' side "run (s)" "per device (ms)" ratio
printf '%-44s %10.3f %14s %8s\n' "sota-stage device-certs (EC P-256, all cores)" "$tool" "$per_tool" 1.0
t=$(echo "${times[tool_tar]}" | median)
per=$(awk -v t="$t" -v n="$n_tool" 'BEGIN {printf "%.4f", t * 1000 / n}')
ratio=$(awk -v a="$per" -v b="$per_tool" 'BEGIN {printf "%.1f", a / b}')
printf '%-44s %10.3f %14s %8s\n' "sota-stage device-certs --format tar" "$t" "$per" "${ratio}x"
for side in rsa_serial ec_serial rsa_parallel ec_parallel; do
    t=$(echo "${times[$side]}" | median)
    per=$(awk -v t="$t" -v n="$n_proc" 'BEGIN {printf "%.4f", t * 1000 / n}')
    ratio=$(awk -v a="$per" -v b="$per_tool" 'BEGIN {printf "%.1f", a / b}')
    case $side in
        rsa_serial) name="openssl per device, RSA 2048, one by one" ;;
        ec_serial) name="openssl per device, EC P-256, one by one" ;;
        rsa_parallel) name="openssl per device, RSA 2048, $cores at once" ;;
        ec_parallel) name="openssl per device, EC P-256, $cores at once" ;;
    esac
    printf '%-44s %10.3f %14s %8s\n' "$name" "$t" "$per" "${ratio}x"
done
