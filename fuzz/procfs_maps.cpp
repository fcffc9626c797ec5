// /proc/self/maps (emu/syscalls/procfs_maps.h) over the VMAs of a fuzzed address space: anonymous
// and file mappings (a memfd under a fuzzed name: mmap names a VMA by its file's path, and
// a path may hold any byte but NUL), unmaps, protection changes and brk, on either paging.
// Checked: the MMU's VMAs are sorted, page-aligned and disjoint; every VMA the guest may see
// gives exactly one line, in Linux's format (show_map_vma): the fields read back as they
// were, the path at column 73 (or after one more space), a newline in a path escaped as
// Linux's seq_file_path does ("\012"), so that a line is a VMA for whoever parses the file.
//
// Input: flags (bit 0: i386), then up to 48 operations.
#include <sys/mman.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "emu/loader/file_source.h"
#include "emu/syscalls/procfs_maps.h"
#include "fuzz/harness.h"

namespace emu::fuzz {

namespace {

constexpr const char* kName = "procfs_maps";
constexpr uint64_t kWindow = 0x10000;  // operations land in [kWindow, kWindow + 16 MiB) mostly

uint64_t pick_address(Input& in, uint64_t limit) {
  const uint8_t how = in.u8();
  if (how < 0x10) return in.u64() % limit;
  if (how < 0x20) return limit - (uint64_t{in.u16()} + 1) * mmu::kPageSize;  // near the top
  return kWindow + static_cast<uint64_t>(in.u16() % 4096) * mmu::kPageSize + (how < 0x28 ? in.u16() % mmu::kPageSize : 0);
}

std::string pick_name(Input& in) {
  static const char* const kNames[] = {"", "[heap]", "[stack]", "[gdt]", "[vvar]", "/usr/lib/libc.so.6"};
  const uint8_t n = in.u8();
  if (n < 0xc0) return kNames[n % 6];
  std::string s(in.bytes(in.u8() % 64));
  for (char& c : s)
    if (c == '\0') c = '/';  // a path has no NUL
  return s;
}

// Linux's mangle_path for seq_file_path(m, file, "\n").
std::string escaped(const std::string& path) {
  std::string out;
  for (const char c : path) {
    if (c == '\n')
      out += "\\012";
    else
      out += c;
  }
  return out;
}

void check_line(const std::string& line, const procfs::MapsEntry& e) {
  unsigned long long start = 0, end = 0, offset = 0, inode = 0;
  unsigned major = 0, minor = 0;
  char perms[5] = {};
  int header = 0;
  if (std::sscanf(line.c_str(), "%llx-%llx %4c %llx %x:%x %llu %n", &start, &end, perms, &offset, &major, &minor, &inode,
                  &header) != 7 ||
      header == 0)
    fail(kName, "a maps line does not parse: '" + line + "'");
  const std::string want_perms = {(e.prot & mmu::kProtRead) ? 'r' : '-', (e.prot & mmu::kProtWrite) ? 'w' : '-',
                                  (e.prot & mmu::kProtExec) ? 'x' : '-', e.shared ? 's' : 'p'};
  if (start != e.start || end != e.end || perms != want_perms || offset != e.offset || major != e.dev_major ||
      minor != e.dev_minor || inode != e.inode)
    fail(kName, "a maps line's fields do not read back: '" + line + "'");
  // %n skipped every space after the inode: the header ends after its fifth space.
  size_t space = std::string::npos;
  for (int i = 0; i < 5; ++i) {
    space = line.find(' ', space + 1);
    if (space == std::string::npos) fail(kName, "fewer than five fields: '" + line + "'");
  }
  const size_t header_end = space + 1;
  if (e.path.empty()) {
    if (line.size() != header_end) fail(kName, "a line without a path has more after the inode: '" + line + "'");
    return;
  }
  const size_t path_at = std::max(header_end, procfs::kMapsPadWidth) + 1;
  if (line.size() < path_at || line.find_first_not_of(' ', header_end) < path_at)
    fail(kName, "the path does not start at its column: '" + line + "'");
  if (line.substr(path_at) != escaped(e.path))
    fail(kName, "the path does not read back (a newline must be \\012): '" + line + "'");
}

}  // namespace

int procfs_maps(const uint8_t* data, size_t size) {
  init_process();
  (void)small_pool();
  const int fds_before = count_host_fds();
  Input in(data, size);
  const bool i386 = in.u8() & 1;
  {
    auto space = new_space(i386 ? GuestArch::I386 : GuestArch::X86_64);
    const uint64_t limit = space->virt_limit();
    const int memfd = ::memfd_create("emu-fuzz-maps", MFD_CLOEXEC);
    if (memfd < 0 || ::ftruncate(memfd, 1 << 20) != 0) fail(kName, "memfd");
    bool brk_set = false;
    for (int op = 0; op < 48 && !in.empty(); ++op) {
      const uint8_t kind = in.u8() % 5;
      switch (kind) {
        case 0:
        case 1: {
          mmu::MapRequest req;
          req.addr = pick_address(in, limit);
          req.length = (uint64_t{in.u8()} + 1) * mmu::kPageSize;
          if (in.u8() < 0x10) req.length = in.u64();
          const uint8_t bits = in.u8();
          req.prot = bits & 7;
          req.placement = static_cast<mmu::MapPlacement>((bits >> 3) & 3);
          req.flags = (bits >> 5) & 3;
          req.name = pick_name(in);
          if (kind == 1) {
            req.kind = mmu::VmaKind::FilePrivate;
            req.source = FileSource::from_fd(memfd, req.name);
            req.source_offset = uint64_t{in.u16()} * mmu::kPageSize;
            req.source_length = in.u32();
          }
          (void)space->map(0, req);
          break;
        }
        case 2: {
          const uint64_t addr = pick_address(in, limit);
          (void)space->unmap(0, addr, (uint64_t{in.u8()} + 1) * mmu::kPageSize);
          break;
        }
        case 3: {
          const uint64_t addr = pick_address(in, limit);
          const uint64_t len = (uint64_t{in.u8()} + 1) * mmu::kPageSize;
          (void)space->protect(0, addr, len, in.u8() & 7);
          break;
        }
        case 4:
          if (!brk_set) {
            space->set_brk_base(0, mmu::page_floor(pick_address(in, limit)));
            brk_set = true;
          } else {
            (void)space->brk(0, pick_address(in, limit));
          }
          break;
      }
    }
    ::close(memfd);

    const std::vector<mmu::Vma> vmas = space->vmas(0);
    for (size_t i = 0; i < vmas.size(); ++i) {
      const mmu::Vma& v = vmas[i];
      if (v.start >= v.end || v.start % mmu::kPageSize || v.end % mmu::kPageSize || v.end > limit)
        fail(kName, "a malformed VMA");
      if (i > 0 && v.start < vmas[i - 1].end) fail(kName, "VMAs out of order or overlapping");
    }
    const std::vector<procfs::MapsEntry> entries = procfs::maps_entries(vmas);
    size_t visible = 0;
    for (const mmu::Vma& v : vmas) visible += !procfs::hidden_from_guest(v);
    if (entries.size() != visible) fail(kName, "maps_entries does not give one entry per visible VMA");
    const std::string text = procfs::format_maps(entries);
    size_t at = 0;
    for (const procfs::MapsEntry& e : entries) {
      const size_t nl = text.find('\n', at);
      if (nl == std::string::npos) fail(kName, "fewer lines than VMAs");
      const std::string line = text.substr(at, nl - at);
      if (line != procfs::format_maps_line(e).substr(0, line.size())) fail(kName, "format_maps is not its lines");
      check_line(line, e);
      at = nl + 1;
    }
    if (at != text.size()) fail(kName, "more lines than VMAs");
  }
  check_pool_empty(kName, small_pool());
  if (count_host_fds() != fds_before) fail(kName, "host fds leaked");
  return 0;
}

}  // namespace emu::fuzz
