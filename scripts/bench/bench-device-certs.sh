#!/usr/bin/env bash
# Benchmark: `sota-stage device-certs` (release build) against one process
# per device, the design of aktualizr-cert-provider, in one run. See
# docs/benchmark.md ("device-certs").
#
#   scripts/bench/bench-device-certs.sh [N_TOOL] [N_PER_PROCESS] [ROUNDS]
#       N_TOOL          devices per sota-stage run (default 1000)
#       N_PER_PROCESS   devices per one-process-per-device run (default 50)
#       ROUNDS          rounds, each side once per round (default 3)
#
#   scripts/bench/bench-device-certs.sh scale [N_SMALL] [N_BIG] [N_CERT_PROVIDER]
#       fleet scale, one run each: sota-stage --format tar with N_SMALL
#       (default 1000) and N_BIG (default 100000) devices: CPU time
#       (user+sys) per device, peak memory (GNU time's %M) and wall time;
#       and the real aktualizr-cert-provider for N_CERT_PROVIDER devices
#       (default 20), one process per device, side by side.
#
#   scripts/bench/bench-device-certs.sh csr [N_SMALL] [N_BIG]
#       certificate requests at scale, one run each: N_SMALL (default 1000)
#       and N_BIG (default 100000) EC P-256 requests, made beforehand
#       in-process (examples/make-csrs.rs, timed apart), signed with the
#       fleet CA key file by `device-certs --csr DIR --format tar`: CPU time
#       (user+sys) per device, peak memory and wall time, as in `scale`;
#       then each set again with its last request made unreadable, a run
#       refused after reading and checking every other request: the
#       up-front phase timed alone.
#
#   scripts/bench/bench-device-certs.sh hsm [N_TOOL] [N_OPENSSL]
#       the fleet CA key in a SoftHSM 2 token (EC P-256, made by the token;
#       the CA certificate signed by it through openssl's pkcs11 engine):
#       devices per second of `device-certs --fleet-ca-key pkcs11:...`
#       (release build with the cargo feature pkcs11) for N_TOOL devices
#       (default 2000), minted keys and then as many requests (--csr), tar
#       bundles; against `openssl x509 -req -CAkey pkcs11:... -CAkeyform
#       engine -engine pkcs11`, one process per device signing a request
#       with the same token key, for N_OPENSSL devices (default 200).
#       Needs softhsm2-util (softhsm2), pkcs11-tool (opensc) and the
#       OpenSSL pkcs11 engine (libengine-pkcs11-openssl).
#
# Environment: SOTA_STAGE (a binary instead of building
# target/release/sota-stage), BENCH_DIR (where to write; default a fresh
# folder under ${TMPDIR:-/tmp}), CERT_PROVIDER (the real
# aktualizr-cert-provider; default the aktualizr kit's build,
# /var/cache/sota-stage/aktualizr/bin/aktualizr-cert-provider, its lib/
# beside it on LD_LIBRARY_PATH; its side is skipped, saying so, when absent),
# MAKE_CSRS (the make-csrs example binary instead of building it),
# SOTA_STAGE_PKCS11 (for `hsm`, a binary built with --features pkcs11
# instead of building one; SOTA_STAGE is not used there), PKCS11_MODULE
# (default /usr/lib/softhsm/libsofthsm2.so).
#
# The real aktualizr-cert-provider runs as a factory would: one process per
# device, `--fleet-ca ca.pem --fleet-ca-key ca.key --local DIR
# --certificate-cn ID -g conf.d` (an aktualizr config folder holding the
# [import] settings `stage --method device-cred` writes, from which it
# takes the file names); it makes an RSA 2048 key (its default) and signs
# it with the fleet CA. In the default mode it runs beside stand-ins of the
# same design with the openssl command: one process per device that makes
# the key and signs the certificate with the fleet CA,
#   openssl req -x509 -new -newkey KEY -nodes -CA ca.pem -CAkey ca.key ...
# with RSA 2048 keys (cert-provider's default) and with EC P-256 keys (the
# key type sota-stage makes by default), one device after the other as
# cert-provider is run, and also on all cores (xargs -P). sota-stage also
# checks the CA, writes the bundles in batches with their folders and
# modes, the journal, and devices.json/csv.
#
# Timing uses bash's $EPOCHREALTIME (and /proc's CPU times of the script's
# children for cert-provider). Each round runs every side once, into fresh
# folders; the median round of each side is reported.
set -euo pipefail

mode=default
if [ "${1:-}" = scale ]; then
    mode=scale
    shift
    n_small=${1:-1000}
    n_big=${2:-100000}
    n_cp=${3:-20}
