#!/usr/bin/env bash
# Issue 18's speed figures (docs/benchmark.md, "audit: images and
# repositories"), side by side in one run:
#
#   scripts/bench/bench-audit-repos.sh [WORKDIR] [MIB] [ROUNDS]
#
# From one tree of MIB MiB (default 200) of /usr/share and /usr/lib files
# without gzip or zip files (WORKDIR/tree, default /tmp/bench-audit-repos)
# with a planted leak, makes:
#   - an ext4 image of it (mkfs.ext4 -d, as OE-core's ext4 image type);
#   - an OSTree `archive` repository with one commit of it (as meta-updater
#     commits an image for garage-push);
#   - a git repository of it with 20 commits (each changing a few files).
# Then, ROUNDS times (default 3), audits the folder, the image, the
# repository and the git repository, and times the OSTree baseline: every
# .filez inflated by the audit's own inflater alone (a release-built
# ignored test). Prints medians, the ratios the issue asks for, and peak
# memory (GNU time). Needs mkfs.ext4 (e2fsprogs), ostree, git, openssl,
# python3, GNU time, bc. Release build.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/bench/bench-lib.sh
work=${1:-/tmp/bench-audit-repos}
mib=${2:-200}
rounds=${3:-3}
for tool in mkfs.ext4 ostree git bc; do
    command -v "$tool" >/dev/null || { echo "bench-audit-repos: needs $tool" >&2; exit 3; }
done
cargo build --release --locked --quiet
tool=$PWD/target/release/sota-stage
mkdir -p "$work"
tree=$work/tree
if [ ! -f "$tree.done" ] || [ "$(cat "$tree.done")" != "$mib" ]; then
    rm -rf "$tree" "$work/image.ext4" "$work/ostree" "$work/git"
    python3 scripts/bench/copy-tree.py "$tree" "$mib" 1 16
    # Test-only credentials and the leak.
    python3 - "$work" "$tree" <<'PY'
import json, os, secrets, sys, zipfile
work, tree = sys.argv[1], sys.argv[2]
secret = "TEST-ONLY-bench-" + secrets.token_hex(16)
with zipfile.ZipFile(os.path.join(work, "credentials.zip"), "w") as z:
    z.writestr("autoprov.url", "https://bench.device-gateway.example.test:443")
    z.writestr("treehub.json", json.dumps({"oauth2": {"server": "https://auth.example.test",
               "client_id": "bench", "client_secret": secret}}))
os.makedirs(os.path.join(tree, "etc/leak"), exist_ok=True)
open(os.path.join(tree, "etc/leak/app.conf"), "w").write("secret=%s\n" % secret)
PY
    size_mib=$(( $(du -sm "$tree" | cut -f1) * 3 / 2 + 64 ))
    mkfs.ext4 -q -F -d "$tree" "$work/image.ext4" "${size_mib}M" >/dev/null
    mkdir -p "$work/ostree" "$work/git"
    ostree --repo="$work/ostree/repo" init --mode=archive
    ostree --repo="$work/ostree/repo" commit --branch=bench --tree=dir="$tree" >/dev/null
    git init -q "$work/git/repo"
    cp -a "$tree/." "$work/git/repo/"
    g() { git -C "$work/git/repo" -c user.name=b -c user.email=b@example.test -c gc.auto=0 -c commit.gpgsign=false "$@"; }
    g add -A >/dev/null && g commit -q -m 1
    for i in $(seq 2 20); do
        find "$work/git/repo/usr" -type f -name '*.py' | head -n $((i * 5)) | tail -n 5 | while read -r f; do echo "# $i" >> "$f"; done
        g commit -q -am "$i"
    done
    g repack -q -adf
    echo "$mib" > "$tree.done"
fi
echo "tree: $(find "$tree" -type f | wc -l) files, $(du -sm "$tree" | cut -f1) MiB; image $(du -m "$work/image.ext4" | cut -f1) MiB; ostree $(du -sm "$work/ostree" | cut -f1) MiB; git $(du -sm "$work/git" | cut -f1) MiB"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"

timed() { /usr/bin/time -f '%e %U %S %M' -o "$work/t" "$@" > "$work/out" 2>&1 || true; }
audit() { timed "$tool" audit --credentials "$work/credentials.zip" "$1"; }

cargo test --release --locked --quiet --lib bench_inflate_filez --no-run 2>/dev/null
folder=(); image=(); ostree_t=(); git_t=(); inflate=(); worst=0
note() { local r; r=$(rss); if [ "$r" -gt "$worst" ]; then worst=$r; fi; }
for i in $(seq "$rounds"); do
    audit "$tree"; folder+=("$(wall)"); note
    [ "$i" = 1 ] && echo "folder: $(tail -n 1 "$work/out")"
    audit "$work/image.ext4"; image+=("$(wall)"); note
    [ "$i" = 1 ] && echo "image: $(tail -n 1 "$work/out")"
    audit "$work/ostree"; ostree_t+=("$(wall)"); note
    [ "$i" = 1 ] && echo "ostree: $(tail -n 1 "$work/out")"
    audit "$work/git"; git_t+=("$(wall)"); note
    [ "$i" = 1 ] && echo "git: $(tail -n 1 "$work/out")"
    BENCH_FILEZ_DIR=$work/ostree cargo test --release --locked --quiet --lib bench_inflate_filez -- --ignored --nocapture > "$work/inflate.out" 2>&1
    inflate+=("$(grep -o '[0-9.]* s$' "$work/inflate.out" | cut -d' ' -f1)")
    echo "round $i: folder ${folder[-1]} s, ext4 image ${image[-1]} s, ostree ${ostree_t[-1]} s, inflate alone ${inflate[-1]} s, git ${git_t[-1]} s; load $(cut -d' ' -f1 /proc/loadavg)"
done
f=$(median "${folder[@]}"); im=$(median "${image[@]}"); o=$(median "${ostree_t[@]}"); inf=$(median "${inflate[@]}"); gt=$(median "${git_t[@]}")
echo "median: folder $f s, ext4 image $im s (image/folder = $(ratio "$im" "$f"), goal <= 1.5)"
echo "median: ostree archive $o s, folder + inflate alone $(echo "$f + $inf" | bc) s (ratio $(ratio "$o" "$(echo "$f + $inf" | bc)"), goal <= 1.5)"
echo "median: git repository of 20 commits $gt s"
echo "peak resident memory, worst run: $worst KiB"
