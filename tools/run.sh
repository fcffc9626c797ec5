#!/usr/bin/env bash
# The main job on its built-in default: set up, build, run the MMU fault benchmark (every
# scheme at 1, 2 and 4 threads, against the memset floor). Extra arguments go to mmu-bench
# (try --help). Results also land in results/mmu-bench.json.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/tools/setup.sh"
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$root/build" -j2 --target mmu-bench
mkdir -p "$root/results"
"$root/build/bench/mmu-bench" --json "$root/results/mmu-bench.json" "$@"
