#!/usr/bin/env python3
"""vCPU scalability sweep: locking schemes x vCPU counts x workloads, with repetitions.

Workloads, for each architecture:
  emu        the page_fault1 and shared_region guest programs under emu, one guest thread per
             vCPU (`-t N`), every scheme; and two locking workloads of the atomics_bench guest:
             `mutex` (pthread mutex lock/unlock around a shared increment) and `atomic_add`
             (lock add on one shared counter), where emu does the guest's locked instructions
             as host atomics and the exclusive gate shows up as parked time;
  native     the same guest binaries run directly (skipped where the kernel cannot run them,
             e.g. i386 without IA32 emulation);
  qemu-user  the same binaries under qemu-x86_64 / qemu-i386;
  mmu-bench  the MMU alone (build/bench/mmu-bench --json), its page_fault1 and shared
             workloads, paging x86_64 or i386 to match the architecture, every scheme.

Every configuration runs --reps times; the repetitions are interleaved (each round runs every
configuration once, in a shuffled order) so drift and the host's page clearing hit all alike.
A line per measurement goes to stderr with done/total and an ETA. Written to --out:
  runs.csv      one row per measurement
  summary.csv   one row per configuration: medians with min and max
  results.json  the machine, the configuration, warnings, skipped baselines, every run
                (with its MMU counters) and the summaries
  throughput.png, efficiency.png, lock_wait.png, cmpxchg_failures.png

Metrics: throughput is the guest's (or mmu-bench's) faults per second over all threads (for the
locking workloads: operations per second over all threads, in the same column);
efficiency is throughput per vCPU relative to the same series at the smallest vCPU count
(1.0 = perfect scaling); lock-wait share is lock_wait_ns / (vCPUs x wall time), the share of
the vCPUs' time spent waiting for page-table locks (emu: its whole run, from --stats-json;
mmu-bench: the measured rounds); cmpxchg failure rate is cmpxchg_failures per fault.
vCPUs above the host's core count are oversubscribed: spinning locks then burn the time slice
of the holder they wait for, sleeping ones do not, so those points are flagged.
"""
import argparse
import csv
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

from bench_common import machine, stats

SCHEMES = ["global", "split", "atomic", "ptebit"]
ARCHES = ["x86_64", "i386"]
GUEST_WORKLOADS = ["page_fault1", "shared_region", "mutex", "atomic_add"]
# The locking workloads: atomics_bench's workload for each (no MMU-only counterpart).
LOCK_WORKLOADS = {"mutex": "mutex", "atomic_add": "add_shared"}
MMU_WORKLOAD = {"page_fault1": "page_fault1", "shared_region": "shared"}  # guest name -> mmu-bench name
BASELINES = ["native", "qemu-user"]
QEMU = {"x86_64": "qemu-x86_64", "i386": "qemu-i386"}

# Sizes: MiB each thread faults per round, rounds per run (guests: -m, -i; mmu-bench:
# --region-mb, --iterations).
PRESETS = {
    "quick": {"vcpus": [1, 2], "reps": 2, "arch": ["x86_64"], "mib": 32, "iterations": 4,
              "mmu_mib": 32, "mmu_iterations": 4, "workloads": ["page_fault1", "shared_region", "mutex"],
              "ops": 20000},
    "full": {"vcpus": [1, 2, 4, 8, 16], "reps": 5, "arch": ["x86_64", "i386"], "mib": 64, "iterations": 4,
             "mmu_mib": 64, "mmu_iterations": 4, "workloads": GUEST_WORKLOADS, "ops": 200000},
}

RUN_COLUMNS = ["arch", "workload", "runner", "scheme", "series", "vcpus", "rep", "ok", "throughput_faults_per_s", "efficiency",
               "wall_s", "faults", "lock_acquisitions", "lock_contended", "lock_wait_ns", "cmpxchg_failures",
               "lock_wait_share", "cmpxchg_per_fault", "atomics_host", "atomics_gated", "exclusive_ns",
               "oversubscribed", "error"]
