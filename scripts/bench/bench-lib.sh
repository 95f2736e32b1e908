# Sourced by the bench scripts (not run): what they share.
#
#   bench_tool             bin: $SOTA_STAGE, else the release build in $here
#   bench_workdir NAME     work: a fresh NAME.XXXXXX under $BENCH_DIR (made
#                          if missing) or ${TMPDIR:-/tmp}, removed on exit
#   wall, rss              seconds, peak KiB of the last run GNU time wrote
#                          to $work/t as '%e %U %S %M'
#   median V...            the median of the values (the upper one of two)
#   ratio A B              A / B to two places (bc)
# scripts/bench/copy-tree.py copies the real files the audit benches search.

bench_tool() {
    if [ -n "${SOTA_STAGE:-}" ]; then
        bin=$SOTA_STAGE
    else
        (cd "$here" && cargo build --release --quiet)
        bin=$here/target/release/sota-stage
    fi
}

bench_workdir() {
    if [ -n "${BENCH_DIR:-}" ]; then
        mkdir -p "$BENCH_DIR"
        work=$(mktemp -d "$BENCH_DIR/$1.XXXXXX")
    else
        work=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    fi
    trap 'rm -rf "$work"' EXIT
}

wall() { tail -n 1 "$work/t" | cut -d' ' -f1; }
rss() { tail -n 1 "$work/t" | cut -d' ' -f4; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { echo "scale=2; $1 / $2" | bc; }
