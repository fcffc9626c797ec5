// The x86 paging formats as traits types: everything that differs between them is here, in
// one place, and one walker (PagedAddressSpace) is templated on them.
//
// Levels are numbered from the leaf: level 1 is a page table of ptes, level 2 the page
// directory (PMD), and so on up to kLevels, the root that CR3 points to.
#pragma once

#include <cstdint>

#include "mmu/types.h"

namespace mmu {

template <class EntryT, int Levels, unsigned RootIndexBits, uint64_t VirtLimit, bool HasNx,
          unsigned LargeLevelMask, PagingMode Mode>
struct PagingFormat {
  using Entry = EntryT;
  static constexpr int kLevels = Levels;
  static constexpr PagingMode kMode = Mode;
  // Lowest address the guest can not map (the user half for x86_64/la57).
  static constexpr uint64_t kVirtLimit = VirtLimit;
  static constexpr bool kHasNx = HasNx;
  // Bit L set: an entry at level L may map a large page (PS bit).
  static constexpr unsigned kLargeLevelMask = LargeLevelMask;
  static constexpr unsigned kEntryBits = sizeof(Entry) == 4 ? 10 : 9;  // index bits below root
  static constexpr unsigned kEntriesPerTable = 1u << kEntryBits;
  // Highest guest-physical address an entry can hold (i386: 32 bits; 64-bit entries: 52).
  static constexpr uint64_t kMaxPhys = sizeof(Entry) == 4 ? (uint64_t{1} << 32) : (uint64_t{1} << 52);

  static constexpr unsigned index_bits(int level) { return level == kLevels ? RootIndexBits : kEntryBits; }
  static constexpr unsigned shift(int level) { return kPageShift + kEntryBits * static_cast<unsigned>(level - 1); }
  static constexpr unsigned entries(int level) { return 1u << index_bits(level); }
  static constexpr uint64_t span(int level) { return uint64_t{1} << shift(level); }
  static constexpr unsigned index(VirtAddr va, int level) {
    return static_cast<unsigned>((va >> shift(level)) & (entries(level) - 1));
  }
  static constexpr bool can_be_large(int level) { return (kLargeLevelMask >> level) & 1; }
};

// i386 2-level: 32-bit entries, 1024 per table, 4 MiB PSE pages in the page directory.
using I386Format = PagingFormat<uint32_t, 2, 10, uint64_t{1} << 32, false, 1u << 2, PagingMode::I386>;
// PAE 3-level: 64-bit entries, a 4-entry PDPT at the root, 2 MiB pages, NX.
using PaeFormat = PagingFormat<uint64_t, 3, 2, uint64_t{1} << 32, true, 1u << 2, PagingMode::Pae>;
// x86_64 4-level: 48-bit virtual, user half below 2^47, 2 MiB and 1 GiB pages.
using X86_64Format =
    PagingFormat<uint64_t, 4, 9, uint64_t{1} << 47, true, (1u << 2) | (1u << 3), PagingMode::X86_64>;
// LA57 5-level: 57-bit virtual, user half below 2^56.
using La57Format =
    PagingFormat<uint64_t, 5, 9, uint64_t{1} << 56, true, (1u << 2) | (1u << 3), PagingMode::La57>;

static_assert(I386Format::shift(2) == 22 && I386Format::span(2) == (4u << 20));
static_assert(PaeFormat::shift(3) == 30 && PaeFormat::entries(3) == 4);
static_assert(X86_64Format::shift(4) == 39 && X86_64Format::span(2) == (2u << 20));
static_assert(La57Format::shift(5) == 48);

}  // namespace mmu
