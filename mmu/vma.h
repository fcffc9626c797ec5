// Virtual memory areas: what the guest has mapped, independent of the page tables.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "mmu/types.h"

namespace mmu {

// Where a private file-backed VMA's pages come from (an ELF segment's file bytes). The MMU
// copies from it on the first fault of a page; it never writes back (MAP_PRIVATE).
class PageSource {
 public:
  virtual ~PageSource() = default;
  // Copies up to `len` bytes at `offset`; returns how many exist there (the rest are zero).
  virtual size_t read(uint64_t offset, uint8_t* dst, size_t len) const = 0;
  virtual std::string name() const = 0;
};

class SharedMemory;

// Shared: the pages are those of a SharedMemory object (MAP_SHARED), at `source_offset`
// into it for `start`; every mapping of the object sees the same frames.
enum class VmaKind : uint8_t { Anonymous, FilePrivate, Shared };

enum VmaFlag : uint8_t {
  kVmaGrowsDown = 1,  // a stack: a fault just below it extends it
  kVmaHeap = 2,       // the brk area
  kVmaWipeOnFork = 4,  // MADV_WIPEONFORK: a fork child finds the range empty (zero-filled again)
};

struct Vma {
  VirtAddr start = 0;
  VirtAddr end = 0;  // exclusive, page aligned
  uint8_t prot = kProtNone;
  VmaKind kind = VmaKind::Anonymous;
  uint8_t flags = 0;
  // FilePrivate: the source offset of `start`, and where the file bytes stop (the page
  // tail and anything beyond is zero, as for an ELF segment's bss).
  std::shared_ptr<const PageSource> source;
  uint64_t source_offset = 0;
  uint64_t source_end = 0;
  // Shared: the object. FilePrivate: the file's page-cache object, when it has one: a page
  // wholly within the file bytes is then mapped from it read-only (one frame for every
  // process that maps the file, as a shared library's text is on Linux) and copied on the
  // first write; without one, every page is a private copy read from `source`.
  std::shared_ptr<SharedMemory> shared;
  std::string name;

  uint64_t length() const { return end - start; }
  bool contains(VirtAddr a) const { return a >= start && a < end; }
  bool allows(Access a) const {
    switch (a) {
      case Access::Read: return prot & (kProtRead | kProtWrite | kProtExec);  // x86: W and X imply R
      case Access::Write: return prot & kProtWrite;
      case Access::Fetch: return prot & kProtExec;
    }
    return false;
  }
};

// Options for AddressSpace::map.
enum class MapPlacement : uint8_t { Anywhere, Hint, Fixed, FixedNoReplace };

struct MapRequest {
  VirtAddr addr = 0;
  uint64_t length = 0;
  uint8_t prot = kProtRead | kProtWrite;
  MapPlacement placement = MapPlacement::Anywhere;
  VmaKind kind = VmaKind::Anonymous;
  uint8_t flags = 0;
  std::shared_ptr<const PageSource> source;
  uint64_t source_offset = 0;
  uint64_t source_length = 0;  // file bytes available from source_offset
  // VmaKind::Shared: the object, at source_offset. FilePrivate: the file's page-cache object
  // (optional; see Vma::shared), whose page index is the file offset in pages.
  std::shared_ptr<SharedMemory> shared;
  std::string name;
};

}  // namespace mmu
