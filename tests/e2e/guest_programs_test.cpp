// End to end: every guest program, both architectures, every scheme, run under emu and
// natively (or under qemu-i386 where this host cannot run i386 programs), with stdout and
// exit status compared.
#include <gtest/gtest.h>
#include <pthread.h>

#include <csignal>
#include <regex>

#include <string>
#include <tuple>
#include <vector>

#include "tests/e2e/reference_runner.h"

namespace {

using emu_test::run_process;

struct GuestCase {
  std::string name;   // test name suffix
  std::vector<std::string> argv;  // program name, then its arguments
  std::string input;
  std::vector<std::string> env;
  // Its output is the same on both ABIs: where i386 programs run only under qemu-i386, the
  // x86_64 build run natively is the reference (reference_runner.h says why).
  bool abi_neutral = false;
};

const std::vector<GuestCase>& cases() {
  static const std::vector<GuestCase> c = {
      {"hello", {"hello", "a", "b c"}, "", {}},
      {"hello_env", {"hello"}, "", {"EMU_GREETING=hi from the test"}},
      {"hello_pie", {"hello-pie", "x", "y", "z"}, "", {}},
      {"page_fault1", {"page_fault1", "-t", "2", "-m", "8", "-i", "2"}, "", {}},
      {"shared_region", {"shared_region", "-t", "2", "-m", "4", "-i", "2"}, "", {}},
      {"atomics", {"atomics", "-t", "3", "-n", "3000"}, "", {}},
      // Every locked instruction at every width and placement, and locked instructions that
      // fault (si_addr, memory unchanged), as host atomics and under the gate.
      {"locked_ops", {"locked_ops", "-t", "4", "-n", "2000"}, "", {}},
      {"locked_ops_faults", {"locked_ops", "-f"}, "", {}},
      {"mmap_churn", {"mmap_churn", "-t", "3", "-i", "200"}, "", {}},
      {"checksum", {"checksum", "2", "3"}, "", {}},
      {"segv_readonly", {"segv"}, "", {}},
      {"segv_null", {"segv", "null"}, "", {}},
      {"sigill", {"segv", "ill"}, "", {}},
      {"fd_table", {"fd_table"}, "", {}},
      // vfork then execve of its own i386 image: beyond qemu-i386 without IA32 on the host.
      {"vfork_share", {"vfork_share", "8", "2"}, "", {}, true},
  };
  return c;
}

std::string guest(const std::string& arch, const std::string& name) { return std::string(EMU_GUEST_DIR) + "/" + arch + "/" + name; }

using Param = std::tuple<std::string, std::string, size_t>;  // scheme, arch, case index

class GuestProgram : public testing::TestWithParam<Param> {};

TEST_P(GuestProgram, MatchesNative) {
  const auto& [scheme, arch, index] = GetParam();
  const GuestCase& gc = cases()[index];
  std::vector<std::string> argv = gc.argv;
  argv[0] = guest(arch, argv[0]);
  const auto prefix = emu_test::reference_prefix(arch, {guest(arch, "hello")});
  if (!prefix) GTEST_SKIP() << "nothing on this host runs " << arch << " programs natively (no qemu-i386 either)";
  const auto native = gc.abi_neutral ? emu_test::abi_neutral_reference(EMU_GUEST_DIR, arch, gc.argv[0],
                                                                      {gc.argv.begin() + 1, gc.argv.end()}, gc.input, gc.env)
                                     : run_process(emu_test::concat(*prefix, argv), gc.input, gc.env);
  const auto emulated = run_process(emu_test::concat({EMU_BINARY, "--scheme", scheme}, argv), gc.input, gc.env);
  EXPECT_EQ(emulated.status, native.status) << "emu stderr:\n" << emulated.err;
  EXPECT_EQ(emulated.out, native.out) << "emu stderr:\n" << emulated.err;
  if (gc.argv[0] == "segv") {
    // One line naming the signal, the access and the instruction, disassembled.
    const std::string want = gc.name == "sigill" ? "guest killed by SIGILL" : "guest killed by SIGSEGV";
    EXPECT_NE(emulated.err.find(want), std::string::npos) << emulated.err;
    EXPECT_NE(emulated.err.find(gc.name == "sigill" ? "ud2" : "mov"), std::string::npos) << emulated.err;
  }
}

std::string param_name(const testing::TestParamInfo<Param>& info) {
  return std::get<0>(info.param) + "_" + std::get<1>(info.param) + "_" + cases()[std::get<2>(info.param)].name;
}

INSTANTIATE_TEST_SUITE_P(AllSchemes, GuestProgram,
                         testing::Combine(testing::Values("global", "split", "atomic", "ptebit"),
                                          testing::Values("x86_64", "i386"), testing::Range<size_t>(0, cases().size())),
                         param_name);

// The guest's fds are its own: it closes its 0, 1 and 2 as it ends, and emu's --stats still
// reach emu's stderr (they used to be the same fds).
class OwnDescriptors : public testing::TestWithParam<std::string> {};

TEST_P(OwnDescriptors, EmuKeepsItsStderrWhenTheGuestClosesItsOwn) {
  const auto r = run_process({EMU_BINARY, "--stats", guest(GetParam(), "fd_table")});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("all ok"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("--- emu stats"), std::string::npos) << r.err;
}

INSTANTIATE_TEST_SUITE_P(BothArches, OwnDescriptors, testing::Values("x86_64", "i386"),
                         [](const auto& info) { return info.param; });

// Guest atomics must be exact run after run: a lost update in one round in a thousand fails.
class AtomicsStress : public testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(AtomicsStress, ExactThousandsOfTimesInARow) {
  const auto& [arch, vcpus] = GetParam();
  const auto r = run_process({EMU_BINARY, guest(arch, "atomics"), "-t", vcpus, "-n", "20", "-r", "1000"});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("all exact (1000 of 1000 rounds)"), std::string::npos) << r.out;
}

