#include "emu/loader/elf_loader.h"

#include <elf.h>

#include <algorithm>
#include <cstring>

namespace emu {

namespace {

// The file's bytes as a page source for the MMU.
class FileBytesSource final : public mmu::PageSource {
 public:
  FileBytesSource(std::shared_ptr<const std::vector<uint8_t>> bytes, std::string name)
      : bytes_(std::move(bytes)), name_(std::move(name)) {}
  size_t read(uint64_t offset, uint8_t* dst, size_t len) const override {
    if (offset >= bytes_->size()) return 0;
    const size_t n = std::min<uint64_t>(len, bytes_->size() - offset);
    std::memcpy(dst, bytes_->data() + offset, n);
    return n;
  }
  std::string name() const override { return name_; }

 private:
  std::shared_ptr<const std::vector<uint8_t>> bytes_;
  std::string name_;
};

uint8_t prot_of(uint32_t pf) {
  uint8_t prot = 0;
  if (pf & PF_R) prot |= mmu::kProtRead;
  if (pf & PF_W) prot |= mmu::kProtWrite;
  if (pf & PF_X) prot |= mmu::kProtExec;
  return prot;
}

}  // namespace

bool load_elf(const ElfImage& image, mmu::AddressSpace& space, mmu::VcpuId v, LoadedImage& out, std::string* error) {
  const uint64_t bias = image.position_independent() ? pie_load_base(image.arch()) - image.lowest_vaddr() : 0;
  auto source = std::make_shared<FileBytesSource>(image.bytes(), image.path());
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
    req.source = source;
    req.source_offset = s.offset - head;
    req.source_length = s.filesz + head;
    req.name = image.path();
    const mmu::MmResult r = space.map(v, req);
    if (!r.ok()) {
      *error = image.path() + ": cannot map segment at 0x" + std::to_string(start) + ": " + std::string(mmu::to_string(r.error));
      return false;
    }
  }
  out.bias = bias;
  out.entry = image.entry() + bias;
  out.phdr = image.phdr_vaddr() + bias;
  out.phnum = image.phnum();
  out.phent = image.phentsize();
  out.brk = image.highest_vaddr() + bias;
  space.set_brk_base(v, out.brk);
  return true;
}

}  // namespace emu
