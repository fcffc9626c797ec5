#!/usr/bin/env python3
"""Fork benchmark: fork latency and the child's first-write cost for a parent with 64 MiB,
512 MiB and 2 GiB touched, under emu with page tables shared (--pt-share on, seed 004) and
copied (off), next to the host's own fork of the same native program, all in one run.

For every size and repetition it runs guest-programs/<arch>/fork_bench natively and under
emu (each run forks REPS times and reports its medians), and prints medians over the
repetitions with min/max:

  fork us          the parent's fork() call
  first write us   the child writing one word into every page (a copy-on-write fault each)
  per page ns      first write / pages
  vs native        emu's number over the native one measured alongside

Numbers, not a pass/fail test. JSON with the machine description goes to --json; a plot
(fork latency and first-write cost per size, one bar per runner) to --plot when matplotlib
is there.
"""
import argparse
import json
import os
import re
import subprocess
import sys

from bench_common import machine, stats

LINE = re.compile(r"fork_bench mib=(\d+) pages=(\d+) fork_us=([\d.]+) first_write_us=([\d.]+)")


def run(cmd, timeout):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    m = LINE.search(r.stdout)
    if r.returncode != 0 or not m:
        sys.exit(f"fork_bench: {' '.join(cmd)} failed ({r.returncode}): {r.stdout}{r.stderr}")
    return float(m.group(3)), float(m.group(4)), int(m.group(2))


def plot(results, sizes, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"(no matplotlib: {path} not drawn)")
        return
    runners = list(results[str(sizes[0])].keys())
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, title in ((axes[0], "fork_us", "fork() latency (us, log)"),
                           (axes[1], "first_write_us", "child's first write of every page (us, log)")):
        width = 0.8 / len(runners)
        for i, runner in enumerate(runners):
            values = [results[str(s)][runner][key]["median"] for s in sizes]
            ax.bar([x + i * width for x in range(len(sizes))], values, width, label=runner)
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(sizes))])
        ax.set_xticklabels([f"{s} MiB" for s in sizes])
        ax.set_yscale("log")
        ax.set_title(title)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path)
    print(f"plot: {path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="build directory (emu and guest-programs)")
    ap.add_argument("--arch", default="x86_64", choices=["x86_64", "i386"])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 512, 2048], help="MiB touched before fork")
    ap.add_argument("--reps", type=int, default=3, help="runs per size and runner")
    ap.add_argument("--forks", type=int, default=3, help="forks per run (the run reports their median)")
    ap.add_argument("--scheme", default="split")
    ap.add_argument("--json", default="results/fork-bench.json")
    ap.add_argument("--plot", default="results/fork-bench.png")
    args = ap.parse_args()

    emu = os.path.join(args.build, "emu", "emu")
    guest = os.path.join(args.build, "guest-programs", args.arch, "fork_bench")
    for path in (emu, guest):
        if not os.path.exists(path):
            sys.exit(f"fork_bench: {path} is missing (build first: cmake --build {args.build})")
    if args.arch == "i386" and max(args.sizes) >= 2048:
        sys.exit("fork_bench: an i386 guest cannot touch 2 GiB next to its program and stack; use --sizes below 2048")

    results = {}
    print(f"fork benchmark: {args.arch}, scheme {args.scheme}, {args.reps} runs x {args.forks} forks per size")
    print(f"{'MiB':>6} {'runner':<14} {'fork us':>12} {'min-max':>19} {'first write us':>15} {'per page ns':>12} "
          f"{'fork vs native':>15} {'write vs native':>16}")
    for size in args.sizes:
        mem = max(256, size * 2 + 256)  # parent, child copies and tables all fit: no swap in this number
        runners = {
            "native": [guest, str(size), str(args.forks)],
            "emu pt-share on": [emu, "--mem", f"{mem}M", "--scheme", args.scheme, "--pt-share", "on", guest, str(size),
                                str(args.forks)],
            "emu pt-share off": [emu, "--mem", f"{mem}M", "--scheme", args.scheme, "--pt-share", "off", guest,
                                 str(size), str(args.forks)],
        }
        samples = {name: {"fork_us": [], "first_write_us": []} for name in runners}
        pages = 0
        for rep in range(args.reps):
            for name, cmd in runners.items():  # side by side in each repetition
                fork_us, write_us, pages = run(cmd, timeout=600)
                samples[name]["fork_us"].append(fork_us)
                samples[name]["first_write_us"].append(write_us)
            print(f"  ({size} MiB: run {rep + 1}/{args.reps} done)", file=sys.stderr)
        results[str(size)] = {}
        native = {k: stats(v)["median"] for k, v in samples["native"].items()}
        for name, s in samples.items():
            f, w = stats(s["fork_us"]), stats(s["first_write_us"])
            results[str(size)][name] = {"fork_us": f, "first_write_us": w, "pages": pages}
            print(f"{size:>6} {name:<14} {f['median']:>12.1f} {f['min']:>9.1f}-{f['max']:<9.1f} {w['median']:>15.1f} "
                  f"{w['median'] * 1000 / pages:>12.1f} {f['median'] / native['fork_us']:>14.2f}x "
                  f"{w['median'] / native['first_write_us']:>15.2f}x")
    out = {"machine": machine(), "arch": args.arch, "scheme": args.scheme, "forks_per_run": args.forks,
           "results": results}
    os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(out, f, indent=2)
    print(f"# wrote {args.json}")
    plot(results, args.sizes, args.plot)


if __name__ == "__main__":
    main()
