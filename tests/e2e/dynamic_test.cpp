// Dynamically linked programs of a real Debian system under emu, stdout, stderr and exit
// status compared with a native run: x86_64 from the host's own root, i386 from a Debian
// i386 root (tools/fetch-sysroot-i386.sh, a CTest fixture) run with -L, against the same
// program of the amd64 host (the same Debian release, so the same output). Also #! scripts,
// bash pipelines and subshells, python3.11 with threads and subprocess, and busybox's shell
// running the host's dynamic programs from PATH.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <tuple>

#include "tests/e2e/reference_runner.h"

namespace {

using emu_test::concat;
using emu_test::run_process;

const std::string kRootI386 = EMU_SOURCE_DIR "/third_party/sysroots/i386";

struct Case {
  std::string name;
  std::vector<std::string> argv;  // argv[0]: an absolute path inside the guest's system
  std::string input;
};

const std::string kBashScript =
    "set -e; for i in $(seq 1 5); do echo n$i; done | sort -r | (read first; echo first=$first; cat); "
    "x=$(echo shout | tr a-z A-Z); echo \"$x\"; (cd /usr && pwd); echo $((6*7)); "
    "f() { local v=$1; echo \"f:$v\"; }; f arg; echo a,b,c | cut -d, -f2; "
    "echo \"$(basename \"$(dirname /usr/lib/x)\")\"; ls /nonexistent-dir 2>&1 || echo ls-failed=$?; "
    "{ echo one; echo two; } > /dev/null; wc -l < " EMU_SOURCE_DIR "/CMakeLists.txt | tr -d ' '; exit 3";

const std::string kPythonScript =
    "import threading, subprocess, json, hashlib, sys\n"
    "total = []\n"
    "lock = threading.Lock()\n"
    "def work(n):\n"
    "    h = hashlib.sha256(str(n).encode()).hexdigest()\n"
    "    with lock: total.append(h[:8])\n"
    "ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]\n"
    "[t.start() for t in ts]; [t.join() for t in ts]\n"
    "print(sorted(total))\n"
    "r = subprocess.run(['/usr/bin/seq', '3'], capture_output=True, text=True)\n"
    "print(repr(r.stdout), r.returncode)\n"
    "r = subprocess.run(['/bin/sh', '-c', 'echo err >&2; exit 4'], capture_output=True, text=True)\n"
    "print(repr(r.stderr), r.returncode)\n"
    "print(json.dumps({'argv': sys.argv[1:]}))\n"
    "sys.exit(5)\n";

const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      {"true", {"/usr/bin/true"}, ""},
      {"false", {"/usr/bin/false"}, ""},
      {"echo", {"/usr/bin/echo", "hello", "dynamic", "world"}, ""},
      {"ls", {"/usr/bin/ls", "-a", EMU_SOURCE_DIR "/tests"}, ""},
      {"ls_missing", {"/usr/bin/ls", "/no/such/dir"}, ""},
      {"sort", {"/usr/bin/sort", "-n", "-r"}, "10\n9\n100\n-3\n42\n"},
      {"md5sum", {"/usr/bin/md5sum"}, std::string(300000, 'q')},
      {"wc", {"/usr/bin/wc", "-l", "-w", "-c", EMU_SOURCE_DIR "/README.md"}, ""},
      {"cat", {"/usr/bin/cat", EMU_SOURCE_DIR "/CMakeLists.txt"}, ""},
      {"tail", {"/usr/bin/tail", "-n", "3", EMU_SOURCE_DIR "/README.md"}, ""},
      {"seq", {"/usr/bin/seq", "1", "7", "1000"}, ""},
      {"bash_script", {"/usr/bin/bash", "-c", kBashScript}, ""},
      {"python_threads_subprocess", {"/usr/bin/python3.11", "-c", kPythonScript, "a", "b"}, ""},
      // Float arguments through ld.so's lazy-binding trampoline (fxsave must keep the XMM
      // registers: without CR4.OSFXSR math.log(10) came back -inf).
      {"ls_long", {"/usr/bin/ls", "-l", "--time-style=+%s", EMU_SOURCE_DIR "/tools"}, ""},
      {"stat_fs", {"/usr/bin/stat", "-f", "-c", "%t %s %b %S %l", EMU_SOURCE_DIR}, ""},
      {"python_floats", {"/usr/bin/python3.11", "-c", "import math; print(math.log(10), math.exp(1.5), int('42'), 0.1 + 0.2)"}, ""},
  };
  return c;
}

// Warnings about unimplemented calls are emu's, not the program's: keep stderr the guest's.
std::vector<std::string> emu_cmd(const std::vector<std::string>& extra = {}) {
  return concat({EMU_BINARY, "--log-level", "error"}, extra);
}

