// How the tests get the "native" behaviour a guest run is compared with: the binary run
// directly, or, where this host's kernel cannot run i386 programs (no IA32 emulation, as on
// the development VM), under Debian's qemu-i386, whose Linux personality is the reference
// qemu-user users know.
#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "tests/e2e/process_runner.h"

namespace emu_test {

inline std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The command prefix that runs an `arch` binary natively, or nullopt when nothing can.
// `probe` is a command of that architecture that exits 0 when it runs.
inline std::optional<std::vector<std::string>> reference_prefix(const std::string& arch, const std::vector<std::string>& probe) {
  if (arch == "x86_64" || arch == "amd64") return std::vector<std::string>{};
  static std::optional<std::vector<std::string>> cached;
  static bool decided = false;
  if (!decided) {
    decided = true;
    if (run_process(probe).status == 0) {
      cached = std::vector<std::string>{};
    } else if (run_process(concat({"qemu-i386"}, probe)).status == 0) {
      cached = std::vector<std::string>{"qemu-i386"};
    }
  }
  return cached;
}

// What the guest program `name` (in `guest_dir`/<arch>/) does natively, for a program whose
// output is the same on either ABI apart from the architecture's name it prints. Where this
// host runs i386 programs only under qemu-i386 (no IA32 emulation in its kernel, as on the
// development VM and CI), the reference is the x86_64 build run natively, that name replaced:
// qemu-i386 is wrong for such programs (an execve'd or vfork'd-and-exec'd i386 image runs on
// the bare host kernel and fails; x87 state is not kept across signal handlers).
inline ProcessResult abi_neutral_reference(const std::string& guest_dir, const std::string& arch, const std::string& name,
                                           const std::vector<std::string>& args, const std::string& input = "",
                                           const std::vector<std::string>& env = {}) {
  const auto program = [&](const std::string& a) { return guest_dir + "/" + a + "/" + name; };
  const auto prefix = reference_prefix(arch, {guest_dir + "/" + arch + "/hello"});
  if (prefix && prefix->empty()) return run_process(concat({program(arch)}, args), input, env);
  auto r = run_process(concat({program("x86_64")}, args), input, env);
  for (size_t at = 0; (at = r.out.find("x86_64", at)) != std::string::npos; at += arch.size()) r.out.replace(at, 6, arch);
  return r;
}

}  // namespace emu_test