elif [ "${1:-}" = csr ]; then
    mode=csr
    shift
    n_small=${1:-1000}
    n_big=${2:-100000}
elif [ "${1:-}" = hsm ]; then
    mode=hsm
    shift
    n_tool=${1:-2000}
    n_openssl=${2:-200}
else
    n_tool=${1:-1000}
    n_proc=${2:-50}
    rounds=${3:-3}
    n_cp=$n_proc
fi
here=$(cd "$(dirname "$0")/../.." && pwd)
. "$here/scripts/bench/bench-lib.sh"
cert_provider=${CERT_PROVIDER:-/var/cache/sota-stage/aktualizr/bin/aktualizr-cert-provider}
command -v openssl >/dev/null || { echo "error: \`openssl\` is needed" >&2; exit 2; }

if [ "$mode" = csr ] || [ "$mode" = hsm ]; then
    if [ -n "${MAKE_CSRS:-}" ]; then
        make_csrs=$MAKE_CSRS
    else
        (cd "$here" && cargo build --release --quiet --example make-csrs)
        make_csrs=$here/target/release/examples/make-csrs
    fi
fi
# The tool built last: the build with the feature pkcs11 replaces
# target/release/sota-stage.
if [ "$mode" = hsm ]; then
    if [ -n "${SOTA_STAGE_PKCS11:-}" ]; then
        bin=$SOTA_STAGE_PKCS11
    else
        (cd "$here" && cargo build --release --quiet --features pkcs11)
        bin=$here/target/release/sota-stage
    fi
else
    bench_tool
fi
bench_workdir bench-device-certs
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

# The aktualizr config cert-provider reads its file names from: the
# [import] settings of `stage --method device-cred`'s fragment.
mkdir -p conf.d
cat > conf.d/20-sota-device-cred.toml <<'EOF'
[import]
base_path = "/var/sota/import"
tls_cacert_path = "root.crt"
tls_clientcert_path = "client.pem"
tls_pkey_path = "pkey.pem"
EOF

# The real aktualizr-cert-provider, one process per device: $1 folder,
# $2 number of devices. Prints "CPU-seconds wall-seconds" (the CPU time
# of the children this shell waited for, from /proc).
side_cert_provider() {
    local out=$1 n=$2 me=$BASHPID i t0 t1 c0 c1
    mkdir -p "$out"
    c0=$(awk '{print $16 + $17}' "/proc/$me/stat")
    t0=$EPOCHREALTIME
    for i in $(seq 1 "$n"); do
        LD_LIBRARY_PATH=$(dirname "$cert_provider")/lib "$cert_provider" \
            --fleet-ca ca.pem --fleet-ca-key ca.key --local "$out/dev-$i" \
            --certificate-cn "dev-$i" -g conf.d >/dev/null 2>&1
    done
    t1=$EPOCHREALTIME
    c1=$(awk '{print $16 + $17}' "/proc/$me/stat")
    openssl verify -CAfile ca.pem "$out/dev-1/var/sota/import/client.pem" >/dev/null
    awk -v c="$((c1 - c0))" -v hz="$(getconf CLK_TCK)" -v a="$t0" -v b="$t1" \
        'BEGIN {printf "%.3f %.3f\n", c / hz, b - a}'
}
have_cert_provider() {
    if [ -x "$cert_provider" ]; then
        return 0
    fi
    echo "note: no aktualizr-cert-provider at $cert_provider (build it with ../shared/tools/aktualizr/setup.sh, or set CERT_PROVIDER): its side is skipped" >&2
    return 1
}

