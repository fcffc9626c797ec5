// The stack a Linux process starts with: argc, argv, envp and the auxiliary vector that
// static glibc and busybox read (AT_PHDR for static-PIE self-relocation, AT_RANDOM for the
// stack protector, AT_PAGESZ, AT_HWCAP, ...), strings above them.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "emu/loader/elf_loader.h"
#include "emu/cpu/guest_arch.h"
#include "emu/process/guest_memory.h"

namespace emu {

struct StackLayout {
  uint64_t top = 0;        // the stack VMA's end
  uint64_t reserved = 0;   // initially mapped below top (it grows down from there)
};

constexpr StackLayout default_stack(GuestArch arch) {
  // i386: just below the GDT page at the top of the 32-bit space (as a 64-bit kernel does);
  // x86_64: the top of the 47-bit user half.
  return arch == GuestArch::I386 ? StackLayout{0xffffe000, 128 * 1024} : StackLayout{0x7ffffffff000, 128 * 1024};
}

// The auxiliary vector, (type, value) pairs ending with AT_NULL.
using Auxv = std::vector<std::pair<uint64_t, uint64_t>>;

// The most stack one of our signal frames takes (frame, fxsave image, red zone, alignment),
// rounded up: AT_MINSIGSTKSZ.
constexpr uint64_t kMinSigStackBytes = 2048;

// Maps the stack VMA and writes everything; returns the initial stack pointer, or 0 and a
// reason in *error. The auxiliary vector written goes to *auxv_out when given.
uint64_t build_initial_stack(GuestMemory& memory, mmu::VcpuId v, GuestArch arch, const LoadedImage& image,
                             const std::string& execfn, const std::vector<std::string>& argv,
                             const std::vector<std::string>& envp, std::string* error, Auxv* auxv_out = nullptr);

}  // namespace emu
