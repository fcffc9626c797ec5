// PagedAddressSpace, the reverse map of shared memory: a SharedMemory object lists where each
// address space maps it (SharedMemory::Mapper), so the pte of one of its pages in a space is
// found by a walk at a known address, as Linux finds a file page's ptes through i_mmap. These
// are the space's half: age the pte found there, or take it away.
//
// Only the mmap lock for read and the scheme's locks are held, as in reclaim_frames. A pte
// table reached through a read-only PMD entry is shared by fork (seed 004) and is not ours to
// change: aging only clears accessed bits there (as the walker sets them), and unmapping
// unshares it first (as a write fault would).
//
// Part of mmu/paged_address_space.h, which includes it at its end: include that file.
#pragma once

#include "mmu/paged_address_space.h"

namespace mmu {

template <class F, class S>
inline auto PagedAddressSpace<F, S>::clear_accessed_if_maps(VcpuId v, VirtAddr va, FrameNumber f) -> bool {
  if (va >= F::kVirtLimit) return false;
  MmapReadGuard guard(mmap_lock_, v);
  counters_.slot(v).add(MmuCounter::RmapWalks);
  const auto pmd = pmd_slot(va);
  if (!pmd) return false;
  // Through a table fork shares too: the walker sets accessed bits there as everywhere, and
  // clearing one is as harmless to a copy made meanwhile.
  const Slot slot = slot_at(pmd->load().without_lock().frame(), 1, va);
  const Pte e = slot.load().without_lock();
  if (!e.is_present() || e.frame() != f || !e.is_accessed()) return false;
  // Test-and-clear without a flush, as reclaim_frames ages private pages.
  slot.ref().fetch_and(static_cast<Entry>(~Pte::kAccessed), std::memory_order_acq_rel);
  counters_.slot(v).add(MmuCounter::ReclaimAged);
  return true;
}

// The pte slot for `va` in a table of this space's own, for a change to it: a table fork
// shares is changed by nobody (its copies are made from it without locks), so it is copied
// first, or taken back at count 1, as a write fault would. nullopt: no table maps `va`, or no
// frame for the copy. Counts one rmap walk.
template <class F, class S>
inline auto PagedAddressSpace<F, S>::own_pte_slot(VcpuId v, VirtAddr va, MmuCounters::Slot& stats)
    -> std::optional<Slot> {
  if (va >= F::kVirtLimit) return std::nullopt;
  stats.add(MmuCounter::RmapWalks);
  auto pmd = pmd_slot(va);
  if (!pmd) return std::nullopt;
  Pte p = pmd->load().without_lock();
  if (!p.is_writable()) {
    if (!unshare_table(v, *pmd, p, va, stats)) return std::nullopt;
    pmd = pmd_slot(va);
    if (!pmd) return std::nullopt;
    p = pmd->load().without_lock();
    if (!p.is_writable()) return std::nullopt;
  }
  return slot_at(p.frame(), 1, va);
}

template <class F, class S>
inline auto PagedAddressSpace<F, S>::unmap_shared_pages(VcpuId v, std::span<RmapTarget> targets) -> bool {
  auto& stats = counters_.slot(v);
  auto env_ = env(stats);
  // Only trying: the caller has pages busy that a fault holding this lock may wait for.
  if (!mmap_lock_.try_lock_shared(v)) return false;
  bool code = false;
  {
    auto batch = make_batch(v);
    for (RmapTarget& t : targets) {
      const auto found = own_pte_slot(v, t.va, stats);
      if (!found) continue;
      const Slot slot = *found;
      // Straight to empty, not through transition: the object marks the page busy, and a fault
      // meeting the empty pte asks the object and waits (SharedPageResult::Busy).
      const auto r = S::update(env_, slot, [&](Pte cur) -> std::optional<Pte> {
        const bool maps = cur.kind() == EntryKind::Present || cur.kind() == EntryKind::ProtNone;
        if (!maps || cur.frame() != t.frame) return std::nullopt;
        return Pte();
      });
      if (!r.applied) continue;
      t.cleared = true;
      t.dirty = r.before.is_dirty();
      if (r.before.kind() == EntryKind::Present) batch.invalidate(t.va);
      if (r.before.is_executable()) {
        const Vma* vma = vmas_.find(t.va);
        code |= !vma || (vma->prot & kProtExec);
      }
      rss_add(v, -1);
      batch.free_after_flush(t.frame);  // the object's own reference keeps the frame
      stats.add(MmuCounter::SharedUnmapped);
    }
  }
  if (code) {
    tlbs_->invalidate_code(*this);
    stats.add(MmuCounter::CodeInvalidations);
  }
  mmap_lock_.unlock_shared(v);
  return true;
}

}  // namespace mmu
