#include "emu/loader/elf_image.h"

#include <elf.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "mmu/types.h"

namespace emu {

namespace {

// Linux reads at most this much of the program header table (binfmt_elf's limit).
constexpr uint64_t kMaxPhdrBytes = 65536;

// The fields of both ELF classes, widened.
struct Headers {
  uint16_t type = 0;
  uint16_t machine = 0;
  uint64_t entry = 0;
  uint64_t phoff = 0;
  uint16_t phnum = 0;
  uint16_t phentsize = 0;
};

template <typename Ehdr, typename Phdr>
bool read_headers(const FileSource& file, Headers& h, std::vector<Phdr>& phdrs, std::string& why) {
  Ehdr eh;
  if (file.read(0, reinterpret_cast<uint8_t*>(&eh), sizeof eh) != sizeof eh) {
    why = "truncated ELF header";
    return false;
  }
  h = {eh.e_type, eh.e_machine, eh.e_entry, eh.e_phoff, eh.e_phnum, eh.e_phentsize};
  const uint64_t bytes = uint64_t{eh.e_phnum} * sizeof(Phdr);
  if (eh.e_phentsize != sizeof(Phdr) || eh.e_phnum == 0 || bytes > kMaxPhdrBytes) {
    why = "bad program header table";
    return false;
  }
  phdrs.resize(eh.e_phnum);
  if (file.read(eh.e_phoff, reinterpret_cast<uint8_t*>(phdrs.data()), bytes) != bytes) {
    why = "program header table past the end of the file";
    return false;
  }
  return true;
}

// PT_INTERP's path: NUL-terminated inside the segment, as binfmt_elf demands.
bool read_interp(const FileSource& file, uint64_t offset, uint64_t size, std::string& out, std::string& why) {
  if (size < 2 || size > PATH_MAX) {
    why = "bad PT_INTERP size";
    return false;
  }
  std::string buf(size, '\0');
  if (file.read(offset, reinterpret_cast<uint8_t*>(buf.data()), size) != size) {
    why = "PT_INTERP past the end of the file";
    return false;
  }
  if (buf.back() != '\0') {
    why = "PT_INTERP is not NUL-terminated";
    return false;
  }
  out.assign(buf.c_str());
  if (out.empty()) {
    why = "empty PT_INTERP";
    return false;
  }
  return true;
}

template <typename Phdr>
bool collect(const FileSource& file, const std::vector<Phdr>& phdrs, uint64_t file_size,
             std::vector<ElfSegment>& segs, uint64_t& phdr_vaddr, uint64_t phoff, std::string& interp,
             std::string& why) {
  bool have_phdr = false;
  for (const Phdr& p : phdrs) {
    if (p.p_type == PT_INTERP && interp.empty()) {  // Linux uses the first
      if (!read_interp(file, p.p_offset, p.p_filesz, interp, why)) return false;
    }
    if (p.p_type == PT_PHDR) {
      phdr_vaddr = p.p_vaddr;
      have_phdr = true;
    }
    if (p.p_type != PT_LOAD || p.p_memsz == 0) continue;
    if (p.p_filesz > p.p_memsz || p.p_offset > file_size || p.p_filesz > file_size - p.p_offset) {
      why = "loadable segment past the end of the file";
      return false;
    }
    // The end, rounded up to a page, must not wrap.
    const uint64_t vaddr = p.p_vaddr, memsz = p.p_memsz;
    if (vaddr + memsz < vaddr || vaddr + memsz > ~uint64_t{0} - mmu::kPageSize ||
        (vaddr % mmu::kPageSize) != (p.p_offset % mmu::kPageSize)) {
      why = "malformed loadable segment";
      return false;
    }
    // The ELF specification sorts PT_LOAD by address; overlapping ones would map over each
    // other.
    if (!segs.empty() && p.p_vaddr < segs.back().vaddr + segs.back().memsz) {
      why = "overlapping or unsorted loadable segments";
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
  auto fail = [&](int status, int err, std::string message) -> std::optional<ElfImage> {
    *error = {status, err, path + ": " + message};
    return std::nullopt;
  };
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return fail(errno == ENOENT ? 127 : 126, errno, std::strerror(errno));
  if (S_ISDIR(st.st_mode)) return fail(126, EACCES, "is a directory");
  if (!S_ISREG(st.st_mode)) return fail(126, EACCES, "not a regular file");
  auto source = FileSource::open(path);
  if (!source) return fail(126, errno, std::string("cannot open for reading: ") + std::strerror(errno));
  uint8_t ident[EI_NIDENT] = {};
  if (source->read(0, ident, EI_NIDENT) != EI_NIDENT || std::memcmp(ident, ELFMAG, SELFMAG) != 0)
    return fail(126, ENOEXEC, "not an ELF file");
  if (ident[EI_DATA] != ELFDATA2LSB) return fail(126, ENOEXEC, "not a little-endian ELF file");

  ElfImage img;
  img.path_ = path;
  Headers h;
  std::string why;
  bool ok = false;
  const auto file_size = static_cast<uint64_t>(st.st_size);
  if (ident[EI_CLASS] == ELFCLASS64) {
    std::vector<Elf64_Phdr> ph;
    ok = read_headers<Elf64_Ehdr>(*source, h, ph, why);
    if (ok && h.machine != EM_X86_64) return fail(126, ENOEXEC, "64-bit ELF for another machine (only x86_64 and i386 run)");
    ok = ok && collect(*source, ph, file_size, img.segments_, img.phdr_vaddr_, h.phoff, img.interp_, why);
    img.arch_ = GuestArch::X86_64;
  } else if (ident[EI_CLASS] == ELFCLASS32) {
    std::vector<Elf32_Phdr> ph;
    ok = read_headers<Elf32_Ehdr>(*source, h, ph, why);
    if (ok && h.machine != EM_386) return fail(126, ENOEXEC, "32-bit ELF for another machine (only x86_64 and i386 run)");
    ok = ok && collect(*source, ph, file_size, img.segments_, img.phdr_vaddr_, h.phoff, img.interp_, why);
    img.arch_ = GuestArch::I386;
  } else {
    return fail(126, ENOEXEC, "unknown ELF class");
  }
  if (!ok) return fail(126, ENOEXEC, why);
  if (h.type != ET_EXEC && h.type != ET_DYN)
    return fail(126, ENOEXEC, "not an executable (ELF type " + std::to_string(h.type) + ")");
  img.entry_ = h.entry;
  img.phnum_ = h.phnum;
  img.phentsize_ = h.phentsize;
  img.pie_ = h.type == ET_DYN;
  img.source_ = std::move(source);
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
