#!/usr/bin/env bash
# Flake hunting: runs a set of tests (default: the concurrency label) REPS times, under load
# (ctest -j over every core, plus a CPU hog on half of them), and prints per test how many
# rounds it failed in, with the log of each failure kept.
#
#   tools/repeat-tests.sh [--build DIR] [--label L | --regex R] [--no-hog] [--logs DIR] REPS
#
# Exit status: 0 when no test failed in any round, 1 otherwise, 2 for bad usage.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build"
select=(-L concurrency)
hog=1
logs="$root/results/repeat-tests"
usage() { sed -n '2,8p' "$0"; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --label) select=(-L "$2"); shift 2 ;;
    --regex) select=(-R "$2"); shift 2 ;;
    --no-hog) hog=0; shift ;;
    --logs) logs="$2"; shift 2 ;;
    -h|--help) usage ;;
    -*) echo "repeat-tests: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
done
[ $# -eq 1 ] && [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -gt 0 ] || usage
reps="$1"
[ -d "$build" ] || { echo "repeat-tests: no build directory $build (cmake --build it first)" >&2; exit 2; }
cores="$(nproc)"
mkdir -p "$logs"

hogs=()
stop_hogs() { for p in "${hogs[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap stop_hogs EXIT
if [ "$hog" = 1 ]; then
  for _ in $(seq 1 $(( (cores + 1) / 2 ))); do
    ( while :; do :; done ) &
    hogs+=("$!")
  done
fi

declare -A failures=()
total=$(ctest --test-dir "$build" "${select[@]}" -N | sed -n 's/^Total Tests: //p')
echo "[repeat-tests] $total tests x $reps rounds, ctest -j$cores, ${#hogs[@]} CPU hog(s); logs in $logs" >&2
start=$(date +%s)
for round in $(seq 1 "$reps"); do
  out="$logs/round-$round.log"
  if ctest --test-dir "$build" "${select[@]}" -j"$cores" --output-on-failure >"$out" 2>&1; then
    rm -f "$out"
  else
    while read -r name; do
      failures["$name"]=$(( ${failures["$name"]:-0} + 1 ))
    done < <(sed -n '/The following tests FAILED:/,$p' "$out" | sed -n 's/^[[:space:]]*[0-9]* - \([^ ]*\).*/\1/p')
  fi
  now=$(date +%s)
  echo "[repeat-tests] round $round/$reps done, $(( now - start )) s, tests with failures so far: ${#failures[@]}" >&2
done

echo "tests: $total, rounds: $reps, failing tests: ${#failures[@]}"
for name in "${!failures[@]}"; do
  echo "  ${failures[$name]} of $reps rounds: $name"
done | sort -rn
[ "${#failures[@]}" -eq 0 ]
