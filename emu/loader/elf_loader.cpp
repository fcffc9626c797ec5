#include "emu/loader/elf_loader.h"

#include <elf.h>

#include <cstdio>
#include <random>

namespace emu {

namespace {

uint8_t prot_of(uint32_t pf) {
  uint8_t prot = 0;
  if (pf & PF_R) prot |= mmu::kProtRead;
  if (pf & PF_W) prot |= mmu::kProtWrite;
  if (pf & PF_X) prot |= mmu::kProtExec;
  return prot;
}

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// Maps every PT_LOAD of `image` moved by `bias`, named `name` in /proc/self/maps.
bool map_segments(const ElfImage& image, uint64_t bias, const std::string& name, mmu::AddressSpace& space,
                  mmu::VcpuId v, std::string* error, const PageCacheOf& page_cache) {
  const auto cache = page_cache ? page_cache(*image.source()) : nullptr;
  for (const ElfSegment& s : image.segments()) {
    const uint64_t start = mmu::page_floor(s.vaddr + bias);
    const uint64_t head = s.vaddr + bias - start;
    const uint64_t end = mmu::page_floor(s.vaddr + bias + s.memsz + mmu::kPageSize - 1);
    mmu::MapRequest req;
    req.addr = start;
    req.length = end - start;
    req.prot = prot_of(s.flags);
    req.placement = mmu::MapPlacement::Fixed;
    req.kind = mmu::VmaKind::FilePrivate;
    req.source = image.source();
    req.source_offset = s.offset - head;
    req.source_length = s.filesz + head;
    req.shared = cache;
    req.name = name;
    const mmu::MmResult r = space.map(v, req);
    if (!r.ok()) {
      *error = image.path() + ": cannot map segment at " + hex(start) + ": " + std::string(mmu::to_string(r.error));
      return false;
    }
  }
  return true;
}

// The interpreter goes where an mmap of its whole span would go (load_elf_interp), its
// segments at their offsets inside; the holes between them are left unmapped. *bias: its
// load bias, which is also AT_BASE (Linux's interp_load_addr).
bool load_interpreter(const ElfImage& ld, const std::string& name, mmu::AddressSpace& space, mmu::VcpuId v,
                      uint64_t& bias_out, std::string* error, const PageCacheOf& page_cache) {
  const uint64_t low = ld.lowest_vaddr();
  const uint64_t span = ld.highest_vaddr() - low;
  if (!ld.position_independent()) {
    // An ET_EXEC interpreter goes at its own addresses (Linux maps it without a bias).
    if (!map_segments(ld, 0, name, space, v, error, page_cache)) return false;
    bias_out = 0;
    return true;
  }
  mmu::MapRequest reserve;
  reserve.length = span;
  reserve.prot = 0;
  reserve.placement = mmu::MapPlacement::Anywhere;
  const mmu::MmResult where = space.map(v, reserve);
  if (!where.ok()) {
    *error = ld.path() + ": no room for the interpreter: " + std::string(mmu::to_string(where.error));
    return false;
  }
  const uint64_t bias = where.value - low;
  (void)space.unmap(v, where.value, span);
  if (!map_segments(ld, bias, name, space, v, error, page_cache)) return false;
  bias_out = bias;
  return true;
}

}  // namespace

bool load_program(const Program& program, mmu::AddressSpace& space, mmu::VcpuId v, bool aslr, LoadedImage& out,
                  std::string* error, const PageCacheOf& page_cache) {
  const ElfImage& image = program.exe;
  // Segments spanning more than the address space cannot be placed (Linux's
  // total_mapping_size check); biasing them would wrap.
  if (image.highest_vaddr() - image.lowest_vaddr() > space.virt_limit() ||
      (program.interp && program.interp->highest_vaddr() - program.interp->lowest_vaddr() > space.virt_limit())) {
    *error = image.path() + ": loadable segments span more than the address space";
    return false;
  }
  uint64_t bias = 0;
  if (image.position_independent()) {
    uint64_t shift = 0;
    if (aslr) {
      std::random_device rd;
      const uint64_t r = (uint64_t{rd()} << 32) | rd();
      shift = (r & ((uint64_t{1} << aslr_page_bits(image.arch())) - 1)) << mmu::kPageShift;
    }
    bias = pie_load_base(image.arch()) + shift - image.lowest_vaddr();
  }
  if (!map_segments(image, bias, program.guest_exe, space, v, error, page_cache)) return false;
  out = {};
  out.bias = bias;
  out.entry = image.entry() + bias;
  out.start = out.entry;
  out.phdr = image.phdr_vaddr() + bias;
  out.phnum = image.phnum();
  out.phent = image.phentsize();
  out.brk = image.highest_vaddr() + bias;
  space.set_brk_base(v, out.brk);
  if (program.interp) {
    const ElfImage& ld = *program.interp;
    if (!load_interpreter(ld, program.guest_interp, space, v, out.interp_base, error, page_cache)) return false;
    out.start = ld.entry() + out.interp_base;
  }
  return true;
}

}  // namespace emu