INSTANTIATE_TEST_SUITE_P(TwoAndFourVcpus, AtomicsStress,
                         testing::Combine(testing::Values("x86_64", "i386"), testing::Values("2", "4")),
                         [](const auto& info) { return std::get<0>(info.param) + "_" + std::get<1>(info.param) + "_vcpus"; });

// Thousands of short-lived guest threads in a bounded address space: the host thread of a
// guest thread that has ended must be joined, not kept (with its 8 MiB stack) until the
// process exits. 2000 threads here would keep 16 GiB.
class ThreadChurn : public testing::TestWithParam<std::string> {};

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
constexpr bool kSanitized = __has_feature(address_sanitizer) || __has_feature(thread_sanitizer);
#else
constexpr bool kSanitized = false;
#endif

TEST_P(ThreadChurn, FitsInFourGibOfAddressSpace) {
  if (kSanitized) GTEST_SKIP() << "a sanitizer's shadow memory does not fit under an address-space limit";
  const std::string limited = "ulimit -v 4194304 && exec \"$0\" \"$@\"";
  const auto r = run_process({"sh", "-c", limited, EMU_BINARY, "--mem", "256M", guest(GetParam(), "atomics"), "-t", "2",
                              "-n", "10", "-r", "1000"});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("all exact (1000 of 1000 rounds)"), std::string::npos) << r.out << r.err;
}

// Linux keeps the signal mask and ignored signals across execve: a guest started by emu starts
// with the ones emu was started with (a `nohup`, a shell's `trap ''`, a CI runner's mask).
TEST(InheritedSignals, MaskAndIgnoredPassToTheGuest) {
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigaddset(&block, SIGTERM);
  const std::string with_ignored = "trap '' HUP USR2; exec \"$0\" \"$@\"";
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &block, &old), 0);  // posix_spawn passes the caller's mask on
  const auto native = run_process({"sh", "-c", with_ignored, guest("x86_64", "signals"), "inherited"});
  const auto x86_64 = run_process({"sh", "-c", with_ignored, EMU_BINARY, guest("x86_64", "signals"), "inherited"});
  const auto i386 = run_process({"sh", "-c", with_ignored, EMU_BINARY, guest("i386", "signals"), "inherited"});
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ASSERT_EQ(native.status, 0) << native.err;
  // What the caller already blocked or ignored is there too, the same in every run.
  const auto line = [&](const std::string& name) {
    const size_t at = native.out.find(name + ":");
    return at == std::string::npos ? std::string() : native.out.substr(at, native.out.find('\n', at) - at) + " ";
  };
  EXPECT_NE(line("blocked").find(" 10 "), std::string::npos) << native.out;
  EXPECT_NE(line("blocked").find(" 15 "), std::string::npos) << native.out;
  EXPECT_NE(line("ignored").find(" 1 "), std::string::npos) << native.out;
  EXPECT_NE(line("ignored").find(" 12 "), std::string::npos) << native.out;
  EXPECT_EQ(x86_64.status, 0) << x86_64.err;
  EXPECT_EQ(x86_64.out, native.out) << x86_64.err;
  EXPECT_EQ(i386.status, 0) << i386.err;
  EXPECT_EQ(i386.out, native.out) << i386.err;
}

