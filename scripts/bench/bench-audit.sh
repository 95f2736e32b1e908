#!/usr/bin/env bash
# Measures `sota-stage audit` against ripgrep searching the same fixed
# strings, side by side in one run (docs/benchmark.md, "audit"):
#
#   scripts/bench/bench-audit.sh [WORKDIR] [MIB] [ROUNDS]
#
# Builds two trees of MIB MiB (default 500) of real files copied from
# /usr/lib and /usr/share under WORKDIR (default /tmp/bench-audit): `tree`,
# every file (the gzip-heavy tree: manual pages, changelogs, ...), and
# `tree-plain`, without any file that starts like a gzip or zip (both tools
# read the same bytes). Plants a few leaks in each, makes a test-only
# credentials.zip (fresh random OAuth2 secret and ED25519 targets key),
# and has the tool write the exact fixed strings it searches (the encoded
# forms included) with its debug option `--print-needles`. Then, ROUNDS
# times (default 5) after one warm-up each, alternately:
#   plain tree: rg -F -f NEEDLES -uuu -a TREE    and   sota-stage audit
#   gzip tree:  rg -z -F -f NEEDLES -uuu -a TREE and   sota-stage audit
# (NEEDLES: those needles that are UTF-8: rg -F refuses the others, raw
# key bytes; so rg searches a few fewer than the audit.)
# and prints the median wall and user+sys CPU times (GNU time), their
# ratios, and the audit's peak resident memory (the worst of all runs).
# BASE=/path/to/an/older/sota-stage adds that binary to each round. Needs
# ripgrep, openssl, python3, GNU time (/usr/bin/time), bc. Release build.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/bench/bench-lib.sh
work=${1:-/tmp/bench-audit}
mib=${2:-500}
rounds=${3:-5}

command -v rg >/dev/null || { echo "bench-audit: needs ripgrep (apt-get install ripgrep)" >&2; exit 3; }
[ -x /usr/bin/time ] || { echo "bench-audit: needs GNU time (apt-get install time)" >&2; exit 3; }
command -v bc >/dev/null || { echo "bench-audit: needs bc (apt-get install bc)" >&2; exit 3; }
base=${BASE:-}
cargo build --release --locked --quiet
tool=$PWD/target/release/sota-stage

mkdir -p "$work"
# make_tree DEST PLAIN: MIB MiB of /usr/share and /usr/lib (PLAIN=1: no file
# that starts like a gzip or zip).
make_tree() {
    local dest=$1 plain=$2
    if [ -f "$dest.done" ] && [ "$(cat "$dest.done")" = "$mib" ]; then return; fi
    rm -rf "$dest"
    python3 scripts/bench/copy-tree.py "$dest" "$mib" "$plain" 64 --report
    echo "$mib" > "$dest.done"
}
make_tree "$work/tree" 0
make_tree "$work/tree-plain" 1

# Test-only credentials: a fresh secret and key each run.
keys=$work/keys
rm -rf "$keys" && mkdir -p "$keys"
openssl genpkey -algorithm ed25519 -outform DER -out "$keys/k.der" 2>/dev/null
openssl pkey -inform DER -in "$keys/k.der" -pubout -outform DER -out "$keys/p.der" 2>/dev/null
python3 - "$keys" "$work" "$work/tree" "$work/tree-plain" <<'PY'
import json, os, secrets, sys, zipfile
keys, work, trees = sys.argv[1], sys.argv[2], sys.argv[3:]
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
# Leaks: the secret in a config, the key's hex in a script, the archive.
for tree in trees:
    os.makedirs(os.path.join(tree, "etc/leak"), exist_ok=True)
    open(os.path.join(tree, "etc/leak/app.conf"), "w").write("secret=%s\n" % client_secret)
    open(os.path.join(tree, "etc/leak/sign.sh"), "w").write("KEY=%s\n" % private)
    with open(os.path.join(work, "credentials.zip"), "rb") as a, open(os.path.join(tree, "etc/leak/c.zip"), "wb") as b:
        b.write(a.read())
