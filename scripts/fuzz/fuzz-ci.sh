#!/usr/bin/env bash
# Fuzzing for CI (docs/fuzzing.md): installs cargo-fuzz from crates.io when
# it is missing, pins the fuzz workspace to the shipped crate versions
# (fuzz/Cargo.lock from Cargo.lock; never committed), seeds the corpora,
# builds every target with the nightly toolchain, and runs each for a
# bounded time, two at a time (two cores). Any crash, input slower than
# 1 s or a run above 256 MiB of memory fails the run; its input is kept in
# fuzz/artifacts/<target>/ and the log in fuzz/logs/<target>.log.
#
#   scripts/fuzz/fuzz-ci.sh                       # 20 s per target
#   FUZZ_SECONDS=600 FUZZ_JOBS=2 scripts/fuzz/fuzz-ci.sh   # longer
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-20}
jobs=${FUZZ_JOBS:-2}
# Release, no sanitizer: the crate forbids unsafe code, so what is sought
# is panics, slow inputs and memory use, and AddressSanitizer's shadow
# memory and quarantine would count against the 256 MiB limit
# (docs/fuzzing.md).
build_flags="-O -s none"
start=$(date +%s)
stamp() { echo "fuzz-ci: $* ($(($(date +%s) - start)) s)"; }

rustup run nightly rustc --version >/dev/null 2>&1 \
    || { echo "fuzz-ci: the nightly toolchain is not installed (rustup toolchain install nightly)" >&2; exit 1; }
if ! cargo fuzz --version >/dev/null 2>&1; then
    stamp "installing cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet
    stamp "cargo-fuzz installed"
fi

# The fuzz workspace has its own lock; start it from the main one so the
# targets fuzz the crate versions the recipe ships, plus libFuzzer's.
cp Cargo.lock fuzz/Cargo.lock
bash fuzz/seed.sh >/dev/null
(cd fuzz && cargo +nightly fuzz build $build_flags)
stamp "targets built"

mkdir -p fuzz/logs
targets=$(cd fuzz && cargo +nightly fuzz list)
failed=()
run_one() {
    local t=$1 extra=()
    # Inputs that once failed are seeds too (read, never written).
    [ -d "tests/fuzz_regressions/$t" ] && extra+=("$PWD/tests/fuzz_regressions/$t")
    (cd fuzz && cargo +nightly fuzz run $build_flags "$t" "corpus/$t" "${extra[@]}" -- \
        -max_total_time="$seconds" -rss_limit_mb=256 -timeout=1 \
        -print_final_stats=1 -close_fd_mask=1) > "fuzz/logs/$t.log" 2>&1
}
pids=()
names=()
for t in $targets; do
    run_one "$t" &
    pids+=($!)
    names+=("$t")
    if [ ${#pids[@]} -ge "$jobs" ]; then
        wait "${pids[0]}" || failed+=("${names[0]}")
        pids=("${pids[@]:1}")
        names=("${names[@]:1}")
    fi
done
for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || failed+=("${names[$i]}")
done

for t in $targets; do
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "fuzz/logs/$t.log" | grep -o '[0-9]*$' || echo "?")
    last=$(grep -E '^#[0-9]+.*(cov|ft):' "fuzz/logs/$t.log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9a-zA-Z]+' || true)
    echo "fuzz-ci: $t: $execs executions; $last"
done
if [ ${#failed[@]} -gt 0 ]; then
    for t in "${failed[@]}"; do
        echo "fuzz-ci: $t FAILED; the end of fuzz/logs/$t.log:" >&2
        grep -E '^(==[0-9]+== ERROR|SUMMARY|thread .* panicked|artifact_prefix|Test unit written)' \
            "fuzz/logs/$t.log" | cut -c1-300 >&2 || true
    done
    echo "fuzz-ci: minimise with \`cd fuzz && cargo +nightly fuzz tmin -O TARGET ARTIFACT\`, fix, and add the input under tests/fuzz_regressions/TARGET/" >&2
    exit 1
fi
stamp "done, no crash, timeout or OOM"
