#include "emu/syscalls/procfs_maps.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "emu/loader/file_source.h"

namespace emu::procfs {

std::string format_maps_line(const MapsEntry& e) {
  // show_vma_header_prefix: every number at least its width, zero-filled (seq_put_hex_ll).
  std::string line = fmt::format("{:08x}-{:08x} {}{}{}{} {:08x} {:02x}:{:02x} {} ", e.start, e.end,
                                 (e.prot & mmu::kProtRead) ? 'r' : '-', (e.prot & mmu::kProtWrite) ? 'w' : '-',
                                 (e.prot & mmu::kProtExec) ? 'x' : '-', e.shared ? 's' : 'p', e.offset, e.dev_major,
                                 e.dev_minor, e.inode);
  if (!e.path.empty()) {
    // seq_pad(m, ' '): spaces up to the width, then the one space it puts in any case.
    if (line.size() < kMapsPadWidth) line.append(kMapsPadWidth - line.size(), ' ');
    line += ' ';
    // seq_file_path(m, file, "\n"): a newline in a path is written as \012, so that each
    // line is one VMA (a file named "a\nb" mapped broke the file; found by fuzz/procfs_maps).
    for (const char c : e.path) {
      if (c == '\n')
        line += "\\012";
      else
        line += c;
    }
  }
  line += '\n';
  return line;
}

bool hidden_from_guest(const mmu::Vma& vma) { return vma.name == "[gdt]"; }

std::vector<MapsEntry> maps_entries(const std::vector<mmu::Vma>& vmas) {
  std::vector<MapsEntry> out;
  out.reserve(vmas.size());
  for (const mmu::Vma& vma : vmas) {
    if (hidden_from_guest(vma)) continue;
    MapsEntry e;
    e.start = vma.start;
    e.end = vma.end;
    e.prot = vma.prot;
    e.path = vma.name;
    if (vma.kind == mmu::VmaKind::FilePrivate) {
      e.offset = vma.source_offset;
      // The loader's and mmap's sources are host files: their device and inode are what the
      // guest's stat of the same path answers.
      if (const auto* file = dynamic_cast<const FileSource*>(vma.source.get())) {
        struct stat st {};
        if (::fstat(file->fd(), &st) == 0) {
          e.dev_major = major(st.st_dev);
          e.dev_minor = minor(st.st_dev);
          e.inode = st.st_ino;
        }
      }
    }
    if (vma.kind == mmu::VmaKind::Shared) {
      e.shared = true;  // 's': MAP_SHARED
      e.offset = vma.source_offset;
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::string format_maps(const std::vector<MapsEntry>& entries) {
  std::string text;
  for (const MapsEntry& e : entries) text += format_maps_line(e);
  return text;
}

}  // namespace emu::procfs
