#!/usr/bin/env python3
"""Soak: emu under memory pressure with faults injected, for a set time (issue 18).

Runs round after round until the time is up. Each round is one emu run of several guest
processes at once (guest-programs/run_all.c): two swap_stress families writing and checking
page-unique patterns in private memory (one with an mmap/mprotect churn thread), and
shared_memory, whose MAP_SHARED pages (anonymous, memfd and file) are bigger than --mem. The
schemes take turns (global, split, atomic, ptebit), the ABIs too, and so do the scenarios:

  pressure        --mem 24M --swap 96M: everything must finish and verify
  write-errors    the same, with swap writes failing (--inject-swap-errors write:SKIP:COUNT,
                  SKIP drawn at random): the guests end with SIGBUS (135) and one line, or
                  finish if the failure came too late to matter
  read-errors     the same with swap reads failing (the faulting process gets SIGBUS)
  swap-full       --mem 16M --swap 8M under a 48 MiB working set: killed, 137, one line
  pool-exhausted  --mem 16M, no swap, a 32 MiB working set: killed, 137, one line
  stress-ng       Debian's stress-ng (dynamic, 40 libraries) under --mem 32M --swap 128M: its
                  vm, mmap, fork, futex, pipe and memfd stressors with --verify, 10 s; it must
                  report a successful run and no failure (its root comes from
                  tools/make-sysroot.sh, cached in third_party/sysroots/; a Debian archive out
                  of reach drops the scenario with a loud line)

Every round must show: emu not killed by a host signal, no internal error (emu checks at exit
that every frame and swap slot came back: "leaked" otherwise), no sanitizer report, no
mismatch in anything a guest verified, swap slots in use at exit 0, and the status the
scenario allows. The report: one line per round as it ends, then the totals (guests, pages
verified, faults injected, kills, SIGBUS endings, mismatches, failures); --json keeps them.
Exit status 1 if any round failed.

  python3 tools/soak.py                       # 10 minutes, build/ of this checkout
  python3 tools/soak.py --minutes 2 --json results/soak/soak.json
"""
import argparse
import datetime
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMES = ["global", "split", "atomic", "ptebit"]
SCENARIOS = ["pressure", "write-errors", "read-errors", "swap-full", "pool-exhausted", "stress-ng"]
DEBIAN_ARCH = {"x86_64": "amd64", "i386": "i386"}
# Sizes that fit --mem 32M plus swap (stress-ng's defaults are 256 MiB per vm and memfd worker).
STRESS_NG = ["--vm", "2", "--vm-bytes", "12M", "--mmap", "1", "--mmap-bytes", "8M", "--fork", "2", "--futex", "2",
             "--pipe", "1", "--memfd", "1", "--memfd-bytes", "8M", "--verify", "--metrics-brief", "-t", "10s"]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--minutes", type=float, default=10.0, help="how long to run (default 10)")
    p.add_argument("--build", default=os.path.join(ROOT, "build"), help="build directory (default build/)")
    p.add_argument("--arch", nargs="+", default=["x86_64", "i386"], choices=["x86_64", "i386"])
    p.add_argument("--schemes", nargs="+", default=SCHEMES, choices=SCHEMES)
    p.add_argument("--scenarios", nargs="+", default=SCENARIOS, choices=SCENARIOS)
    p.add_argument("--hang-dir", default=os.path.join(ROOT, "results", "soak"),
                   help="where a failed round's output and a hung one's thread stacks (gdb) go, default results/soak/")
    p.add_argument("--seed", type=int, default=None, help="random seed for the injected faults (default: time)")
    p.add_argument("--round-timeout", type=float, default=300.0, help="seconds before a round counts as hung")
    p.add_argument("--json", help="write the rounds and totals here")
    return p.parse_args()


