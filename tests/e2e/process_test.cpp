// Guest processes end to end: the `signals` guest program (handlers, masks, sigsuspend, EINTR
// and SA_RESTART, both frame layouts) against native; the `processes` guest program (fork three generations deep with
// copy-on-write, pipes, dup2, exit statuses, kill, waitid, vfork, execve) on both
// architectures, every scheme, page tables shared and copied, with and without the reclaimer
// swapping under it; and busybox's shell running pipelines, subshells, command substitution,
// xargs and scripts, with the same output as natively (applets found through PATH, as a
// user would set it up), including execve across the two architectures.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <tuple>

#include "tests/e2e/process_runner.h"
#include "tests/e2e/reference_runner.h"

namespace {

using emu_test::run_process;

std::string guest(const std::string& arch, const std::string& name) {
  return std::string(EMU_GUEST_DIR) + "/" + arch + "/" + name;
}

emu_test::ProcessResult reference_run(const std::string& arch, const std::string& name,
                                      const std::vector<std::string>& args) {
  return emu_test::abi_neutral_reference(EMU_GUEST_DIR, arch, name, args);
}

// ---- the processes guest program ----

struct ProcessCase {
  std::string arch;
  std::string scheme;
  std::string pt_share;
  bool swap;
};

std::vector<ProcessCase> process_cases() {
  std::vector<ProcessCase> out;
  for (const char* arch : {"x86_64", "i386"})
    for (const char* scheme : {"global", "split", "atomic", "ptebit"})
      for (const char* share : {"on", "off"})
        for (bool swap : {false, true}) out.push_back({arch, scheme, share, swap});
  return out;
}

class Processes : public testing::TestWithParam<ProcessCase> {};

TEST_P(Processes, GuestProgramMatchesNative) {
  const ProcessCase& p = GetParam();
  const std::string program = guest(p.arch, "processes");
  // 24 MiB written before each of three forks; with swap, only 40 MiB of guest memory for
  // four generations' copies, so the reclaimer swaps while they fork and write.
  const std::vector<std::string> args = {program, "24"};
  const auto native = reference_run(p.arch, "processes", {"24"});
  ASSERT_EQ(native.status, 0) << native.out;
  std::vector<std::string> emu = {EMU_BINARY, "--scheme", p.scheme, "--pt-share", p.pt_share, "--stats"};
  if (p.swap) emu = emu_test::concat(emu, {"--mem", "40M", "--swap", "256M"});
  const auto emulated = run_process(emu_test::concat(emu, args));
  EXPECT_EQ(emulated.status, 0) << emulated.out << emulated.err;
  EXPECT_EQ(emulated.out, native.out) << emulated.err;
  EXPECT_EQ(emulated.err.find("leaked"), std::string::npos) << emulated.err;
  EXPECT_NE(emulated.err.find("processes"), std::string::npos) << "--stats counts forks: " << emulated.err;
  if (p.swap) {
    EXPECT_EQ(emulated.err.find("reclaimed 0 "), std::string::npos) << "the reclaimer must have run: " << emulated.err;
  }
}

INSTANTIATE_TEST_SUITE_P(AllArchesSchemesAndModes, Processes, testing::ValuesIn(process_cases()), [](const auto& info) {
  const ProcessCase& p = info.param;
  return p.arch + "_" + p.scheme + "_share_" + p.pt_share + (p.swap ? "_swap" : "");
});

// ---- the signals guest program ----

// Handlers on both architectures (the x86_64 and i386 frames, i386's non-SA_SIGINFO one),
// with and without the reclaimer swapping under the signal frames, every scheme.
class Signals : public testing::TestWithParam<std::tuple<std::string, std::string, bool>> {};

TEST_P(Signals, GuestProgramMatchesNative) {
  const auto& [arch, scheme, swap] = GetParam();
  const std::string program = guest(arch, "signals");
  const auto native = reference_run(arch, "signals", {});
  ASSERT_EQ(native.status, 128 + 15) << "it ends by raising SIGTERM: " << native.out;
  std::vector<std::string> emu = {EMU_BINARY, "--scheme", scheme, "--stats"};
  if (swap) emu = emu_test::concat(emu, {"--mem", "24M", "--swap", "128M"});
  const auto emulated = run_process(emu_test::concat(emu, {program}));
  EXPECT_EQ(emulated.status, native.status) << emulated.out << emulated.err;
  EXPECT_EQ(emulated.out, native.out) << emulated.err;
  EXPECT_NE(emulated.out.find("every pass exact"), std::string::npos) << emulated.out;
  EXPECT_NE(emulated.err.find("handlers run"), std::string::npos) << "--stats counts handlers: " << emulated.err;
}

INSTANTIATE_TEST_SUITE_P(ArchesAndSchemes, Signals,
                         testing::Combine(testing::Values("x86_64", "i386"),
                                          testing::Values("global", "split", "atomic", "ptebit"), testing::Bool()),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" + std::get<1>(info.param) +
                                  (std::get<2>(info.param) ? "_swap" : "");
                         });

// ---- busybox's shell ----

struct Script {
  std::string name;
  std::string text;
};

