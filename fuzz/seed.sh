#!/usr/bin/env bash
# Builds the fuzz corpora under fuzz/corpus/<target>/ (not committed) from
# the shared upstream fixtures (../shared/fixtures/upstream: credentials
# zips and their entries, aktualizr's example configs), examples/, the
# snapshots of tests/snapshots/, templates/, and a few keys and
# certificates made here with openssl. The first byte of a seed is the
# target's selector where it has one (see each fuzz_targets/*.rs).
#
#   bash fuzz/seed.sh            # from anywhere; rebuilds the corpora
#
# Needs unzip and openssl. Existing corpus files (what fuzzing found) stay.
set -euo pipefail
fuzz=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$fuzz")
upstream="$top/../shared/fixtures/upstream"
corpus="$fuzz/corpus"
[ -d "$upstream" ] || { echo "seed.sh: $upstream is missing (../shared beside the project)" >&2; exit 1; }
for tool in unzip openssl; do
    command -v "$tool" >/dev/null || { echo "seed.sh: needs $tool" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

targets="archive pkcs12 pem_x509 garage_keys json_entries aktualizr_lint manifest template audit_scan"
for t in $targets; do mkdir -p "$corpus/$t"; done

# seed TARGET NAME SELECTOR_BYTE_OCTAL|'' FILE...: one seed, the selector
# byte (if any) then the files' bytes.
seed() {
    local target=$1 name=$2 selector=$3
    shift 3
    { [ -z "$selector" ] || printf "\\$selector"; cat "$@"; } > "$corpus/$target/seed-$name"
}

# json_entries' selector: the index of the entry name in its NAMES.
json_index() {
    case "$1" in
        treehub.json) echo 000 ;; root.json) echo 001 ;; director.root.json) echo 002 ;;
        targets.pub) echo 003 ;; targets.sec) echo 004 ;; provision.json) echo 005 ;;
        autoprov.url) echo 006 ;; api_gateway.url) echo 007 ;; tufrepo.url) echo 010 ;;
        server_ca.pem) echo 011 ;; *) echo "" ;;
    esac
}

