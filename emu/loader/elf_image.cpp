#include "emu/loader/elf_image.h"

#include <elf.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sys/stat.h>

#include "mmu/types.h"

namespace emu {

namespace {

// The two ELF classes differ only in field widths; normalise them here.
template <typename Ehdr, typename Phdr>
bool parse_headers(const std::vector<uint8_t>& b, uint64_t& entry, uint16_t& type, uint16_t& phnum,
                   uint16_t& phentsize, uint64_t& phoff, std::vector<Phdr>& phdrs, std::string& why) {
  if (b.size() < sizeof(Ehdr)) {
    why = "truncated ELF header";
    return false;
  }
  Ehdr eh;
  std::memcpy(&eh, b.data(), sizeof eh);
  entry = eh.e_entry;
  type = eh.e_type;
  phnum = eh.e_phnum;
  phentsize = eh.e_phentsize;
  phoff = eh.e_phoff;
  if (eh.e_phentsize != sizeof(Phdr) || eh.e_phnum == 0 ||
      phoff > b.size() || uint64_t{eh.e_phnum} * sizeof(Phdr) > b.size() - phoff) {
    why = "bad program header table";
    return false;
  }
  phdrs.resize(eh.e_phnum);
  std::memcpy(phdrs.data(), b.data() + phoff, phdrs.size() * sizeof(Phdr));
  return true;
}

template <typename Phdr>
bool collect(const std::vector<Phdr>& phdrs, uint64_t file_size, std::vector<ElfSegment>& segs,
             uint64_t& phdr_vaddr, uint64_t phoff, std::string& why) {
  bool have_phdr = false;
  for (const Phdr& p : phdrs) {
    if (p.p_type == PT_INTERP) {
      why = "dynamically linked (has an interpreter); emu runs static executables";
      return false;
    }
    if (p.p_type == PT_PHDR) {
      phdr_vaddr = p.p_vaddr;
      have_phdr = true;
    }
    if (p.p_type != PT_LOAD || p.p_memsz == 0) continue;
    if (p.p_filesz > p.p_memsz || p.p_offset > file_size || p.p_filesz > file_size - p.p_offset ||
        p.p_vaddr + p.p_memsz < p.p_vaddr || (p.p_vaddr % mmu::kPageSize) != (p.p_offset % mmu::kPageSize)) {
      why = "malformed loadable segment";
      return false;
    }
    segs.push_back({p.p_vaddr, p.p_memsz, p.p_offset, p.p_filesz, p.p_flags});
  }
  if (segs.empty()) {
    why = "no loadable segment";
    return false;
  }
  if (!have_phdr) {
    // Static executables often lack PT_PHDR: the headers sit in the first segment that
    // covers their file offset.
    for (const ElfSegment& s : segs)
      if (phoff >= s.offset && phoff < s.offset + s.filesz) {
        phdr_vaddr = s.vaddr + (phoff - s.offset);
        have_phdr = true;
        break;
      }
  }
  if (!have_phdr) {
    why = "program headers are not in a loadable segment";
    return false;
  }
  return true;
}

}  // namespace

std::optional<ElfImage> ElfImage::open(const std::string& path, ElfError* error) {
  auto fail = [&](int status, std::string message) -> std::optional<ElfImage> {
    *error = {status, path + ": " + message};
    return std::nullopt;
  };
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return fail(errno == ENOENT ? 127 : 126, std::strerror(errno));
  if (S_ISDIR(st.st_mode)) return fail(126, "is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(126, "cannot open for reading");
  auto bytes = std::make_shared<std::vector<uint8_t>>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  const auto& b = *bytes;
  if (b.size() < EI_NIDENT || std::memcmp(b.data(), ELFMAG, SELFMAG) != 0) return fail(126, "not an ELF file");
  if (b[EI_DATA] != ELFDATA2LSB) return fail(126, "not a little-endian ELF file");

  ElfImage img;
  img.path_ = path;
  uint16_t type = 0;
  uint64_t phoff = 0;
  std::string why;
  bool ok = false;
  if (b[EI_CLASS] == ELFCLASS64) {
    std::vector<Elf64_Phdr> ph;
    ok = parse_headers<Elf64_Ehdr>(b, img.entry_, type, img.phnum_, img.phentsize_, phoff, ph, why);
    Elf64_Half machine = 0;
    std::memcpy(&machine, b.data() + offsetof(Elf64_Ehdr, e_machine), sizeof machine);
    if (ok && machine != EM_X86_64) return fail(126, "64-bit ELF for another machine (only x86_64 and i386 run)");
    ok = ok && collect(ph, b.size(), img.segments_, img.phdr_vaddr_, phoff, why);
    img.arch_ = GuestArch::X86_64;
  } else if (b[EI_CLASS] == ELFCLASS32) {
    std::vector<Elf32_Phdr> ph;
    ok = parse_headers<Elf32_Ehdr, Elf32_Phdr>(b, img.entry_, type, img.phnum_, img.phentsize_, phoff, ph, why);
    Elf32_Half machine = 0;
    std::memcpy(&machine, b.data() + offsetof(Elf32_Ehdr, e_machine), sizeof machine);
    if (ok && machine != EM_386) return fail(126, "32-bit ELF for another machine (only x86_64 and i386 run)");
    ok = ok && collect(ph, b.size(), img.segments_, img.phdr_vaddr_, phoff, why);
    img.arch_ = GuestArch::I386;
  } else {
    return fail(126, "unknown ELF class");
  }
  if (!ok) return fail(126, why);
  if (type != ET_EXEC && type != ET_DYN) return fail(126, "not an executable (ELF type " + std::to_string(type) + ")");
  img.pie_ = type == ET_DYN;
  img.bytes_ = std::move(bytes);
  return img;
}

uint64_t ElfImage::lowest_vaddr() const {
  uint64_t low = ~uint64_t{0};
  for (const auto& s : segments_) low = std::min(low, mmu::page_floor(s.vaddr));
  return low;
}

uint64_t ElfImage::highest_vaddr() const {
  uint64_t high = 0;
  for (const auto& s : segments_) high = std::max(high, mmu::page_floor(s.vaddr + s.memsz + mmu::kPageSize - 1));
  return high;
}

}  // namespace emu
