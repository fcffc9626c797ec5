// The fuzzers' findings stay fixed: every input that once crashed a harness (and the one
// named in fuzz/regressions/README.md for each bug) is replayed through the same harness
// function libFuzzer calls (fuzz/harness.h), in every build of the test suite, with
// whichever compiler; so are the seed corpora, which also keeps the harnesses themselves
// honest in gcc builds. A harness aborts when one of its properties does not hold, so a
// regression ends this test with the harness's line on stderr.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "emu/loader/initial_stack.h"
#include "emu/process/guest_memory.h"
#include "fuzz/harness.h"

namespace {

namespace fs = std::filesystem;

std::vector<fs::path> inputs(const std::string& kind, const std::string& harness) {
  std::vector<fs::path> out;
  const fs::path dir = fs::path(EMU_FUZZ_DIR) / kind / harness;
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename().string()[0] != '.') out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<uint8_t> slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

const emu::fuzz::HarnessInfo& harness(const std::string& name) {
  for (const auto& h : emu::fuzz::harnesses())
    if (name == h.name) return h;
  ADD_FAILURE() << "no harness " << name;
  return emu::fuzz::harnesses().front();
}

class Replay : public testing::TestWithParam<std::string> {
 protected:
  size_t replay(const std::string& kind) {
    const auto& h = harness(GetParam());
    const auto files = inputs(kind, GetParam());
    for (const fs::path& f : files) {
      SCOPED_TRACE(f.string());
      const std::vector<uint8_t> bytes = slurp(f);
      EXPECT_EQ(h.run(bytes.data(), bytes.size()), 0);
    }
    return files.size();
  }
};

TEST_P(Replay, Regressions) { replay("regressions"); }

TEST_P(Replay, SeedCorpus) { EXPECT_GT(replay("corpus"), 0u) << "fuzz/corpus/" << GetParam() << " has no inputs"; }

INSTANTIATE_TEST_SUITE_P(Fuzz, Replay,
                         testing::Values("elf_loader", "initial_stack", "syscalls", "sigreturn", "procfs_maps"),
                         [](const testing::TestParamInfo<std::string>& info) { return info.param; });

// fuzz/initial_stack's slow inputs: the initial stack was built by inserting each string at
// the front of one buffer, quadratic in the arguments (4 s for 100k at -O2; a shell's glob
// of a big directory reaches that). Linear now: well under a second even sanitized.
TEST(InitialStack, ManyArgumentsBuildInLinearTime) {
  emu::fuzz::init_process();
  {
    auto space = emu::fuzz::new_space(emu::GuestArch::X86_64);
    emu::GuestMemory mem(*space);
    const std::vector<std::string> argv(90000, std::string(20, 'a'));  // 1.9 MB: within Linux's ARG_MAX
    std::string error;
    const auto start = std::chrono::steady_clock::now();
    const uint64_t sp = emu::build_initial_stack(mem, 0, emu::GuestArch::X86_64, emu::LoadedImage{}, "/bin/x", argv,
                                                 {"A=1"}, &error);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_NE(sp, 0u) << error;
    uint64_t argc = 0;
    ASSERT_TRUE(mem.read_value(0, sp, argc));
    EXPECT_EQ(argc, argv.size());
    EXPECT_LT(seconds, 2.0);
  }
  emu::fuzz::check_pool_empty("InitialStack", emu::fuzz::small_pool());
}

}  // namespace