zips=("$upstream"/credentials/*.zip "$top/examples/credentials.zip")
n=0
for zip in "${zips[@]}"; do
    n=$((n + 1))
    base=$(basename "$zip" .zip)
    seed archive "$base.zip" "" "$zip"
    dir="$work/zip$n"
    mkdir -p "$dir"
    unzip -qq -o "$zip" -d "$dir" 2>/dev/null || continue
    for entry in "$dir"/*; do
        [ -f "$entry" ] || continue
        name=$(basename "$entry")
        case "$name" in
            *.p12)
                seed pkcs12 "$base-$name" 000 "$entry"
                # The certificates and key inside, as PEM and DER.
                # Older bundles use RC2-40, which OpenSSL 3 reads with -legacy.
                legacy=
                openssl pkcs12 -in "$entry" -passin pass: -nokeys -out /dev/null 2>/dev/null || legacy=-legacy
                if openssl pkcs12 $legacy -in "$entry" -passin pass: -nokeys -out "$work/c.pem" 2>/dev/null; then
                    seed pem_x509 "$base-$name-certs.pem" "" "$work/c.pem"
                    openssl x509 -in "$work/c.pem" -outform DER -out "$work/c.der" 2>/dev/null \
                        && seed pem_x509 "$base-$name-cert.der" "" "$work/c.der"
                fi
                if openssl pkcs12 $legacy -in "$entry" -passin pass: -nocerts -nodes -out "$work/k.pem" 2>/dev/null; then
                    seed pem_x509 "$base-$name-key.pem" "" "$work/k.pem"
                fi
                ;;
            targets.pub | targets.sec) seed garage_keys "$base-$name" "" "$entry" ;;
            *.pem) seed pem_x509 "$base-$name" "" "$entry" ;;
        esac
        sel=$(json_index "$name")
        [ -n "$sel" ] && seed json_entries "$base-$name" "$sel" "$entry"
    done
    # targets.pub NUL targets.sec: garage_keys matches the pair.
    if [ -f "$dir/targets.pub" ] && [ -f "$dir/targets.sec" ]; then
        printf '\0' > "$work/nul"
        seed garage_keys "$base-pair" "" "$dir/targets.pub" "$work/nul" "$dir/targets.sec"
    fi
done

# Keys and certificates of each kind the tool reads, made here.
(
    cd "$work"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ec.key \
        -out ec.pem -days 30 -subj /CN=fuzz.example.test 2>/dev/null
    openssl req -x509 -newkey rsa:1024 -nodes -keyout rsa.key -out rsa.pem -days 30 \
        -subj /CN=fuzz-rsa.example.test 2>/dev/null
    openssl genpkey -algorithm ed25519 -out ed.key 2>/dev/null
    openssl ec -in ec.key -out ec-sec1.key 2>/dev/null
    openssl rsa -in rsa.key -traditional -out rsa-pkcs1.key 2>/dev/null
    openssl pkcs8 -topk8 -in ec.key -passout pass:secret -out ec-enc.key 2>/dev/null
    openssl pkcs12 -export -in ec.pem -inkey ec.key -passout pass:secret -out secret.p12 2>/dev/null
    openssl pkcs12 -export -legacy -in rsa.pem -inkey rsa.key -passout pass: -out legacy.p12 2>/dev/null || true
)
for f in ec.pem rsa.pem ec.key rsa.key ed.key ec-sec1.key rsa-pkcs1.key ec-enc.key; do
    seed pem_x509 "made-$f" "" "$work/$f"
done
openssl x509 -in "$work/ec.pem" -outform DER -out "$work/ec.der" 2>/dev/null
cat "$work/ec.pem" "$work/ec.key" > "$work/pair.pem"
seed pem_x509 made-ec.der "" "$work/ec.der"
seed pem_x509 made-pair.pem "" "$work/pair.pem"
seed pkcs12 made-secret.p12 001 "$work/secret.p12"   # PASSWORDS[1] = "secret"
[ -f "$work/legacy.p12" ] && seed pkcs12 made-legacy.p12 000 "$work/legacy.p12"

# aktualizr configs: option byte 0 (text), 1 (explain), 3 (explain, JSON);
# the upstream examples, and the fragments the tool renders.
for toml in "$upstream"/aktualizr-config/*.toml "$top"/tests/snapshots/*.toml; do
    base=$(basename "$toml")
    seed aktualizr_lint "$base" 000 "$toml"
    seed aktualizr_lint "$base-explain" 001 "$toml"
done
# Three files applied in order, NUL-separated.
printf '\0' > "$work/nul"
seed aktualizr_lint three-files 003 "$upstream/aktualizr-config/sota-shared-cred.toml" "$work/nul" \
    "$top/tests/snapshots/20-sota-shared-cred.toml" "$work/nul" "$upstream/aktualizr-config/sota-local.toml"

for json in "$top"/tests/snapshots/manifest-*.json; do
    seed manifest "$(basename "$json")" "" "$json"
done

# template: the selector picks the method (bits 0-1) and the template the
# text replaces (bits 2-3, BUILT_IN's order), bit 4 a hardware ID; then
# the text, NUL, the values.
printf '\0secret-password\0/usr/lib/softhsm/libsofthsm2.so\0987654\00a\00b\00c\0ecu-1' > "$work/values"
i=0
for name in 20-sota-shared-cred.toml.hbs 20-sota-device-cred.toml.hbs \
    20-sota-device-cred-hsm.toml.hbs 40-hardware-id.toml.hbs; do
    for method in 0 1 2; do
        sel=$(printf '%03o' $((i * 4 + method + 16)))
        seed template "$name-m$method" "$sel" "$top/templates/$name" "$work/values"
    done
    i=$((i + 1))
done

# audit_scan: one small file holding the target's secret in every container
# and compression the scanner reads (the tools are Debian's; .ci/run
# installs them), and a few nested.
mkdir -p "$work/a/etc"
printf 'client_secret=fuzz-test-client-secret-4242\n' > "$work/a/etc/app.conf"
(cd "$work/a" && tar -cf "$work/a.tar" etc && tar --format=pax -cf "$work/pax.tar" etc \
    && find etc | cpio -o -H newc --quiet > "$work/a.cpio" && zip -qr "$work/a.zip" etc)
ar rc "$work/a.ar" "$work/a/etc/app.conf"
for c in "gzip -c" "bzip2 -c" "xz -c" "lzma -c" "lz4 -c" "lz4 -l -c" "zstd -q -c"; do
    name=$(echo "$c" | tr -d ' -')
    $c < "$work/a/etc/app.conf" > "$work/plain.$name"
    $c < "$work/a.tar" > "$work/tar.$name"
    seed audit_scan "plain-$name" "" "$work/plain.$name"
    seed audit_scan "tar-$name" "" "$work/tar.$name"
done
gzip -c "$work/a.cpio" > "$work/a.cpio.gz"
# File system images (issue 18), as small as the tools make them.
mkfs.ext4 -q -F -b 1024 -N 16 -O ^has_journal,^resize_inode -d "$work/a" "$work/a.ext2" 128K >/dev/null
mkfs.vfat -C "$work/a.vfat" 64 >/dev/null
mcopy -s -i "$work/a.vfat" "$work/a/etc" ::
for f in a.tar pax.tar a.cpio a.zip a.ar a.cpio.gz a.ext2 a.vfat; do
    seed audit_scan "$f" "" "$work/$f"
done

for t in $targets; do
    echo "seed.sh: $t: $(find "$corpus/$t" -type f | wc -l) files"
done
