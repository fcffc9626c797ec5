#!/usr/bin/env python3
"""End-to-end test of bench/harness.py: the quick preset into a temporary directory, then the
outputs are checked for completeness and form (not the numbers, which depend on the machine).

  harness_test.py --build BUILD_DIR

Also checks, without running anything (--dry-run), that options override the presets and that
vCPU counts above the host's cores are flagged. Exit status 0 when every check passes.
"""
import argparse
import csv
import json
import math
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HARNESS = os.path.join(ROOT, "bench", "harness.py")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLOTS = ["throughput.png", "efficiency.png", "lock_wait.png", "cmpxchg_failures.png"]
RUN_COLUMNS = {"arch", "workload", "runner", "scheme", "series", "vcpus", "rep", "ok", "throughput_faults_per_s",
               "efficiency", "wall_s", "faults", "lock_wait_ns", "cmpxchg_failures", "lock_wait_share",
               "cmpxchg_per_fault", "oversubscribed"}
SUMMARY_COLUMNS = {"arch", "workload", "runner", "scheme", "series", "vcpus", "runs", "oversubscribed"} | {
    f"{m}_{s}" for m in ("throughput", "efficiency", "lock_wait_share", "cmpxchg_per_fault")
    for s in ("median", "min", "max")}
SCHEMES = ["global", "split", "atomic", "ptebit"]
WORKLOADS = ["page_fault1", "shared_region", "mutex"]  # the quick preset's
LOCK_WORKLOADS = {"mutex"}  # operations, not faults; no MMU-only counterpart

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print(f"FAIL: {what}", file=sys.stderr)
    return cond


def harness(args, **kw):
    return subprocess.run([sys.executable, HARNESS] + args, text=True, **kw)