def stress_ng_root(arch):
    """A Debian root with stress-ng for `arch` (built once, then cached); None when the archive
    cannot be reached."""
    root = os.path.join(ROOT, "third_party", "sysroots", DEBIAN_ARCH[arch] + "-stress-ng")
    r = subprocess.run([os.path.join(ROOT, "tools", "make-sysroot.sh"), DEBIAN_ARCH[arch], root, "stress-ng"])
    if r.returncode == 2:
        return None
    if r.returncode != 0:
        sys.exit("soak: could not build the %s stress-ng root (tools/make-sysroot.sh said why above)" % arch)
    return root


def family(guests, arch, scenario, scratch, roots):
    """The guest command line of one round: which guests, how much memory they touch."""
    if scenario == "stress-ng":
        return ["-L", roots[arch], os.path.join(roots[arch], "usr", "bin", "stress-ng")] + STRESS_NG
    g = lambda name: os.path.join(guests, arch, name)
    if scenario == "swap-full":
        return [g("run_all"), g("swap_stress"), "-m", "32", "-t", "2", "-p", "2", "--",
                g("swap_stress"), "-m", "16", "-p", "2"]
    if scenario == "pool-exhausted":
        return [g("run_all"), g("swap_stress"), "-m", "24", "-p", "1", "--", g("swap_stress"), "-m", "8", "-p", "1"]
    return [g("run_all"), g("swap_stress"), "-m", "24", "-t", "2", "-p", "3", "-c", "--",
            g("swap_stress"), "-m", "16", "-p", "3", "--", g("shared_memory"), scratch, "2", "200"]


def emu_options(scenario, rng):
    if scenario == "stress-ng":
        return ["--mem", "32M", "--swap", "128M"], None
    if scenario == "swap-full":
        return ["--mem", "16M", "--swap", "8M"], None
    if scenario == "pool-exhausted":
        return ["--mem", "16M"], None
    opts = ["--mem", "24M", "--swap", "96M"]
    if scenario == "write-errors":
        spec = "write:%d:%d" % (rng.randint(50, 20000), rng.randint(1, 3))
    elif scenario == "read-errors":
        spec = "read:%d:%d" % (rng.randint(0, 8000), rng.randint(1, 3))
    else:
        return opts, None
    return opts + ["--inject-swap-errors", spec], spec


def stressor_ops(out, err):
    """stress-ng's bogo operations, all stressors together (its --metrics-brief table)."""
    return sum(int(m.group(1)) for m in re.finditer(r"metrc: \[\d+\] +[a-z-]+ +(\d+) +[\d.]+ ", out + err))


def judge(scenario, rc, out, err, stats):
    """What went wrong in one round (empty: nothing), what it verified, and the checks that a
    process killed by an injected fault could not finish."""
    problems = []
    pages = 0
    mismatches = 0
    for m in re.finditer(r"swap_stress: pages=(\d+) threads=\d+ passes=(\d+) mismatches=(\d+)", out):
        pages += int(m.group(1)) * int(m.group(2))
        mismatches += int(m.group(3))
    for m in re.finditer(r"ok +(\d+) MiB shared( file)?: every page", out):
        pages += int(m.group(1)) * 256
    if scenario == "stress-ng":
        said = out + err
        if "successful run completed" not in said:
            problems.append("stress-ng did not report a successful run")
        for line in said.splitlines():
            if re.search(r"stress-ng: (fail|error):", line):
                problems.append("stress-ng: " + line[:160])
                mismatches += "fail:" in line
    emu_lines = [l for l in err.splitlines() if l.startswith("emu:")]
    # A shared_memory check whose child an injected fault killed fails without anything being
    # wrong (the child never did its part); swap_stress checks only its own memory, and a
    # killed one prints nothing. Elsewhere a failed check is a mismatch.
    failed_checks = out.count("FAIL ")
    killed_by_fault = any("SIGBUS" in l for l in emu_lines)
    lost = failed_checks if (killed_by_fault and scenario.endswith("errors")) else 0
    mismatches += failed_checks - lost
    if mismatches:
        problems.append("%d mismatches" % mismatches)
    if rc < 0:
        problems.append("emu killed by host signal %d" % -rc)
    for bad in ("internal error", "leaked", "Sanitizer", "runtime error"):
        if bad in err:
            problems.append("stderr has %r" % bad)
    if stats and (stats.get("swap") or {}).get("slots_used_at_exit", 0) != 0:
        problems.append("swap slots in use at exit: %s" % stats["swap"]["slots_used_at_exit"])
    allowed = {
        "pressure": {0},
        "write-errors": {0, 135},
        "read-errors": {0, 135},
        "swap-full": {137},
        "pool-exhausted": {137},
        "stress-ng": {0},
    }[scenario]
    if rc >= 0 and rc not in allowed:
        problems.append("status %d, expected %s" % (rc, sorted(allowed)))
    # One line per guest process that was ended, each saying why, and nothing else.
    expected_line = {135: "SIGBUS", 137: "out of guest memory"}.get(rc)
    if rc in (135, 137) and not emu_lines:
        problems.append("no line from emu for status %d" % rc)
    for line in emu_lines:
        if not expected_line or expected_line not in line:
            problems.append("unexpected: %s" % line[:160])
            break
    return problems, pages, mismatches, lost


