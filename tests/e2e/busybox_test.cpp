// Debian's busybox-static (amd64 and i386) under emu: a set of applets, output and status
// compared with running the same busybox natively (or under qemu-i386 where this host
// cannot run i386 programs). The CTest fixture fetches the packages when missing.
#include <gtest/gtest.h>

#include <filesystem>
#include <tuple>

#include "tests/e2e/reference_runner.h"

namespace {

using emu_test::run_process;

struct Applet {
  std::string name;
  std::vector<std::string> args;  // after "busybox"
  std::string input;
};

const std::vector<Applet>& applets() {
  static const std::vector<Applet> a = {
      {"echo", {"echo", "hello", "from", "busybox"}, ""},
      {"seq", {"seq", "1", "3", "200"}, ""},
      {"sort", {"sort", "-n", "-r"}, "10\n9\n100\n-3\n42\n"},
      {"md5sum", {"md5sum"}, std::string(100000, 'x')},
      {"wc", {"wc", "-l", "-w", "-c", EMU_SOURCE_DIR "/README.md"}, ""},
      {"ls", {"ls", "-a", EMU_SOURCE_DIR "/tests"}, ""},
      {"sh_builtins",
       {"sh", "-c",
        "x=3; echo $((x*7)); for i in 1 2 3; do echo it$i; done; test -d / && echo dir; "
        "printf '%s-%d\\n' a 5; read line; echo \"got $line\"; f() { return 3; }; f; echo status=$?"},
       "a line of input\n"},
      {"sh_exit_status", {"sh", "-c", "exit 7"}, ""},
      {"false", {"false"}, ""},
  };
  return a;
}

class Busybox : public testing::TestWithParam<std::tuple<std::string, size_t>> {};

TEST_P(Busybox, MatchesNative) {
  const auto& [arch, index] = GetParam();
  const std::string busybox = std::string(EMU_BUSYBOX_DIR) + "/" + arch + "/bin/busybox";
  ASSERT_TRUE(std::filesystem::exists(busybox)) << busybox << " is missing: tools/fetch-busybox.sh fetches it";
  const auto prefix = emu_test::reference_prefix(arch == "amd64" ? "x86_64" : arch, {busybox, "true"});
  if (!prefix) GTEST_SKIP() << "nothing on this host runs " << arch << " programs natively (no qemu-i386 either)";
  const Applet& a = applets()[index];
  std::vector<std::string> argv = {busybox};
  argv.insert(argv.end(), a.args.begin(), a.args.end());
  const auto native = run_process(emu_test::concat(*prefix, argv), a.input);
  const auto emulated = run_process(emu_test::concat({EMU_BINARY}, argv), a.input);
  EXPECT_EQ(emulated.status, native.status) << emulated.err;
  EXPECT_EQ(emulated.out, native.out) << emulated.err;
  EXPECT_FALSE(native.out.empty() && a.name != "false" && a.name != "sh_exit_status");
}

INSTANTIATE_TEST_SUITE_P(Applets, Busybox,
                         testing::Combine(testing::Values("amd64", "i386"), testing::Range<size_t>(0, 9)),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" + applets()[std::get<1>(info.param)].name;
                         });

}  // namespace
