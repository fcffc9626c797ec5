// /proc/PID/maps for a guest: its VMAs, one line each, in Linux's format (show_map_vma in
// fs/proc/task_mmu.c), so that programs that parse it (glibc's pthread_getattr_np, sanitizers,
// JITs, Python's and Java's stack probes) find the guest's layout and not emu's.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mmu/vma.h"

namespace emu::procfs {

// One line of maps.
struct MapsEntry {
  uint64_t start = 0, end = 0;
  uint8_t prot = 0;        // mmu::kProt* bits
  bool shared = false;     // 's' instead of 'p'
  uint64_t offset = 0;     // into the file; 0 for anonymous memory (as Linux shows it)
  uint32_t dev_major = 0, dev_minor = 0;
  uint64_t inode = 0;
  std::string path;        // "" for anonymous memory without a name
};

// Linux pads the part before the path to this width (seq_setwidth(m, 25 + sizeof(void *) * 6
// - 1) with a 64-bit kernel's pointers, which i386 programs on x86_64 see too) and then puts
// one more space: the path starts at column 73. A line without a path ends in "... 0 ".
inline constexpr size_t kMapsPadWidth = 72;

// One line, with its '\n'.
std::string format_maps_line(const MapsEntry& e);

// What the guest sees of its VMAs: the i386 GDT page emu keeps at the top of the address
// space is not there (Linux has no such mapping), file mappings carry the host file's device
// and inode (the guest stats the same files).
std::vector<MapsEntry> maps_entries(const std::vector<mmu::Vma>& vmas);

// Whether `vma` is emu's own and not shown to the guest (maps, VmSize, vsize).
bool hidden_from_guest(const mmu::Vma& vma);

// The whole file.
std::string format_maps(const std::vector<MapsEntry>& entries);

}  // namespace emu::procfs