if [ "$mode" = scale ]; then
    command -v /usr/bin/time >/dev/null || { echo "error: GNU time (/usr/bin/time) is needed" >&2; exit 2; }
    echo "machine: $cores cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(openssl version | cut -d' ' -f1-2)"
    printf '%-52s %9s %9s %16s %10s\n' side "wall (s)" "CPU (s)" "CPU/device (ms)" "peak (MiB)"
    declare -A cpu_per
    for n in "$n_small" "$n_big"; do
        rm -rf "scale-$n"
        /usr/bin/time -f '%e %U %S %M' -o "time-$n" "$bin" device-certs --fleet-ca ca.pem \
            --fleet-ca-key ca.key --count "$n" --id-prefix dev- --out "scale-$n" \
            --format tar --quiet
        read -r wall user sys peak < "time-$n"
        [ "$(find "scale-$n" -maxdepth 1 -name '*.tar' | wc -l)" = "$n" ] || { echo "error: not $n tars" >&2; exit 1; }
        [ "$(($(wc -l < "scale-$n/devices.csv") - 1))" = "$n" ] || { echo "error: devices.csv does not list $n devices" >&2; exit 1; }
        cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.2f", u + s}')
        cpu_per[$n]=$(awk -v c="$cpu" -v n="$n" 'BEGIN {printf "%.4f", c * 1000 / n}')
        printf '%-52s %9s %9s %16s %10s\n' "sota-stage device-certs --format tar, $n devices" \
            "$wall" "$cpu" "${cpu_per[$n]}" "$((peak / 1024))"
        rm -rf "scale-$n"
    done
    awk -v a="${cpu_per[$n_big]}" -v b="${cpu_per[$n_small]}" -v big="$n_big" -v small="$n_small" \
        'BEGIN {printf "CPU per device at %d against %d: %.2fx (goal: at most 1.3x)\n", big, small, a / b}'
    if have_cert_provider; then
        read -r cp_cpu cp_wall < <(side_cert_provider cp "$n_cp")
        cp_per=$(awk -v c="$cp_cpu" -v n="$n_cp" 'BEGIN {printf "%.4f", c * 1000 / n}')
        cp_wall_per=$(awk -v c="$cp_wall" -v n="$n_cp" 'BEGIN {printf "%.4f", c * 1000 / n}')
        printf '%-52s %9s %9s %16s %10s\n' "aktualizr-cert-provider, $n_cp devices, one by one" \
            "$cp_wall" "$cp_cpu" "$cp_per" -
        awk -v a="$cp_per" -v b="${cpu_per[$n_big]}" -v w="$cp_wall_per" -v t="${cpu_per[$n_small]}" \
            'BEGIN {printf "aktualizr-cert-provider per device: %.0fx the CPU time of sota-stage at scale, %.0fx at the small run (goal: at least 20x); its wall time per device %.1f ms\n", a / b, a / t, w}'
    fi
    exit 0
fi

# GNU time's "wall user sys peak(KiB)" of a command into the file $1.
timed() {
    local into=$1
    shift
    /usr/bin/time -f '%e %U %S %M' -o "$into" "$@"
}
# The row of a timed run: $1 label, $2 devices, $3 time file. Sets
# row_cpu_per (ms of CPU per device) and row_rate (devices a second).
row() {
    local label=$1 n=$2 wall user sys peak cpu
    # The last line: GNU time first notes a non-zero exit status.
    read -r wall user sys peak < <(tail -1 "$3")
    cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.2f", u + s}')
    row_cpu_per=$(awk -v c="$cpu" -v n="$n" 'BEGIN {printf "%.4f", c * 1000 / n}')
    row_rate=$(awk -v w="$wall" -v n="$n" 'BEGIN {printf "%.1f", (w > 0) ? n / w : 0}')
    printf '%-60s %9s %9s %16s %10s %10s\n' "$label" "$wall" "$cpu" "$row_cpu_per" \
        "$((peak / 1024))" "$row_rate"
}
header() {
    echo "machine: $cores cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(openssl version | cut -d' ' -f1-2)"
    printf '%-60s %9s %9s %16s %10s %10s\n' side "wall (s)" "CPU (s)" "CPU/device (ms)" \
        "peak (MiB)" "devices/s"
}
# $1 folder of a tar run, $2 devices: that many tars, all recorded.
check_tars() {
    [ "$(find "$1" -maxdepth 1 -name '*.tar' | wc -l)" = "$2" ] || { echo "error: $1 does not hold $2 tars" >&2; exit 1; }
    [ "$(($(wc -l < "$1/devices.csv") - 1))" = "$2" ] || { echo "error: $1/devices.csv does not list $2 devices" >&2; exit 1; }
}
# The last tar bundle of folder $1 unpacked, its certificate verified
# against ca.pem; with $2 = csr, it must hold no key.
verify_last_tar() {
    local dir tar
    tar=$(find "$1" -maxdepth 1 -name '*.tar' | sort | tail -1)
    dir=$(mktemp -d verify.XXXXXX)
    tar -xf "$tar" -C "$dir"
    if [ "${2:-}" = csr ] && [ -e "$dir/var/sota/import/pkey.pem" ]; then
        echo "error: $tar holds a key" >&2
        exit 1
    fi
    openssl verify -x509_strict -purpose sslclient -CAfile ca.pem "$dir/var/sota/import/client.pem" >/dev/null
    rm -rf "$dir"
}

