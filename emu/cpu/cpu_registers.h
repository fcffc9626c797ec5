// A vCPU's user-visible register state, copied from a parent engine to a child's on clone.
#pragma once

#include <unicorn/unicorn.h>

#include <array>
#include <cstdint>

#include "emu/cpu/guest_arch.h"

namespace emu {

struct CpuRegisters {
  static constexpr int kGeneral = 18;  // 16 general registers, ip, flags
  std::array<uint64_t, kGeneral> general{};
  std::array<std::array<uint64_t, 2>, 16> xmm{};
  uint64_t fs_base = 0;
  uint64_t gs_base = 0;
  uint64_t gs = 0;  // i386: the TLS selector
  uint64_t mxcsr = 0x1f80;
  uint64_t fpcw = 0x37f;
  // The x87 stack (physical registers, 80 bits each), status and tag words: a signal handler
  // using x87 must not disturb what the interrupted code had there (i386 float math does).
  std::array<std::array<uint8_t, 16>, 8> st{};
  uint64_t fpsw = 0;
  uint64_t fptag = 0xffff;  // every register empty

  void save(uc_engine* uc, GuestArch arch);
  void restore(uc_engine* uc, GuestArch arch) const;
};

// Unicorn register ids in the order of CpuRegisters::general.
const std::array<int, CpuRegisters::kGeneral>& general_register_ids(GuestArch arch);

}  // namespace emu
