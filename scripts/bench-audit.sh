#!/usr/bin/env bash
# Measures `sota-stage audit` against ripgrep searching the same fixed
# strings, side by side in one run (docs/benchmark.md, "audit"):
#
#   scripts/bench-audit.sh [WORKDIR] [MIB] [ROUNDS]
#
# Builds a tree of MIB MiB (default 500) of real files copied from /usr/lib
# and /usr/share under WORKDIR (default /tmp/bench-audit), plants a few
# leaks, makes a test-only credentials.zip (fresh random OAuth2 secret and
# ED25519 targets key), writes the text patterns for rg, then runs
#   rg -F -f PATTERNS -uuu -a TREE
#   sota-stage audit --credentials ZIP TREE
# alternately ROUNDS times (default 5) after one warm-up each, and prints the
# median wall times, user+sys CPU times (GNU time) and the ratios.
# BASE=/path/to/an/older/sota-stage adds that binary to each round (before
# and after a change, side by side). BENCH_PLAIN=1 leaves out every file that
# starts like a gzip or zip (so both tools read the same bytes: the tool
# has nothing to decompress); its tree is WORKDIR/tree-plain. Needs ripgrep (apt-get install ripgrep),
# openssl, python3 and GNU time (/usr/bin/time). Release build of the tool.
#
# rg gets the text patterns only (the client secret, the private key's hex
# and its seed's hex, each in both cases); the tool also searches the raw
# key bytes and whole secret entries, hashes files of the archive's entry
# sizes, and decompresses every zip and gzip it finds (rg does not: no -z).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/bench-audit}
mib=${2:-500}
rounds=${3:-5}

command -v rg >/dev/null || { echo "bench-audit: needs ripgrep (apt-get install ripgrep)" >&2; exit 3; }
[ -x /usr/bin/time ] || { echo "bench-audit: needs GNU time (apt-get install time)" >&2; exit 3; }
base=${BASE:-}
cargo build --release --locked --quiet
tool=$PWD/target/release/sota-stage

mkdir -p "$work"
plain=${BENCH_PLAIN:-0}
tree=$work/tree
[ "$plain" = 1 ] && tree=$work/tree-plain
if [ ! -f "$tree.done" ] || [ "$(cat "$tree.done")" != "$mib" ]; then
    rm -rf "$tree"
    python3 - "$tree" "$mib" "$plain" <<'EOF'
import os, shutil, sys
dest, mib, plain = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
budget = mib * 1024 * 1024
total = 0
for top in ("/usr/share", "/usr/lib"):
    for root, dirs, files in os.walk(top):
        dirs.sort()
        for name in sorted(files):
            src = os.path.join(root, name)
            if os.path.islink(src) or not os.path.isfile(src):
                continue
            size = os.path.getsize(src)
            if plain:
                try:
                    head = open(src, "rb").read(4)
                except OSError:
                    continue
                if head.startswith(b"\x1f\x8b") or head.startswith(b"PK\x03\x04"):
                    continue
            if size > 64 * 1024 * 1024 or total + size > budget:
                continue
            out = os.path.join(dest, os.path.relpath(src, "/"))
            os.makedirs(os.path.dirname(out), exist_ok=True)
            try:
                shutil.copyfile(src, out)
            except OSError:
                continue
            total += size
        if total >= budget * 0.999:
            break
