// The emulator's own concurrency (exclusive blocks for guest atomics, shootdowns through the
// vCPU mailboxes, futexes, threads coming and going) under guests that stress it, on 4 vCPUs,
// every scheme, both architectures. Labelled "concurrency": the ThreadSanitizer build runs
// it with halt_on_error, so a data race in emu fails the run (exit status 66).
#include <gtest/gtest.h>

#include <tuple>

#include "tests/e2e/process_runner.h"

namespace {

using emu_test::run_process;

using Param = std::tuple<std::string, std::string>;  // scheme, arch

class EmuStress : public testing::TestWithParam<Param> {
 protected:
  std::string guest(const std::string& name) const {
    return std::string(EMU_GUEST_DIR) + "/" + std::get<1>(GetParam()) + "/" + name;
  }
  void expect_ok(std::vector<std::string> guest_argv, const std::string& want) {
    std::vector<std::string> argv = {EMU_BINARY, "--scheme", std::get<0>(GetParam())};
    argv.insert(argv.end(), guest_argv.begin(), guest_argv.end());
    const auto r = run_process(argv);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find(want), std::string::npos) << r.out << r.err;
  }
};

TEST_P(EmuStress, AtomicsWithThreadsComingAndGoing) {
  expect_ok({guest("atomics"), "-t", "4", "-n", "200", "-r", "20"}, "all exact (20 of 20 rounds)");
}

// Every locked instruction, every width, operands aligned, misaligned, RIP-relative or
// absolute, split across cache lines and pages, a spinlock released by a plain store while
// the others' lock cmpxchg fails on it: host atomics (and the gate) exact on four vCPUs.
TEST_P(EmuStress, EveryLockedInstructionExact) {
  expect_ok({guest("locked_ops"), "-t", "4", "-n", "3000"}, "all ok");
}

// Host atomics on pages the reclaimer swaps out and in under them (the MMU's write path,
// frames pinned until the vCPU acknowledges the shootdown).
TEST_P(EmuStress, AtomicsOnPagesBeingSwapped) {
  std::vector<std::string> argv = {EMU_BINARY, "--scheme", std::get<0>(GetParam()), "--mem", "24M", "--swap", "256M",
                                   guest("locked_ops"), "-m", "48", "-t", "4", "-n", "30000"};
  const auto r = run_process(argv);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("swap 48 MiB: total ok, pages intact ok"), std::string::npos) << r.out << r.err;
  EXPECT_EQ(r.err.find("leaked"), std::string::npos) << r.err;
}

TEST_P(EmuStress, MunmapAndMprotectChurnWhileOthersFault) {
  expect_ok({guest("mmap_churn"), "-t", "4", "-i", "100"}, "ok");
}

TEST_P(EmuStress, SharedRegionFaultedByFourVcpus) {
  expect_ok({guest("shared_region"), "-t", "4", "-m", "8", "-i", "2"}, "ok");
}

// A working set 2.5x guest memory on four vCPUs with munmap/mprotect churn: the reclaimer
// and its shootdowns against running vCPUs, every scheme's reclaim path.
TEST_P(EmuStress, SwappingWorkingSetStaysIntact) {
  std::vector<std::string> argv = {EMU_BINARY, "--scheme", std::get<0>(GetParam()), "--mem", "16M", "--swap", "128M",
                                   guest("swap_stress"), "-m", "40", "-t", "4", "-p", "2", "-c"};
  const auto r = run_process(argv);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("threads=4 passes=2 mismatches=0"), std::string::npos) << r.out << r.err;
  EXPECT_EQ(r.err.find("leaked"), std::string::npos) << r.err;
}

// Processes forking three generations deep while the reclaimer swaps under them, page tables
// shared and copied: many host threads (one per guest process) over one frame pool.
TEST_P(EmuStress, ForkingProcessesUnderSwap) {
  for (const char* share : {"on", "off"}) {
    std::vector<std::string> argv = {EMU_BINARY, "--scheme", std::get<0>(GetParam()), "--pt-share", share, "--mem", "40M",
                                     "--swap", "256M", guest("processes"), "24"};
    const auto r = run_process(argv);
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("all passed"), std::string::npos) << r.out << r.err;
    EXPECT_EQ(r.err.find("leaked"), std::string::npos) << r.err;
  }
}

// vfork and posix_spawn children run in the parent's space (their stores are the parent's)
// while another thread of the parent churns mappings and the reclaimer swaps the pages:
// shootdowns of the shared space must reach the child's vCPU, and the space may go only
// once the child has given it back.
TEST_P(EmuStress, VforkChildrenShareMemoryUnderSwap) {
  std::vector<std::string> argv = {EMU_BINARY, "--scheme", std::get<0>(GetParam()), "--mem", "24M",
                                   "--swap", "256M", guest("vfork_share"), "40", "24"};
  const auto r = run_process(argv);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("rounds=40 mismatches=0 spawn_errors=0"), std::string::npos) << r.out << r.err;
  EXPECT_EQ(r.err.find("leaked"), std::string::npos) << r.err;
}

// Two processes pass SIGUSR1/SIGUSR2 back and forth, one side with three computing threads
// taking them (at block boundaries) and the other in sigsuspend, while the reclaimer swaps:
// senders, wakes, frames and sigreturn across host threads. A lost signal hangs it (the
// timeout fails the test); the count must be exact.
TEST_P(EmuStress, SignalPingPongAcrossThreadsUnderSwap) {
  std::vector<std::string> argv = {EMU_BINARY, "--scheme", std::get<0>(GetParam()), "--mem", "24M", "--swap", "128M",
                                   "--stats", guest("signals"), "pingpong", "400", "3"};
  const auto r = run_process(argv);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("pingpong: child done, 400 pings answered of 400"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.err.find("signals              800 handlers run"), std::string::npos) << r.err;
}

INSTANTIATE_TEST_SUITE_P(AllSchemes, EmuStress,
                         testing::Combine(testing::Values("global", "split", "atomic", "ptebit"),
                                          testing::Values("x86_64", "i386")),
                         [](const auto& info) { return std::get<0>(info.param) + "_" + std::get<1>(info.param); });

}  // namespace
