#!/usr/bin/env bash
# Every test: install what is missing, then
#   1. gcc build, warnings as errors, the whole suite (ctest);
#   2. clang build with ASan+UBSan, the whole suite;
#   3. the unit and property tests under valgrind, failing on any report;
#   4. the libFuzzer targets, each for a bounded time over its seed corpus;
#   5. the embedded profile cross-built for Cortex-M4, its size table;
#   6. the benchmark in its quick form, to prove it runs (no timing asserted).
# STRATA_FUZZ_SECONDS (default 60) bounds each fuzzer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs=$(nproc)
fuzz_seconds=${STRATA_FUZZ_SECONDS:-60}

step() { printf '\n===== %s\n' "$*"; }

step "gcc build and tests"
cmake -S . -B build/gcc -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=gcc \
  -DCMAKE_C_FLAGS=-Werror >/dev/null
cmake --build build/gcc -j"$jobs"
ctest --test-dir build/gcc --output-on-failure -j"$jobs"

step "install and build an example against it with pkg-config"
prefix=$(mktemp -d)
cmake --install build/gcc --prefix "$prefix" >/dev/null
PKG_CONFIG_PATH="$prefix/lib/pkgconfig:$prefix/lib/x86_64-linux-gnu/pkgconfig" \
  sh -c 'cc -std=c11 -Wall -Werror examples/hello_lines.c -o "$1/hello" \
           $(pkg-config --cflags --libs strata)' sh "$prefix"
# No server on port 1: the program must run and report the refusal.
out=$(LD_LIBRARY_PATH="$prefix/lib:$prefix/lib/x86_64-linux-gnu" \
      "$prefix/hello" 127.0.0.1 1 2>&1 || true)
case "$out" in
  *"transport I/O error"*) ;;
  *) echo "installed hello_lines did not run: $out"; exit 1 ;;
esac
echo "installed headers and pkg-config file build a program"
rm -rf "$prefix"

step "clang-14 ASan+UBSan build and tests"
cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang-14 \
  -DCMAKE_C_FLAGS=-Werror -DSTRATA_SANITIZE=ON -DSTRATA_BENCH=OFF >/dev/null
cmake --build build/asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build/asan --output-on-failure -j"$jobs"

step "valgrind"
# Every cmocka program under memcheck; any error or leak fails the run.
ls build/gcc/tests/test_* | grep -v '\.vg\.log$' | STRATA_VALGRIND=1 xargs -P "$jobs" -I{} sh -c \
  'valgrind -q --error-exitcode=99 --leak-check=full \
     --errors-for-leak-kinds=definite,indirect {} >{}.vg.log 2>&1 \
   && echo "valgrind clean: {}" || { echo "valgrind FAILED: {}"; cat {}.vg.log; exit 1; }'

step "embedded profile: Cortex-M4 cross-build, size table, symbols"
# The budget: 12 KiB of .text (code) for the whole profile, and 13 KiB of
# flash with its tables and strings (README, "Embedded profile").
scripts/cross_embedded.sh build/embedded

step "libFuzzer targets, ${fuzz_seconds}s each"
cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang-14 \
  -DSTRATA_SANITIZE=ON -DSTRATA_FUZZ=ON -DSTRATA_BENCH=OFF >/dev/null
cmake --build build/fuzz -j"$jobs" --target strata_fuzzers
for f in build/fuzz/tests/fuzz/fuzz_*; do
  name=$(basename "$f"); corpus=tests/fuzz/corpus/${name#fuzz_}
  work=$(mktemp -d); cp "$corpus"/* "$work"/
  echo "-- $name"
  log=$work.log
  # a finding is shown whole (the check or sanitizer report, the input
  # saved by libFuzzer), not just the exit status
  if ! "$f" -max_total_time="$fuzz_seconds" -print_final_stats=1 \
       -artifact_prefix="$work/" "$work" >"$log" 2>&1; then
    tail -n 60 "$log"; ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* \
      2>/dev/null || true
    echo "fuzzer $name failed"; exit 1
  fi
  grep -E '^(Done|stat::(number_of_executed_units|new_units_added|peak_rss_mb))' "$log"
  rm -rf "$work" "$log"
done

step "benchmark smoke run"
build/gcc/bench/bench_framing --quick

step "all tests passed"
