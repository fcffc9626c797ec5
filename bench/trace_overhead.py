#!/usr/bin/env python3
"""What tracing costs: the page_fault1 guest under emu, side by side in one run,

  no-trace build   emu built with -DEMU_TRACING=OFF (the call sites compiled out)
  off              the normal build, no --trace (what everyone runs)
  faults           --trace faults --trace-file /dev/null (text formatting, Capstone per fault)
  all, json        --trace all --trace-json FILE (events kept in memory, written at exit)

Target: `off` within 1% of `no-trace build` (the median of per-repetition ratios; the order
is shuffled each repetition so drift hits all alike). Numbers, not a test.

Build the second tree first:
  cmake -S . -B build-notrace -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEMU_TRACING=OFF
  cmake --build build-notrace -j2 --target emu
"""
import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile

from bench_common import machine, stats


def faults_per_sec(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    m = re.search(r"([\d.]+) faults/s total", p.stderr)
    if p.returncode != 0 or not m:
        sys.exit(f"trace-overhead: {' '.join(cmd)} failed ({p.returncode}): {p.stderr[-400:]}")
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--notrace-build", default="build-notrace")
    ap.add_argument("--arch", default="x86_64", choices=["x86_64", "i386"])
    ap.add_argument("--vcpus", type=int, default=2)
    ap.add_argument("--mib", type=int, default=64, help="MiB each guest thread maps per iteration")
    ap.add_argument("--iterations", type=int, default=4)
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--json", default="results/trace-overhead.json")
    args = ap.parse_args()
    emu = os.path.join(args.build, "emu", "emu")
    plain = os.path.join(args.notrace_build, "emu", "emu")
    guest = os.path.join(args.build, "guest-programs", args.arch, "page_fault1")
    for path in (emu, plain, guest):
        if not os.access(path, os.X_OK):
            sys.exit(f"trace-overhead: {path} missing (see --help for the builds needed)")
    workload = [guest, "-t", str(args.vcpus), "-m", str(args.mib), "-i", str(args.iterations)]
    json_trace = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
    configs = {
        "no-trace build": [plain] + workload,
        "off": [emu] + workload,
        "faults": [emu, "--trace", "faults", "--trace-file", "/dev/null"] + workload,
        "all, json": [emu, "--trace", "all", "--trace-json", json_trace] + workload,
    }
    rates = {name: [] for name in configs}
    total = args.reps * len(configs)
    done = 0
    for rep in range(args.reps):
        order = list(configs)
        random.shuffle(order)
        for name in order:
            rates[name].append(faults_per_sec(configs[name]))
            done += 1
            print(f"trace-overhead: {done}/{total} runs", file=sys.stderr, flush=True)
    os.unlink(json_trace)
    base = rates["no-trace build"]
    m = machine()
    print(f"# trace-overhead: {args.arch} page_fault1, {args.vcpus} vCPUs x {args.mib} MiB x {args.iterations}, "
          f"median (min-max) of {args.reps}, order shuffled per repetition")
    print(f"# host: {m['cpu']}, {m['cores']} cores")
    print(f"{'config':16} {'faults/s':>24} {'vs no-trace build':>20}")
    out = {"machine": m, "config": vars(args), "results": {}}
    for name, r in rates.items():
        ratios = [a / b for a, b in zip(r, base)]
        s, q = stats(r), stats(ratios)
        out["results"][name] = {"faults_per_sec": s, "ratio_vs_notrace": q}
        print(f"{name:16} {s['median']:>10.0f} ({s['min']:.0f}-{s['max']:.0f}) {q['median']:>12.4f} "
              f"({q['min']:.3f}-{q['max']:.3f})")
    off = statistics.median(a / b for a, b in zip(rates["off"], base))
    medians = statistics.median(rates["off"]) / statistics.median(base)
    print(f"tracing compiled in but off vs compiled out: medians {100 * (medians - 1):+.2f}%, median of per-repetition "
          f"ratios {100 * (off - 1):+.2f}% (target: within 1%; run-to-run spread shown above)")
    if args.json:
        os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