METRICS = ["throughput", "efficiency", "lock_wait_share", "cmpxchg_per_fault"]
SUMMARY_COLUMNS = (["arch", "workload", "runner", "scheme", "series", "vcpus", "runs", "oversubscribed"] +
                   [f"{m}_{s}" for m in METRICS for s in ("median", "min", "max")])
PLOTS = {"throughput": "throughput.png", "efficiency": "efficiency.png", "lock_wait_share": "lock_wait.png",
         "cmpxchg_per_fault": "cmpxchg_failures.png"}
# MMU counters that count a fault of some kind (the denominator of the cmpxchg failure rate).
FAULT_COUNTERS = ["fault_zero_fill", "fault_zero_page", "fault_copy_on_write", "fault_write_upgrade",
                  "fault_file_fill", "fault_stack_growth", "fault_major"]


def log(msg):
    print(f"[harness] {msg}", file=sys.stderr, flush=True)


def powers_of_two_up_to(n):
    out, v = [], 1
    while v <= n:
        out.append(v)
        v *= 2
    return out + ([n] if out[-1] != n else [])


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="quick",
                    help="quick: x86_64, vCPUs 1 2, 2 reps, small sizes (under 2 minutes on 2 cores); "
                         "full: both arches, vCPUs 1 2 4 8 16, 5 reps, 64 MiB x 4 rounds (default quick)")
    ap.add_argument("--schemes", nargs="+", choices=SCHEMES, help="locking schemes (default: all four)")
    ap.add_argument("--vcpus", nargs="+", type=int, help="vCPU (= guest thread) counts")
    ap.add_argument("--max-vcpus", type=int,
                    help="drop vCPU counts above this; with the full preset's counts, sweep powers of two up to it")
    ap.add_argument("--reps", type=int, help="repetitions of every configuration")
    ap.add_argument("--arch", nargs="+", choices=ARCHES, help="guest architectures")
    ap.add_argument("--workloads", nargs="+", choices=GUEST_WORKLOADS,
                    help="default: the preset's (quick: page_fault1 shared_region mutex; full: all four)")
    ap.add_argument("--ops", type=int, help="operations per thread of the locking workloads (atomics_bench -n)")
    ap.add_argument("--no-mmu-bench", action="store_true", help="leave out the MMU-only benchmark")
    ap.add_argument("--no-baselines", action="store_true", help="leave out native and qemu-user")
    ap.add_argument("--mib", type=int, help="MiB each guest thread faults per round (-m)")
    ap.add_argument("--iterations", type=int, help="rounds per guest run (-i)")
    ap.add_argument("--mmu-mib", type=int, help="mmu-bench --region-mb")
    ap.add_argument("--mmu-iterations", type=int, help="mmu-bench --iterations")
    ap.add_argument("--build", default="build", help="build directory (emu, guest-programs, bench)")
    ap.add_argument("--out", help="output directory (default results/harness-PRESET)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds before one run counts as failed")
    ap.add_argument("--seed", type=int, default=0, help="seed of the per-round shuffle")
    ap.add_argument("--dry-run", action="store_true", help="print the plan (as JSON) and run nothing")
    args = ap.parse_args(argv)

    preset = PRESETS[args.preset]
    for key in ("reps", "arch", "mib", "iterations", "mmu_mib", "mmu_iterations", "workloads", "ops"):
        if getattr(args, key) is None:
            setattr(args, key, list(preset[key]) if isinstance(preset[key], list) else preset[key])
    if args.schemes is None:
        args.schemes = list(SCHEMES)
    if args.vcpus is None:
        args.vcpus = list(preset["vcpus"])
        if args.max_vcpus and args.preset == "full":
            args.vcpus = powers_of_two_up_to(args.max_vcpus)
    if args.max_vcpus:
        args.vcpus = [v for v in args.vcpus if v <= args.max_vcpus]
    args.vcpus = sorted(set(args.vcpus))
    if not args.vcpus or min(args.vcpus) < 1:
        ap.error("vCPU counts must be at least 1 (check --vcpus and --max-vcpus)")
    for key in ("reps", "mib", "iterations", "mmu_mib", "mmu_iterations", "ops"):
        if getattr(args, key) < 1:
            ap.error(f"--{key.replace('_', '-')} must be at least 1")
    if "i386" in args.arch and max(args.vcpus) * args.mib > 2048:
        ap.error("i386 guests: vCPUs x --mib must stay within 2048 MiB")
    if args.out is None:
        args.out = os.path.join("results", f"harness-{args.preset}")
    return args


