#!/usr/bin/env python3
"""CPython's own regression tests as the oracle for emu's syscalls.

For each module (default: test_os test_threading test_subprocess test_select test_signal) this
runs `python3.11 -m unittest -v test.MODULE` natively and under emu, with the tests of Debian's
libpython3.11-testsuite (fetched by tools/fetch-cpython-tests.sh into third_party/, git-ignored),
and prints per module how many tests pass in each, the tests that pass natively but not under
emu (with the last line of their error), and the syscalls emu answered ENOSYS while each module
ran. A test passes when its outcome is ok, an expected failure or an unexpected success, which is
unittest's "ran minus failures, errors and skips" counted per test (a test with failing subtests
fails once).

    python3 tools/cpython-tests.py                              # x86_64, the default modules
    python3 tools/cpython-tests.py test_select test_os -j2 --json out.json
    python3 tools/cpython-tests.py --arch i386 test_select      # the i386 root's python3.11

How the interpreter finds the tests. x86_64: the host's python3.11 is copied into a private
prefix whose lib/python3.11 links every entry of the host's standard library except `test`,
which is the fetched package; Python finds its prefix from where its executable is, so
`python3.11 -m unittest test.test_os` there uses the testsuite as if it were installed, and so
do the interpreters the tests start themselves (many with -I or -E, which ignore PYTHONPATH:
with PYTHONPATH instead, test_threading's test_4_daemon_threads hangs natively, its child
unable to import test.test_threading). i386: a Debian i386 root with the testsuite installed
(tools/fetch-cpython-tests.sh i386), `emu -L ROOT /usr/bin/python3.11`; the reference is the
root's python3.11 run natively (on the host's i386 loader, with the root's libraries), or
`qemu-i386 -L ROOT` where this kernel cannot run i386 programs.

Each run (one module, natively or under emu) gets its own HOME, TMPDIR and working directory
in a temporary directory, a new session (its process group is killed when it ends or times
out), stdin from /dev/null, and the environment without PYTHON* variables. The tests run
through tools/cpython_tests_driver.py, which is unittest's own command line plus a result
class that appends each test's outcome to a JSON-lines file as it happens. A test during which
no test starts or ends for --test-timeout seconds has hung; it, or one that kills the
interpreter, is counted as an error saying so, and the module is started again without the
tests done (`--exclude`), so a hang costs one test; a module that runs out of --timeout
reports the test it was in.

Exit status: 0 when emu passes at least as many tests as native in every module (with
--strict: when every test that passes natively passes under emu), 1 otherwise, 2 for bad
arguments or set-up, 77 when the testsuite cannot be fetched (the Debian archive unreachable).
"""

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DRIVER = os.path.join(REPO, "tools", "cpython_tests_driver.py")
FETCH = os.path.join(REPO, "tools", "fetch-cpython-tests.sh")
DEFAULT_MODULES = ["test_os", "test_threading", "test_subprocess", "test_select", "test_signal"]
PASSING = {"ok", "expected_failure", "unexpected_success"}
SKIP_EXIT = 77
PSEUDO_TEST = re.compile(r"^(setUpClass|tearDownClass|setUpModule|tearDownModule) \((.*)\)$")
# emu's one-line warning for a syscall it does not implement (once per guest process).
ENOSYS_WARNING = re.compile(
    r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\] \[emu\] \[warning\] "
    r"unsupported (x86_64|i386) syscall (\d+) answered ENOSYS")

print_lock = threading.Lock()


def log(message):
    with print_lock:
        print(f"[cpython-tests] {message}", file=sys.stderr, flush=True)


def fmt_seconds(s):
    return "-" if s is None else f"{s:.1f}"


def human(s):
    return f"{s:.0f} s" if s < 600 else f"{s / 60:.1f} min"


# --------------------------------------------------------------------------------------------
# Syscall names, for the ENOSYS report: the kernel's uapi header, where installed.
def syscall_names(arch):
    header = {"x86_64": "asm/unistd_64.h", "i386": "asm/unistd_32.h"}[arch]
    names = {}
    for include in ("/usr/include/x86_64-linux-gnu", "/usr/include/i386-linux-gnu", "/usr/include"):
        path = os.path.join(include, header)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                for m in re.finditer(r"^#define __NR_(\w+)\s+(\d+)\s*$", f.read(), re.M):
                    names[int(m.group(2))] = m.group(1)
            break
    return names


