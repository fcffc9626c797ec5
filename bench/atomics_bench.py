#!/usr/bin/env python3
"""Guest atomics: ns per operation for emu, qemu-user and native side by side, 1, 2 and 4 threads.

Runs the atomics_bench guest (guest-programs/atomics_bench.c) for each workload (atomic add on
private counters, atomic add on one shared counter, pthread mutex lock/unlock, malloc/free, a
condition-variable ping-pong), thread count and runner, interleaved and shuffled per repetition
so that drift on a shared machine hits all alike, and prints the median ns/op (min-max) with the
ratio emu / qemu-user. The i386 "native" column is missing where the kernel cannot run i386.
A benchmark, not a test: it prints numbers and asserts only that every run's totals were exact.

  python3 bench/atomics_bench.py --build build --reps 3 --out docs/results/atomics-bench-2core
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

from bench_common import machine

WORKLOADS = ["add_private", "add_shared", "mutex", "malloc", "condvar"]
# Operations per thread: about a tenth of a second natively, a few seconds under emulation.
DEFAULT_OPS = {"add_private": 400000, "add_shared": 400000, "mutex": 200000, "malloc": 200000, "condvar": 20000}


def run(cmd, timeout):
    start = time.perf_counter()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return 124, "", "timeout", time.perf_counter() - start
    return p.returncode, p.stdout, p.stderr, time.perf_counter() - start


def runnable(prefix, binary):
    try:
        return run(prefix + [binary, "-w", "add_private", "-n", "10"], 60)[0] == 0
    except OSError:  # "Exec format error": no i386 support in this kernel
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="build directory (emu and guest-programs)")
    ap.add_argument("--arch", nargs="+", default=["x86_64", "i386"], choices=["x86_64", "i386"])
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2, 4])
    ap.add_argument("--workloads", nargs="+", default=WORKLOADS, choices=WORKLOADS)
    ap.add_argument("--schemes", nargs="+", default=["split"], help="emu page-table schemes to run")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the operations per thread")
    ap.add_argument("--emu-args", default="", help="extra emu options, e.g. '--mem 64M'")
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--out", default="results/atomics-bench", help="writes OUT.txt and OUT.json")
    args = ap.parse_args()

    emu = os.path.join(args.build, "emu", "emu")
    results = {"machine": machine(), "config": vars(args), "runs": []}
    header = (f"# atomics-bench: {results['machine']['cpu']}, {results['machine']['cores']} cores, "
              f"{time.strftime('%Y-%m-%d')}; median of {args.reps} (min-max), ns per operation per thread")
    print(header, flush=True)
    configs = []
    for arch in args.arch:
        guest = os.path.join(args.build, "guest-programs", arch, "atomics_bench")
        if not os.path.exists(guest):
            sys.exit(f"atomics-bench: {guest} missing (cmake --build {args.build} --target guest-programs)")
        runners = {"qemu-user": ["qemu-x86_64" if arch == "x86_64" else "qemu-i386"]}
        if runnable([], guest):
            runners = {"native": [], **runners}
        else:
            print(f"# {arch}: this host cannot run {arch} programs natively; no native column", flush=True)
        for s in args.schemes:
            runners[f"emu/{s}" if len(args.schemes) > 1 else "emu"] = [emu, "--scheme", s] + args.emu_args.split()
        for w in args.workloads:
            for t in args.threads:
                for name, prefix in runners.items():
                    configs.append((arch, w, t, name, prefix + [guest, "-w", w, "-t", str(t), "-n",
                                                                str(max(10, int(DEFAULT_OPS[w] * args.scale)))]))
    samples, cpu_samples = {}, {}
    total, done, t0 = args.reps * len(configs), 0, time.time()
    for rep in range(args.reps):
        order = list(configs)
        random.Random(rep).shuffle(order)
        for arch, w, t, name, cmd in order:
            rc, out, err, wall = run(cmd, args.timeout)
            m = re.search(r" ns_per_op=([\d.]+) cpu_ns_per_op=([\d.]+) check=(\w+)", out)
            done += 1
            eta = (time.time() - t0) / done * (total - done)
            print(f"  [{done}/{total}, eta {eta:.0f}s] {arch} {w} t={t} {name}: "
                  f"{m.group(1) if m else 'FAILED'} ns/op", file=sys.stderr, flush=True)
            if rc != 0 or not m or m.group(3) != "ok":
                sys.exit(f"atomics-bench: {' '.join(cmd)} failed ({rc}): {out.strip()[-300:]} {err.strip()[-300:]}")
            samples.setdefault((arch, w, t, name), []).append(float(m.group(1)))
            cpu_samples.setdefault((arch, w, t, name), []).append(float(m.group(2)))
            results["runs"].append({"arch": arch, "workload": w, "threads": t, "runner": name, "rep": rep,
                                    "ns_per_op": float(m.group(1)), "cpu_ns_per_op": float(m.group(2)), "wall_s": wall})

    names = []
    for (_, _, _, n) in samples:
        if n not in names:
            names.append(n)
    emu_names = [n for n in names if n.startswith("emu")]
    summary = []
    lines = [header, ""]

    def table(title, data, key):
        cols = ["arch", "workload", "threads"] + names + [f"{e} / qemu-user" for e in emu_names]
        lines.extend([f"## {title}", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)])
        for arch in args.arch:
            for w in args.workloads:
                for t in args.threads:
                    row = [arch, w, str(t)]
                    meds = {}
                    for n in names:
                        v = data.get((arch, w, t, n))
                        if not v:
                            row.append("-")
                            continue
                        meds[n] = statistics.median(v)
                        row.append(f"{meds[n]:.1f} ({min(v):.0f}-{max(v):.0f})")
                    for e in emu_names:
                        q = meds.get("qemu-user")
                        row.append(f"{meds[e] / q:.2f}" if q and e in meds else "-")
                    entry = next((x for x in summary if (x["arch"], x["workload"], x["threads"]) == (arch, w, t)), None)
                    if entry is None:
                        entry = {"arch": arch, "workload": w, "threads": t}
                        summary.append(entry)
                    entry[key] = meds
                    lines.append("| " + " | ".join(row) + " |")
        lines.append("")

    table("wall time: ns per operation per thread (median, min-max)", samples, "median_ns_per_op")
    table("CPU time: ns of CPU per operation, all threads (median, min-max)", cpu_samples, "median_cpu_ns_per_op")
    results["summary"] = summary
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out + ".txt", "w") as f:
            f.write(text)
        with open(args.out + ".json", "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
