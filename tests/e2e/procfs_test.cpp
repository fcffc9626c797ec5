// The guest's /proc under emu: real programs read their own maps, auxv, cmdline, stat,
// status, fd directory and exe link, and the emulated CPU's cpuinfo, and find themselves
// there, not emu. Where the host runs the same command natively, the output must match.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/e2e/process_runner.h"

namespace {

using emu_test::run_process;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

bool contains(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

// Runs `argv` under emu and natively; both must succeed with the same output.
void expect_same_as_native(const std::vector<std::string>& argv) {
  const auto native = run_process(argv);
  std::vector<std::string> emulated_argv = {EMU_BINARY};
  emulated_argv.insert(emulated_argv.end(), argv.begin(), argv.end());
  const auto emulated = run_process(emulated_argv);
  EXPECT_EQ(native.status, 0) << native.err;
  EXPECT_EQ(emulated.status, 0) << emulated.err;
  EXPECT_EQ(emulated.out, native.out) << emulated.err;
}

TEST(Procfs, MapsListsTheGuestsMappingsInLinuxsFormat) {
  const auto r = run_process({EMU_BINARY, "/bin/cat", "/proc/self/maps"});
  ASSERT_EQ(r.status, 0) << r.err;
  const std::string cat = std::filesystem::canonical("/bin/cat").string();
  EXPECT_TRUE(contains(r.out, " " + cat + "\n")) << r.out;
  EXPECT_TRUE(contains(r.out, "ld-linux-x86-64.so.2\n")) << r.out;
  EXPECT_TRUE(contains(r.out, " [stack]\n")) << r.out;
  EXPECT_FALSE(contains(r.out, std::filesystem::canonical(EMU_BINARY).string())) << r.out;  // not emu's
  const std::regex line(
      R"(^[0-9a-f]{8,}-[0-9a-f]{8,} [r-][w-][x-][ps] [0-9a-f]{8,} [0-9a-f]{2,}:[0-9a-f]{2,} [0-9]+ (.*)$)");
  for (const std::string& l : lines_of(r.out)) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(l, m, line)) << l;
    if (!m[1].str().empty()) {
      EXPECT_EQ(l.find_first_not_of(' ', 72), 73u) << "path not at column 73: " << l;
    }
  }
}

