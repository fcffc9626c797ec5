// PagedAddressSpace, the reverse map of pages fork left shared: this space's half of the
// family walk in mmu/cow_reclaim.h. A private page counted in several spaces after fork is
// found at the same address in each member of the family; the reclaimer takes every pte
// that maps it into transition (seed 000: never to empty), and only once those ptes account
// for every reference does the page go to swap, one slot shared by all of them.
//
// The caller holds this space's mmap lock for read from take_cow_ptes to settle_cow_pte, as
// reclaim_frames holds it from transition to swap entry: fork, munmap and mprotect never
// meet an entry in transition.
//
// Part of mmu/paged_address_space.h, which includes it at its end: include that file.
#pragma once

#include "mmu/paged_address_space.h"

namespace mmu {

template <class F, class S>
inline auto PagedAddressSpace<F, S>::take_cow_ptes(VcpuId v, std::span<CowTarget> targets) -> void {
  auto& stats = counters_.slot(v);
  auto env_ = env(stats);
  bool code = false;
  {
    auto batch = make_batch(v);
    for (CowTarget& t : targets) {
      t.taken = false;
      const auto found = own_pte_slot(v, t.va, stats);
      if (!found) continue;
      const Slot slot = *found;
      const auto r = reclaim_begin(env_, slot, [&](Pte cur) -> std::optional<Pte> {
        if (!cur.is_present() || cur.frame() != t.frame || cur.is_accessed()) return std::nullopt;
        return Pte::transition(t.frame);
      });
      if (!r.applied) continue;
      t.taken = true;
      t.pte = slot.paddr(pool_);
      t.before = r.before.raw();
      t.dirty = r.before.is_dirty();
      batch.invalidate(t.va);
      if (r.before.is_executable()) {
        const Vma* vma = vmas_.find(t.va);
        code |= !vma || (vma->prot & kProtExec);
      }
    }
    // The batch flushes here, once for every pte taken.
  }
  if (code) {
    tlbs_->invalidate_code(*this);
    stats.add(MmuCounter::CodeInvalidations);
  }
}

template <class F, class S>
inline auto PagedAddressSpace<F, S>::settle_cow_pte(VcpuId v, const CowTarget& t, SwapSlot swap_slot) -> void {
  auto& stats = counters_.slot(v);
  auto env_ = env(stats);
  const FrameNumber table = static_cast<FrameNumber>(t.pte >> kPageShift);
  const Slot slot{reinterpret_cast<Entry*>(pool_.host(t.pte)), table, 1};
  if (swap_slot == kNoSwapSlot) {
    reclaim_end(env_, slot, Pte(static_cast<Entry>(t.before)).without(Pte::kAccessed));
    return;
  }
  reclaim_end(env_, slot, Pte::swap(swap_slot));
  rss_add(v, -1);
}

}  // namespace mmu
