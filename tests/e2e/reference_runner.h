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


}  // namespace emu_test
