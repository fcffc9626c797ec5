#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run): set up, then
#   1. gcc build (warnings as errors), every test;
#   2. clang build with -Wthread-safety -Werror=thread-safety (compiles everything);
#   3. ThreadSanitizer build, the concurrency tests;
#   4. AddressSanitizer + UndefinedBehaviorSanitizer build, the other tests;
#   5. libFuzzer build (clang, ASan + UBSan): each fuzzer of fuzz/ for EMU_FUZZ_SECONDS
#      (default 20) on its corpus, and the fuzz regressions replayed (tools/fuzz.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jobs=2
"$root/tools/setup.sh"

step() { echo; echo "=== $* ===" >&2; }
build() {  # dir, then cmake options
  local dir="$root/$1"; shift
  cmake -S "$root" -B "$dir" -DEMU_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
}

step "gcc build, all tests"
build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
ctest --test-dir "$root/build" -j"$jobs" --output-on-failure

step "clang -Wthread-safety build"
CC=clang CXX=clang++ build build-clang -DCMAKE_BUILD_TYPE=Debug -DEMU_THREAD_SAFETY=ON

step "ThreadSanitizer build, concurrency tests"
build build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEMU_SANITIZE=thread
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
  ctest --test-dir "$root/build-tsan" -j"$jobs" -L concurrency --output-on-failure

step "AddressSanitizer + UBSan build, the other tests"
build build-asan -DCMAKE_BUILD_TYPE=Debug -DEMU_SANITIZE=address,undefined
ASAN_OPTIONS="detect_leaks=1" LSAN_OPTIONS="suppressions=$root/tests/sanitizers/lsan.supp" UBSAN_OPTIONS="print_stacktrace=1" \
  ctest --test-dir "$root/build-asan" -j"$jobs" -LE concurrency --output-on-failure

step "libFuzzer build, each fuzzer ${EMU_FUZZ_SECONDS:-20} s on its corpus"
CC=clang CXX=clang++ cmake -S "$root" -B "$root/build-fuzz" -DEMU_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEMU_FUZZ=ON \
  -DEMU_FUZZ_SECONDS="${EMU_FUZZ_SECONDS:-20}" >/dev/null
cmake --build "$root/build-fuzz" -j"$jobs" --target fuzzers fuzz_regression_tests
ASAN_OPTIONS="detect_leaks=1" LSAN_OPTIONS="suppressions=$root/tests/sanitizers/lsan.supp" UBSAN_OPTIONS="print_stacktrace=1" \
  ctest --test-dir "$root/build-fuzz" -j"$jobs" -R '^fuzz_|^Fuzz/|^InitialStack\.' --output-on-failure

echo; echo "all test stages passed" >&2