def series_name(runner, scheme):
    return runner if runner in BASELINES else f"{runner}-{scheme}"


def run_cmd(cmd, timeout):
    start = time.perf_counter()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr, time.perf_counter() - start
    except subprocess.TimeoutExpired:
        return None, "", f"timed out after {timeout:.0f} s", time.perf_counter() - start


def can_exec(cmd):
    try:
        return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):  # "Exec format error": no IA32 emulation in this kernel
        return False


class Sweep:
    def __init__(self, args):
        self.args = args
        self.emu = os.path.join(args.build, "emu", "emu")
        self.mmu_bench = os.path.join(args.build, "bench", "mmu-bench")
        self.guest_dir = os.path.join(args.build, "guest-programs")
        self.cores = os.cpu_count() or 1
        self.skipped = []
        self.tmp = None

    def guest(self, arch, name):
        return os.path.join(self.guest_dir, arch, "atomics_bench" if name in LOCK_WORKLOADS else name)

    def check_binaries(self):
        needed = [self.emu] + [self.guest(a, w) for a in self.args.arch for w in self.args.workloads + ["hello"]]
        if not self.args.no_mmu_bench:
            needed.append(self.mmu_bench)
        missing = [p for p in needed if not os.access(p, os.X_OK)]
        if missing:
            sys.exit("harness: missing (build first: cmake --build " + self.args.build + "): " + ", ".join(missing))

    def baselines(self, arch):
        """The baseline runners that work on this host for `arch`, as (name, command prefix)."""
        out = []
        if self.args.no_baselines:
            return out
        hello = self.guest(arch, "hello")
        if can_exec([hello]):
            out.append(("native", []))
        else:
            self.skipped.append({"arch": arch, "runner": "native",
                                 "reason": f"this host's kernel cannot run {arch} programs"})
        qemu = QEMU[arch]
        if shutil.which(qemu) and can_exec([qemu, hello]):
            out.append(("qemu-user", [qemu]))
        else:
            self.skipped.append({"arch": arch, "runner": "qemu-user", "reason": f"{qemu} missing or not working"})
        return out

    def plan(self):
        configs = []
        for arch in self.args.arch:
            bases = self.baselines(arch)
            for w in self.args.workloads:
                for n in self.args.vcpus:
                    for s in self.args.schemes:
                        configs.append({"arch": arch, "workload": w, "runner": "emu", "scheme": s, "vcpus": n})
                        if not self.args.no_mmu_bench and w in MMU_WORKLOAD:
                            configs.append({"arch": arch, "workload": w, "runner": "mmu-bench", "scheme": s, "vcpus": n})
                    for name, prefix in bases:
                        configs.append({"arch": arch, "workload": w, "runner": name, "scheme": "", "vcpus": n,
                                        "prefix": prefix})
        for c in configs:
            c["series"] = series_name(c["runner"], c["scheme"])
        return configs

    def guest_args(self, c):
        if c["workload"] in LOCK_WORKLOADS:
            return [self.guest(c["arch"], c["workload"]), "-w", LOCK_WORKLOADS[c["workload"]], "-t", str(c["vcpus"]),
                    "-n", str(self.args.ops)]
        return [self.guest(c["arch"], c["workload"]), "-t", str(c["vcpus"]), "-m", str(self.args.mib),
                "-i", str(self.args.iterations)]

    def measure(self, c, rep):
        """One run of configuration `c`: a row of runs.csv (plus the raw counters)."""
        row = {k: c[k] for k in ("arch", "workload", "runner", "scheme", "series", "vcpus")}
        row.update(rep=rep, ok=False, error="", oversubscribed=c["vcpus"] > self.cores)
        if c["runner"] == "mmu-bench":
            self.measure_mmu_bench(c, row)
        else:
            self.measure_guest(c, row)
        if row["ok"]:
            wall = row["wall_s"]
            if row.get("lock_wait_ns") is not None and wall > 0:
                row["lock_wait_share"] = row["lock_wait_ns"] * 1e-9 / (c["vcpus"] * wall)
            if row.get("cmpxchg_failures") is not None and row["faults"] > 0:
                row["cmpxchg_per_fault"] = row["cmpxchg_failures"] / row["faults"]
        return row

    def measure_guest(self, c, row):
        stats_path = os.path.join(self.tmp, "stats.json")
        if c["runner"] == "emu":
            # Room for every thread's region (shared_region maps them all as one) and the rest.
            mem_mib = max(1024, c["vcpus"] * self.args.mib * 2 + 256)
            cmd = [self.emu, "--scheme", c["scheme"], "--mem", f"{mem_mib}M", "--stats-json", stats_path]
        else:
            cmd = list(c["prefix"])
        rc, out, err, wall = run_cmd(cmd + self.guest_args(c), self.args.timeout)
        if c["workload"] in LOCK_WORKLOADS:
            # ns per operation per thread: operations per second over all threads.
            m = re.search(r" ns_per_op=([\d.]+) .*check=ok", out)
            if rc != 0 or not m or float(m.group(1)) <= 0:
                row["error"] = f"exit {rc}: {(out.strip() + ' ' + err.strip())[-300:]}"
                return
            row.update(ok=True, throughput_faults_per_s=c["vcpus"] * 1e9 / float(m.group(1)), wall_s=wall, faults=None)
        else:
            m = re.search(r"([\d.]+) faults/s total", err)
            if rc != 0 or not m or not out.rstrip().endswith(" ok"):
                row["error"] = f"exit {rc}: {(out.strip() + ' ' + err.strip())[-300:]}"
                return
            row.update(ok=True, throughput_faults_per_s=float(m.group(1)), wall_s=wall)
            faults = re.search(r"faults=(\d+)", out)
            row["faults"] = int(faults.group(1)) if faults else None
        if c["runner"] == "emu":
            with open(stats_path) as f:
                s = json.load(f)
            mmu = s["mmu"]
            row.update(wall_s=s["wall_seconds"], faults=sum(mmu[k] for k in FAULT_COUNTERS),
                       lock_acquisitions=mmu["lock_acquisitions"], lock_contended=mmu["lock_contended"],
                       lock_wait_ns=mmu["lock_wait_ns"], cmpxchg_failures=mmu["cmpxchg_failures"])
            row["counters"] = mmu
            emu_counters = s.get("emulator", {})
            # Guest atomics: done as host atomics, left to the exclusive gate, and the time the
            # gate cost (getting exclusive plus parked).
            row.update(atomics_host=emu_counters.get("atomics_host"), atomics_gated=emu_counters.get("atomics_gated"),
                       exclusive_ns=emu_counters.get("exclusive_wait_ns", 0) + emu_counters.get("parked_ns", 0))

    def measure_mmu_bench(self, c, row):
        json_path = os.path.join(self.tmp, "mmu.json")
        paging = "x86_64" if c["arch"] == "x86_64" else "i386"
        workload = MMU_WORKLOAD[c["workload"]]
        cmd = [self.mmu_bench, "--scheme", c["scheme"], "--threads", str(c["vcpus"]), "--workload", workload,
               "--paging", paging, "--region-mb", str(self.args.mmu_mib), "--iterations",
               str(self.args.mmu_iterations), "--repetitions", "1", "--json", json_path]
        rc, out, err, _ = run_cmd(cmd, self.args.timeout)
        if rc != 0:
            row["error"] = f"exit {rc}: {err.strip()[-300:]}"
            return
        with open(json_path) as f:
            results = json.load(f)["results"]
        r = next((r for r in results if r["workload"] == workload and r["scheme"] == c["scheme"]), None)
        if r is None:
            row["error"] = "mmu-bench --json has no result for this configuration"
            return
        counters = r["counters"]
        rate = r["pages_per_sec"][0]
        faults = sum(counters[k] for k in FAULT_COUNTERS)
        # The counters cover the measured rounds only; their duration is faults / rate.
        row.update(ok=True, throughput_faults_per_s=rate, faults=faults, wall_s=faults / rate if rate else 0.0,
                   lock_acquisitions=counters["lock_acquisitions"], lock_contended=counters["lock_contended"],
                   lock_wait_ns=counters["lock_wait_ns"], cmpxchg_failures=counters["cmpxchg_failures"],
                   counters=counters)

    def run(self, configs):
        total = len(configs) * self.args.reps
        runs, done, start = [], 0, time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="emu-harness-") as tmp:
            self.tmp = tmp
            for rep in range(self.args.reps):
                order = list(configs)
                random.Random(self.args.seed * 1000 + rep).shuffle(order)
                for c in order:
                    row = self.measure(c, rep)
                    runs.append(row)
                    done += 1
                    elapsed = time.perf_counter() - start
                    eta = elapsed / done * (total - done)
                    what = (f"{c['arch']} {c['workload']} {c['series']} {c['vcpus']} vCPU{'s' if c['vcpus'] > 1 else ''}"
                            f" rep {rep + 1}/{self.args.reps}")
                    unit = "ops" if c["workload"] in LOCK_WORKLOADS else "faults"
                    result = (f"{row['throughput_faults_per_s'] / 1e6:.3f} M {unit}/s" if row["ok"]
                              else f"FAILED ({row['error'][:120]})")
                    log(f"{done}/{total} {what}: {result}; elapsed {fmt_time(elapsed)}, ETA {fmt_time(eta)}")
        return runs