PY
# The fixed strings the audit searches, exactly (its debug option; the
# file holds the test-only secrets).
rm -f "$work/needles"
"$tool" audit --credentials "$work/credentials.zip" --print-needles "$work/needles" "$work/tree-plain/etc/leak" >/dev/null || true
[ -s "$work/needles" ] || { echo "bench-audit: the tool wrote no needles" >&2; exit 1; }
# rg -F takes only UTF-8 patterns, and a few needles are raw key bytes:
# rg -F gets the needles that are UTF-8 (all but those few: rg does less
# work than the audit), and, once per tree for scale, every needle as a
# regex of escaped bytes, `(?-u:\xHH...)`.
python3 - "$work/needles" "$work/needles.utf8" "$work/needles.re" <<'PY'
import sys
src, utf8, regex = sys.argv[1], sys.argv[2], sys.argv[3]
with open(src, "rb") as f, open(utf8, "w") as u, open(regex, "w") as r:
    for line in f.read().split(b"\n"):
        if not line:
            continue
        r.write("(?-u:" + "".join("\\x%02x" % b for b in line) + ")\n")
        try:
            u.write(line.decode("utf-8") + "\n")
        except UnicodeDecodeError:
            pass
PY
echo "needles: $(wc -l < "$work/needles.re") fixed strings, $(wc -l < "$work/needles.utf8") of them UTF-8 (for rg -F)"

for t in tree-plain tree; do
    echo "$t: $(find "$work/$t" -type f | wc -l) files, $(du -sm "$work/$t" | cut -f1) MiB (du); gzip files: $(find "$work/$t" -name '*.gz' | wc -l)"
done
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"

# Each run: wall, user and system seconds, peak RSS in KiB (GNU time).
timed() { /usr/bin/time -f '%e %U %S %M' -o "$work/t" "$@" > "$work/out" 2>/dev/null || true; }
cpu() { tail -n 1 "$work/t" | awk '{printf "%.2f", $2 + $3}'; }
worst_rss=0
note_rss() { local r; r=$(rss); if [ "$r" -gt "$worst_rss" ]; then worst_rss=$r; fi; }

# bench TREE [-z]: rounds of rg and the audit on one tree.
bench() {
    local tree=$work/$1 rgz=${2:-}
    run_rg() { timed rg $rgz -F -f "$work/needles.utf8" -uuu -a "$tree"; }
    run_audit() { timed "$1" audit --credentials "$work/credentials.zip" "$tree"; cp "$work/out" "$work/audit.out"; }
    run_audit "$tool"
    echo "$1: audit findings (errors): $(grep -c '^error' "$work/audit.out" || true)"
    run_rg
    echo "$1: rg $rgz matching lines: $(wc -l < "$work/out")"
    local rg_wall=() rg_cpu=() a_wall=() a_cpu=() b_wall=() b_cpu=() i line
    for i in $(seq "$rounds"); do
        run_rg; rg_wall+=("$(wall)"); rg_cpu+=("$(cpu)")
        run_audit "$tool"; a_wall+=("$(wall)"); a_cpu+=("$(cpu)"); note_rss
        line="$1 round $i: rg $rgz ${rg_wall[-1]} s (cpu ${rg_cpu[-1]}), audit ${a_wall[-1]} s (cpu ${a_cpu[-1]}, $(rss) KiB)"
        if [ -n "$base" ]; then
            run_audit "$base"; b_wall+=("$(wall)"); b_cpu+=("$(cpu)")
            line="$line, base ${b_wall[-1]} s (cpu ${b_cpu[-1]})"
        fi
        echo "$line; load $(cut -d' ' -f1 /proc/loadavg)"
    done
    local rw rc aw ac
    rw=$(median "${rg_wall[@]}"); rc=$(median "${rg_cpu[@]}")
    aw=$(median "${a_wall[@]}"); ac=$(median "${a_cpu[@]}")
    echo "$1: median wall: rg $rgz $rw s, audit $aw s: audit/rg = $(ratio "$aw" "$rw")"
    echo "$1: median user+sys: rg $rgz $rc s, audit $ac s: audit/rg = $(ratio "$ac" "$rc")"
    timed rg $rgz -f "$work/needles.re" -uuu -a "$tree"
    echo "$1: once, rg $rgz with every needle as an escaped-byte regex: $(wall) s (user+sys $(cpu) s)"
    if [ -n "$base" ]; then
        echo "$1: base: median wall $(median "${b_wall[@]}") s, user+sys $(median "${b_cpu[@]}") s"
    fi
}
bench tree-plain
bench tree -z
echo "audit peak resident memory, worst run: $worst_rss KiB"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