if [ "$mode" = csr ]; then
    command -v /usr/bin/time >/dev/null || { echo "error: GNU time (/usr/bin/time) is needed" >&2; exit 2; }
    for n in "$n_small" "$n_big"; do
        timed "make-$n" "$make_csrs" "$n" "csrs-$n"
    done
    header
    declare -A cpu_per up_front
    for n in "$n_small" "$n_big"; do
        row "make-csrs (in-process, all cores), $n requests" "$n" "make-$n"
    done
    for n in "$n_small" "$n_big"; do
        rm -rf "signed-$n"
        timed "time-$n" "$bin" device-certs --fleet-ca ca.pem --fleet-ca-key ca.key \
            --csr "csrs-$n" --out "signed-$n" --format tar --quiet
        check_tars "signed-$n" "$n"
        verify_last_tar "signed-$n" csr
        row "sota-stage device-certs --csr --format tar, $n" "$n" "time-$n"
        cpu_per[$n]=$row_cpu_per
        # The up-front reading and checking alone: the last request (by
        # name) made unreadable, every other one is read and checked
        # before the run is refused, writing nothing.
        rm -rf "signed-$n"
        echo "not a request" > "csrs-$n/$(find "csrs-$n" -maxdepth 1 -name '*.csr' -printf '%f\n' | sort | tail -1)"
        if timed "refused-$n" "$bin" device-certs --fleet-ca ca.pem --fleet-ca-key ca.key \
            --csr "csrs-$n" --out "signed-$n" --format tar --quiet 2>/dev/null; then
            echo "error: a run with a damaged request was not refused" >&2
            exit 1
        fi
        [ ! -e "signed-$n" ] || { echo "error: a refused run wrote signed-$n" >&2; exit 1; }
        row "  of which reading and checking the requests (refused run)" "$n" "refused-$n"
        up_front[$n]=$row_cpu_per
        rm -rf "csrs-$n"
    done
    awk -v a="${cpu_per[$n_big]}" -v b="${cpu_per[$n_small]}" -v big="$n_big" -v small="$n_small" \
        'BEGIN {printf "CPU per device at %d against %d: %.2fx (goal: at most 1.3x)\n", big, small, a / b}'
    awk -v a="${up_front[$n_big]}" -v b="${up_front[$n_small]}" -v big="$n_big" -v small="$n_small" \
        -v all="${cpu_per[$n_big]}" \
        'BEGIN {printf "reading and checking the requests (one thread): CPU per request at %d against %d: %.2fx; %.0f%% of the CPU time at %d\n", big, small, a / b, a * 100 / all, big}'
    exit 0
fi

