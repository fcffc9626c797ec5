// --trace end to end: text lines per subsystem logger, the Chrome trace JSON with a track per
// vCPU and one for the reclaimer, the address and vCPU filters, and bad trace options.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>
#include <functional>
#include <regex>
#include <set>
#include <sstream>
#include <tuple>

#include "tests/e2e/process_runner.h"

namespace {

using emu_test::run_process;

std::string guest(const std::string& name) { return std::string(EMU_GUEST_DIR) + "/x86_64/" + name; }
std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}
std::vector<std::string> lines_with(const std::string& text, const std::string& needle) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.find(needle) != std::string::npos) out.push_back(line);
  return out;
}

TEST(Trace, AllEventsAsTextAndChromeJson) {
  const std::string text = testing::TempDir() + "/emu_trace_all.txt";
  const std::string json = testing::TempDir() + "/emu_trace_all.json";
  const auto r = run_process({EMU_BINARY, "--trace", "all", "--trace-file", text, "--trace-json", json,
                              guest("page_fault1"), "-t", "2", "-m", "2", "-i", "1"});
  ASSERT_EQ(r.status, 0) << r.err;
  const std::string t = slurp(text);
  // A fault line: subsystem logger, vCPU, access, address, IP, the instruction, the path.
  const auto faults = lines_with(t, " fault ");
  ASSERT_GT(faults.size(), 1000u);
  const std::regex fault_line(
      R"(^\S+ fault +vcpu \d+ fault [a-z-]+ (read|write|fetch) 0x[0-9a-f]+ ip 0x[0-9a-f]+ "[^"]+" path=[a-z-]+ levels=\d+ )"
      R"(locks=\d+ contended=\d+ lock-wait=\d+ns cmpxchg-retries=\d+ retries=\d+ memory-waits=\d+ outcome=\w+ [0-9.]+us$)");
  for (const auto& line : faults) ASSERT_TRUE(std::regex_search(line, fault_line)) << line;
  EXPECT_FALSE(lines_with(t, "path=new-frame").empty());
  EXPECT_FALSE(lines_with(t, "levels=3").empty()) << "the first fault populates the tables";
  EXPECT_FALSE(lines_with(t, " syscall ").empty());
  EXPECT_FALSE(lines_with(t, " shootdown ").empty()) << "munmap with two vCPUs shoots down";

  std::ifstream in(json);
  const auto j = nlohmann::json::parse(in);
  std::set<int> fault_tracks;
  std::map<int, std::string> names;
  size_t complete = 0;
  for (const auto& e : j.at("traceEvents")) {
    if (e.at("ph") == "M" && e.at("name") == "thread_name") names[e.at("tid")] = e.at("args").at("name");
    if (e.at("ph") != "X") continue;
    ++complete;
    EXPECT_GE(e.at("dur").get<double>(), 0.0);
    if (e.at("cat") == "faults") {
      fault_tracks.insert(e.at("tid").get<int>());
      for (const char* key : {"address", "access", "ip", "instruction", "path", "levels_populated", "locks_taken",
                              "lock_wait_ns", "cmpxchg_retries", "outcome"})
        ASSERT_TRUE(e.at("args").contains(key)) << key << " missing in " << e.dump();
    }
  }
  EXPECT_EQ(complete, faults.size() + lines_with(t, " syscall ").size() + lines_with(t, " shootdown ").size() +
                          lines_with(t, " atomic ").size() + lines_with(t, " lock ").size());
  EXPECT_EQ(fault_tracks, (std::set<int>{0, 1, 2})) << "main thread and two workers";
  EXPECT_NE(names[1].find("vCPU 1 (tid "), std::string::npos) << names[1];
  EXPECT_EQ(names[64], "reclaimer");
}