def read_csv(path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames or [], list(reader)


def expected_series(skipped, arch, workload):
    layers = ("emu",) if workload in LOCK_WORKLOADS else ("emu", "mmu-bench")
    out = [f"{layer}-{s}" for layer in layers for s in SCHEMES]
    gone = {s["runner"] for s in skipped if s["arch"] == arch}
    return out + [b for b in ("native", "qemu-user") if b not in gone]


def check_outputs(out, build):
    for name in ["runs.csv", "summary.csv", "results.json"] + PLOTS:
        check(os.path.isfile(os.path.join(out, name)), f"{name} written")
    with open(os.path.join(out, "results.json")) as f:
        result = json.load(f)

    m = result.get("machine", {})
    for key in ("cores", "cpu", "memory_bytes", "kernel"):
        check(key in m, f"results.json machine has {key}")
    check(m.get("cores") == os.cpu_count(), "machine cores is this host's")
    check(isinstance(m.get("memory_bytes"), int) and m["memory_bytes"] > 0, "machine memory is positive")
    config = result.get("config", {})
    check(config.get("vcpus") == [1, 2] and config.get("reps") == 2 and config.get("arch") == ["x86_64"],
          f"quick preset is x86_64, vCPUs 1 2, 2 reps (got {config})")
    over = (os.cpu_count() or 1) < 2
    check(result.get("oversubscribed") == over, "oversubscription recorded as the core count says")
    check(bool(result.get("warnings")) == over, "a warning exactly when oversubscribed")
    check(result.get("failures") == 0, "no failed measurements")
    skipped = result.get("skipped", [])
    check(all(s["runner"] != "qemu-user" for s in skipped), "qemu-user baseline ran (tools/setup.sh installs it)")
    check(all(s["runner"] != "native" or s["arch"] != "x86_64" for s in skipped), "native x86_64 baseline ran")

    # Every configuration, exactly once in the summary and `reps` times in the runs.
    check(config.get("workloads") == WORKLOADS, f"quick preset workloads are {WORKLOADS} (got {config.get('workloads')})")
    configs = {(a, w, s, n) for a in config["arch"] for w in WORKLOADS for s in expected_series(skipped, a, w)
               for n in config["vcpus"]}
    cols, summary = read_csv(os.path.join(out, "summary.csv"))
    check(SUMMARY_COLUMNS <= set(cols), f"summary.csv columns (missing {SUMMARY_COLUMNS - set(cols)})")
    keys = [(r["arch"], r["workload"], r["series"], int(r["vcpus"])) for r in summary]
    check(len(keys) == len(set(keys)), "summary.csv has one row per configuration")
    check(set(keys) == configs, f"summary.csv configurations (missing {configs - set(keys)}, extra {set(keys) - configs})")
    for r in summary:
        name = f"summary {r['series']} {r['workload']} {r['vcpus']} vCPUs"
        check(int(r["runs"]) == config["reps"], f"{name}: {config['reps']} runs")
        lo, med, hi = (float(r[f"throughput_{s}"]) for s in ("min", "median", "max"))
        check(0 < lo <= med <= hi and math.isfinite(hi), f"{name}: 0 < min <= median <= max throughput")
        # No fault rate beyond 1e9/s: that is a broken clock, not a fast MMU.
        check(hi < 1e9, f"{name}: plausible throughput ({hi:.3g}/s)")
        lo, med, hi = (float(r[f"efficiency_{s}"]) for s in ("min", "median", "max"))
        check(0 < lo <= med <= hi, f"{name}: 0 < min <= median <= max efficiency")
        if r["vcpus"] == "1":
            check(abs(med - 1.0) < 1e-9, f"{name}: efficiency at 1 vCPU is 1")
        has_counters = r["runner"] in ("emu", "mmu-bench")
        for metric in ("lock_wait_share", "cmpxchg_per_fault"):
            if has_counters:
                v = float(r[f"{metric}_median"])
                check(0 <= v <= (1.0 if metric == "lock_wait_share" else 100.0), f"{name}: {metric} in range ({v})")
            else:
                check(r[f"{metric}_median"] == "", f"{name}: no {metric} for a baseline")

    cols, runs = read_csv(os.path.join(out, "runs.csv"))
    check(RUN_COLUMNS <= set(cols), f"runs.csv columns (missing {RUN_COLUMNS - set(cols)})")
    check(len(runs) == len(configs) * config["reps"], f"runs.csv has {len(configs) * config['reps']} rows ({len(runs)})")
    for r in runs:
        check(r["ok"] == "True" and float(r["throughput_faults_per_s"]) > 0,
              f"run {r['series']} {r['workload']} {r['vcpus']} rep {r['rep']} ok")
        if r["runner"] == "emu" and r["workload"] in LOCK_WORKLOADS:
            # The guest's locked instructions were counted (host atomics or gated).
            check(int(r["atomics_host"] or 0) + int(r["atomics_gated"] or 0) > 0 or r["vcpus"] == "1",
                  f"run {r['series']} {r['workload']} {r['vcpus']}: guest atomics counted")
        elif r["runner"] in ("emu", "mmu-bench"):
            # Each workload faults at least vCPUs x MiB x iterations pages of 4 KiB.
            mib = config["mib"] if r["runner"] == "emu" else config["mmu_mib"]
            its = config["iterations"] if r["runner"] == "emu" else config["mmu_iterations"]
            check(int(r["faults"]) >= int(r["vcpus"]) * mib * 256 * its,
                  f"run {r['series']} {r['workload']} {r['vcpus']}: faults counted ({r['faults']})")
    check(len(result.get("runs", [])) == len(runs), "results.json has every run")
    check(len(result.get("results", [])) == len(summary), "results.json has every configuration")
    for e in result.get("results", []):
        check(all(k in e["throughput"] for k in ("median", "min", "max", "runs")), "results.json: median, min, max, runs")

    for name in PLOTS:
        path = os.path.join(out, name)
        if not os.path.isfile(path):
            continue
        with open(path, "rb") as f:
            head = f.read(24)
        check(head[:8] == PNG_SIGNATURE, f"{name} starts with the PNG signature")
        width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        check(head[12:16] == b"IHDR" and width >= 300 and height >= 200, f"{name}: a plot-sized image ({width}x{height})")
        check(os.path.getsize(path) > 10000, f"{name}: has content ({os.path.getsize(path)} bytes)")


def check_dry_runs(build):
    """Options override presets; oversubscribed counts are flagged; --max-vcpus cuts the full preset."""
    p = harness(["--dry-run", "--build", build, "--preset", "full", "--max-vcpus", "4"], capture_output=True)
    check(p.returncode == 0, f"dry run of the full preset ({p.stderr.strip()[-200:]})")
    if p.returncode == 0:
        plan = json.loads(p.stdout)
        c = plan["config"]
        check(c["vcpus"] == [1, 2, 4] and c["reps"] == 5 and c["arch"] == ["x86_64", "i386"],
              f"full preset, --max-vcpus 4: vCPUs 1 2 4, 5 reps, both arches (got {c})")
        check(bool(plan["warnings"]) == ((os.cpu_count() or 1) < 4), "4 vCPUs flagged exactly when above the cores")
    cores = os.cpu_count() or 1
    p = harness(["--dry-run", "--build", build, "--schemes", "split", "--vcpus", "1", str(cores + 1), "--reps", "3",
                 "--arch", "i386"], capture_output=True)
    check(p.returncode == 0, "dry run with overrides")
    if p.returncode == 0:
        plan = json.loads(p.stdout)
        c = plan["config"]
        check(c["schemes"] == ["split"] and c["vcpus"] == [1, cores + 1] and c["reps"] == 3 and c["arch"] == ["i386"],
              f"options override the quick preset (got {c})")
        check(any(str(cores) in w and "oversubscribed" in w for w in plan["warnings"]),
              "vCPUs above the core count produce a warning naming the cores")
        series = {x["series"] for x in plan["configurations"]}
        check({"emu-split", "mmu-bench-split"} <= series and not any("global" in s for s in series),
              f"only the chosen scheme is planned ({sorted(series)})")
        check(plan["measurements"] == len(plan["configurations"]) * 3, "measurements = configurations x reps")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    check_dry_runs(args.build)
    with tempfile.TemporaryDirectory(prefix="harness-test-") as out:
        start = time.perf_counter()
        p = harness(["--preset", "quick", "--build", args.build, "--out", out], stdout=subprocess.PIPE)
        elapsed = time.perf_counter() - start
        print(p.stdout)
        print(f"harness_test: quick preset took {elapsed:.1f} s (target: under 120 s on an idle 2-core machine)")
        if check(p.returncode == 0, f"quick preset exits 0 (got {p.returncode})"):
            check_outputs(out, args.build)
    if failures:
        print(f"harness_test: {len(failures)} check(s) failed", file=sys.stderr)
        return 1
    print("harness_test: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
