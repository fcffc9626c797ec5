#!/usr/bin/env python3
"""emu against native and qemu-user on the same static guest binaries, interleaved in one run.

Per architecture: the page_fault1 guest at 1 and 2 vCPUs for every scheme (per-vCPU fault
throughput), a compute-bound checksum over memory already faulted in, and the time to start
and exit a hello guest. Prints a table and the ratios, writes JSON. Medians of --reps runs,
with min and max. A benchmark, not a test: it prints numbers and asserts nothing.
"""
import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time

from bench_common import machine, stats

SCHEMES = ["global", "split", "atomic", "ptebit"]


def run(cmd):
    start = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return p.returncode, p.stdout, p.stderr, time.perf_counter() - start


def runnable(prefix, binary):
    try:
        return run(prefix + [binary])[0] == 0
    except OSError:  # e.g. "Exec format error": no i386 support in this kernel
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="build directory (emu and guest-programs)")
    ap.add_argument("--arch", nargs="+", default=["x86_64", "i386"], choices=["x86_64", "i386"])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--mib", type=int, default=128, help="MiB each page_fault1 thread maps per iteration")
    ap.add_argument("--iterations", type=int, default=4)
    ap.add_argument("--json", default="results/emu-bench.json")
    args = ap.parse_args()

    emu = os.path.join(args.build, "emu", "emu")
    results = {"machine": machine(), "config": vars(args), "arches": {}}
    print(f"# emu-bench: {results['machine']['cpu']}, {results['machine']['cores']} cores; "
          f"page_fault1 {args.mib} MiB/thread x {args.iterations}, median of {args.reps}", flush=True)
    for arch in args.arch:
        guests = os.path.join(args.build, "guest-programs", arch)
        pf1, checksum, hello = (os.path.join(guests, n) for n in ("page_fault1", "checksum", "hello"))
        qemu = ["qemu-x86_64" if arch == "x86_64" else "qemu-i386"]
        runners = {"qemu-user": qemu}
        if runnable([], hello):
            runners = {"native": [], **runners}
        else:
            print(f"# {arch}: this host cannot run {arch} programs natively; no native baseline", flush=True)
        configs = [(name, prefix, 1) for name, prefix in runners.items()]
        configs += [(name, prefix, 2) for name, prefix in runners.items()]
        configs += [(f"emu/{s}", [emu, "--scheme", s], t) for t in (1, 2) for s in SCHEMES]
        faults = {}
        checks = {}
        starts = {}
        total = args.reps * (len(configs) + 2 * len(runners) + 2)
        done = 0
        for rep in range(args.reps):
            # Interleaved: every configuration once per repetition, so drift hits all alike,
            # in a shuffled order: whoever runs right after another process freed its memory
            # pays the host's page clearing (measured: the first emu run after native was 3x
            # slower than the same run a moment later).
            order = list(configs)
            random.Random(rep).shuffle(order)
            for name, prefix, threads in order:
                rc, _, err, _ = run(prefix + [pf1, "-t", str(threads), "-m", str(args.mib), "-i", str(args.iterations)])
                m = re.search(r"([\d.]+) faults/s total", err)
                if rc != 0 or not m:
                    sys.exit(f"emu-bench: {name} page_fault1 failed ({rc}): {err.strip()[-300:]}")
                faults.setdefault(f"{name} x{threads}", []).append(float(m.group(1)) / threads)
                done += 1
            for name, prefix in list(runners.items()) + [("emu", [emu])]:
                rc, _, err, _ = run(prefix + [checksum])
                m = re.search(r"rounds ([\d.]+) s", err)
                if rc != 0 or not m:
                    sys.exit(f"emu-bench: {name} checksum failed ({rc}): {err.strip()[-300:]}")
                checks.setdefault(name, []).append(float(m.group(1)))
                walls = [run(prefix + [hello])[3] for _ in range(5)]
                starts.setdefault(name, []).append(statistics.median(walls))
                done += 2
            print(f"# {arch}: {done}/{total} measurements", file=sys.stderr, flush=True)

        base = "native" if "native" in runners else "qemu-user"
        print(f"\n## {arch}: page_fault1, faults per second per vCPU (median, min-max)")
        print(f"{'runner':<14}{'vCPUs':>6}{'per-vCPU':>12}{'min-max':>22}{'vs ' + base:>12}{'vs qemu':>10}")
        for key, values in faults.items():
            name, threads = key.rsplit(" x", 1)
            s = stats(values)
            ref = statistics.median(faults[f"{base} x{threads}"])
            qref = statistics.median(faults[f"qemu-user x{threads}"])
            print(f"{name:<14}{threads:>6}{s['median']:>12.0f}{s['min']:>11.0f}-{s['max']:<10.0f}"
                  f"{s['median'] / ref:>11.2f}x{s['median'] / qref:>9.2f}x")
        print(f"\n## {arch}: compute-bound checksum (s, lower is better) and hello start+exit (s)")
        for name in checks:
            c, h = stats(checks[name]), stats(starts[name])
            print(f"{name:<14} checksum {c['median']:.3f} ({c['median'] / statistics.median(checks['qemu-user']):.2f}x qemu)"
                  f"   hello {h['median'] * 1000:.1f} ms ({h['median'] / statistics.median(starts['qemu-user']):.2f}x qemu)")
        results["arches"][arch] = {
            "baseline": base,
            "page_fault1_per_vcpu": {k: stats(v) for k, v in faults.items()},
            "checksum_seconds": {k: stats(v) for k, v in checks.items()},
            "hello_seconds": {k: stats(v) for k, v in starts.items()},
        }
    os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(results, f, indent=2)
    print(f"\n# wrote {args.json}")


if __name__ == "__main__":
    main()