void expect_same(const emu_test::ProcessResult& emulated, const emu_test::ProcessResult& native) {
  EXPECT_EQ(emulated.status, native.status) << emulated.err;
  EXPECT_EQ(emulated.out, native.out);
  // The guest's stderr, without the summary LeakSanitizer appends in the sanitizer builds.
  EXPECT_EQ(emu_test::without_sanitizer_report(emulated.err), native.err);
}

class Dynamic : public testing::TestWithParam<std::tuple<std::string, size_t>> {};

TEST_P(Dynamic, MatchesNative) {
  const auto& [arch, index] = GetParam();
  const Case& k = cases()[index];
  const auto native = run_process(k.argv, k.input);
  ASSERT_NE(native.status, 127) << k.argv[0] << " is not on this host: " << native.err;
  if (arch == "x86_64") {
    expect_same(run_process(concat(emu_cmd(), k.argv), k.input), native);
    return;
  }
  if (!std::filesystem::exists(kRootI386 + "/usr/bin/bash"))
    GTEST_SKIP() << "*** no i386 root at " << kRootI386
                 << ": the Debian archive could not be reached by tools/fetch-sysroot-i386.sh ***";
  // The program is found in the root (i386) by -L; the paths it is given are the host's,
  // which the root lacks, so they reach the host through the sysroot's fallback.
  const auto emulated = run_process(concat(emu_cmd({"-L", kRootI386}), k.argv), k.input);
  expect_same(emulated, native);
}

INSTANTIATE_TEST_SUITE_P(Programs, Dynamic,
                         testing::Combine(testing::Values("x86_64", "i386"), testing::Range<size_t>(0, 16)),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" + cases()[std::get<1>(info.param)].name;
                         });

TEST(Dynamic, CaseListIsWhole) { EXPECT_EQ(cases().size(), 16u); }

// The i386 programs really are i386: uname -m says i686 under emu with the root's uname.
TEST(Dynamic, I386RootRunsI386Programs) {
  if (!std::filesystem::exists(kRootI386 + "/usr/bin/uname")) GTEST_SKIP() << "*** no i386 root ***";
  const auto r = run_process(concat(emu_cmd({"-L", kRootI386}), {kRootI386 + "/usr/bin/uname", "-m"}));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "i686\n");
  // And EMU_LD_PREFIX does what -L does.
  const auto env = run_process(concat(emu_cmd(), {kRootI386 + "/usr/bin/uname", "-m"}), "", {"EMU_LD_PREFIX=" + kRootI386});
  EXPECT_EQ(env.out, "i686\n") << env.err;
}

// bash under emu runs the i386 programs of its pipeline from the root (exec through -L).
TEST(Dynamic, I386BashExecsRootPrograms) {
  if (!std::filesystem::exists(kRootI386 + "/usr/bin/bash")) GTEST_SKIP() << "*** no i386 root ***";
  const auto r = run_process(concat(emu_cmd({"-L", kRootI386}),
                                    {kRootI386 + "/usr/bin/bash", "-c", "uname -m; /usr/bin/uname -m | tr a-z A-Z"}));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "i686\nI686\n");
}

std::string write_script(const std::string& name, const std::string& text) {
  const std::string path = testing::TempDir() + "/" + name;
  std::ofstream(path) << text;
  std::filesystem::permissions(path, std::filesystem::perms::owner_all);
  return path;
}

// #! scripts, started by emu and exec'd by a guest, nested, with an argument.
TEST(Dynamic, ShebangScripts) {
  const std::string inner = write_script("emu_inner.sh", "#!/bin/sh -e\necho \"inner $0 $*\"\n");
  const std::string outer = write_script("emu_outer.sh", "#!" + inner + "\nnot reached\n");
  for (const auto& argv : {std::vector<std::string>{inner, "x", "y"}, std::vector<std::string>{outer, "z"}}) {
    const auto native = run_process(argv);
    const auto emulated = run_process(concat(emu_cmd(), argv));
    EXPECT_EQ(native.status, 0) << native.err;
    expect_same(emulated, native);
  }
  // A guest's execve of a script.
  const auto r = run_process(concat(emu_cmd(), {"/usr/bin/python3.11", "-c",
                                                "import subprocess; print(subprocess.run(['" + inner +
                                                    "', 'q'], capture_output=True, text=True).stdout, end='')"}));
  EXPECT_EQ(r.out, "inner " + inner + " q\n") << r.err;
}