print("tree: %d MiB in %s" % (total // (1024 * 1024), dest))
EOF
    echo "$mib" > "$tree.done"
fi

# Test-only credentials: a fresh secret and key each run.
keys=$work/keys
rm -rf "$keys" && mkdir -p "$keys"
openssl genpkey -algorithm ed25519 -outform DER -out "$keys/k.der" 2>/dev/null
openssl pkey -inform DER -in "$keys/k.der" -pubout -outform DER -out "$keys/p.der" 2>/dev/null
python3 - "$keys" "$work" "$tree" <<'EOF'
import json, os, secrets, sys, zipfile
keys, work, tree = sys.argv[1], sys.argv[2], sys.argv[3]
seed = open(os.path.join(keys, "k.der"), "rb").read()[-32:]
pub = open(os.path.join(keys, "p.der"), "rb").read()[-32:]
private = (seed + pub).hex()
client_secret = "TEST-ONLY-bench-" + secrets.token_hex(16)
treehub = json.dumps({"oauth2": {"server": "https://auth.example.test", "client_id": "bench",
                      "client_secret": client_secret},
                      "ostree": {"server": "https://treehub.example.test/api/v3"}})
with zipfile.ZipFile(os.path.join(work, "credentials.zip"), "w") as z:
    z.writestr("autoprov.url", "https://bench.device-gateway.example.test:443")
    z.writestr("treehub.json", treehub)
    z.writestr("targets.pub", json.dumps({"keytype": "ED25519", "keyval": {"public": pub.hex()}}))
    z.writestr("targets.sec", json.dumps({"keytype": "ED25519", "keyval": {"private": private}}))
    z.writestr("tufrepo.url", "https://tuf.example.test/api/v1/user_repo")
with open(os.path.join(work, "patterns"), "w") as f:
    for p in (client_secret, private, private.upper(), private[:64], private[:64].upper()):
        f.write(p + "\n")
# Leaks: the secret in a config, the key's hex in a script, the archive.
os.makedirs(os.path.join(tree, "etc/leak"), exist_ok=True)
open(os.path.join(tree, "etc/leak/app.conf"), "w").write("secret=%s\n" % client_secret)
open(os.path.join(tree, "etc/leak/sign.sh"), "w").write("KEY=%s\n" % private)
with open(os.path.join(work, "credentials.zip"), "rb") as a, open(os.path.join(tree, "etc/leak/c.zip"), "wb") as b:
    b.write(a.read())
EOF

files=$(find "$tree" -type f | wc -l)
size=$(du -sm "$tree" | cut -f1)
echo "tree: $files files, $size MiB (du) in $tree; load before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"

# Each run: wall, user and system seconds (GNU time), into $work/t.
timed() { /usr/bin/time -f '%e %U %S' -o "$work/t" "$@" > "$work/out" || true; }
run_rg() { timed rg -F -f "$work/patterns" -uuu -a "$tree"; }
run_audit() { timed "$1" audit --credentials "$work/credentials.zip" "$tree"; cp "$work/out" "$work/audit.out"; }

# Warm-up: both read the tree once into the page cache.
run_rg; run_audit "$tool"
grep -c '^error' "$work/audit.out" | sed 's/^/audit findings (errors): /'
[ -n "$base" ] && { run_audit "$base"; grep -c '^error' "$work/audit.out" | sed 's/^/base findings (errors): /'; }
rg_wall=(); rg_cpu=(); audit_wall=(); audit_cpu=(); base_wall=(); base_cpu=()
# (GNU time writes "Command exited with non-zero status 1" first when a
# leak was found: the times are the last line.)
wall() { tail -n 1 "$work/t" | cut -d' ' -f1; }
cpu() { tail -n 1 "$work/t" | awk '{printf "%.2f", $2 + $3}'; }
for i in $(seq "$rounds"); do
    run_rg; rg_wall+=("$(wall)"); rg_cpu+=("$(cpu)")
    run_audit "$tool"; audit_wall+=("$(wall)"); audit_cpu+=("$(cpu)")
    line="round $i: rg ${rg_wall[-1]} s (cpu ${rg_cpu[-1]}), audit ${audit_wall[-1]} s (cpu ${audit_cpu[-1]})"
    if [ -n "$base" ]; then
        run_audit "$base"; base_wall+=("$(wall)"); base_cpu+=("$(cpu)")
        line="$line, base ${base_wall[-1]} s (cpu ${base_cpu[-1]})"
    fi
    echo "$line; load $(cut -d' ' -f1 /proc/loadavg)"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { echo "scale=2; $1 / $2" | bc; }
rg_med=$(median "${rg_wall[@]}"); rg_cpu_med=$(median "${rg_cpu[@]}")
audit_med=$(median "${audit_wall[@]}"); audit_cpu_med=$(median "${audit_cpu[@]}")
echo "median wall: rg $rg_med s, audit $audit_med s; audit/rg = $(ratio "$audit_med" "$rg_med")"
echo "median user+sys: rg $rg_cpu_med s, audit $audit_cpu_med s; audit/rg = $(ratio "$audit_cpu_med" "$rg_cpu_med")"
if [ -n "$base" ]; then
    base_med=$(median "${base_wall[@]}"); base_cpu_med=$(median "${base_cpu[@]}")
    echo "base: median wall $base_med s (base/rg = $(ratio "$base_med" "$rg_med")), user+sys $base_cpu_med s (base/rg = $(ratio "$base_cpu_med" "$rg_cpu_med"))"
fi
# The same fixed strings with rg -z, which also looks into gzip files (it
# starts a gzip process per file): once, for scale.
timed rg -z -F -f "$work/patterns" -uuu -a "$tree"
echo "rg -z (searches gzip contents too, once): $(wall) s (user+sys $(cpu) s, its gzip processes included); audit/(rg -z) = $(ratio "$audit_med" "$(wall)")"
gz=$(find "$tree" -name '*.gz' | wc -l)
echo "gzip files in the tree: $gz ($(find "$tree" -name '*.gz' -print0 | xargs -0 cat | wc -c) bytes, $(find "$tree" -name '*.gz' -print0 | xargs -0 zcat 2>/dev/null | wc -c) decompressed)"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
