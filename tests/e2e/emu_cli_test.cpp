// The command line's contract: bad input gives one clear line and a shell-like status.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "emu/cli_options.h"
#include "tests/e2e/process_runner.h"

namespace {

using emu_test::run_process;

int count_lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

TEST(EmuCli, MissingProgramIs127) {
  const auto r = run_process({EMU_BINARY, "/no/such/program"});
  EXPECT_EQ(r.status, 127);
  EXPECT_NE(r.err.find("No such file"), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
}

TEST(EmuCli, NotAnElfIs126) {
  const std::string path = testing::TempDir() + "/emu_not_elf.txt";
  std::ofstream(path) << "echo hi\n";
  std::filesystem::permissions(path, std::filesystem::perms::owner_all);
  const auto r = run_process({EMU_BINARY, path});
  EXPECT_EQ(r.status, 126);
  EXPECT_NE(r.err.find("not an ELF file"), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(r.err), 1);
}

TEST(EmuCli, ScriptsRunThroughTheirInterpreter) {
  const std::string path = testing::TempDir() + "/emu_script.sh";
  std::ofstream(path) << "#!/bin/sh\necho hi \"$@\"; exit 4\n";
  std::filesystem::permissions(path, std::filesystem::perms::owner_all);
  const auto r = run_process({EMU_BINARY, path, "there"});
  EXPECT_EQ(r.status, 4) << r.err;
  EXPECT_EQ(r.out, "hi there\n");
}

// A dynamic executable whose PT_INTERP names a file that is not there: 127 and one line
// naming it and suggesting -L.
TEST(EmuCli, MissingInterpreterIs127) {
  std::ifstream in("/bin/true", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string ld = "/lib64/ld-linux-x86-64.so.2";
  const size_t at = bytes.find(ld);
  ASSERT_NE(at, std::string::npos);
  const std::string missing = "/no/such/ld-linux-x86-64.so";
  ASSERT_EQ(missing.size(), ld.size());
  bytes.replace(at, ld.size(), missing);
  const std::string path = testing::TempDir() + "/emu_true_no_ld";
  std::ofstream(path, std::ios::binary) << bytes;
  std::filesystem::permissions(path, std::filesystem::perms::owner_all);
  const auto r = run_process({EMU_BINARY, path});
  EXPECT_EQ(r.status, 127);
  EXPECT_NE(r.err.find(missing), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("-L"), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
}

TEST(EmuCli, SysrootMustBeADirectory) {
  const auto r = run_process({EMU_BINARY, "-L", "/no/such/root", "/bin/true"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("not a directory"), std::string::npos) << r.err;
  const auto env = run_process({EMU_BINARY, "/bin/true"}, "", {"EMU_LD_PREFIX=/no/such/root"});
  EXPECT_EQ(env.status, 2);
  EXPECT_NE(env.err.find("EMU_LD_PREFIX"), std::string::npos) << env.err;
}

TEST(EmuCli, DynamicProgramsRun) {
  const auto r = run_process({EMU_BINARY, "/bin/sh", "-c", "echo $((2+3)); exit 9"});
  EXPECT_EQ(r.status, 9) << r.err;
  EXPECT_EQ(r.out, "5\n");
}

// A fault in a shared library is reported with the library and the offset in its file.
TEST(EmuCli, FaultReportNamesTheLibrary) {
  const auto r = run_process({EMU_BINARY, "/usr/bin/python3.11", "-c", "import ctypes; ctypes.string_at(8)"});
  EXPECT_EQ(r.status, 139) << r.err;
  EXPECT_NE(r.err.find("libc.so.6+0x"), std::string::npos) << r.err;
}

TEST(EmuCli, DirectoryIs126) {
  const auto r = run_process({EMU_BINARY, "/"});
  EXPECT_EQ(r.status, 126);
}

TEST(EmuCli, BadOptionsAreUsageErrors) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--scheme", "bogus", "x"}, {"--mem", "lots", "x"}, {"--mem", "1M", "x"},
        {"--paging", "nine", "x"}, {"--no-such-option"}, {"--swap", "8M", "--inject-swap-errors", "write:1", "x"},
        {"--swap", "8M", "--inject-swap-errors", "disk:1:1", "x"}, {"--inject-swap-errors", "write:1:1", "x"}, {}}) {
    auto argv = args;
    argv.insert(argv.begin(), EMU_BINARY);
    const auto r = run_process(argv);
    EXPECT_EQ(r.status, 2) << testing::PrintToString(args) << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
  }
}

TEST(EmuCli, GuestArgumentsThatLookLikeOptionsGoToTheGuest) {
  const auto r = run_process({EMU_BINARY, std::string(EMU_GUEST_DIR) + "/x86_64/hello", "--scheme", "-x"});
  EXPECT_EQ(r.status, 2);  // hello exits with argc-1
  EXPECT_NE(r.out.find("argv[1]=--scheme"), std::string::npos) << r.out;
}

TEST(EmuCli, X86_64GuestWithI386PagingIsRefused) {
  const auto r = run_process({EMU_BINARY, "--paging", "i386", std::string(EMU_GUEST_DIR) + "/x86_64/hello"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("x86_64 or la57 paging"), std::string::npos) << r.err;
}

TEST(EmuCli, StatsJsonHasTheCounters) {
  const std::string path = testing::TempDir() + "/emu_stats.json";
  const auto r = run_process({EMU_BINARY, "--stats", "--stats-json", path, std::string(EMU_GUEST_DIR) + "/x86_64/page_fault1",
                              "-t", "2", "-m", "4", "-i", "1"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("--- emu stats"), std::string::npos);
  std::ifstream in(path);
  const std::string json((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const char* key : {"\"mmu\"", "\"fault_zero_fill\"", "\"emulator\"", "\"vcpus_started\"", "\"frame_pool\""})
    EXPECT_NE(json.find(key), std::string::npos) << key;
}

// Every process of a program reads its file pages through the page cache: each more copy of
// sh that a shell runs finds nearly all its file pages cached while the shell maps them (only
// what nobody maps any more, such as ld.so.cache, leaves the cache with its last mapping and
// is read again), where --file-pages private copies every page it touches from the file.
TEST(EmuCli, ProcessesOfOneProgramShareItsFilePages) {
  const auto run = [](const std::string& mode, int copies) {
    const std::string path = testing::TempDir() + "/emu_page_cache.json";
    std::string script = "/bin/sh -c :";
    for (int i = 1; i < copies; ++i) script += "; /bin/sh -c :";
    const auto r = run_process({EMU_BINARY, "--file-pages", mode, "--stats-json", path, "/bin/sh", "-c", script});
    EXPECT_EQ(r.status, 0) << r.err;
    std::ifstream in(path);
    return nlohmann::json::parse(in);
  };
  const auto misses = [](const nlohmann::json& j) { return j["page_cache"]["misses"].get<int64_t>(); };
  const auto hits = [](const nlohmann::json& j) { return j["page_cache"]["hits"].get<int64_t>(); };
  const auto file_fills = [](const nlohmann::json& j) { return j["mmu"]["fault_file_fill"].get<int64_t>(); };
  const auto two = run("shared", 2), five = run("shared", 5);
  const auto priv_two = run("private", 2), priv_five = run("private", 5);
  EXPECT_GT(misses(two), 30) << "sh, ld.so and libc read through the cache";
  const int64_t copied_per_copy = (file_fills(priv_five) - file_fills(priv_two)) / 3;
  const int64_t read_per_copy = (misses(five) - misses(two)) / 3;
  EXPECT_GT(copied_per_copy, 40) << "each copy of sh touches that many file pages";
  EXPECT_LT(read_per_copy * 5, copied_per_copy) << "the copies read their file pages again instead of sharing them";
  EXPECT_GT(hits(five) - hits(two), 3 * 40) << "the copies found the pages cached";
  EXPECT_EQ(misses(priv_two) + hits(priv_two), 0) << "--file-pages private reads nothing through the cache";
}

TEST(ParseSize, AcceptsSuffixesAndRejectsJunk) {
  EXPECT_EQ(emu::parse_size("4096"), 4096u);
  EXPECT_EQ(emu::parse_size("64M"), uint64_t{64} << 20);
  EXPECT_EQ(emu::parse_size("2G"), uint64_t{2} << 30);
  EXPECT_EQ(emu::parse_size("512KiB"), uint64_t{512} << 10);
  EXPECT_FALSE(emu::parse_size("lots"));
  EXPECT_FALSE(emu::parse_size("12Q"));
  EXPECT_FALSE(emu::parse_size(""));
  EXPECT_FALSE(emu::parse_size("99999999999999G"));
}

}  // namespace