def fmt_time(seconds):
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


def summarize(configs, runs):
    """Medians with min and max per configuration; efficiency against the series' smallest vCPU count."""
    by_key = {}
    for r in runs:
        if r["ok"]:
            by_key.setdefault((r["arch"], r["workload"], r["series"], r["vcpus"]), []).append(r)
    summary = []
    for c in configs:
        rows = by_key.get((c["arch"], c["workload"], c["series"], c["vcpus"]))
        if not rows:
            continue
        ref_n = min(n for (a, w, s, n) in by_key if (a, w, s) == (c["arch"], c["workload"], c["series"]))
        ref = stats([r["throughput_faults_per_s"] for r in by_key[(c["arch"], c["workload"], c["series"], ref_n)]])
        for r in rows:
            r["efficiency"] = (r["throughput_faults_per_s"] / c["vcpus"]) / (ref["median"] / ref_n)
        entry = {k: c[k] for k in ("arch", "workload", "runner", "scheme", "series", "vcpus")}
        entry["oversubscribed"] = rows[0]["oversubscribed"]
        entry["runs"] = len(rows)
        entry["throughput"] = stats([r["throughput_faults_per_s"] for r in rows])
        entry["efficiency"] = stats([r["efficiency"] for r in rows])
        for m in ("lock_wait_share", "cmpxchg_per_fault"):
            values = [r[m] for r in rows if r.get(m) is not None]
            entry[m] = stats(values) if values else None
        summary.append(entry)
    return summary


