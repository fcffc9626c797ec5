#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/, clang, its own build directory) and runs each for
# SECONDS on its corpus, then prints per harness the executions, coverage, corpus size and
# crashes, and a summary line.
#
#   tools/fuzz.sh [--build-dir DIR] [--no-build] [--only HARNESS]... [--jobs N]
#                 [--report FILE] [--keep-corpus] SECONDS
#
# The seed corpus (fuzz/corpus/<harness>) is only read; what a run adds goes to
# DIR/fuzz-corpus/<harness> (kept between runs; --keep-corpus merges it back into the seeds,
# minimised). Crashes, leaks, timeouts and OOMs go to fuzz/artifacts/<harness>/ (git-ignored),
# each one to be turned into a file under fuzz/regressions/<harness>/ once fixed.
# --report also writes the summary to FILE (e.g. docs/results/fuzz-$(date +%F).txt).
# Exit status: 1 when any harness crashed, else 0.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="$root/build-fuzz"
build=1
only=()
jobs=2
report=""
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build_dir="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    --only) only+=("$2"); shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --report) report="$2"; shift 2 ;;
    --keep-corpus) keep=1; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -eq 1 ] && [[ "$1" =~ ^[0-9]+$ ]] || { echo "usage: tools/fuzz.sh [options] SECONDS" >&2; exit 2; }
seconds="$1"
harnesses=(elf_loader initial_stack syscalls sigreturn procfs_maps)
[ ${#only[@]} -gt 0 ] && harnesses=("${only[@]}")

if [ "$build" -eq 1 ]; then
  CC=clang CXX=clang++ cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEMU_FUZZ=ON >/dev/null
  cmake --build "$build_dir" -j"$jobs" --target fuzzers >&2
fi

summary=$(mktemp)
trap 'rm -f "$summary"' EXIT
total_runs=0
total_seconds=0
total_crashes=0
printf '%-14s %8s %12s %10s %8s %8s %8s\n' harness seconds executions exec/s cov features crashes >"$summary"
for h in "${harnesses[@]}"; do
  bin="$build_dir/fuzz/fuzz_$h"
  [ -x "$bin" ] || { echo "fuzz.sh: $bin is missing (build with -DEMU_FUZZ=ON)" >&2; exit 2; }
  corpus="$build_dir/fuzz-corpus/$h"
  artifacts="$root/fuzz/artifacts/$h"
  mkdir -p "$corpus" "$artifacts"
  log="$build_dir/fuzz-$h.log"
  echo "=== fuzz_$h: $seconds s ===" >&2
  started=$(date +%s)
  set +e
  # -fork would keep going after a crash, but a crash is what we look for: stop at the first.
  ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1" UBSAN_OPTIONS="print_stacktrace=1" \
    LSAN_OPTIONS="suppressions=$root/tests/sanitizers/lsan.supp" \
    "$bin" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -max_len=4096 -handle_xfsz=0 -print_final_stats=1 \
      -artifact_prefix="$artifacts/" "$corpus" "$root/fuzz/corpus/$h" >"$log" 2>&1
  rc=$?
  set -e
  took=$(( $(date +%s) - started ))
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  crashes=0
  if [ "$rc" -ne 0 ]; then
    crashes=1
    echo "--- fuzz_$h failed (status $rc); the end of $log:" >&2
    grep -aE 'ERROR|emu-fuzz:|SUMMARY|Test unit written|#[0-9]+ 0x' "$log" | grep -av 'in fuzzer::\|libc_start\|_start \|__sanitizer_print' | head -30 >&2 || tail -30 "$log" >&2
  fi
  runs=${runs:-0}
  total_runs=$((total_runs + runs))
  total_seconds=$((total_seconds + took))
  total_crashes=$((total_crashes + crashes))
  printf '%-14s %8s %12s %10s %8s %8s %8s\n' "$h" "$took" "$runs" "${speed:-0}" "${cov:-0}" "${ft:-0}" "$crashes" >>"$summary"
  if [ "$keep" -eq 1 ] && [ "$rc" -eq 0 ]; then
    merged=$(mktemp -d)
    "$bin" -merge=1 -max_len=4096 "$merged" "$root/fuzz/corpus/$h" "$corpus" >>"$log" 2>&1
    rm -f "$root/fuzz/corpus/$h"/*
    cp "$merged"/* "$root/fuzz/corpus/$h"/
    rm -rf "$merged"
  fi
done
echo "total: $total_runs executions in $total_seconds s, $total_crashes harness(es) crashed" >>"$summary"
echo >&2
cat "$summary"
if [ -n "$report" ]; then
  { echo "# tools/fuzz.sh $seconds, $(date -u +%FT%TZ), $(uname -m), $(nproc) cores"; cat "$summary"; } >"$report"
fi
[ "$total_crashes" -eq 0 ]