# --------------------------------------------------------------------------------------------
# The interpreters.
def fetch(arch):
    """Path of the test package (amd64) or the i386 root, fetched if needed."""
    deb_arch = {"x86_64": "amd64", "i386": "i386"}[arch]
    log(f"fetching the testsuite ({deb_arch}) with {os.path.relpath(FETCH, REPO)}")
    proc = subprocess.run([FETCH, deb_arch], stdout=subprocess.PIPE, text=True)
    if proc.returncode == 2:
        banner = "!" * 78
        print(f"\n{banner}\n!!! SKIPPED: the Debian archive cannot be reached, so CPython's testsuite "
              f"cannot be fetched.\n!!! Nothing was compared.\n{banner}\n", file=sys.stderr, flush=True)
        sys.exit(SKIP_EXIT)
    if proc.returncode != 0:
        sys.exit(f"cpython-tests: {FETCH} failed with status {proc.returncode}")
    return proc.stdout.strip().splitlines()[-1]


def make_prefix(python, tests_dir, where):
    """A private prefix: a copy of PYTHON, the host's standard library linked entry by entry,
    and `test` the fetched package. Returns the copied interpreter's path."""
    stdlib = subprocess.run([python, "-I", "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
                            check=True, stdout=subprocess.PIPE, text=True).stdout.strip()
    version = os.path.basename(stdlib)  # python3.11
    prefix = os.path.join(where, "prefix")
    lib = os.path.join(prefix, "lib", version)
    os.makedirs(lib)
    os.makedirs(os.path.join(prefix, "bin"))
    for entry in sorted(os.listdir(stdlib)):
        if entry != "test":
            os.symlink(os.path.join(stdlib, entry), os.path.join(lib, entry))
    os.symlink(tests_dir, os.path.join(lib, "test"))
    # Debian's site.py adds PREFIX/lib/python3/dist-packages; keep the host's there.
    shared = os.path.join(os.path.dirname(stdlib), "python3")
    if os.path.isdir(shared):
        os.symlink(shared, os.path.join(prefix, "lib", "python3"))
    exe = os.path.join(prefix, "bin", os.path.basename(python))
    shutil.copy2(os.path.realpath(python), exe)
    # Check that the copy finds the fetched tests, also isolated (as the tests' children run).
    out = subprocess.run([exe, "-I", "-c", "import sys, test.test_os as t; print(sys.prefix); print(t.__file__)"],
                         check=True, stdout=subprocess.PIPE, text=True, cwd=where).stdout.split("\n")
    if out[0] != prefix or not out[1].startswith(os.path.join(lib, "test") + os.sep):
        sys.exit(f"cpython-tests: the private prefix does not work: sys.prefix {out[0]}, test.test_os from {out[1]}")
    return exe


def can_run_i386(root):
    """Whether this kernel runs the root's i386 programs (IA32 emulation, and the host's i386
    loader /lib/ld-linux.so.2 from libc6-i386, which gcc-multilib brings)."""
    try:
        return subprocess.run([os.path.join(root, "usr/bin/true")], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode == 0
    except OSError:
        return False


# --------------------------------------------------------------------------------------------
# One run: a module, natively or under emu.
class Run:
    """One module, natively or under emu: the interpreter is started again after a test that
    hangs (no test starts or ends for --test-timeout seconds) or kills it, leaving out the tests
    done and that one, until the module completes or its --timeout is spent."""

    MAX_ATTEMPTS = 25

    def __init__(self, mode, module, prefix, python, workdir, extra_env=None):
        self.mode, self.module = mode, module
        self.extra_env = extra_env or {}
        self.dir = os.path.join(workdir, f"{module}-{mode}")
        self.events_path = os.path.join(self.dir, "events.jsonl")
        self.output_path = os.path.join(self.dir, "output.txt")
        self.exclude_path = os.path.join(self.dir, "exclude.json")
        self.command = prefix + [python, DRIVER, "--events", self.events_path]
        self.name = "test." + module
        self.started = None
        self.seconds = None
        self.status = None       # of the last attempt
        self.timed_out = False   # the module's whole --timeout ran out
        self.attempts = []       # {"status", "seconds", "ended": completed|hung|died|timeout, "test"}

    def tests_done(self):
        try:
            with open(self.events_path, "rb") as f:
                return sum(1 for line in f if b'"event": "end"' in line)
        except OSError:
            return 0

    def record(self, **fields):
        """An event of the runner's own (the outcome of a test that hung or killed the interpreter)."""
        fields.setdefault("time", time.time())
        with open(self.events_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(fields) + "\n")

    def execute(self, timeout, test_timeout, env):
        home, tmp, cwd = (os.path.join(self.dir, d) for d in ("home", "tmp", "cwd"))
        for d in (home, tmp, cwd):
            os.makedirs(d)
        env = dict(env, HOME=home, TMPDIR=tmp, **self.extra_env)
        self.started = time.time()
        deadline = self.started + timeout
        excluded = set()
        try:
            with open(self.output_path, "wb") as out:
                while len(self.attempts) < self.MAX_ATTEMPTS:
                    command = self.command[:]
                    if excluded:
                        with open(self.exclude_path, "w", encoding="utf-8") as f:
                            json.dump(sorted(excluded), f)
                        command += ["--exclude", self.exclude_path]
                        out.write(f"\n[cpython-tests] started again, leaving out {len(excluded)} tests\n".encode())
                        out.flush()
                    command.append(self.name)
                    status, ended = self.attempt(command, cwd, env, out, deadline, test_timeout)
                    segment = last_segment(read_events(self.events_path))
                    current = segment["running"]
                    self.status = status
                    self.attempts.append({"status": status, "ended": ended, "test": current,
                                          "seconds": round(time.time() - self.started, 1)})
                    if ended == "completed" or (ended == "died" and segment["finished"]):
                        break
                    # Hung, died or out of time in the middle of CURRENT: that is its outcome.
                    if current:
                        detail = {"hung": f"hung: no test started or ended for {test_timeout:.0f} s; killed",
                                  "timeout": f"the module's {timeout:.0f} s ran out here; killed",
                                  "died": f"the interpreter ended here (status {status})"}[ended]
                        self.record(event="end", pid=segment["pid"], test=current, outcome="error",
                                    detail=detail, runner=ended)
                    if ended == "timeout":
                        self.timed_out = True
                        break
                    if not current or current in excluded:
                        break  # between tests (a class's fixtures?): starting again would repeat it
                    excluded |= segment["seen"] | {current}
                    log(f"{self.mode} {self.module}: {ended} in {current}; starting again after it")
        finally:
            self.seconds = time.time() - self.started
        return self

    def attempt(self, command, cwd, env, out, deadline, test_timeout):
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        last_size, last_change = -1, time.time()
        ended = None
        try:
            while True:
                try:
                    proc.wait(timeout=1)
                    break
                except subprocess.TimeoutExpired:
                    pass
                now = time.time()
                try:
                    size = os.path.getsize(self.events_path)
                except OSError:
                    size = 0
                if size != last_size:
                    last_size, last_change = size, now
                if now >= deadline:
                    ended = "timeout"
                elif now - last_change >= test_timeout:
                    ended = "hung"
                if ended:
                    self.kill(proc)
                    proc.wait()
                    break
        finally:
            self.kill(proc)  # what it left behind in its session
        if ended is None:
            ended = "completed" if proc.returncode in (0, 1) and last_segment(
                read_events(self.events_path))["finished"] else "died"
        return proc.returncode, ended

    @staticmethod
    def kill(proc):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def read_events(path):
    events = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    events.append(json.loads(line))
                except ValueError:  # a line cut short by a kill
                    pass
    except OSError:
        pass
    return events


def segments(events):
    """Split the events at each `begin` (one per start of the interpreter) and keep the main
    process's own (a forked child that ran on has another pid); the runner's events, which
    carry the segment's pid, stay with it."""
    out = []
    for e in events:
        if e.get("event") == "begin":
            out.append({"pid": e["pid"], "events": [e]})
        elif out and e.get("pid") == out[-1]["pid"]:
            out[-1]["events"].append(e)
    return out


def last_segment(events):
    """What the last start of the interpreter did: its pid, the tests it started or ended, the
    test it was in when it stopped (None between tests), and whether it finished."""
    segs = segments(events)
    if not segs:
        return {"pid": None, "seen": set(), "running": None, "finished": False}
    seen, open_tests, finished = set(), [], False
    for e in segs[-1]["events"]:
        kind = e.get("event")
        if kind in ("start", "end", "subtest"):
            seen.add(e["test"])
        if kind == "start":
            open_tests = [e["test"]]  # a test ends (or its subtests failed) before the next starts
        elif kind == "end" and e["test"] in open_tests:
            open_tests.remove(e["test"])
        elif kind == "finish":
            finished = True
    running = open_tests[-1] if open_tests and not finished else None
    # A test whose subtests failed has no `end`: it is over if it recorded a subtest and the
    # interpreter then went on; left as running only when it is the last thing recorded.
    return {"pid": segs[-1]["pid"], "seen": seen, "running": running, "finished": finished}


def summarise(run):
    """Per-test outcomes and counts of one run, from its events."""
    tests = {}  # id -> {"outcome", "detail", ...}
    order = []
    starts = {}
    finished = None
    for seg in segments(read_events(run.events_path)):
        for e in seg["events"]:
            kind = e.get("event")
            if kind not in ("start", "subtest", "end", "finish"):
                continue
            if kind == "finish":
                finished = e
                continue
            tid = e["test"]
            if tid not in tests:
                tests[tid] = {"outcome": None, "detail": ""}
                order.append(tid)
            t = tests[tid]
            if kind == "start":
                starts[tid] = e["time"]
                continue
            # The worst outcome wins: an error (also a subtest's) over a failure over the rest.
            rank = {"error": 2, "fail": 1}
            if t["outcome"] is None or rank.get(e["outcome"], 0) > rank.get(t["outcome"], 0):
                t["outcome"] = e["outcome"]
                t["detail"] = f"{e['subtest']}: {e['detail']}" if kind == "subtest" else e.get("detail", "")
                if e.get("message") and e["message"] != t["detail"]:
                    t["message"] = e["message"]  # the whole text, where it says more
                if e.get("runner"):
                    t["runner"] = e["runner"]
            if kind == "end" and tid in starts:
                t["seconds"] = round(e["time"] - starts[tid], 3)
    last = run.attempts[-1] if run.attempts else {"ended": "died", "test": None}
    for tid in order:
        t = tests[tid]
        if t["outcome"] is None:
            t["outcome"], t["detail"] = "error", "no outcome recorded"
    real = [tid for tid in order if not PSEUDO_TEST.match(tid)]
    count = {k: 0 for k in ("ok", "fail", "error", "skip", "expected_failure", "unexpected_success")}
    for tid in order:
        count[tests[tid]["outcome"]] += 1
    return {
        "command": run.command + [run.name],
        "status": run.status,
        "seconds": round(run.seconds, 2) if run.seconds is not None else None,
        "timed_out": run.timed_out,
        "completed": last["ended"] == "completed" or finished is not None,
        "restarts": [{"after": a["test"], "ended": a["ended"], "status": a["status"]}
                     for a in run.attempts if a["ended"] != "completed"],
        "ran": len(real),
        "passed": sum(1 for tid in order if tests[tid]["outcome"] in PASSING),
        "failures": count["fail"], "errors": count["error"], "skipped": count["skip"],
        "expected_failures": count["expected_failure"], "unexpected_successes": count["unexpected_success"],
        "tests": {tid: tests[tid] for tid in order},
        "_starts": starts,
    }


def enosys_warnings(run, summary, names):
    """emu's 'unsupported syscall' warnings in a run's output (one per guest process that made
    the call), by syscall, with the tests they came in."""
    found = {}
    starts = sorted((t, tid) for tid, t in summary["_starts"].items())
    try:
        with open(run.output_path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    for line in lines:
        # The warning may follow a test's "name ... " on the same line.
        idx = line.find("[20")
        m = ENOSYS_WARNING.match(line[idx:]) if idx >= 0 else None
        if not m:
            continue
        when = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        test = None
        for t, tid in starts:
            if t <= when:
                test = tid
            else:
                break
        number = int(m.group(3))
        entry = found.setdefault(number, {"syscall": number, "name": names.get(number, "?"), "tests": []})
        if test not in entry["tests"]:
            entry["tests"].append(test)
    return list(found.values())


class Scrubber:
    """Takes this machine's paths out of a summary (commands, error messages): the run's
    directory becomes <run>, the repository <repo>, so that results can be committed."""

    def __init__(self, workdir):
        self.pairs = [(os.path.realpath(workdir), "<run>"), (workdir, "<run>"),
                      (os.path.realpath(REPO), "<repo>"), (REPO, "<repo>")]

    def text(self, s):
        for path, name in self.pairs:
            s = s.replace(path, name)
        return s

    def __call__(self, summary):
        summary["command"] = [self.text(a) for a in summary["command"]]
        for t in summary["tests"].values():
            for k in ("detail", "message"):
                if k in t:
                    t[k] = self.text(t[k])
        return summary


def is_passing(summary, tid):
    t = summary["tests"].get(tid)
    return t is not None and t["outcome"] in PASSING


def compare(native, emu):
    """Tests passing natively but not under emu, and the other way round."""
    lost, gained = [], []
    for tid, t in native["tests"].items():
        if t["outcome"] in PASSING and not is_passing(emu, tid):
            e = emu["tests"].get(tid)
            if e is None:
                cls = tid.rsplit(".", 1)[0]
                holder = next((x for x in emu["tests"] if PSEUDO_TEST.match(x) and
                               PSEUDO_TEST.match(x).group(2) in (cls, cls.rsplit(".", 1)[0])), None)
                if holder:
                    lost.append({"test": tid, "outcome": "error",
                                 "detail": f"not run: {holder}: {emu['tests'][holder]['detail']}"})
                else:
                    lost.append({"test": tid, "outcome": "not run",
                                 "detail": "not reached" + (" (the emu run timed out)" if emu["timed_out"] else
                                                            "" if emu["completed"] else " (the emu run ended early)")})
            else:
                lost.append({"test": tid, "outcome": e["outcome"], "detail": e["detail"]})
    for tid, t in emu["tests"].items():
        if t["outcome"] in PASSING and not is_passing(native, tid):
            n = native["tests"].get(tid)
            gained.append({"test": tid, "native_outcome": n["outcome"] if n else "not run",
                           "native_detail": n["detail"] if n else ""})
    return lost, gained


# --------------------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("modules", nargs="*", default=DEFAULT_MODULES,
                    help="test modules, as test_os or test.test_os (also test_os.Class[.method]); "
                         "default: " + " ".join(DEFAULT_MODULES))
    ap.add_argument("--emu", default=os.path.join(REPO, "build", "emu", "emu"), help="the emu binary (default: build/emu/emu)")
    ap.add_argument("--emu-arg", action="append", default=[], metavar="ARG",
                    help="an extra emu option, before the program (repeatable: --emu-arg=--scheme --emu-arg=atomic)")
    ap.add_argument("--arch", choices=["x86_64", "i386"], default="x86_64",
                    help="x86_64: the host's python3.11; i386: the python3.11 of an i386 Debian root "
                         "with the testsuite (tools/fetch-cpython-tests.sh i386)")
    ap.add_argument("--python", default="/usr/bin/python3.11",
                    help="x86_64: the host interpreter to copy into the private prefix (default /usr/bin/python3.11)")
    ap.add_argument("--timeout", type=float, default=3600,
                    help="seconds per module, natively and under emu each (default 3600)")
    ap.add_argument("--test-timeout", type=float, default=300,
                    help="a test during which no other starts or ends for this long has hung: the "
                         "interpreter is killed and started again after it (default 300 s; the "
                         "slowest, test_signal's test_stress_modifying_handlers, takes about 150 s "
                         "under emu on 2 cores)")
    ap.add_argument("-j", "--jobs", type=int, default=1,
                    help="emu runs at once (default 1); the native runs all finish before emu's start")
    ap.add_argument("--native-jobs", type=int, default=1,
                    help="native runs at once (default 1: timing-sensitive tests are left alone)")
    ap.add_argument("--json", metavar="PATH", help="write every count and per-test outcome here")
    ap.add_argument("--logs", metavar="DIR",
                    help="keep each run's output and events in DIR (default: a temporary directory, removed)")
    ap.add_argument("--strict", action="store_true",
                    help="fail when any test passing natively does not pass under emu, not only on counts")
    ap.add_argument("--list-gained", action="store_true", help="also list tests that pass only under emu")
    args = ap.parse_args()

    modules = [m[len("test."):] if m.startswith("test.") else m for m in args.modules]
    if len(set(modules)) != len(modules):
        ap.error("a module is named twice")
    if args.jobs < 1 or args.native_jobs < 1:
        ap.error("-j and --native-jobs must be at least 1")
    emu = os.path.abspath(args.emu)
    if not os.access(emu, os.X_OK):
        ap.error(f"no emu binary at {emu} (build it, or pass --emu)")

    if args.logs:
        workdir = os.path.abspath(args.logs)
        if os.path.exists(workdir) and os.listdir(workdir):
            ap.error(f"--logs {workdir} exists and is not empty")

    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    fetched = fetch(args.arch)
    if args.logs:
        os.makedirs(workdir, exist_ok=True)
    else:
        workdir = tempfile.mkdtemp(prefix="cpython-tests-")
    if args.arch == "x86_64":
        tests_dir = fetched
        python = make_prefix(os.path.abspath(args.python), tests_dir, workdir)
        native_prefix, native_label = [], "native"
        emu_prefix = [emu] + args.emu_arg
        version = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                                 stdout=subprocess.PIPE, text=True).stdout.strip()
    else:
        root = fetched
        python = native_python = "/usr/bin/python3.11"  # inside the root
        native_env = {}
        emu_prefix = [emu, "-L", root] + args.emu_arg
        version = subprocess.run(emu_prefix + [python, "-c", "import sys; print(sys.version.split()[0])"],
                                 stdout=subprocess.PIPE, text=True).stdout.strip() + " i386"
        if can_run_i386(root):
            # The root's interpreter itself, on the host's i386 loader (/lib/ld-linux.so.2,
            # from libc6-i386) with the root's libraries; its prefix is the root's /usr, as
            # is that of the interpreters the tests start (sys.executable).
            native_prefix, native_label = [], "native"
            native_python = os.path.join(root, "usr", "bin", "python3.11")
            native_env = {"LD_LIBRARY_PATH": os.path.join(root, "usr", "lib", "i386-linux-gnu")}
        elif shutil.which("qemu-i386"):
            native_prefix, native_label = [shutil.which("qemu-i386"), "-L", root], "qemu-i386"
        else:
            ap.error("--arch i386 needs a kernel that runs i386 programs, or qemu-i386 (qemu-user)")

    names = syscall_names(args.arch)
    runs = {}
    if args.arch == "x86_64":
        native_python, native_env = python, {}
    for mode, prefix, py, extra in (("native", native_prefix, native_python, native_env),
                                    ("emu", emu_prefix, python, {})):
        for m in modules:
            runs[(mode, m)] = Run(mode, m, prefix, py, workdir, extra)

    # Progress: a line as each run starts and ends, and every minute for those still running.
    active = set()
    stop = threading.Event()

    def heartbeat():
        while not stop.wait(60):
            for r in sorted(active, key=lambda r: r.started or 0):
                log(f"  ... {r.mode} {r.module}: {r.tests_done()} tests done, "
                    f"{human(time.time() - r.started)} so far")

    def execute(r):
        log(f"{r.mode} {r.module}: started")
        active.add(r)
        try:
            r.execute(args.timeout, args.test_timeout, env)
        finally:
            active.discard(r)
        log(f"{r.mode} {r.module}: {r.tests_done()} tests in {human(r.seconds)}"
            + (" (TIMED OUT)" if r.timed_out else f", status {r.status}"))
        return r

    threading.Thread(target=heartbeat, daemon=True).start()
    t0 = time.time()
    log(f"{len(modules)} module(s), {native_label} then emu ({emu}), -j{args.jobs}, "
        f"timeout {args.timeout:.0f} s per run; runs in {workdir}")
    try:
        for mode, jobs in (("native", args.native_jobs), ("emu", args.jobs)):
            with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
                list(pool.map(execute, [runs[(mode, m)] for m in modules]))
    finally:
        stop.set()

    # Results.
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(), "cpu": cpu_model()},
        "arch": args.arch, "python": version, "emu_args": args.emu_arg,
        "emu": Scrubber(workdir).text(emu),
        "emu_modified": datetime.datetime.fromtimestamp(os.path.getmtime(emu), datetime.timezone.utc)
                        .strftime("%Y-%m-%dT%H:%M:%SZ"),
        "testsuite": testsuite_version(args.arch, fetched),
        "reference": native_label, "timeout_s": args.timeout, "test_timeout_s": args.test_timeout,
        "jobs": args.jobs,
        "native_jobs": args.native_jobs,
        "wall_s": round(time.time() - t0, 1), "modules": {},
    }
    bad = []
    scrub = Scrubber(workdir)
    for m in modules:
        n = scrub(summarise(runs[("native", m)]))
        e = scrub(summarise(runs[("emu", m)]))
        lost, gained = compare(n, e)
        warnings = enosys_warnings(runs[("emu", m)], e, names)
        for s in (n, e):
            del s["_starts"]
        report["modules"][m] = {"native": n, "emu": e, "lost": lost, "gained": gained, "emu_enosys": warnings}
        if e["passed"] < n["passed"] or (args.strict and lost):
            bad.append(m)
    report["ok"] = not bad
    report["failing_modules"] = bad
    report["strict"] = args.strict

    print_report(report, native_label, args.list_gained)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1, sort_keys=False)
            f.write("\n")
        log(f"wrote {args.json}")
    if args.logs:
        log(f"each run's output and events are in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if bad else 0


def testsuite_version(arch, fetched):
    """The Debian version of the testsuite, from the fetch script's stamp or the root's."""
    stamp = (os.path.join(os.path.dirname(fetched), ".cpython-tests-stamp") if arch == "x86_64"
             else os.path.join(fetched, ".sysroot-stamp"))
    try:
        with open(stamp, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line.startswith("version="):
                    return line[len("version="):]
                if line.startswith("libpython3.11-testsuite="):
                    return line.split("=", 1)[1]
    except OSError:
        pass
    return None


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def print_report(report, native_label, list_gained):
    rows = [("module", f"{native_label} passed/ran", "emu passed/ran", f"{native_label} s", "emu s", "emu - " + native_label)]
    for m, r in report["modules"].items():
        n, e = r["native"], r["emu"]

        def cell(s):
            return f"{s['passed']}/{s['ran']}" + (" TIMEOUT" if s["timed_out"] else "" if s["completed"] else " ENDED")
        diff = e["passed"] - n["passed"]
        verdict = "same" if diff == 0 and not r["lost"] else (f"{diff:+d}" + (f" ({len(r['lost'])} lost)" if r["lost"] else ""))
        rows.append((m, cell(n), cell(e), fmt_seconds(n["seconds"]), fmt_seconds(e["seconds"]), verdict))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    print(f"CPython {report['python']} regression tests (Debian libpython3.11-testsuite {report['testsuite']}), "
          f"{report['arch']}, {native_label} vs emu")
    print(f"{report['date']}, {report['machine']['cores']} cores, emu -j{report['jobs']}, "
          f"--test-timeout {report['test_timeout_s']:g}, "
          f"emu built {report['emu_modified']}" + (f", emu options {' '.join(report['emu_args'])}" if report['emu_args'] else ""))
    for i, row in enumerate(rows):
        print("  ".join(str(c).ljust(w) if j == 0 else str(c).rjust(w) for j, (c, w) in enumerate(zip(row, widths))).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    for m, r in report["modules"].items():
        for s, label in ((r["native"], native_label), (r["emu"], "emu")):
            for a in s["restarts"]:
                what = {"hung": "hung", "died": f"killed the interpreter (status {a['status']})",
                        "timeout": "was running when the module's time ran out"}[a["ended"]]
                print(f"\n{m}, {label}: {a['after'] or '(between tests)'} {what}"
                      + ("" if a["ended"] == "timeout" or not a["after"] else "; the module went on after it"))
        if r["lost"]:
            print(f"\n{m}: {len(r['lost'])} test(s) pass {'natively' if native_label == 'native' else 'under ' + native_label} but not under emu:")
            for x in r["lost"]:
                print(f"  {x['test']}  {x['outcome'].upper()}  {x['detail']}")
        if list_gained and r["gained"]:
            print(f"\n{m}: {len(r['gained'])} test(s) pass under emu but not {native_label}:")
            for x in r["gained"]:
                print(f"  {x['test']}  ({native_label}: {x['native_outcome']} {x['native_detail']})")
        if r["emu_enosys"]:
            print(f"\n{m}: syscalls emu answered ENOSYS, and the tests that made them (logged once per guest process):")
            for w in r["emu_enosys"]:
                tests = [t or "(outside a test)" for t in w["tests"]]
                more = f" and {len(tests) - 3} more" if len(tests) > 3 else ""
                print(f"  {w['name']} ({w['syscall']}): {', '.join(tests[:3])}{more}")
    if report["ok"]:
        print(f"\nresult: emu passes as many tests as {native_label} in every module"
              + (", and every test that passes there" if report["strict"] else ""))
    else:
        what = "loses tests that pass" if report["strict"] else "passes fewer tests than"
        print(f"\nresult: emu {what} {native_label} in: {', '.join(report['failing_modules'])}")


if __name__ == "__main__":
    sys.exit(main())
