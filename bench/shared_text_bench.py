#!/usr/bin/env python3
"""Memory of N processes of the same dynamic program against one: is the text counted once?

A shell under emu starts N copies of python3.11 at once; each starts up, says it is ready, and
waits until all N are (a barrier through a directory), so all of them are resident together.
emu's --stats-json gives the run's peak of guest memory in use (frames, all processes
together) and the page cache's misses (file pages read once for the whole run). Each row runs
with --file-pages shared (private file mappings map the page cache until written: a library's
text is one set of frames) and with --file-pages private (every process copies every page it
touches, as emu did before). The native reference runs the same barrier on the host and adds
up the processes' Pss (proportional set size: shared pages split among their mappers) from
/proc/PID/smaps_rollup, which is what Linux's own sharing gives.

`--program sleep` runs coreutils' dynamic /usr/bin/sleep instead (libc and ld.so text, little
of its own): N sleeps of 2 s at once, started by the same shell line. The shell's own memory is
in emu's peak; that column is also given less the peak of the same line with no sleep (N=0), and
natively the Pss of the sleeps alone is read from outside while they run.

Prints, per N: peak MiB for shared and private file pages, the native sum of Pss, and N over 1
ratios (the issue's target: N=8 under 1.5x of N=1 with shared file pages). A benchmark, not a
test: it prints numbers and asserts nothing; --out writes JSON.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

from bench_common import machine

PYTHON = "/usr/bin/python3.11"
# Ready, then wait for the others; natively, each reports its Pss (kB) while all are alive.
BARRIER = r"""
import os, sys, time
d, n, report = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
def wait_for(tag):
    open(os.path.join(d, f"{tag}.{os.getpid()}"), "w").close()
    while sum(1 for x in os.listdir(d) if x.startswith(tag)) < n:
        time.sleep(0.02)
wait_for("ready")
if report:
    with open("/proc/self/smaps_rollup") as f:
        pss = next(int(l.split()[1]) for l in f if l.startswith("Pss:"))
    os.write(1, f"{pss}\n".encode())
