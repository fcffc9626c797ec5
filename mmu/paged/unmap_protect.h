// PagedAddressSpace, unmap and protection change, both with the mmap lock held for write:
// zap_range_locked() clears a range, freeing the tables it empties, and
// change_protection_locked() rewrites the ptes of a range (mprotect). Flushes and frees
// are recorded in the caller's ShootdownBatch and happen after the change. Whole-space
// teardown is AddressSpace::teardown(), a zap of everything.
//
// Seeds: entries change through the scheme (S::update(), and S::with_table() for a whole
// pte table at once, seeds 000-003); a table shared by fork is dropped by reference when
// covered whole and unshared first when covered in part (seed 004).
//
// Part of mmu/paged_address_space.h, which includes it at its end: include that file.
#pragma once

#include <algorithm>
#include <optional>

#include "mmu/paged_address_space.h"

namespace mmu {

template <class F, class S>
inline auto PagedAddressSpace<F, S>::zap_range_locked(ShootdownBatch& batch, VcpuId v, VirtAddr start,
                                                      VirtAddr end) -> bool {
  auto& stats = counters_.slot(v);
  // A shared table the range covers only in part must be copied first, and copying can
  // fail: do it for both ends before anything changes (only the ends can be partial).
  if (start >= end) return true;
  if (!unshare_if_partial(v, start, start, end, stats) || !unshare_if_partial(v, end - 1, start, end, stats))
    return false;
  zap_table(batch, v, root_, F::kLevels, 0, start, end, stats);
  return true;
}

// The PMD entry of the pte table covering `addr`, if there is one (large pages aside).
template <class F, class S>
inline auto PagedAddressSpace<F, S>::pmd_slot(VirtAddr addr) const -> std::optional<Slot> {
  FrameNumber table = root_;
  for (int level = F::kLevels; level > 2; --level) {
    const Pte e = slot_at(table, level, addr).load();
    if (!e.is_present() || (F::can_be_large(level) && e.is_large())) return std::nullopt;
    table = e.frame();
  }
  const Slot pmd = slot_at(table, 2, addr);
  const Pte e = pmd.load();
  if (!e.is_present() || (F::can_be_large(2) && e.is_large())) return std::nullopt;
  return pmd;
}

template <class F, class S>
inline auto PagedAddressSpace<F, S>::unshare_if_partial(VcpuId v, VirtAddr addr, VirtAddr start, VirtAddr end,
                                                        MmuCounters::Slot& stats) -> bool {
  const auto pmd = pmd_slot(addr);
  if (!pmd) return true;
  const Pte e = pmd->load();
  const VirtAddr base = addr & ~(F::span(2) - 1);
  if (e.is_writable() || (start <= base && base + F::span(2) <= end)) return true;
  return unshare_table(v, *pmd, e, addr, stats);
}

// Clears the entries of `table` (covering from `base`) that fall in [start, end). Returns
// true when the table is left with no entry at all, so the caller may free it.
template <class F, class S>
inline auto PagedAddressSpace<F, S>::zap_table(ShootdownBatch& batch, VcpuId v, FrameNumber table, int level,
                                               VirtAddr base, VirtAddr start, VirtAddr end,
                                               MmuCounters::Slot& stats) -> bool {
  const uint64_t span = F::span(level);
  const VirtAddr table_end = base + span * F::entries(level);
  const VirtAddr lo = std::max(start, base);
  const VirtAddr hi = std::min(end, table_end);
  auto env_ = env(stats);
  if (level == 1) {
    // One lock acquisition for the whole pte table, as zap_pte_range does.
    S::with_table(env_, slot_at(table, 1, lo), [&] {
      for (VirtAddr a = lo; a < hi; a += kPageSize) {
        const Slot slot = slot_at(table, 1, a);
        if (slot.load().is_none()) continue;
        const auto r = S::update_in_table(env_, slot, [](Pte) -> std::optional<Pte> { return Pte(); });
        forget_leaf(batch, v, r.before, a, kPageSize);
      }
    });
    return table_is_empty(table, level);
  }
  for (VirtAddr a = lo & ~(span - 1); a < hi; a += span) {
    const Slot slot = slot_at(table, level, a);
    const Pte e = slot.load();
    if (e.is_none()) continue;
    if (level == 2 && e.is_present() && !(F::can_be_large(level) && e.is_large()) && !e.is_writable()) {
      // A table shared by fork, covered whole (zap_range_locked unshared partial ones):
      // our reference goes after our TLBs flush; the last one frees it (seed 004).
      rss_add(v, -present_pages(e.frame()));
      (void)S::update(env_, slot, [](Pte) -> std::optional<Pte> { return Pte(); });
      batch.invalidate(a, span);
      batch.free_after_flush(e.frame());
      stats.add(MmuCounter::SharedTablesDropped);
      continue;
    }
    if (e.is_present() && !(F::can_be_large(level) && e.is_large())) {
      const FrameNumber child = e.frame();
      if (!zap_table(batch, v, child, level - 1, a, start, end, stats)) continue;
      (void)S::update(env_, slot, [](Pte) -> std::optional<Pte> { return Pte(); });
      batch.free_after_flush(child);  // empty now: release_after_flush frees it
      stats.add(MmuCounter::TablesFreed);
      continue;
    }
    // A large page: cleared only when the range covers it whole. Its frames are not ours
    // (only tests install large pages), so only the translation goes.
    if (a < start || a + span > end) continue;
    const auto r = S::update(env_, slot, [](Pte) -> std::optional<Pte> { return Pte(); });
    if (r.before.is_present()) batch.invalidate(a, span);
  }
  return table_is_empty(table, level);
}

// Accounts for a pte just cleared: flush its translation, drop its frame's reference after
// the flush (the frame and the swap copy it kept go with the last), free its swap slot.
template <class F, class S>
inline auto PagedAddressSpace<F, S>::forget_leaf(ShootdownBatch& batch, VcpuId v, Pte old, VirtAddr a,
                                                 uint64_t span) -> void {
  if (old.kind() == EntryKind::Present) batch.invalidate(a, span);
  if (old.kind() == EntryKind::Swap && config_.swap) config_.swap->free(static_cast<SwapSlot>(old.swap_slot()));
  if ((old.kind() == EntryKind::Present || old.kind() == EntryKind::ProtNone) &&
      old.frame() != FramePool::zero_frame()) {
    rss_add(v, -1);
    batch.free_after_flush(old.frame());
  }
}

template <class F, class S>
inline auto PagedAddressSpace<F, S>::present_pages(FrameNumber table) const -> int64_t {
  auto* entries = reinterpret_cast<Entry*>(pool_.frame_ptr(table));
  int64_t n = 0;
  for (unsigned i = 0; i < F::entries(1); ++i) {
    const Pte e(std::atomic_ref<Entry>(entries[i]).load(std::memory_order_relaxed));
    n += (e.kind() == EntryKind::Present || e.kind() == EntryKind::ProtNone) && e.frame() != FramePool::zero_frame();
  }
  return n;
}

// Entries outside a zapped range, or children that kept entries, keep a table alive.
template <class F, class S>
inline auto PagedAddressSpace<F, S>::table_is_empty(FrameNumber table, int level) const -> bool {
  if (level == F::kLevels) return false;  // the root stays
  auto* entries = reinterpret_cast<Entry*>(pool_.frame_ptr(table));
  for (unsigned i = 0; i < F::entries(level); ++i)
    if (!Pte(std::atomic_ref<Entry>(entries[i]).load(std::memory_order_relaxed)).is_none()) return false;
  return true;
}

template <class F, class S>
inline auto PagedAddressSpace<F, S>::change_protection_locked(ShootdownBatch& batch, VcpuId v, VirtAddr start,
                                                              VirtAddr end, uint8_t prot) -> bool {
  auto& stats = counters_.slot(v);
  auto env_ = env(stats);
  const bool accessible = prot != kProtNone;
  const bool writable = prot & kProtWrite;
  const bool exec = (prot & kProtExec) || !F::kHasNx;
  for (VirtAddr a = start; a < end;) {
    // Find the pte table covering `a`, skipping unpopulated upper entries whole.
    FrameNumber table = root_;
    int level = F::kLevels;
    bool unshared = false;
    for (; level > 1; --level) {
      const Slot upper = slot_at(table, level, a);
      const Pte e = upper.load();
      if (!e.is_present() || (F::can_be_large(level) && e.is_large())) break;
      if (level == 2 && !e.is_writable()) {
        // Shared by fork: ours to change only once copied.
        if (!unshare_table(v, upper, e, a, stats)) return false;
        unshared = true;
        break;
      }
      table = e.frame();
    }
    if (unshared) continue;
    if (level > 1) {
      a = (a & ~(F::span(level) - 1)) + F::span(level);
      continue;
    }
    const Slot slot = slot_at(table, 1, a);
    bool downgraded = false;
    (void)S::update(env_, slot, [&](Pte cur) -> std::optional<Pte> {
      if (cur.kind() != EntryKind::Present && cur.kind() != EntryKind::ProtNone) return std::nullopt;
      // The zero page, and pages fork left counted twice, stay read-only: copy-on-write.
      const bool shared = keeps_write_protect(cur);
      const Pte want = accessible ? Pte::page(cur.address(), writable && !shared, exec, cur.is_accessed(), cur.is_dirty())
                                  : Pte::protnone(cur.frame(), cur.is_accessed(), cur.is_dirty());
      downgraded = cur.is_present() && (!want.is_present() || (cur.is_writable() && !want.is_writable()) ||
                                        (cur.is_executable() && !want.is_executable()));
      return want;
    });
    if (downgraded) batch.invalidate(a);
    a += kPageSize;
  }
  return true;
}

}  // namespace mmu
