// Puts an ElfImage into an address space: each PT_LOAD becomes a private file-backed VMA
// (pages copied from the file on first touch, bss zero), static-PIE images get a load bias,
// and the heap starts after the last segment.
#pragma once

#include <cstdint>
#include <string>

#include "emu/loader/elf_image.h"
#include "mmu/address_space.h"

namespace emu {

struct LoadedImage {
  uint64_t entry = 0;
  uint64_t phdr = 0;  // AT_PHDR
  uint16_t phnum = 0;
  uint16_t phent = 0;
  uint64_t bias = 0;
  uint64_t brk = 0;
};

// Static-PIE images go where Linux puts PIE executables (ELF_ET_DYN_BASE without ASLR).
constexpr uint64_t pie_load_base(GuestArch arch) { return arch == GuestArch::I386 ? 0x56555000 : 0x555555554000; }

// false and a reason when the image does not fit the address space.
bool load_elf(const ElfImage& image, mmu::AddressSpace& space, mmu::VcpuId v, LoadedImage& out, std::string* error);

}  // namespace emu
