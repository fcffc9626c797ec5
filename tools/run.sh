#!/usr/bin/env bash
# The main job on its built-in default: set up, build emu and the guest programs, then run
# the demo: the multi-threaded page-fault guest (page_fault1, 2 threads x 128 MiB x 4
# rounds) on 2 vCPUs under the default scheme, with the MMU's statistics at exit.
#
# With arguments, they go to emu instead: tools/run.sh [EMU OPTIONS] PROGRAM [ARGS...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/tools/setup.sh"
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$root/build" -j2 --target emu guest-programs mmu-bench
if [ $# -gt 0 ]; then
  exec "$root/build/emu/emu" "$@"
fi
mkdir -p "$root/results"
guest="$root/build/guest-programs/x86_64/page_fault1"
echo "[run] emu --stats --stats-json results/demo-stats.json $guest -t 2 -m 128 -i 4" >&2
exec "$root/build/emu/emu" --stats --stats-json "$root/results/demo-stats.json" "$guest" -t 2 -m 128 -i 4