TEST(Procfs, CmdlineIsTheGuestsArguments) {
  const auto r = run_process({EMU_BINARY, "/bin/cat", "/proc/self/cmdline"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, std::string("/bin/cat\0/proc/self/cmdline\0", 28));
}

// (Not compared with a native run: that one also lists whatever fds the test's own process
// leaked to it, which emu does not hand its guest.) ls's own directory fd is 3.
TEST(Procfs, FdDirectoryListsTheGuestsFds) {
  auto r = run_process({EMU_BINARY, "/bin/sh", "-c", "ls /proc/self/fd"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "0\n1\n2\n3\n");
  r = run_process({EMU_BINARY, "/bin/sh", "-c", "exec 7</dev/null 9>&1; ls /proc/self/fd; ls /proc/thread-self/fd/"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "0\n1\n2\n3\n7\n9\n0\n1\n2\n3\n7\n9\n");
}

TEST(Procfs, ForkedChildrenSeeThemselves) {
  // (A redirection "</proc/self/cmdline" would open it before the exec: Linux's file then
  // shows the new program's arguments, emu's the shell's, as it is made at open.)
  expect_same_as_native({"/bin/sh", "-c", "cat /proc/self/comm; readlink /proc/self/exe; cat /proc/thread-self/comm; "
                                          "cat /proc/self/cmdline | tr '\\0' ' '; echo"});
}

TEST(Procfs, ExeAndSelfLinksNameTheGuest) {
  const std::string python = "/usr/bin/python3.11";
  if (!std::filesystem::exists(python)) GTEST_SKIP() << python << " is not installed";
  const auto r = run_process({EMU_BINARY, python, "-c",
                              "import os\n"
                              "print(os.readlink('/proc/self/exe'))\n"
                              "print(os.readlink('/proc/self') == str(os.getpid()))\n"
                              "f = open('/proc/self/status')\n"
                              "print(os.readlink('/proc/self/fd/%d' % f.fileno()) == '/proc/%d/status' % os.getpid())\n"
                              // listdir's own directory fd is listed too, as on Linux
                              "print(sorted(os.listdir('/proc/self/fd'), key=lambda s: (len(s), s)))\n"
                              "print(f.fileno())\n"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto out = lines_of(r.out);
  ASSERT_EQ(out.size(), 5u) << r.out;
  EXPECT_EQ(out[0], python);
  EXPECT_EQ(out[1], "True");
  EXPECT_EQ(out[2], "True");
  const int f = std::stoi(out[4]);
  EXPECT_EQ(out[3], "['0', '1', '2', '" + std::to_string(f) + "', '" + std::to_string(f + 1) + "']");
}

TEST(Procfs, StatAndStatusDescribeTheGuest) {
  const auto stat = run_process({EMU_BINARY, "/bin/cat", "/proc/self/stat"});
  ASSERT_EQ(stat.status, 0) << stat.err;
  ASSERT_TRUE(contains(stat.out, " (cat) R ")) << stat.out;
  std::istringstream fields(stat.out.substr(stat.out.find(')') + 2));
  int n = 2;
  for (std::string f; fields >> f;) ++n;
  EXPECT_GE(n, 52) << stat.out;

  const auto status = run_process({EMU_BINARY, "/bin/cat", "/proc/self/status"});
  ASSERT_EQ(status.status, 0) << status.err;
  EXPECT_TRUE(contains(status.out, "Name:\tcat\n")) << status.out;
  EXPECT_TRUE(contains(status.out, "State:\tR (running)\n")) << status.out;
  EXPECT_TRUE(contains(status.out, "Threads:\t1\n")) << status.out;
  EXPECT_TRUE(std::regex_search(status.out, std::regex("\nVmSize:\t +[1-9][0-9]* kB\n"))) << status.out;
  EXPECT_TRUE(std::regex_search(status.out, std::regex("\nVmRSS:\t +[1-9][0-9]* kB\n"))) << status.out;
}

TEST(Procfs, CpuinfoHasOneProcessorPerOnlineCpu) {
  const auto r = run_process({EMU_BINARY, "/bin/grep", "-c", "processor", "/proc/cpuinfo"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, std::to_string(::sysconf(_SC_NPROCESSORS_ONLN)) + "\n");
  // Same count as the guest's nproc (sched_getaffinity), unless the host restricts emu.
  const auto info = run_process({EMU_BINARY, "/bin/cat", "/proc/cpuinfo"});
  ASSERT_EQ(info.status, 0) << info.err;
  EXPECT_TRUE(info.out.starts_with("processor\t: 0\nvendor_id\t: ")) << info.out;
  EXPECT_TRUE(contains(info.out, "\nflags\t\t: fpu ")) << info.out;
}

TEST(Procfs, I386GuestsSeeTheirOwnMapsAndFourByteAuxv) {
  const std::string busybox = std::string(EMU_BUSYBOX_DIR) + "/i386/bin/busybox";
  if (!std::filesystem::exists(busybox)) GTEST_SKIP() << busybox << " is missing: tools/fetch-busybox.sh fetches it";
  const auto maps = run_process({EMU_BINARY, busybox, "cat", "/proc/self/maps"});
  ASSERT_EQ(maps.status, 0) << maps.err;
  EXPECT_TRUE(maps.out.starts_with("08048000-")) << maps.out;
  EXPECT_TRUE(contains(maps.out, "/i386/bin/busybox\n")) << maps.out;
  EXPECT_TRUE(contains(maps.out, " [stack]\n")) << maps.out;
  EXPECT_FALSE(contains(maps.out, "[gdt]")) << maps.out;  // emu's, not the guest's

  const auto auxv = run_process({EMU_BINARY, busybox, "od", "-A", "n", "-t", "u4", "-v", "/proc/self/auxv"});
  ASSERT_EQ(auxv.status, 0) << auxv.err;
  std::vector<uint32_t> words;
  std::istringstream in(auxv.out);
  for (uint32_t w; in >> w;) words.push_back(w);
  ASSERT_GE(words.size(), 4u);
  ASSERT_EQ(words.size() % 2, 0u);
  EXPECT_EQ(words[words.size() - 2], 0u);  // AT_NULL
  bool page_size = false;
  for (size_t i = 0; i + 1 < words.size(); i += 2) page_size = page_size || (words[i] == 6 && words[i + 1] == 4096);
  EXPECT_TRUE(page_size) << auxv.out;  // AT_PAGESZ as a pair of 4-byte words
}

// Another guest process's exe, cmdline and comm, by its guest pid (not the host's /proc/PID,
// which is some other host process or none), as a native shell sees its child's.
TEST(Procfs, OtherGuestProcessesExeCmdlineAndComm) {
  const std::vector<std::string> argv = {
      // The child is looked at once it has exec'd sleep (until then it is a copy of sh).
      "/bin/sh", "-c",
      "sleep 1 & p=$!; until [ \"$(cat /proc/$p/comm)\" = sleep ]; do :; done; "
      "readlink /proc/$p/exe; tr '\\0' ' ' < /proc/$p/cmdline; echo; cat /proc/$p/comm; wait"};
  const auto native = run_process(argv);
  std::vector<std::string> emulated_argv = {EMU_BINARY};
  emulated_argv.insert(emulated_argv.end(), argv.begin(), argv.end());
  const auto emulated = run_process(emulated_argv);
  EXPECT_EQ(native.out, "/usr/bin/sleep\nsleep 1 \nsleep\n");
  EXPECT_EQ(emulated.out, native.out) << emulated.err;
  EXPECT_EQ(emulated.status, 0);
}

}  // namespace
