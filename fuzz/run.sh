#!/usr/bin/env bash
# Builds every fuzz target against libFuzzer with the stable toolchain (no cargo-fuzz, no
# nightly: the coverage instrumentation flags below are stable rustc options) and runs each one
# for a bounded time, one after the other. Exits 1 if any target found a failing input; its
# reproducer is then in fuzz/artifacts/<target>/ (see fuzz/README.md).
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]      default: 5 seconds, every target
#   FUZZ_ARGS="-max_len=512" fuzz/run.sh 60 request_head   extra libFuzzer options
#   fuzz/run.sh 0                                     only build
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-5}
shift || true
if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=()
    for f in fuzz_targets/*.rs; do
        targets+=("$(basename "$f" .rs)")
    done
fi

# Build scripts and proc macros must not be instrumented (they would need libFuzzer's
# symbols), so the target triple is always given: RUSTFLAGS then reach only target code.
host=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
start=$(date +%s)
cargo build --quiet --profile fuzz --target "$host" --bins
echo "fuzz: built ${#targets[@]} targets in $(($(date +%s) - start)) s"
[ "$seconds" = 0 ] && exit 0

bin="target/$host/fuzz"
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
failed=()
for t in "${targets[@]}"; do
    mkdir -p "artifacts/$t"
    # new inputs go to a scratch directory (the first one given); the committed seeds are read
    # from corpus/<target> and never written to
    scratch="$logs/corpus-$t"
    mkdir -p "$scratch"
    case $t in
        request_head | wsgi_environ | asgi_scope | h2_head | chunked_body) dict=(-dict=dict/http.dict) ;;
        *) dict=() ;;
    esac
    [ -f "dict/$t.dict" ] && dict=(-dict="dict/$t.dict")
    # shellcheck disable=SC2086
    if "$bin/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="artifacts/$t/" -print_final_stats=1 "${dict[@]}" ${FUZZ_ARGS:-} \
        "$scratch" "corpus/$t" >"$logs/$t.log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t.log")
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$logs/$t.log")
        cov=$(grep -o 'cov: [0-9]*' "$logs/$t.log" | tail -1)
        printf 'fuzz: %-15s ok  %9s runs  %7s/s  %s\n' "$t" "$runs" "$rate" "$cov"
    else
        echo "fuzz: $t FAILED; its log ends:"
        tail -n 40 "$logs/$t.log"
        failed+=("$t")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: failing inputs for ${failed[*]} are in fuzz/artifacts/ (fuzz/README.md: reproduce)"
    exit 1
fi