INSTANTIATE_TEST_SUITE_P(BothArches, ThreadChurn, testing::Values("x86_64", "i386"),
                         [](const auto& info) { return info.param; });

}  // namespace

// The event-loop syscalls with good and bad input (guest-programs/event_fds.c). The reference
// is the x86_64 program run natively for both architectures: what it prints is the same on
// either ABI under Linux, and qemu-i386 (the i386 reference elsewhere) gets several of these
// wrong itself (select's tv_usec carry, signalfd's mask size, clone3, a timer's default value).
class EventFds : public testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(EventFds, MatchLinuxOnBothAbis) {
  const auto& [scheme, arch] = GetParam();
  // It takes well under a second; a run that hangs shows how far it got.
  const auto native = run_process({guest("x86_64", "event_fds")}, "", {}, 120);
  ASSERT_EQ(native.status, 0) << native.out << native.err;
  ASSERT_NE(native.out.find("clone3 fork: 1"), std::string::npos) << "the native run did not reach its end\n" << native.out;
  const auto emulated = run_process({EMU_BINARY, "--scheme", scheme, guest(arch, "event_fds")}, "", {}, 240);
  EXPECT_EQ(emulated.status, 0) << emulated.err;
  EXPECT_EQ(emulated.out, native.out) << emulated.err;
}

INSTANTIATE_TEST_SUITE_P(AllSchemes, EventFds,
                         testing::Combine(testing::Values("global", "split", "atomic", "ptebit"),
                                          testing::Values("x86_64", "i386")),
                         [](const auto& info) { return std::get<0>(info.param) + "_" + std::get<1>(info.param); });

namespace {

// Hostile guests (guest-programs/hostile.c): emu stays up and answers as Linux does at its
// limits. --max-processes and --max-threads bound what one run may create.
class Hostile : public testing::TestWithParam<std::string> {};

TEST_P(Hostile, ForkBombStopsAtMaxProcesses) {
  const auto r = run_process({EMU_BINARY, "--max-processes", "12", guest(GetParam(), "hostile"), "forkbomb"}, "", {}, 240);
  EXPECT_EQ(r.status, 0) << r.err;
  // The parent is one of the 12.
  EXPECT_EQ(r.out, "fork failed after 11 children: EAGAIN\nreaped 11\n") << r.err;
}

TEST_P(Hostile, ThreadBombStopsAtMaxThreads) {
  const auto r = run_process({EMU_BINARY, "--max-threads", "9", guest(GetParam(), "hostile"), "threadbomb"}, "", {}, 240);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "pthread_create failed after 8 threads: EAGAIN\njoined 8\n") << r.err;
}

TEST_P(Hostile, StackOverflowIsSigsegv) {
  const auto r = run_process({EMU_BINARY, guest(GetParam(), "hostile"), "stack"}, "", {}, 240);
  EXPECT_EQ(r.status, 128 + SIGSEGV) << r.out << r.err;
}

TEST_P(Hostile, MemoryHogIsKilledWithAMessage) {
  const auto r = run_process({EMU_BINARY, "--mem", "32M", guest(GetParam(), "hostile"), "hog"}, "", {}, 240);
  EXPECT_EQ(r.status, 137) << r.out << r.err;
  EXPECT_NE(r.err.find("out of guest memory"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "") << r.err;
}

// Ranges past the top of user space (TASK_SIZE) are refused, as Linux does: stress-ng's
// munmap(NULL, ~0UL) once unmapped an i386 guest's whole space, ld.so and vDSO included.
TEST_P(Hostile, UnmappingPastTheTopOfUserSpaceIsRefused) {
  const auto native = run_process({guest("x86_64", "hostile"), "unmap"});
  ASSERT_EQ(native.status, 0);
  EXPECT_EQ(native.out,
            "munmap(NULL, ~0UL): -1 EINVAL\nmunmap(top page, 4096): -1 EINVAL\nmunmap(4096, -4096): -1 EINVAL\n"
            "mmap(MAP_FIXED, 2 pages below the top): -1 ENOMEM\nstill running: 1 2\n");
  const auto r = run_process({EMU_BINARY, guest(GetParam(), "hostile"), "unmap"}, "", {}, 240);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, native.out) << r.err;
}

TEST_P(Hostile, SignalsInTheirOwnHandlersNest) {
  const auto native = run_process({guest("x86_64", "hostile"), "nested", "200"});
  ASSERT_EQ(native.status, 0);
  EXPECT_EQ(native.out, "nested handlers: deepest 200, returned 200, level now 0\n");
  const auto r = run_process({EMU_BINARY, guest(GetParam(), "hostile"), "nested", "200"}, "", {}, 240);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, native.out) << r.err;
}

