// The CPU the guest runs on is Unicorn's model, not the host's: what CPUID answers inside the
// engine decides which code glibc's ifunc resolvers pick, so AT_HWCAP and /proc/cpuinfo
// must describe that CPU. It is asked once per architecture, by running CPUID in a scratch
// engine.
#pragma once

#include <cstdint>
#include <string>

#include "emu/cpu/guest_arch.h"

namespace emu {

struct CpuidResult {
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};

struct EmulatedCpu {
  std::string vendor;       // "GenuineIntel", "AuthenticAMD"
  std::string model_name;   // the brand string (leaves 0x80000002-4), or "" when none
  uint32_t family = 0, model = 0, stepping = 0;
  CpuidResult leaf1;        // features: EDX is AT_HWCAP on x86
  CpuidResult leaf7;        // structured extended features (subleaf 0)
  CpuidResult ext1;         // leaf 0x80000001
  // The flag names /proc/cpuinfo lists, in Linux's spelling and order.
  std::string flags() const;
};

// The engine's answers for `arch` (computed on the first call; thread-safe).
const EmulatedCpu& emulated_cpu(GuestArch arch);

}  // namespace emu