def write_csv(path, columns, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in columns})


def summary_rows(summary):
    for e in summary:
        row = {k: e[k] for k in ("arch", "workload", "runner", "scheme", "series", "vcpus", "runs", "oversubscribed")}
        for m in METRICS:
            for s in ("median", "min", "max"):
                row[f"{m}_{s}"] = e[m][s] if e[m] else None
        yield row


PANEL_TITLES = {"emu": "emu", "mmu-bench": "MMU only (mmu-bench)"}
SCHEME_COLORS = {"global": "tab:red", "split": "tab:blue", "atomic": "tab:green", "ptebit": "tab:purple"}
Y_LABELS = {"throughput": "M faults/s (all vCPUs)", "efficiency": "per-vCPU throughput vs fewest vCPUs",
            "lock_wait_share": "% of vCPU time waiting on pt locks", "cmpxchg_per_fault": "cmpxchg failures per fault"}
Y_SCALE = {"throughput": 1e-6, "efficiency": 1.0, "lock_wait_share": 100.0, "cmpxchg_per_fault": 1.0}


def plot(summary, args, cores, out_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

    layers = ["emu"] + ([] if args.no_mmu_bench else ["mmu-bench"])
    panels = [(arch, layer, w) for arch in args.arch for layer in layers for w in args.workloads]
    cols = len(args.workloads)  # one row per arch and layer
    rows = len(args.arch) * len(layers)
    written = []
    for metric, filename in PLOTS.items():
        fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), squeeze=False)
        for i, (arch, layer, w) in enumerate(panels):
            ax = axes[i // cols][i % cols]
            with_baselines = layer == "emu" and metric in ("throughput", "efficiency")
            series = [f"{layer}-{s}" for s in args.schemes] + (BASELINES if with_baselines else [])
            for name in series:
                points = sorted((e for e in summary if (e["arch"], e["workload"], e["series"]) == (arch, w, name)
                                 and e[metric] is not None), key=lambda e: e["vcpus"])
                if not points:
                    continue
                k = Y_SCALE[metric]
                xs = [e["vcpus"] for e in points]
                med = [e[metric]["median"] * k for e in points]
                lo = [(e[metric]["median"] - e[metric]["min"]) * k for e in points]
                hi = [(e[metric]["max"] - e[metric]["median"]) * k for e in points]
                scheme = None if name in BASELINES else name[len(layer) + 1:]
                style = ({"color": SCHEME_COLORS.get(scheme), "marker": "o"} if scheme else
                         {"color": "black" if name == "native" else "grey", "marker": "s", "linestyle": "--"})
                ax.errorbar(xs, med, yerr=[lo, hi], capsize=3, label=scheme or name, **style)
            ax.set_xscale("log", base=2)
            ax.xaxis.set_major_locator(FixedLocator(args.vcpus))
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xlim(min(args.vcpus) / 1.3, max(args.vcpus) * 1.3)
            if max(args.vcpus) > cores:
                ax.axvspan(cores * 1.15, max(args.vcpus) * 1.3, color="tab:orange", alpha=0.12,
                           label=f"> {cores} host cores")
            if metric == "efficiency":
                ax.axhline(1.0, color="lightgrey", linewidth=1, zorder=0)
            ax.set_ylim(bottom=0)
            lock = w in LOCK_WORKLOADS
            ax.set_title(f"{arch}: {w}, {PANEL_TITLES[layer]}" +
                         (" (none: a locking workload)" if lock and layer == "mmu-bench" else ""), fontsize=10)
            ax.set_xlabel("vCPUs")
            ylabel = Y_LABELS[metric]
            if lock and metric == "throughput":
                ylabel = "M ops/s (all vCPUs)"
            elif lock and metric == "cmpxchg_per_fault":
                ylabel = "pt cmpxchg failures per fault (few faults)"
            ax.set_ylabel(ylabel, fontsize=9)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=7)
        fig.suptitle(f"{Y_LABELS[metric]}: median of {args.reps}, bars min-max", fontsize=11)
        fig.tight_layout()
        path = os.path.join(out_dir, filename)
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written