// Each runs with PATH holding only busybox applets (and the guest programs' directories for
// the cross-architecture exec).
const std::vector<Script>& scripts() {
  static const std::vector<Script> s = {
      {"pipeline", "seq 1 1000 | sort -r | head -3"},
      {"subshell", "(cd /tmp && pwd); pwd; (exit 3); echo $?"},
      {"command_substitution", "x=$(echo abc | tr a-z A-Z); echo \"$x $(echo nested $(echo deep))\" $(seq 3 | wc -l)"},
      {"xargs", "echo one two three | xargs -n1 echo item; seq 1 10 | xargs -n3 echo"},
      {"exit_statuses", "sh -c 'exit 7'; echo $?; false || echo failed; true && echo ok; sh -c 'kill -TERM $$'; echo $?"},
      {"loops_and_pipes", "for i in 1 2 3; do echo loop $i; done | wc -l; seq 1 5 | while read n; do echo n=$n; done"},
      {"sigpipe", "yes | head -2; seq 1 100000 | head -1"},
      {"script_file",
       "cat > \"$WORK/s.sh\" <<'EOF'\n"
       "count() { n=0; while read line; do n=$((n+1)); done; echo $n; }\n"
       "seq 1 50 | count\n"
       "for w in $(echo a b c); do printf '%s-' \"$w\"; done; echo\n"
       "case $(uname -m) in *) echo uname ok;; esac\n"
       "EOF\n"
       "sh \"$WORK/s.sh\"; echo status $?"},
      {"both_architectures", "hello_x86_64 | head -1; hello_i386 | head -1; echo done"},
      // `wait` sleeps in sigsuspend until the SIGCHLD handler has run; `trap` runs handlers.
      {"wait_and_trap",
       "sleep 0.2 & p=$!; (exit 3) & q=$!; wait $q; echo q=$?; wait $p; echo p=$?; sleep 0.1 & wait; echo all=$?; "
       "trap 'echo got usr1' USR1; kill -USR1 $$; echo after trap; "
       "sh -c 'sleep 5' & k=$!; kill $k; wait $k; echo killed=$?; "
       "trap 'echo child done' CHLD; sleep 0.05; trap - CHLD; echo end"},
  };
  return s;
}

class BusyboxShell : public testing::TestWithParam<std::tuple<std::string, size_t>> {
 protected:
  // A directory of applet links to `busybox`, plus hello of each architecture. `i386_prefix`
  // is what runs an i386 program on this host: empty for the emulated run and where the
  // kernel runs them, qemu-i386 for the native run elsewhere (through a wrapper script, as
  // the shell cannot be told a prefix).
  std::string make_path_dir(const std::string& busybox, const std::string& kind, const std::vector<std::string>& i386_prefix) {
    namespace fs = std::filesystem;
    const fs::path dir = fs::path(testing::TempDir()) / ("emu-bb-" + std::to_string(::getpid()) + "-" +
                                                         testing::UnitTest::GetInstance()->current_test_info()->name() + "-" + kind);
    fs::remove_all(dir);
    fs::create_directories(dir);
    for (const char* applet : {"sh", "cat", "wc", "tr", "seq", "sort", "head", "xargs", "echo", "ls", "yes", "pwd",
                               "true", "false", "printf", "uname", "kill", "sleep"})
      fs::create_symlink(busybox, dir / applet);
    fs::create_symlink(guest("x86_64", "hello"), dir / "hello_x86_64");
    if (i386_prefix.empty()) {
      fs::create_symlink(guest("i386", "hello"), dir / "hello_i386");
    } else {
      std::ofstream script(dir / "hello_i386");
      // The shell's PATH holds only this directory; qemu-i386 is found in the system's.
      script << "#!/bin/sh\nPATH=/usr/local/bin:/usr/bin:/bin exec";
      for (const auto& word : i386_prefix) script << " '" << word << "'";
      script << " '" << guest("i386", "hello") << "' \"$@\"\n";
      script.close();
      fs::permissions(dir / "hello_i386", fs::perms::owner_all);
    }
    return dir.string();
  }
};

TEST_P(BusyboxShell, MatchesNative) {
  const auto& [arch, index] = GetParam();
  const std::string busybox = std::string(EMU_BUSYBOX_DIR) + "/" + arch + "/bin/busybox";
  ASSERT_TRUE(std::filesystem::exists(busybox)) << busybox << " is missing: tools/fetch-busybox.sh fetches it";
  const std::string guest_arch = arch == "amd64" ? "x86_64" : arch;
  const auto prefix = emu_test::reference_prefix(guest_arch, {busybox, "true"});
  if (!prefix || !prefix->empty()) GTEST_SKIP() << "this host does not run " << arch << " programs natively";
  const Script& s = scripts()[index];
  const auto i386_prefix = emu_test::reference_prefix("i386", {guest("i386", "hello")});
  if (!i386_prefix) GTEST_SKIP() << "nothing on this host runs i386 programs natively (no qemu-i386 either)";
  const std::string native_dir = make_path_dir(busybox, "native", *i386_prefix);
  const std::string dir = make_path_dir(busybox, "emu", {});
  // env(1) sets them: appended to this process's environment they would come after its PATH.
  const auto env = [](const std::string& path) {
    return std::vector<std::string>{"/usr/bin/env", "PATH=" + path, "WORK=" + path};
  };
  const auto native = run_process(emu_test::concat(env(native_dir), {native_dir + "/sh", "-c", s.text}));
  const auto emulated = run_process(emu_test::concat(env(dir), {EMU_BINARY, dir + "/sh", "-c", s.text}));
  EXPECT_EQ(emulated.status, native.status) << emulated.err;
  EXPECT_EQ(emulated.out, native.out) << emulated.err;
  EXPECT_FALSE(native.out.empty());
  std::filesystem::remove_all(native_dir);
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Scripts, BusyboxShell,
                         testing::Combine(testing::Values("amd64", "i386"), testing::Range<size_t>(0, 10)),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" + scripts()[std::get<1>(info.param)].name;
                         });

}  // namespace