wait_for("done")
"""


SLEEP = "/usr/bin/sleep"
PROGRAM = "python"  # or "sleep" (--program)


def launcher(n, barrier_dir, report):
    """A shell line starting n processes at once and waiting for them."""
    if PROGRAM == "sleep":
        # Natively the shell reads each sleep's Pss while all of them run.
        pss = 'sleep 0.5; for p in $pids; do grep "^Pss:" /proc/$p/smaps_rollup | tr -s " " | cut -d" " -f2; done; ' if report else ""
        # No $(seq): its process would be in emu's peak too.
        return ["/bin/sh", "-c",
                f'pids=""; i=0; while [ $i -lt {n} ]; do {SLEEP} 2 & pids="$pids $!"; i=$((i+1)); done; {pss}wait']
    one = f"{PYTHON} -c '{BARRIER}' {barrier_dir} {n} {1 if report else 0}"
    return ["/bin/sh", "-c", f"for i in $(seq {n}); do {one} & done; wait"]


def run_emu(emu, n, file_pages, extra):
    with tempfile.TemporaryDirectory() as d, tempfile.NamedTemporaryFile(suffix=".json") as js:
        barrier = os.path.join(d, "ready")
        os.mkdir(barrier)
        cmd = [emu, "--file-pages", file_pages, "--stats-json", js.name] + extra + launcher(n, barrier, False)
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
        if p.returncode != 0:
            raise RuntimeError(f"emu exited {p.returncode}: {p.stderr.decode()[-600:]}")
        with open(js.name) as f:
            j = json.load(f)
    return {"peak_mib": j["peak_used_frames"] * 4096 / 2**20, "cache_misses": j["page_cache"]["misses"],
            "cache_hits": j["page_cache"]["hits"]}


def run_native(n):
    with tempfile.TemporaryDirectory() as d:
        barrier = os.path.join(d, "ready")
        os.mkdir(barrier)
        p = subprocess.run(launcher(n, barrier, True), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
        if p.returncode != 0:
            raise RuntimeError(f"native run exited {p.returncode}: {p.stderr.decode()[-600:]}")
        return {"pss_mib": sum(int(x) for x in p.stdout.split()) / 1024}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="build directory holding emu/emu")
    ap.add_argument("--counts", default="1,2,4,8", help="process counts (comma list; the first is the base)")
    ap.add_argument("--reps", type=int, default=3, help="runs per cell; medians are shown")
    ap.add_argument("--emu-args", default="", help="extra emu options, e.g. '--scheme atomic'")
    ap.add_argument("--out", default="", help="write JSON here")
    ap.add_argument("--program", choices=("python", "sleep"), default="python",
                    help="python3.11 (a barrier script) or coreutils' sleep")
    args = ap.parse_args()
    global PROGRAM
    PROGRAM = args.program
    emu = os.path.join(args.build, "emu", "emu")
    if not os.access(emu, os.X_OK):
        sys.exit(f"shared_text_bench: {emu} not found: build first (cmake --build {args.build} --target emu)")
    if not os.access(PYTHON, os.X_OK):
        sys.exit(f"shared_text_bench: {PYTHON} is missing (tools/setup.sh installs it)")
    counts = [int(c) for c in args.counts.split(",")]
    extra = args.emu_args.split()
    rows = []
    for n in counts:
        cell = {"n": n}
        for mode in ("shared", "private"):
            runs = []
            for r in range(args.reps):
                print(f"[N={n}] emu --file-pages {mode}, run {r + 1}/{args.reps}", file=sys.stderr)
                runs.append(run_emu(emu, n, mode, extra))
            cell[mode] = {k: statistics.median(x[k] for x in runs) for k in runs[0]}
        print(f"[N={n}] native", file=sys.stderr)
        cell["native"] = {"pss_mib": statistics.median(run_native(n)["pss_mib"] for _ in range(args.reps))}
        rows.append(cell)
    if PROGRAM == "sleep":  # the shell alone, to take out of emu's peak
        shell = statistics.median(run_emu(emu, 0, "shared", extra)["peak_mib"] for _ in range(args.reps))
        for c in rows:
            c["shared"]["less_shell_mib"] = c["shared"]["peak_mib"] - shell
        base = rows[0]
        print(f"\nthe sleeps alone, emu's peak less the shell's ({shell:.2f} MiB):")
        for c in rows:
            print(f"{c['n']:>3} {c['shared']['less_shell_mib']:6.2f} MiB "
                  f"{c['shared']['less_shell_mib'] / base['shared']['less_shell_mib']:5.2f}x N={base['n']}")

    base = rows[0]
    title = "python3.11 barrier" if PROGRAM == "python" else "coreutils sleep 2"
    print(f"\n{title}, N processes at once ({args.reps} runs each, medians)")
    print(f"{'N':>3} {'shared MiB':>11} {'x N=' + str(base['n']):>7} {'cache misses':>13} {'private MiB':>12} "
          f"{'x N=' + str(base['n']):>7} {'native Pss MiB':>15} {'x N=' + str(base['n']):>7}")
    for c in rows:
        print(f"{c['n']:>3} {c['shared']['peak_mib']:11.1f} {c['shared']['peak_mib'] / base['shared']['peak_mib']:7.2f} "
              f"{c['shared']['cache_misses']:13.0f} {c['private']['peak_mib']:12.1f} "
              f"{c['private']['peak_mib'] / base['private']['peak_mib']:7.2f} {c['native']['pss_mib']:15.1f} "
              f"{c['native']['pss_mib'] / base['native']['pss_mib']:7.2f}")
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            json.dump({"machine": machine(), "program": PROGRAM, "reps": args.reps, "emu_args": args.emu_args,
                       "rows": rows}, f, indent=2)
        print(f"\nJSON: {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
