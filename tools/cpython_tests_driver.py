"""`python3.11 -m unittest -v NAME...` that also records each test's outcome as JSON lines.

tools/cpython-tests.py runs this in the interpreter under test (natively and under emu):

    python3.11 cpython_tests_driver.py --events FILE test.test_os

It is unittest's own command line (`unittest.main(module=None)`, what `python -m unittest`
runs), with sys.path[0] the current directory as under `-m`, and a TextTestResult subclass
that appends one JSON object per event to FILE:

    {"event": "start", "test": ID, "pid": PID, "time": T}
    {"event": "end", "test": ID, "pid": PID, "time": T, "outcome": OUTCOME, "detail": TEXT,
     "message": TEXT}

OUTCOME is ok, fail, error, skip, expected_failure or unexpected_success. A failing subtest
records {"event": "subtest", "test": ID, "subtest": SUBID, "outcome": fail|error, ...}; its
test then ends without an `end` of its own, as unittest reports it. DETAIL is the skip reason,
or the exception's last line (after its first line when it has several: the last line of a
child's traceback in assert_python_ok's message), MESSAGE the whole exception text. Errors of
setUpClass/setUpModule come as a pseudo-test (`setUpClass (test.test_x.Cls)`) with that id.

FILE is opened, appended to and closed for every event, since tests close descriptors they did
not open (closerange) and fork: the pid tells the main process's events from those of a forked
child that ran on. With `--exclude FILE` (a JSON list of test ids) those tests are left out:
the runner resumes a module so after a test that hung or crashed.
"""

import json
import os
import sys
import time
import traceback
import unittest

EVENTS = None  # path of the JSON-lines file


def record(**fields):
    fields.setdefault("pid", os.getpid())
    fields.setdefault("time", time.time())
    line = json.dumps(fields) + "\n"
    fd = os.open(EVENTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8", "backslashreplace"))
    finally:
        os.close(fd)


def describe(err):
    """(detail, message): the exception's last meaningful line, after its first line when the
    message has several (`AssertionError: Process return code is 1 ... OSError: [Errno 38] ...`
    for a child's traceback), and the whole message, cut at 4000 characters."""
    try:
        text = "".join(traceback.format_exception_only(err[0], err[1])).strip()
    except Exception:  # a broken __str__ must not break the run
        text = repr(err[1])
    lines = [l.strip() for l in text.splitlines() if l.strip().strip("-=~^*#_ ")]
    if not lines:
        return err[0].__name__, text[:4000]
    detail = lines[0] if len(lines) == 1 else f"{lines[0][:200]} ... {lines[-1]}"
    return detail, text[:4000]


class RecordingResult(unittest.TextTestResult):
    def startTest(self, test):
        record(event="start", test=test.id())
        super().startTest(test)

    def _end(self, test, outcome, detail="", err=None):
        fields = {}
        if err is not None:
            detail, fields["message"] = describe(err)
        record(event="end", test=test.id(), outcome=outcome, detail=detail, **fields)

    def addSuccess(self, test):
        super().addSuccess(test)
        self._end(test, "ok")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._end(test, "fail", err=err)

    def addError(self, test, err):
        super().addError(test, err)
        # setUpClass/setUpModule errors come with a _ErrorHolder, which never started.
        if not isinstance(test, unittest.TestCase):
            record(event="start", test=test.id())
        self._end(test, "error", err=err)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        if not isinstance(test, unittest.TestCase):
            record(event="start", test=test.id())
        self._end(test, "skip", str(reason))

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._end(test, "expected_failure", err=err)

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._end(test, "unexpected_success")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            failed = issubclass(err[0], test.failureException)
            detail, message = describe(err)
            record(event="subtest", test=test.id(), subtest=subtest.id(),
                   outcome="fail" if failed else "error", detail=detail, message=message)


def without(suite, excluded):
    """SUITE less the tests whose ids are in EXCLUDED (a class's fixtures still run for the rest)."""
    kept = unittest.TestSuite()
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            sub = without(t, excluded)
            if sub.countTestCases():
                kept.addTest(sub)
        elif t.id() not in excluded:
            kept.addTest(t)
    return kept


class Program(unittest.TestProgram):
    excluded = frozenset()

    def runTests(self):
        if self.excluded:
            self.test = without(self.test, self.excluded)
        super().runTests()


def main():
    global EVENTS
    args = sys.argv[1:]
    usage = "usage: cpython_tests_driver.py --events FILE [--exclude FILE] [unittest options] NAME..."
    if len(args) < 3 or args[0] != "--events":
        sys.exit(usage)
    EVENTS = os.path.abspath(args[1])
    args = args[2:]
    if args[0] == "--exclude":
        # Tests already done, or that hung or crashed, in an earlier run of the same module.
        with open(args[1], encoding="utf-8") as f:
            Program.excluded = frozenset(json.load(f))
        args = args[2:]
    # As under `python -m unittest`: the current directory first on sys.path, not this file's.
    sys.path[0] = os.getcwd()
    record(event="begin", argv=args, excluded=len(Program.excluded), executable=sys.executable,
           version=sys.version)
    runner = unittest.TextTestRunner(verbosity=2, resultclass=RecordingResult)
    prog = Program(module=None, argv=["python -m unittest", "-v"] + args, testRunner=runner, exit=False)
    result = prog.result
    record(event="finish", ran=result.testsRun, failures=len(result.failures),
           errors=len(result.errors), skipped=len(result.skipped),
           expected_failures=len(result.expectedFailures),
           unexpected_successes=len(result.unexpectedSuccesses))
    sys.exit(not result.wasSuccessful())


if __name__ == "__main__":
    main()