def dump_stacks(pid, where, round_no):
    """Every thread's stack of a hung emu (gdb, when installed), for the bug report."""
    os.makedirs(where, exist_ok=True)
    path = os.path.join(where, "hang-round-%d-%d.txt" % (round_no, pid))
    with open(path, "w") as f:
        try:
            subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "thread apply all bt"], stdout=f,
                           stderr=subprocess.STDOUT, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as e:
            f.write("gdb: %s\n" % e)
    return path


def main():
    args = parse_args()
    emu = os.path.join(args.build, "emu", "emu")
    guests = os.path.join(args.build, "guest-programs")
    needed = [emu] + [os.path.join(guests, a, n) for a in args.arch for n in ("run_all", "swap_stress", "shared_memory")]
    missing = [n for n in needed if not os.access(n, os.X_OK)]
    if missing:
        sys.exit("soak: missing %s; build first (cmake --build %s)" % (", ".join(missing), args.build))
    seed = args.seed if args.seed is not None else int(time.time())
    rng = random.Random(seed)
    deadline = time.monotonic() + args.minutes * 60
    rounds = []
    roots = {}
    if "stress-ng" in args.scenarios:
        for arch in args.arch:
            roots[arch] = stress_ng_root(arch)
        if None in roots.values():
            print("soak: *** the Debian archive cannot be reached: the stress-ng scenario is SKIPPED ***", flush=True)
            args.scenarios = [s for s in args.scenarios if s != "stress-ng"]
    print("soak: %.1f minutes, seed %d, schemes %s, scenarios %s, arches %s" %
          (args.minutes, seed, "/".join(args.schemes), "/".join(args.scenarios), "/".join(args.arch)), flush=True)
    n = 0
    with tempfile.TemporaryDirectory(prefix="emu-soak-") as scratch:
        while time.monotonic() < deadline:
            # The scenarios take turns fastest, then the schemes, then the ABIs: every
            # combination comes up once in each cycle of scenarios x schemes x ABIs rounds.
            scenario = args.scenarios[n % len(args.scenarios)]
            scheme = args.schemes[(n // len(args.scenarios)) % len(args.schemes)]
            arch = args.arch[(n // (len(args.scenarios) * len(args.schemes))) % len(args.arch)]
            opts, injected = emu_options(scenario, rng)
            stats_path = os.path.join(scratch, "stats.json")
            cmd = [emu, "--scheme", scheme, "--stats-json", stats_path] + opts + family(guests, arch, scenario, scratch, roots)
            start = time.monotonic()
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                out, err = proc.communicate(timeout=args.round_timeout)
                rc = proc.returncode
            except subprocess.TimeoutExpired:
                stacks = dump_stacks(proc.pid, args.hang_dir, n + 1)
                proc.kill()
                out, err = proc.communicate()
                rc, err = 124, err + "\nhung; thread stacks in %s" % stacks
            seconds = time.monotonic() - start
            stats = None
            if os.path.exists(stats_path):
                with open(stats_path) as f:
                    try:
                        stats = json.load(f)
                    except json.JSONDecodeError:
                        pass
                os.remove(stats_path)
            problems, pages, mismatches, lost = judge(scenario, rc, out, err, stats)
            if rc == 124:
                problems.append("hung for %.0f s" % args.round_timeout)
            swap = (stats or {}).get("swap") or {}
            fired = swap.get("write_errors", 0) + swap.get("read_errors", 0)
            guests_started = ((stats or {}).get("processes") or {}).get("forks", 0) + 1
            log = None
            if problems:
                # What the guests and emu said, for whoever looks into it.
                os.makedirs(args.hang_dir, exist_ok=True)
                log = os.path.join(args.hang_dir, "round-%d-%d.txt" % (n + 1, proc.pid))
                with open(log, "w") as f:
                    f.write("command: %s\nstatus: %d\nproblems: %s\n--- stdout\n%s\n--- stderr\n%s\n" %
                            (" ".join(cmd), rc, "; ".join(problems), out, err))
            rounds.append({"round": n + 1, "log": log, "scheme": scheme, "arch": arch, "scenario": scenario, "injected": injected,
                           "faults_fired": fired, "status": rc, "seconds": round(seconds, 2), "guests": guests_started,
                           "pages_verified": pages, "stress_ng_ops": stressor_ops(out, err), "mismatches": mismatches, "checks_lost_to_faults": lost,
                           "problems": problems,
                           "emu_says": [l for l in err.splitlines() if l.startswith("emu:")][:3]})
            print("[%s] round %3d %-6s %-6s %-14s %-16s status %3d  %3d guests  %7d pages verified  %s%s" %
                  (datetime.datetime.now().strftime("%H:%M:%S"), n + 1, scheme, arch, scenario, injected or "-", rc,
                   guests_started, pages, "%.1f s" % seconds,
                   ("  FAILED: " + "; ".join(problems)) if problems else ""), flush=True)
            n += 1
    totals = {
        "seed": seed, "minutes": args.minutes, "rounds": len(rounds),
        "guests": sum(r["guests"] for r in rounds),
        "pages_verified": sum(r["pages_verified"] for r in rounds),
        "stress_ng_rounds": sum(1 for r in rounds if r["scenario"] == "stress-ng"),
        "stress_ng_ops": sum(r["stress_ng_ops"] for r in rounds),
        "faults_injected": sum(1 for r in rounds if r["injected"]),
        "faults_fired": sum(r["faults_fired"] for r in rounds),
        "sigbus_endings": sum(1 for r in rounds if r["status"] == 135),
        "kills_137": sum(1 for r in rounds if r["status"] == 137),
        "mismatches": sum(r["mismatches"] for r in rounds),
        "failed_rounds": sum(1 for r in rounds if r["problems"]),
    }
    print("\nsoak totals: %(rounds)d rounds, %(guests)d guest processes, %(pages_verified)d pages verified, "
          "%(stress_ng_rounds)d stress-ng runs (%(stress_ng_ops)d bogo ops verified), "
          "%(faults_injected)d rounds with swap faults injected (%(faults_fired)d failed I/Os), "
          "%(sigbus_endings)d SIGBUS endings, %(kills_137)d out-of-memory kills, %(mismatches)d mismatches, "
          "%(failed_rounds)d failed rounds" % totals)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"totals": totals, "rounds": rounds}, f, indent=1)
    return 1 if totals["failed_rounds"] else 0


if __name__ == "__main__":
    sys.exit(main())
