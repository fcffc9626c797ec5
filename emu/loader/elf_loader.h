// Puts a Program into an address space as Linux's binfmt_elf does: each PT_LOAD of the
// executable becomes a private file-backed VMA (pages read from the file on first touch, the
// rest of the last file page and the bss zero); a PIE goes at ELF_ET_DYN_BASE (plus a random
// offset unless ASLR is off), an ET_EXEC at its own addresses; the interpreter (ld.so) goes
// where mmap would put it, and the program starts at the interpreter's entry. The heap
// starts after the executable's last segment.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "emu/loader/program.h"
#include "mmu/address_space.h"
#include "mmu/shared_memory.h"

namespace emu {

struct LoadedImage {
  uint64_t entry = 0;        // AT_ENTRY: the executable's entry point
  uint64_t start = 0;        // where the first instruction is: the interpreter's entry, or entry
  uint64_t phdr = 0;         // AT_PHDR
  uint16_t phnum = 0;
  uint16_t phent = 0;
  uint64_t bias = 0;         // the executable's load bias
  uint64_t interp_base = 0;  // AT_BASE: the interpreter's load bias (0 without one, or ET_EXEC)
  uint64_t brk = 0;
};

// Where Linux puts PIE executables (ELF_ET_DYN_BASE) before any randomisation.
constexpr uint64_t pie_load_base(GuestArch arch) { return arch == GuestArch::I386 ? 0x56555000 : 0x555555554000; }
// How far ASLR may move it: mmap_rnd_bits (28 on x86_64, 8 for compat tasks) pages.
constexpr unsigned aslr_page_bits(GuestArch arch) { return arch == GuestArch::I386 ? 8 : 28; }

// The page-cache object of an image's file, whose frames its segments map until written;
// nullptr (or no function): every page is a private copy read from the file.
using PageCacheOf = std::function<std::shared_ptr<mmu::SharedMemory>(const FileSource&)>;

// false and a reason when the program does not fit the address space.
bool load_program(const Program& program, mmu::AddressSpace& space, mmu::VcpuId v, bool aslr, LoadedImage& out,
                  std::string* error, const PageCacheOf& page_cache = {});

}  // namespace emu