// Linux's errors for exec, as a guest's shell sees them.
TEST(Dynamic, ExecErrorsAreLinuxs) {
  const std::string loop1 = testing::TempDir() + "/emu_loop1.sh";
  const std::string loop2 = write_script("emu_loop2.sh", "#!" + loop1 + "\n");
  write_script("emu_loop1.sh", "#!" + loop2 + "\n");
  const std::string noexec = testing::TempDir() + "/emu_noexec.sh";
  std::ofstream(noexec) << "#!/bin/sh\necho hi\n";
  std::filesystem::permissions(noexec, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  const std::string text = write_script("emu_text_file", "just text, no #! line\n");
  const std::string script =
      "import os\n"
      "for p in ['" + loop1 + "', '" + noexec + "', '/no/such/file', '" EMU_SOURCE_DIR "/README.md', '" + text + "']:\n"
      "    try: os.execv(p, [p])\n"
      "    except OSError as e: print(p.rsplit('/',1)[1], e.errno)\n";
  const auto native = run_process({"/usr/bin/python3.11", "-c", script});
  const auto emulated = run_process(concat(emu_cmd(), {"/usr/bin/python3.11", "-c", script}));
  EXPECT_EQ(native.status, 0) << native.err;
  expect_same(emulated, native);
}

// posix_spawn and vfork+exec (python's subprocess) report a failed exec to the parent.
TEST(Dynamic, SpawnReportsExecFailure) {
  const std::string script =
      "import os, subprocess\n"
      "try: subprocess.run(['/no/such/prog'])\n"
      "except FileNotFoundError as e: print('subprocess', e.errno)\n"
      "try: os.posix_spawn('/no/such/prog', ['x'], {})\n"
      "except OSError as e: print('posix_spawn', e.errno)\n";
  const auto native = run_process({"/usr/bin/python3.11", "-c", script});
  const auto emulated = run_process(concat(emu_cmd(), {"/usr/bin/python3.11", "-c", script}));
  expect_same(emulated, native);
}

// busybox's shell (static, under emu) runs the host's dynamic programs found on PATH.
TEST(Dynamic, BusyboxShellRunsHostPrograms) {
  const std::string busybox = EMU_BUSYBOX_DIR "/amd64/bin/busybox";
  ASSERT_TRUE(std::filesystem::exists(busybox)) << busybox << ": tools/fetch-busybox.sh fetches it";
  const std::vector<std::string> argv = {busybox, "sh", "-c", "seq 1 5 | wc -l; /usr/bin/printf '%s\\n' ok | tr o O"};
  const auto native = run_process(argv);
  const auto emulated = run_process(concat(emu_cmd(), argv));
  EXPECT_EQ(native.out, "5\nOk\n");
  expect_same(emulated, native);
}

// Sockets (python3.11 on both sides, both ABIs): a TCP echo across threads on 127.0.0.1,
// UDP, IPv6 on ::1, an fd passed over an AF_UNIX socketpair (SCM_RIGHTS between the guest's
// fd table and the host's), getpeername on a non-socket (ENOTSOCK), socket timeouts.
TEST(Dynamic, SocketsMatchNative) {
  const std::string script = EMU_SOURCE_DIR "/tests/e2e/sockets_echo.py";
  const auto native = run_process({"/usr/bin/python3.11", script});
  ASSERT_EQ(native.status, 0) << native.err;
  expect_same(run_process(concat(emu_cmd(), {"/usr/bin/python3.11", script})), native);
  if (!std::filesystem::exists(kRootI386 + "/usr/bin/python3.11")) GTEST_SKIP() << "*** no i386 root ***";
  expect_same(run_process(concat(emu_cmd({"-L", kRootI386}), {"/usr/bin/python3.11", script})), native);
}

}  // namespace

namespace {

// Runs `argv` natively, then under emu for x86_64 and (with the i386 root) for i386: the
// same output and status each time.
void expect_same_on_both_abis(const std::vector<std::string>& argv) {
  const auto native = run_process(argv);
  ASSERT_EQ(native.status, 0) << native.err;
  expect_same(run_process(concat(emu_cmd(), argv)), native);
  if (!std::filesystem::exists(kRootI386 + argv[0])) GTEST_SKIP() << "*** no i386 root: " << argv[0] << " ***";
  expect_same(run_process(concat(emu_cmd({"-L", kRootI386}), argv)), native);
}

// Event loops (python3.11): asyncio's TCP echo over epoll, the select/poll/epoll selectors,
// a loop signal handler, eventfd, memfd, an interval timer and sigtimedwait.
TEST(Dynamic, EventLoopsMatchNative) {
  expect_same_on_both_abis({"/usr/bin/python3.11", EMU_SOURCE_DIR "/tests/e2e/event_loop.py"});
}

// Shared memory between python processes (tests/e2e/shared_memory.py): multiprocessing's
// shared Value under a Lock and an Array, a shared_memory block (shm_open), an anonymous
// mmap across fork, and a shared file mapping coherent with read() and write().
TEST(Dynamic, SharedMemoryMatchesNative) {
  expect_same_on_both_abis({"/usr/bin/python3.11", EMU_SOURCE_DIR "/tests/e2e/shared_memory.py"});
}

// Job control in bash (set -m): jobs in their own process groups, wait -n, a pipeline killed
// through its group.
TEST(Dynamic, JobControlMatchesNative) {
  expect_same_on_both_abis({"/usr/bin/bash", EMU_SOURCE_DIR "/tests/e2e/job_control.sh"});
}

}  // namespace
