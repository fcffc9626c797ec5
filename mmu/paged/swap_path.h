// PagedAddressSpace, reclaim and swap: reclaim_frames() ages the frames the reclaimer
// handed over by their accessed bits, takes the cold ones into transition, flushes the TLBs
// once for the batch and writes the pages out in runs; swap_in() reads a page back on a
// fault.
//
// Seed 000's transition rule: a pte goes present -> transition -> swap on the way out and
// swap -> transition -> present on the way in, never through empty, so a fault meeting it
// waits instead of populating a fresh page over it. Under `ptebit` (seed 001) the entry is
// taken with clear-and-lock and stays locked while in transition. Only the mmap lock for
// read and the scheme's entry or table locks are held, so faults elsewhere in the space go
// on meanwhile (the point of seed 003 for `split`).
//
// Part of mmu/paged_address_space.h, which includes it at its end: include that file.
#pragma once

#include <algorithm>
#include <vector>

#include "mmu/paged_address_space.h"

namespace mmu {

template <class F, class S>
inline auto PagedAddressSpace<F, S>::reclaim_frames(VcpuId v, std::span<const FrameNumber> frames) -> ReclaimOutcome {
  ReclaimOutcome outcome;
  auto& stats = counters_.slot(v);
  auto env_ = env(stats);
  std::vector<Victim> victims;
  victims.reserve(frames.size());
  MmapReadGuard guard(mmap_lock_, v);
  bool code = false;
  {
    auto batch = make_batch(v);
    for (const FrameNumber f : frames) {
      stats.add(MmuCounter::ReclaimScanned);
      Slot slot{};
      if (!mapping_slot(f, slot) && !(claim_exclusive_table(v, f, stats) && mapping_slot(f, slot))) continue;
      const Pte e = slot.load().without_lock();
      if (!e.is_present() || e.frame() != f) continue;
      if (e.is_accessed()) {
        // Test-and-clear, lock-free in every scheme as the hardware's own A/D updates are.
        // No flush: a cached translation only delays the next accessed mark (as on x86).
        slot.ref().fetch_and(static_cast<Entry>(~Pte::kAccessed), std::memory_order_acq_rel);
        stats.add(MmuCounter::ReclaimAged);
        continue;
      }
      if (!config_.swap) continue;
      // Present -> transition, never -> empty (seed 000): a fault meeting it waits.
      const auto r = reclaim_begin(env_, slot, [&](Pte cur) -> std::optional<Pte> {
        if (!cur.is_present() || cur.frame() != f || cur.is_accessed()) return std::nullopt;
        return Pte::transition(f);
      });
      if (!r.applied) continue;
      const VirtAddr va = pool_.descriptor(f).vaddr.load(std::memory_order_relaxed);
      batch.invalidate(va);
      if (r.before.is_executable()) {
        const Vma* vma = vmas_.find(va);
        code |= !vma || (vma->prot & kProtExec);
      }
      victims.push_back({f, slot, r.before});
    }
    // The batch flushes here: one shootdown for all victims, no table lock held (ptebit
    // holds entry lock bits, but faults meeting them wait serving their mailbox).
  }
  if (code) {
    tlbs_->invalidate_code(*this);
    stats.add(MmuCounter::CodeInvalidations);
  }
  write_out(v, victims, stats, outcome);
  return outcome;
}

// The scheme's way of taking an entry into transition and out again: clear-and-lock for
// ptebit (the lock bit stays set while the page is in transition), an ordinary update for
// the others.
template <class F, class S>
template <class Change>
inline auto PagedAddressSpace<F, S>::reclaim_begin(SchemeEnv& env_, const Slot& slot,
                                                   Change&& change) -> UpdateResult<F> {
  if constexpr (S::kKind == SchemeKind::PteBit) {
    return S::clear_and_lock(env_, slot, change);
  } else {
    return S::update(env_, slot, change);
  }
}

template <class F, class S>
inline auto PagedAddressSpace<F, S>::reclaim_end(SchemeEnv& env_, const Slot& slot, Pte final) -> void {
  if constexpr (S::kKind == SchemeKind::PteBit) {
    (void)env_;
    S::unlock_to(slot, final);
  } else {
    (void)S::update(env_, slot, [&](Pte) -> std::optional<Pte> { return final; });
  }
}

// The pte that maps anon frame `f`, from the reverse map; false when the frame is not
// (or no longer) a mapped page of this space alone. With the mmap lock held for read a
// table is freed only by unsharing, which never frees one behind a writable PMD entry:
// the table found (checked to be behind ours) stays a table.
template <class F, class S>
inline auto PagedAddressSpace<F, S>::mapping_slot(FrameNumber f, Slot& out) const -> bool {
  const FrameDescriptor& d = pool_.descriptor(f);
  if (d.state.load(std::memory_order_acquire) != FrameState::Anon || d.owner.load(std::memory_order_relaxed) != config_.id)
    return false;
  const PhysAddr at = d.rmap_pte.load(std::memory_order_acquire);
  const FrameNumber table = static_cast<FrameNumber>(at >> kPageShift);
  if (at == 0 || table >= pool_.frame_count() || at % sizeof(Entry) != 0) return false;
  const FrameDescriptor& t = pool_.descriptor(table);
  if (t.state.load(std::memory_order_acquire) != FrameState::PageTable ||
      t.table_level.load(std::memory_order_relaxed) != 1 || t.owner.load(std::memory_order_relaxed) != config_.id)
    return false;
  // Pages and tables fork shares are left alone: their other mappers' ptes and TLBs are
  // not ours to change. Only a table our own writable PMD entry points at is ours alone
  // (the mmap lock keeps it so: only our fork could share it again).
  if (d.refs.load(std::memory_order_acquire) != 1 || t.refs.load(std::memory_order_acquire) != 1) return false;
  const auto pmd = pmd_slot(d.vaddr.load(std::memory_order_relaxed));
  if (!pmd) return false;
  const Pte p = pmd->load();
  if (!p.is_writable() || p.frame() != table) return false;
  out = Slot{reinterpret_cast<Entry*>(pool_.host(at)), table, 1};
  return true;
}

// A page of ours (count 1) behind a table every other space has let go of (count 1) but
// whose PMD entry is still write-protected from the fork that shared it: nobody writes
// through it, so no fault will take it back, and its pages would stay out of reclaim's
// reach. Take it back in place as a write fault would (unshare_table's count-1 case, no
// allocation). False when the page is not in that state.
template <class F, class S>
inline auto PagedAddressSpace<F, S>::claim_exclusive_table(VcpuId v, FrameNumber f, MmuCounters::Slot& stats) -> bool {
  const FrameDescriptor& d = pool_.descriptor(f);
  if (d.state.load(std::memory_order_acquire) != FrameState::Anon || d.owner.load(std::memory_order_relaxed) != config_.id ||
      d.refs.load(std::memory_order_acquire) != 1)
    return false;
  const VirtAddr va = d.vaddr.load(std::memory_order_relaxed);
  const auto pmd = pmd_slot(va);
  if (!pmd) return false;
  const Pte p = pmd->load().without_lock();
  if (!p.is_present() || p.is_writable()) return false;
  const FrameNumber table = p.frame();
  if (table == 0 || table >= pool_.frame_count()) return false;
  const FrameDescriptor& t = pool_.descriptor(table);
  if (t.state.load(std::memory_order_acquire) != FrameState::PageTable || t.table_level.load(std::memory_order_relaxed) != 1 ||
      t.refs.load(std::memory_order_acquire) != 1)
    return false;
  return unshare_table(v, *pmd, p, va, stats);
}

// Writes the victims to swap (unless an up-to-date copy is there already), points their
// ptes at their slots and frees their frames. Slots are taken first and the writes go out
// in runs of consecutive slots, one vectored write each: a page at a time, the swap's write
// rate was a third of a plain sequential write's. A page that cannot go (swap full, a
// failed write) gets its pte back.
template <class F, class S>
inline auto PagedAddressSpace<F, S>::write_out(VcpuId v, std::vector<Victim>& victims, MmuCounters::Slot& stats,
                                               ReclaimOutcome& outcome) -> void {
  SwapDevice& swap = *config_.swap;
  auto env_ = env(stats);
  auto keep = [&](const Victim& victim) {
    reclaim_end(env_, victim.slot, victim.before.without(Pte::kAccessed));
  };
  std::vector<Victim*> going;
  for (Victim& victim : victims) {
    const uint32_t copy = pool_.descriptor(victim.frame).swap_copy.exchange(0, std::memory_order_acq_rel);
    victim.swap_slot = copy ? copy - 1 : kNoSwapSlot;
    if (victim.swap_slot != kNoSwapSlot && victim.before.is_dirty() && swap.extra_refs(victim.swap_slot) > 0) {
      // The old copy is another process's page now (fork): write ours elsewhere.
      swap.free(victim.swap_slot);
      victim.swap_slot = kNoSwapSlot;
    }
    victim.needs_write = victim.swap_slot == kNoSwapSlot || victim.before.is_dirty();
    if (victim.swap_slot == kNoSwapSlot) victim.swap_slot = swap.allocate(Pte::kMaxSwapSlot + 1);
    if (victim.swap_slot == kNoSwapSlot) {
      stats.add(MmuCounter::SwapFull);
      outcome.swap_full = true;
      keep(victim);
      continue;
    }
    going.push_back(&victim);
  }
  std::sort(going.begin(), going.end(), [](const Victim* a, const Victim* b) { return a->swap_slot < b->swap_slot; });
  std::vector<uint8_t*> pages;
  for (size_t i = 0; i < going.size();) {
    size_t end = i + 1;
    if (going[i]->needs_write)
      while (end < going.size() && going[end]->needs_write && going[end]->swap_slot == going[end - 1]->swap_slot + 1)
        ++end;
    size_t written = end - i;
    if (going[i]->needs_write) {
      pages.clear();
      for (size_t k = i; k < end; ++k) pages.push_back(pool_.frame_ptr(going[k]->frame));
      written = swap.write_run(going[i]->swap_slot, pages);
    }
    for (size_t k = i; k < end; ++k) {
      Victim& victim = *going[k];
      if (k - i >= written) {
        swap.free(victim.swap_slot);
        stats.add(MmuCounter::SwapOutErrors);
        outcome.io_error = true;
        keep(victim);
        continue;
      }
      stats.add(victim.needs_write ? MmuCounter::SwapOuts : MmuCounter::ReclaimCleanDropped);
      reclaim_end(env_, victim.slot, Pte::swap(victim.swap_slot));
      rss_add(v, -1);
      pool_.free(v, victim.frame);
      ++outcome.freed;
      stats.add(MmuCounter::Reclaimed);
    }
    i = end;
  }
}

// A fault on a swap entry: one vCPU moves it to transition and reads the page back; others
// faulting the same page meanwhile find it in transition and wait (the swap cache: one
// read per page however many vCPUs want it).
template <class F, class S>
inline auto PagedAddressSpace<F, S>::swap_in(VcpuId v, VirtAddr addr, Access access, const Vma& vma, const Slot& slot,
                                             Pte seen, MmuCounters::Slot& stats, Translation& out) -> Leaf {
  SwapDevice* swap = config_.swap;
  if (!swap) {
    out = {FaultOutcome::SigBus};
    return Leaf::Done;
  }
  const FrameNumber f = pool_.allocate(v, FrameState::Anon, FrameFill::Uninitialized);
  if (f == kNoFrame) return out_of_memory(out);
  auto env_ = env(stats);
  const auto r = reclaim_begin(env_, slot, [&](Pte cur) -> std::optional<Pte> {
    if (cur.raw() != seen.raw()) return std::nullopt;
    return Pte::transition(f);
  });
  if (!r.applied) {
    pool_.free(v, f);
    return Leaf::Retry;
  }
  const SwapSlot from = static_cast<SwapSlot>(seen.swap_slot());
  if (!swap->read(from, pool_.frame_ptr(f))) {
    reclaim_end(env_, slot, seen);  // the page stays in swap; this access gets SIGBUS
    pool_.free(v, f);
    stats.add(MmuCounter::SwapInErrors);
    out = {FaultOutcome::SigBus};
    return Leaf::Done;
  }
  const bool write = access == Access::Write;
  FrameDescriptor& d = pool_.descriptor(f);
  d.owner.store(config_.id, std::memory_order_relaxed);
  d.vaddr.store(page_floor(addr), std::memory_order_relaxed);
  // A read keeps the swap copy, so the page can be dropped again without a write; a write
  // makes it stale at once.
  d.swap_copy.store(write ? 0 : from + 1, std::memory_order_relaxed);
  d.rmap_pte.store(slot.paddr(pool_), std::memory_order_release);
  if (write) swap->free(from);
  const bool exec = (vma.prot & kProtExec) || !F::kHasNx;
  const Pte want = Pte::page(PhysAddr{f} << kPageShift, (vma.prot & kProtWrite) != 0, exec, true, write);
  reclaim_end(env_, slot, want);
  rss_add(v, 1);
  stats.add(MmuCounter::FaultMajor);
  out = translation(want, 1, addr);
  return Leaf::Done;
}

// Releases the swap copy a frame being freed may hold.
template <class F, class S>
inline auto PagedAddressSpace<F, S>::drop_swap_copy(FrameNumber f) -> void {
  const uint32_t copy = pool_.descriptor(f).swap_copy.exchange(0, std::memory_order_acq_rel);
  if (copy && config_.swap) config_.swap->free(copy - 1);
}

}  // namespace mmu
