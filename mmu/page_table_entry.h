// A typed page-table entry over the raw word of a paging format.
//
// Present entries use the hardware layout. Non-present entries are ours alone (hardware
// ignores them; CR0.PG stays off and only our walker reads the tables), and encode:
//   none        all zero (apart from the ptebit lock bit)
//   swap        kind 1, swap slot in the address bits
//   transition  kind 2, frame in the address bits: the page is being reclaimed or read in;
//               a fault waits instead of treating it as empty (seed 000)
//   protnone    kind 3, frame in the address bits: mapped, but PROT_NONE for now
// Bit 9, one of the bits x86 leaves to software, is the lock bit of the ptebit scheme
// (seed 001) in every kind of entry.
#pragma once

#include <cstdint>

#include "mmu/paging_formats.h"

namespace mmu {

enum class EntryKind : uint8_t { None, Present, Swap, Transition, ProtNone };

template <class Format>
class PageTableEntry {
 public:
  using Entry = typename Format::Entry;

  static constexpr Entry kPresent = 1u << 0;
  static constexpr Entry kWritable = 1u << 1;
  static constexpr Entry kUser = 1u << 2;
  static constexpr Entry kAccessed = 1u << 5;
  static constexpr Entry kDirty = 1u << 6;
  static constexpr Entry kLarge = 1u << 7;
  static constexpr Entry kLockBit = 1u << 9;
  static constexpr Entry kNoExecute = Format::kHasNx ? static_cast<Entry>(uint64_t{1} << 63) : 0;
  static constexpr Entry kAddressMask =
      sizeof(Entry) == 4 ? static_cast<Entry>(0xFFFFF000u) : static_cast<Entry>(0x000FFFFFFFFFF000ull);
  static constexpr Entry kAccessedDirty = kAccessed | kDirty;
  static constexpr unsigned kKindShift = 1;
  static constexpr Entry kKindMask = 3u << kKindShift;

  constexpr PageTableEntry() = default;
  constexpr explicit PageTableEntry(Entry raw) : raw_(raw) {}
  constexpr Entry raw() const { return raw_; }

  // Entry pointing to a lower-level table. Upper levels are permissive (user, writable);
  // the leaf decides, as on real x86. The PAE PDPT takes only the present bit.
  static constexpr PageTableEntry table(PhysAddr table, int level) {
    const Entry perms = (Format::kMode == PagingMode::Pae && level == Format::kLevels) ? 0 : (kWritable | kUser);
    return PageTableEntry(static_cast<Entry>(table) | kPresent | perms);
  }
  // Entry mapping a 4 KiB page (or a large page when `large`).
  static constexpr PageTableEntry page(PhysAddr page, bool writable, bool executable, bool accessed, bool dirty,
                                       bool large = false) {
    Entry e = static_cast<Entry>(page) | kPresent | kUser;
    if (writable) e |= kWritable;
    if (!executable) e |= kNoExecute;
    if (accessed) e |= kAccessed;
    if (dirty) e |= kDirty;
    if (large) e |= kLarge;
    return PageTableEntry(e);
  }
  static constexpr PageTableEntry swap(uint64_t slot) {
    return PageTableEntry(static_cast<Entry>((slot << kPageShift) | (Entry{1} << kKindShift)));
  }
  static constexpr PageTableEntry transition(FrameNumber f) {
    return PageTableEntry(static_cast<Entry>((uint64_t{f} << kPageShift) | (Entry{2} << kKindShift)));
  }
  static constexpr PageTableEntry protnone(FrameNumber f, bool accessed, bool dirty) {
    Entry e = static_cast<Entry>((uint64_t{f} << kPageShift) | (Entry{3} << kKindShift));
    if (accessed) e |= kAccessed;
    if (dirty) e |= kDirty;
    return PageTableEntry(e);
  }
  // Largest swap slot the address bits can carry.
  static constexpr uint64_t kMaxSwapSlot = (uint64_t{kAddressMask} >> kPageShift);

  constexpr EntryKind kind() const {
    if (raw_ & kPresent) return EntryKind::Present;
    switch ((raw_ & kKindMask) >> kKindShift) {
      case 1: return EntryKind::Swap;
      case 2: return EntryKind::Transition;
      case 3: return EntryKind::ProtNone;
      default: return EntryKind::None;
    }
  }
  constexpr bool is_none() const { return (raw_ & ~kLockBit) == 0; }
  constexpr bool is_present() const { return raw_ & kPresent; }
  constexpr bool is_writable() const { return raw_ & kWritable; }
  constexpr bool is_user() const { return raw_ & kUser; }
  constexpr bool is_accessed() const { return raw_ & kAccessed; }
  constexpr bool is_dirty() const { return raw_ & kDirty; }
  constexpr bool is_large() const { return raw_ & kLarge; }
  constexpr bool is_locked() const { return raw_ & kLockBit; }
  constexpr bool is_executable() const { return !(raw_ & kNoExecute); }

  // Physical address of the table or 4 KiB page (present), or of the frame (transition,
  // protnone). For a large page, the base of the large page.
  constexpr PhysAddr address(int level = 1) const {
    PhysAddr a = raw_ & kAddressMask;
    if (level > 1 && is_large()) a &= ~(Format::span(level) - 1);
    return a;
  }
  constexpr FrameNumber frame() const { return static_cast<FrameNumber>(address() >> kPageShift); }
  constexpr uint64_t swap_slot() const { return (raw_ & kAddressMask) >> kPageShift; }

  // The same entry with the lock bit and the hardware-maintained A/D bits masked, for
  // "has anything but A/D changed under me" comparisons.
  constexpr Entry identity() const { return raw_ & ~(kLockBit | kAccessedDirty); }
  constexpr PageTableEntry without_lock() const { return PageTableEntry(raw_ & ~kLockBit); }
  constexpr PageTableEntry with(Entry bits) const { return PageTableEntry(raw_ | bits); }
  constexpr PageTableEntry without(Entry bits) const { return PageTableEntry(raw_ & ~bits); }

  friend constexpr bool operator==(PageTableEntry a, PageTableEntry b) { return a.raw_ == b.raw_; }

 private:
  Entry raw_ = 0;
};

static_assert(sizeof(PageTableEntry<I386Format>) == 4);
static_assert(sizeof(PageTableEntry<X86_64Format>) == 8);
static_assert(PageTableEntry<I386Format>::swap(5).kind() == EntryKind::Swap);
static_assert(PageTableEntry<PaeFormat>::transition(7).frame() == 7);
static_assert(PageTableEntry<X86_64Format>::protnone(9, true, false).kind() == EntryKind::ProtNone);

}  // namespace mmu