if [ "$mode" = hsm ]; then
    command -v /usr/bin/time >/dev/null || { echo "error: GNU time (/usr/bin/time) is needed" >&2; exit 2; }
    for tool in softhsm2-util pkcs11-tool; do
        command -v "$tool" >/dev/null || { echo "error: \`$tool\` is needed (Debian softhsm2, opensc)" >&2; exit 2; }
    done
    module=${PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
    [ -f "$module" ] || { echo "error: no PKCS#11 module at $module (Debian softhsm2, or set PKCS11_MODULE)" >&2; exit 2; }
    # A token of the run's own with a throwaway PIN, never printed.
    pin=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
    mkdir tokens
    printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
        "$work/tokens" > softhsm2.conf
    export SOFTHSM2_CONF=$work/softhsm2.conf
    # openssl's engine pointed at the module itself, not at p11-kit's proxy.
    printf '%s\n' "openssl_conf = init" "[init]" "engines = engines" "[engines]" \
        "pkcs11 = pkcs11" "[pkcs11]" "engine_id = pkcs11" "MODULE_PATH = $module" "init = 0" \
        "[req]" "distinguished_name = dn" "[dn]" "[v3_ca]" \
        "basicConstraints = critical,CA:TRUE" "keyUsage = critical,keyCertSign,cRLSign" \
        "subjectKeyIdentifier = hash" > openssl-pkcs11.cnf
    # The extensions device-certs gives a device certificate, for openssl.
    printf '%s\n' "basicConstraints = critical, CA:FALSE" \
        "keyUsage = critical, digitalSignature" "extendedKeyUsage = clientAuth" \
        "subjectKeyIdentifier = hash" "authorityKeyIdentifier = keyid" > device.ext
    softhsm2-util --init-token --free --label fleet --pin "$pin" --so-pin "$pin$pin" >/dev/null
    pkcs11-tool --module "$module" --token-label fleet --login --pin "$pin" \
        --keypairgen --key-type EC:prime256v1 --id 01 --label fleetca >/dev/null 2>&1
    uri="pkcs11:token=fleet;object=fleetca;type=private"
    (umask 077 && printf '%s\n' "$pin" > pin)
    OPENSSL_CONF=$work/openssl-pkcs11.cnf openssl req -new -x509 -engine pkcs11 -keyform engine \
        -key "$uri?pin-value=$pin" -subj "/CN=Bench Fleet CA (token)" -days 3650 \
        -extensions v3_ca -out ca.pem 2>/dev/null
    timed make-tool "$make_csrs" "$n_tool" csrs-tool
    "$make_csrs" "$n_openssl" csrs-openssl
    header
    row "make-csrs (in-process, all cores), $n_tool requests" "$n_tool" make-tool
    timed time-minted "$bin" device-certs --fleet-ca ca.pem --fleet-ca-key "$uri" \
        --pkcs11-module "$module" --pkcs11-pin-file pin --out minted --format tar --quiet \
        --count "$n_tool" --id-prefix dev-
    check_tars minted "$n_tool"
    verify_last_tar minted
    row "sota-stage device-certs, token CA key, $n_tool minted keys" "$n_tool" time-minted
    rate_minted=$row_rate
    timed time-csr "$bin" device-certs --fleet-ca ca.pem --fleet-ca-key "$uri" \
        --pkcs11-module "$module" --pkcs11-pin-file pin --out signed --format tar --quiet \
        --csr csrs-tool
    check_tars signed "$n_tool"
    verify_last_tar signed csr
    row "sota-stage device-certs --csr, token CA key, $n_tool requests" "$n_tool" time-csr
    rate_csr=$row_rate
    # openssl, one process per device, signing with the same token key
    # through the engine; the PIN reaches it in the URI, in its environment.
    mkdir openssl-certs
    timed time-openssl env OPENSSL_CONF="$work/openssl-pkcs11.cnf" BENCH_URI="$uri?pin-value=$pin" \
        bash -c '
        for csr in csrs-openssl/*.csr; do
            id=$(basename "$csr" .csr)
            openssl x509 -req -in "$csr" -CA ca.pem -CAkey "$BENCH_URI" -CAkeyform engine \
                -engine pkcs11 -CAcreateserial -days 365 -sha256 -extfile device.ext \
                -out "openssl-certs/$id.pem" 2>/dev/null || exit 1
        done'
    [ "$(find openssl-certs -name '*.pem' | wc -l)" = "$n_openssl" ] || { echo "error: openssl did not sign $n_openssl requests" >&2; exit 1; }
    openssl verify -x509_strict -purpose sslclient -CAfile ca.pem \
        "$(find openssl-certs -name '*.pem' | sort | tail -1)" >/dev/null
    row "openssl x509 -req -engine pkcs11, one process each, $n_openssl" "$n_openssl" time-openssl
    awk -v a="$rate_minted" -v c="$rate_csr" -v o="$row_rate" \
        'BEGIN {printf "devices per second with the token key: sota-stage %.0fx (minted keys), %.0fx (requests) those of openssl x509 -req, one process per device\n", a / o, c / o}'
    exit 0
fi

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
first=$(find check-tool -mindepth 1 -maxdepth 1 -name 'dev-*' | sort | head -1)
for cert in "$first/var/sota/import/client.pem" check-ec/dev-1/client.pem; do
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
    if [ -x "$cert_provider" ]; then
        times[cert_provider]+="$(side_cert_provider "r$r-cert-provider" "$n_proc" | cut -d' ' -f2) "
    fi
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
sides="rsa_serial ec_serial rsa_parallel ec_parallel"
if have_cert_provider; then
    sides="cert_provider $sides"
fi
for side in $sides; do
    t=$(echo "${times[$side]}" | median)
    per=$(awk -v t="$t" -v n="$n_proc" 'BEGIN {printf "%.4f", t * 1000 / n}')
    ratio=$(awk -v a="$per" -v b="$per_tool" 'BEGIN {printf "%.1f", a / b}')
    case $side in
        cert_provider) name="aktualizr-cert-provider (real), one by one" ;;
        rsa_serial) name="openssl per device, RSA 2048, one by one" ;;
        ec_serial) name="openssl per device, EC P-256, one by one" ;;
        rsa_parallel) name="openssl per device, RSA 2048, $cores at once" ;;
        ec_parallel) name="openssl per device, EC P-256, $cores at once" ;;
    esac
    printf '%-44s %10.3f %14s %8s\n' "$name" "$t" "$per" "${ratio}x"
done
