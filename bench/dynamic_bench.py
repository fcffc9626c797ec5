#!/usr/bin/env python3
"""Dynamically linked programs: emu against qemu-user and native, side by side in one run.

Rows: startup and exit of /bin/true, of `python3.11 -c pass`, and a python3.11 loop that takes
about a second natively; x86_64 from the host's root, and (with --i386-root, default the test
root of tools/fetch-sysroot-i386.sh when it is there) i386 from a Debian root with -L / qemu -L.
Runs are interleaved and shuffled; medians of --reps with min and max. Prints a table with
the emu/qemu ratio (the targets: startup <= 1.5x qemu-user, the loop <= 1.5x qemu-user) and
writes JSON. A benchmark, not a test: it prints numbers and asserts nothing.
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time

from bench_common import machine, stats

LOOP = "s=0\nfor i in range({n}):\n    s += i * i % 7\nprint(s)"


def timed(cmd, env=None):
    start = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    elapsed = time.perf_counter() - start
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:6])}... exited {p.returncode}: {p.stderr.decode()[-400:]}")
    return elapsed


def calibrate_loop(python):
    """The loop count that takes about one second natively."""
    n = 200_000
    while True:
        t = timed([python, "-c", LOOP.format(n=n)])
        if t > 0.25:
            return int(n / t)
        n *= 4


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="build directory holding emu/emu")
    ap.add_argument("--reps", type=int, default=5)
    here = os.path.dirname(os.path.abspath(__file__))
    default_root = os.path.join(here, "..", "third_party", "sysroots", "i386")
    ap.add_argument("--i386-root", default=default_root if os.path.isdir(default_root) else "",
                    help="a Debian i386 root (tools/fetch-sysroot-i386.sh); empty: x86_64 only")
    ap.add_argument("--out", default="results/dynamic-bench.json")
    ap.add_argument("--emu-args", default="", help="extra emu options, e.g. '--scheme atomic'")
    args = ap.parse_args()

    emu = os.path.join(args.build, "emu", "emu")
    if not os.access(emu, os.X_OK):
        sys.exit(f"dynamic_bench: {emu} not found: build first (cmake --build {args.build} --target emu)")
    python = "/usr/bin/python3.11"
    loop_n = calibrate_loop(python)
    print(f"python loop: {loop_n} iterations (about 1 s natively)", file=sys.stderr)
    workloads = {
        "/bin/true": ["/usr/bin/true"],
        "python3.11 -c pass": [python, "-c", "pass"],
        "python3.11 loop ~1s": [python, "-c", LOOP.format(n=loop_n)],
    }
    emu_cmd = [emu] + args.emu_args.split()
    arches = {"x86_64": {"native": [], "qemu": ["qemu-x86_64"], "emu": emu_cmd}}
    if args.i386_root:
        root = os.path.abspath(args.i386_root)
        # The reference for i386 is the same release's amd64 program natively (the kernel may
        # not run i386 at all); qemu-i386 and emu use the root.
        arches["i386"] = {"native": [], "qemu": ["qemu-i386", "-L", root], "emu": emu_cmd + ["-L", root],
                          "program_root": root}
    runners = ["native", "qemu", "emu"]
    if not shutil.which("qemu-x86_64"):
        sys.exit("dynamic_bench: qemu-user is missing (tools/setup.sh installs it)")
    plan = [(a, w, r) for a in arches for w in workloads for r in runners for _ in range(args.reps)]
    random.shuffle(plan)
    times = {}
    for i, (arch, work, runner) in enumerate(plan, 1):
        program = list(workloads[work])
        if runner == "qemu" and "program_root" in arches[arch]:
            program[0] = arches[arch]["program_root"] + program[0]  # qemu's -L is not used for the program
        cmd = arches[arch][runner] + program
        times.setdefault((arch, work, runner), []).append(timed(cmd))
        print(f"[{i}/{len(plan)}] {arch} {runner:6} {work}", file=sys.stderr)

    print(f"\n{'arch':7} {'workload':22} {'native s':>9} {'qemu s':>9} {'emu s':>9} {'emu/qemu':>9} {'emu/native':>10}")
    summary = []
    for arch in arches:
        for work in workloads:
            med = {r: stats(times[(arch, work, r)]) for r in runners}
            ratio_q = med["emu"]["median"] / med["qemu"]["median"]
            ratio_n = med["emu"]["median"] / med["native"]["median"]
            print(f"{arch:7} {work:22} {med['native']['median']:9.4f} {med['qemu']['median']:9.4f} "
                  f"{med['emu']['median']:9.4f} {ratio_q:9.2f} {ratio_n:10.1f}")
            summary.append({"arch": arch, "workload": work, "emu_over_qemu": ratio_q, "emu_over_native": ratio_n,
                            **{r: med[r] for r in runners}})
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"machine": machine(), "loop_iterations": loop_n, "reps": args.reps,
                   "emu_args": args.emu_args, "summary": summary}, f, indent=2)
    print(f"\nJSON: {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
