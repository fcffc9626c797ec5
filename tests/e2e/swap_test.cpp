// Guests bigger than guest memory: emu --mem M --swap S, end to end. Data survives swapping
// (both architectures), the stats show the swapping, running out ends the guest with 137 and
// a failed swap write with 135 (one clear line each, no leak report), and the swap file goes
// away at exit, also when the guest crashes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "tests/e2e/process_runner.h"

namespace {

using emu_test::run_process;
namespace fs = std::filesystem;

std::string guest(const std::string& arch, const std::string& name) {
  return std::string(EMU_GUEST_DIR) + "/" + arch + "/" + name;
}
// Lines emu wrote on stderr (sanitizer builds append a leak-suppression summary).
int count_lines(const std::string& err) {
  const std::string own = emu_test::without_sanitizer_report(err);
  return static_cast<int>(std::count(own.begin(), own.end(), '\n'));
}

class Swap : public testing::TestWithParam<std::string> {};

TEST_P(Swap, WorkingSetThreeTimesMemoryComesBackIntactAndIsCounted) {
  const std::string json = testing::TempDir() + "/emu_swap_stats_" + GetParam() + ".json";
  const auto r = run_process({EMU_BINARY, "--mem", "16M", "--swap", "128M", "--stats", "--stats-json", json,
                              guest(GetParam(), "swap_stress"), "-m", "48", "-t", "2", "-p", "2", "-c"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("swap_stress: pages=12288 threads=2 passes=2 mismatches=0"), std::string::npos) << r.out;
  EXPECT_EQ(r.err.find("leaked"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("reclaim "), std::string::npos) << r.err;  // the --stats lines
  std::ifstream in(json);
  const auto j = nlohmann::json::parse(in);
  const auto& m = j["mmu"];
  EXPECT_GT(m["reclaimed"].get<uint64_t>(), 12288u) << "a 48 MiB working set in 16 MiB must swap";
  EXPECT_GT(m["swap_outs"].get<uint64_t>(), 0u);
  EXPECT_GT(m["fault_major"].get<uint64_t>(), 0u);
  EXPECT_EQ(j["swap"]["bytes_read"].get<uint64_t>(), m["fault_major"].get<uint64_t>() * 4096);
  EXPECT_EQ(j["swap"]["bytes_written"].get<uint64_t>(), m["swap_outs"].get<uint64_t>() * 4096);
  EXPECT_GT(j["emulator"]["shootdowns_requested"].get<uint64_t>(), 0u);
}

TEST_P(Swap, StreamingGuestMatchesANativeRun) {
  const auto native_run = run_process({guest(GetParam(), "stream"), "-m", "40", "-p", "2"});
  const auto r = run_process({EMU_BINARY, "--mem", "16M", "--swap", "64M", guest(GetParam(), "stream"), "-m", "40",
                              "-p", "2"});
  EXPECT_EQ(r.status, 0) << r.err;
  // The host kernel may not run i386 binaries natively; then only the emu run is checked.
  if (native_run.status == 0) {
    EXPECT_EQ(r.out, native_run.out);
  }
  EXPECT_NE(r.out.find("stream: mib=40 passes=2 checksum="), std::string::npos) << r.out;
}

TEST_P(Swap, NoSwapAndTooLittleMemoryIs137WithOneLine) {
  const auto r = run_process({EMU_BINARY, "--mem", "16M", guest(GetParam(), "swap_stress"), "-m", "32", "-p", "1"});
  EXPECT_EQ(r.status, 137);
  EXPECT_NE(r.err.find("out of guest memory: --mem 16 MiB, no --swap"), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
}

TEST_P(Swap, SwapFullIs137WithOneLine) {
  const auto r = run_process({EMU_BINARY, "--mem", "16M", "--swap", "4M", guest(GetParam(), "swap_stress"), "-m", "48",
                              "-p", "1"});
  EXPECT_EQ(r.status, 137);
  EXPECT_NE(r.err.find("swap of 4 MiB full"), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
}

TEST_P(Swap, FailingSwapWriteIs135WithOneLine) {
  const auto r = run_process({EMU_BINARY, "--mem", "16M", "--swap", "64M", "--swap-file", "/dev/full",
                              guest(GetParam(), "swap_stress"), "-m", "48", "-p", "1"});
  EXPECT_EQ(r.status, 135);
  EXPECT_NE(r.err.find("swap write failed on /dev/full: No space left on device"), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
}

// --inject-swap-errors: a write failing after 300 good ones, and the fourth read, end the guest
// as a real disk error does: SIGBUS, one line naming the swap, nothing leaked.
TEST_P(Swap, InjectedSwapErrorsAreSigbusWithOneLine) {
  for (const char* spec : {"write:300:1", "read:3:1"}) {
    const auto r = run_process({EMU_BINARY, "--mem", "16M", "--swap", "64M", "--inject-swap-errors", spec,
                                guest(GetParam(), "swap_stress"), "-m", "40", "-p", "2"});
    EXPECT_EQ(r.status, 135) << spec << r.err;
    const std::string what = spec[0] == 'w' ? "swap write failed" : "swap read failed";
    EXPECT_NE(r.err.find(what), std::string::npos) << spec << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << spec << r.err;
  }
}

INSTANTIATE_TEST_SUITE_P(BothArches, Swap, testing::Values("x86_64", "i386"));

TEST(SwapFile, TemporaryFileInADirectoryIsGoneAfterTheRun) {
  const fs::path dir = fs::path(testing::TempDir()) / "emu_swap_dir";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const auto r = run_process({EMU_BINARY, "--mem", "16M", "--swap", "64M", "--swap-file", dir.string(),
                              guest("x86_64", "swap_stress"), "-m", "24", "-p", "1"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(fs::is_empty(dir));
}

TEST(SwapFile, FileEmuCreatesIsGoneEvenWhenTheGuestCrashes) {
  const fs::path file = fs::path(testing::TempDir()) / "emu_swap_file_crash";
  fs::remove(file);
  const auto r = run_process({EMU_BINARY, "--mem", "16M", "--swap", "64M", "--swap-file", file.string(),
                              guest("x86_64", "segv")});
  EXPECT_EQ(r.status, 139) << r.err;
  EXPECT_FALSE(fs::exists(file));
}

TEST(SwapFile, BadSwapOptionsAreUsageErrors) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--swap", "lots", "x"}, {"--swap", "100", "x"}, {"--swap-file", "/tmp/s", "x"},
        {"--swap", "64M", "--swap-file", "/no/such/dir/swap", guest("x86_64", "hello")}}) {
    auto argv = args;
    argv.insert(argv.begin(), EMU_BINARY);
    const auto r = run_process(argv);
    EXPECT_EQ(r.status, 2) << testing::PrintToString(args) << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
  }
}

}  // namespace
