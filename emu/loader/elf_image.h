// A Linux ELF executable or interpreter, its headers read from disk and checked: which
// architecture, where its segments go, where it starts, which interpreter it asks for.
// Only the headers are read here; the segments' pages come from the file when faulted.
// Loading it into an address space is load_elf's job.
#pragma once

#include <cerrno>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "emu/cpu/guest_arch.h"
#include "emu/loader/file_source.h"

namespace emu {

struct ElfSegment {
  uint64_t vaddr = 0;
  uint64_t memsz = 0;
  uint64_t offset = 0;
  uint64_t filesz = 0;
  uint32_t flags = 0;  // PF_R / PF_W / PF_X
};

// Why a file cannot be run: the exit status a shell would give, and the errno execve gives.
struct ElfError {
  int exit_status = 126;  // 127: not found, 126: found but not executable by us
  int errno_value = ENOEXEC;
  std::string message;
};

class ElfImage {
 public:
  // `path` is the host file to read; the file stays open (its pages are read on faults).
  static std::optional<ElfImage> open(const std::string& path, ElfError* error);

  GuestArch arch() const { return arch_; }
  bool position_independent() const { return pie_; }
  uint64_t entry() const { return entry_; }
  const std::vector<ElfSegment>& segments() const { return segments_; }
  // Where the program headers are, relative to the unrelocated image (for AT_PHDR).
  uint64_t phdr_vaddr() const { return phdr_vaddr_; }
  uint16_t phnum() const { return phnum_; }
  uint16_t phentsize() const { return phentsize_; }
  const std::string& path() const { return path_; }
  // PT_INTERP: the interpreter's path as the program names it ("" for a static program).
  const std::string& interpreter() const { return interp_; }
  std::shared_ptr<FileSource> source() const { return source_; }
  // Lowest and highest (exclusive, page-rounded) addresses of the loadable segments.
  uint64_t lowest_vaddr() const;
  uint64_t highest_vaddr() const;

 private:
  std::string path_;
  std::string interp_;
  std::shared_ptr<FileSource> source_;
  GuestArch arch_ = GuestArch::X86_64;
  bool pie_ = false;
  uint64_t entry_ = 0;
  uint64_t phdr_vaddr_ = 0;
  uint16_t phnum_ = 0;
  uint16_t phentsize_ = 0;
  std::vector<ElfSegment> segments_;
};

}  // namespace emu