TEST(Trace, ReclaimerHasItsOwnTrack) {
  const std::string json = testing::TempDir() + "/emu_trace_reclaim.json";
  const auto r = run_process({EMU_BINARY, "--mem", "16M", "--swap", "64M", "--trace", "reclaim,shootdown",
                              "--trace-json", json, guest("stream"), "-m", "32", "-p", "1"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err.find(" reclaim "), std::string::npos) << "JSON only: no text on stderr";
  std::ifstream in(json);
  const auto j = nlohmann::json::parse(in);
  size_t batches = 0, reclaimer_shootdowns = 0;
  for (const auto& e : j.at("traceEvents")) {
    if (e.at("ph") != "X") continue;
    if (e.at("cat") == "reclaim") {
      EXPECT_EQ(e.at("tid"), 64);
      ++batches;
    }
    if (e.at("cat") == "shootdown" && e.at("tid") == 64) ++reclaimer_shootdowns;
  }
  EXPECT_GT(batches, 10u);
  EXPECT_GT(reclaimer_shootdowns, 10u);
}

TEST(Trace, AddressAndVcpuFiltersApply) {
  const auto r = run_process({EMU_BINARY, "--trace", "faults", "--trace-addr", "0x401000-0x401fff", guest("hello")});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto faults = lines_with(r.err, " fault ");
  ASSERT_FALSE(faults.empty());
  for (const auto& line : faults) EXPECT_NE(line.find(" 0x401"), std::string::npos) << line;

  const auto v = run_process({EMU_BINARY, "--trace", "faults", "--trace-vcpu", "1", guest("page_fault1"), "-t", "2",
                              "-m", "1", "-i", "1"});
  ASSERT_EQ(v.status, 0) << v.err;
  const auto vf = lines_with(v.err, " fault ");
  ASSERT_FALSE(vf.empty());
  for (const auto& line : vf) EXPECT_NE(line.find("vcpu 1 "), std::string::npos) << line;
}

// Watching must not change what is watched: the faulting instruction is read without the
// fault handler, so a single-vCPU run counts exactly the same MMU events traced or not.
TEST(Trace, TracingDoesNotChangeWhatTheMmuDoes) {
  const std::string plain = testing::TempDir() + "/emu_trace_plain.json";
  const std::string traced = testing::TempDir() + "/emu_trace_traced.json";
  ASSERT_EQ(run_process({EMU_BINARY, "--stats-json", plain, guest("hello")}).status, 0);
  ASSERT_EQ(run_process({EMU_BINARY, "--trace", "faults,locks", "--trace-file", "/dev/null", "--stats-json", traced,
                         guest("hello")}).status,
            0);
  std::ifstream a(plain), b(traced);
  const auto ja = nlohmann::json::parse(a), jb = nlohmann::json::parse(b);
  for (const auto& [name, value] : ja.at("mmu").items()) {
    if (name == "lock_wait_ns") continue;  // a time, not an event count
    EXPECT_EQ(value, jb.at("mmu").at(name)) << name;
  }
}

TEST(Trace, OffMeansNothing) {
  const auto r = run_process({EMU_BINARY, guest("hello")});
  ASSERT_EQ(r.status, 0);
  EXPECT_TRUE(emu_test::without_sanitizer_report(r.err).empty()) << r.err;
}

TEST(Trace, BadTraceOptionsAreUsageErrors) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--trace", "bogus", guest("hello")},
        {"--trace-file", "/tmp/x", guest("hello")},
        {"--trace", "faults", "--trace-addr", "zz", guest("hello")},
        {"--trace", "faults", "--trace-vcpu", "a", guest("hello")},
        {"--trace", "faults", "--trace-json", "/no/such/dir/t.json", guest("hello")}}) {
    auto argv = args;
    argv.insert(argv.begin(), EMU_BINARY);
    const auto r = run_process(argv);
    EXPECT_EQ(r.status, 2) << testing::PrintToString(args) << r.err;
    const std::string own = emu_test::without_sanitizer_report(r.err);
    EXPECT_EQ(std::count(own.begin(), own.end(), '\n'), 1) << r.err;
  }
}

// A dynamically linked program: ld.so and the libraries fault their pages in from their
// files through the page cache (page-cache-fill faults in the trace and the stats; with
// --file-pages private, file-fill faults), and the Perfetto JSON is whole.
TEST(Trace, DynamicProgramsFaultTheirLibrariesInFromFiles) {
  for (const auto& [mode, path, counter_name] : {std::tuple{"shared", "page-cache-fill", "fault_shared_fill"},
                                                 std::tuple{"private", "file-fill", "fault_file_fill"}}) {
    SCOPED_TRACE(mode);
    const std::string counter = counter_name;  // a lambda below captures it (not a structured binding)
    const std::string text = testing::TempDir() + "/emu_trace_dynamic.txt";
    const std::string json = testing::TempDir() + "/emu_trace_dynamic.json";
    const std::string stats = testing::TempDir() + "/emu_trace_dynamic_stats.json";
    const auto r = run_process({EMU_BINARY, "--file-pages", mode, "--trace", "faults,syscalls", "--trace-file", text,
                                "--trace-json", json, "--stats-json", stats, "/bin/echo", "traced"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "traced\n");
    EXPECT_GT(lines_with(slurp(text), std::string("path=") + path).size(), 10u);
    const auto counters = nlohmann::json::parse(slurp(stats));
    bool found = false;
    std::function<void(const nlohmann::json&)> walk = [&](const nlohmann::json& j) {
      if (j.is_object()) {
        for (auto it = j.begin(); it != j.end(); ++it) {
          if (it.key() == counter && it.value().is_number() && it.value().get<int64_t>() > 10) found = true;
          walk(it.value());
        }
      }
    };
    walk(counters);
    EXPECT_TRUE(found) << counters.dump();
    const auto trace = nlohmann::json::parse(slurp(json));  // throws (fails) if cut short
    EXPECT_FALSE(trace["traceEvents"].empty());
  }
}

}  // namespace