// MAP_SHARED (guest-programs/shared_memory.c): anonymous shared memory across fork with
// atomics, a process-shared mutex and semaphore; file mappings shared between processes and
// coherent with read()/write(); stores surviving munmap; private mappings staying private;
// memfd; SIGBUS past the end; Linux's errors; shared mappings larger than memory. Every
// scheme, both ABIs, with and without a small memory and swap (the reclaimer then takes
// shared pages out through their reverse map).
class SharedMemory : public testing::TestWithParam<std::tuple<std::string, std::string, bool>> {};

TEST_P(SharedMemory, MatchesNative) {
  const auto& [scheme, arch, swap] = GetParam();
  const std::vector<std::string> args = {testing::TempDir(), "3", "20000"};
  const auto native = emu_test::abi_neutral_reference(EMU_GUEST_DIR, arch, "shared_memory", args);
  ASSERT_EQ(native.status, 0) << native.out << native.err;
  std::vector<std::string> emu = {EMU_BINARY, "--scheme", scheme, "--stats"};
  if (swap) emu = emu_test::concat(emu, {"--mem", "24M", "--swap", "64M"});
  emu.push_back(guest(arch, "shared_memory"));
  const auto emulated = run_process(emu_test::concat(emu, args), "", {}, 240);
  EXPECT_EQ(emulated.status, 0) << emulated.err;
  EXPECT_EQ(emulated.out, native.out) << emulated.err;
  EXPECT_EQ(emulated.err.find("leaked"), std::string::npos) << emulated.err;
  EXPECT_NE(emulated.err.find("shared memory"), std::string::npos) << "--stats counts shared faults: " << emulated.err;
  // 64 MiB of shared mappings in 24 MiB: the reclaimer must have taken shared pages out.
  if (swap) {
    EXPECT_NE(emulated.err.find("shared reclaim"), std::string::npos) << emulated.err;
  }
}

// A file three times --mem, read and written through mappings with no swap
// (guest-programs/file_pressure.c): the reclaimer drops clean file pages and writes dirty ones
// back, as Linux reclaims its page cache without swap. The guest's first vCPU runs without the
// block hook (one thread, no handler) when memory first runs short, in a loop that makes no
// syscall: its fault must add the hook and go on, not end the guest.
class FilePressure : public testing::TestWithParam<std::tuple<std::string, std::string>> {};

uint64_t stats_number(const std::string& err, const std::string& label) {
  std::smatch m;
  if (!std::regex_search(err, m, std::regex(label + " ([0-9]+)"))) return 0;
  return std::stoull(m[1]);
}

TEST_P(FilePressure, MatchesNativeWithoutSwap) {
  const auto& [scheme, arch] = GetParam();
  const std::vector<std::string> args = {testing::TempDir(), "48"};
  const auto native = emu_test::abi_neutral_reference(EMU_GUEST_DIR, arch, "file_pressure", args);
  ASSERT_EQ(native.status, 0) << native.out << native.err;
  const auto emulated = run_process(
      emu_test::concat({EMU_BINARY, "--scheme", scheme, "--mem", "16M", "--stats", guest(arch, "file_pressure")}, args), "",
      {}, 240);
  EXPECT_EQ(emulated.status, 0) << emulated.err;
  EXPECT_EQ(emulated.out, native.out) << emulated.err;
  EXPECT_EQ(emulated.err.find("leaked"), std::string::npos) << emulated.err;
  EXPECT_GT(stats_number(emulated.err, "file pages dropped"), 0u) << emulated.err;
  EXPECT_GT(stats_number(emulated.err, "written back"), 0u) << emulated.err;
  EXPECT_GE(stats_number(emulated.err, "block hook added as memory ran short"), 1u) << emulated.err;
}

INSTANTIATE_TEST_SUITE_P(AllSchemes, FilePressure,
                         testing::Combine(testing::Values("global", "split", "atomic", "ptebit"),
                                          testing::Values("x86_64", "i386")),
                         [](const auto& info) { return std::get<0>(info.param) + "_" + std::get<1>(info.param); });

INSTANTIATE_TEST_SUITE_P(AllSchemes, SharedMemory,
                         testing::Combine(testing::Values("global", "split", "atomic", "ptebit"),
                                          testing::Values("x86_64", "i386"), testing::Bool()),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" + std::get<1>(info.param) +
                                  (std::get<2>(info.param) ? "_swap" : "");
                         });

INSTANTIATE_TEST_SUITE_P(BothArches, Hostile, testing::Values("x86_64", "i386"),
                         [](const auto& info) { return info.param; });

}  // namespace