def print_table(summary, args):
    print(f"\n# throughput, M faults/s (M ops/s for {', '.join(LOCK_WORKLOADS)}): median (min-max) of {args.reps}; "
          "efficiency vs fewest vCPUs in brackets")
    for arch in args.arch:
        for w in args.workloads:
            entries = [e for e in summary if e["arch"] == arch and e["workload"] == w]
            names = list(dict.fromkeys(e["series"] for e in entries))
            print(f"\n## {arch} {w}" + (" (M ops/s)" if w in LOCK_WORKLOADS else ""))
            print(f"{'series':<18}" + "".join(f"{n:>26}" for n in args.vcpus))
            for name in names:
                cells = []
                for n in args.vcpus:
                    e = next((e for e in entries if e["series"] == name and e["vcpus"] == n), None)
                    if e is None:
                        cells.append(f"{'-':>26}")
                        continue
                    t = e["throughput"]
                    cells.append(f"{t['median'] / 1e6:>8.3f} ({t['min'] / 1e6:.2f}-{t['max'] / 1e6:.2f}) "
                                 f"[{e['efficiency']['median']:.2f}]")
                print(f"{name:<18}" + "".join(f"{c:>26}" for c in cells))


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    sweep = Sweep(args)
    warnings = []
    over = [n for n in args.vcpus if n > sweep.cores]
    if over:
        warnings.append(f"vCPU counts {over} exceed this host's {sweep.cores} cores: those runs are oversubscribed, "
                        "where spinning page-table locks (global, split, ptebit) can burn the time slice of the "
                        "holder they wait for, unlike sleeping locks; read them as such")
    if not args.dry_run:
        try:
            import matplotlib  # noqa: F401  (fail now, not after the sweep)
        except ImportError:
            sys.exit(f"harness: {sys.executable} has no matplotlib; tools/setup.sh installs python3-matplotlib "
                     "(Debian's, for /usr/bin/python3)")
        sweep.check_binaries()
    configs = sweep.plan()
    config = {k: getattr(args, k) for k in ("preset", "schemes", "vcpus", "reps", "arch", "workloads", "mib",
                                           "iterations", "mmu_mib", "mmu_iterations", "ops", "seed")}
    config["mmu_bench"] = not args.no_mmu_bench
    config["baselines"] = not args.no_baselines
    total = len(configs) * args.reps
    if args.dry_run:
        print(json.dumps({"config": config, "configurations": [{k: v for k, v in c.items() if k != "prefix"}
                                                               for c in configs],
                          "measurements": total, "warnings": warnings, "skipped": sweep.skipped}, indent=2))
        return 0
    for w in warnings:
        log(f"WARNING: {w}")
    for s in sweep.skipped:
        log(f"skipping {s['arch']} {s['runner']}: {s['reason']}")
    log(f"{len(configs)} configurations x {args.reps} repetitions = {total} measurements, preset {args.preset}")

    start = time.perf_counter()
    runs = sweep.run(configs)
    elapsed = time.perf_counter() - start
    summary = summarize(configs, runs)

    os.makedirs(args.out, exist_ok=True)
    write_csv(os.path.join(args.out, "runs.csv"), RUN_COLUMNS, runs)
    write_csv(os.path.join(args.out, "summary.csv"), SUMMARY_COLUMNS, summary_rows(summary))
    failures = [r for r in runs if not r["ok"]]
    result = {"machine": machine(), "config": config,
              "oversubscribed": bool(over), "oversubscribed_vcpus": over, "warnings": warnings, "skipped": sweep.skipped,
              "elapsed_seconds": elapsed, "measurements": total, "failures": len(failures),
              "results": summary, "runs": runs}
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(result, f, indent=2)
    plots = plot(summary, args, sweep.cores, args.out)

    print_table(summary, args)
    print(f"\n# {total} measurements in {fmt_time(elapsed)}; wrote runs.csv, summary.csv, results.json, "
          f"{', '.join(os.path.basename(p) for p in plots)} to {args.out}")
    for w in warnings:
        print(f"# WARNING: {w}")
    for s in sweep.skipped:
        print(f"# skipped {s['arch']} {s['runner']}: {s['reason']}")
    if failures:
        for r in failures:
            print(f"# FAILED: {r['arch']} {r['workload']} {r['series']} {r['vcpus']} vCPUs rep {r['rep'] + 1}: {r['error']}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
