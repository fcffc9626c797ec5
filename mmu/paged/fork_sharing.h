// PagedAddressSpace, fork and page-table sharing: fork_tables_locked() copies the parent's
// tables into the child, or with ForkTables::Share lets both point at the same pte tables;
// unshare_table() gives a space a table of its own before it changes anything below it;
// release_after_flush() and free_table() drop references once the TLBs let go, the last
// one freeing the table and what only it kept alive.
//
// Seed 004 (page-table sharing on fork): a shared table is counted in its frame
// descriptor's refs and mapped read-only through the PMD entry in every sharer; a change
// starts with unsharing (reuse at count 1, copy above it), and racing sharers and
// unsharers are settled by the counts and each space's own share lock, with no lock held
// across address spaces.
//
// Part of mmu/paged_address_space.h, which includes it at its end: include that file.
#pragma once

#include <cstdio>
#include <cstdlib>

#include "mmu/paged_address_space.h"

namespace mmu {

// Both mmap locks held for write: no fault, reclaim or swap-in runs in the parent, so no
// entry is in transition and none changes but through us.
template <class F, class S>
inline auto PagedAddressSpace<F, S>::fork_tables_locked(ShootdownBatch& batch, VcpuId v, AddressSpace& child_base,
                                                        ForkTables tables) -> bool {
  auto& child = static_cast<PagedAddressSpace&>(child_base);
  return fork_table(batch, v, child, root_, child.root_, F::kLevels, 0, tables, counters_.slot(v));
}

template <class F, class S>
inline auto PagedAddressSpace<F, S>::fork_table(ShootdownBatch& batch, VcpuId v, PagedAddressSpace& child,
                                                FrameNumber from, FrameNumber to, int level, VirtAddr base,
                                                ForkTables tables, MmuCounters::Slot& stats) -> bool {
  auto env_ = env(stats);
  auto* dst = reinterpret_cast<Entry*>(pool_.frame_ptr(to));
  const uint64_t span = F::span(level);
  for (unsigned i = 0; i < F::entries(level); ++i) {
    const VirtAddr a = base + span * i;
    const Slot slot{reinterpret_cast<Entry*>(pool_.frame_ptr(from)) + i, from, level};
    Pte e = slot.load().without_lock();
    if (e.is_none()) continue;
    if (level == 1) {
      // A private page: write-protected here too, so each side's next write copies it.
      // Shared memory stays writable on both sides: both write the same frame.
      if (e.is_present() && e.is_writable() && !is_shared_memory(e.frame())) {
        (void)S::update(env_, slot, [](Pte cur) -> std::optional<Pte> { return cur.without(Pte::kWritable); });
        batch.invalidate(a);
        e = slot.load().without_lock();
      }
      std::atomic_ref<Entry>(dst[i]).store(share_entry(e).raw(), std::memory_order_relaxed);
      continue;
    }
    if (!e.is_present() || (F::can_be_large(level) && e.is_large())) {
      std::atomic_ref<Entry>(dst[i]).store(e.raw(), std::memory_order_relaxed);  // tests' large pages
      continue;
    }
    if (level == 2 && tables == ForkTables::Share) {
      // Seed 004's share: count first; a table at count 1 is made read-only (a count above
      // 1 means it already is), and the parent's writable translations through it go.
      pool_.add_ref(e.frame());
      if (e.is_writable()) {
        (void)S::update(env_, slot, [](Pte cur) -> std::optional<Pte> { return cur.without(Pte::kWritable); });
        batch.invalidate(a, span);
      }
      std::atomic_ref<Entry>(dst[i]).store(e.without(Pte::kWritable).raw(), std::memory_order_relaxed);
      stats.add(MmuCounter::ForkTablesShared);
      continue;
    }
    const FrameNumber copy = child.alloc_table(v, level - 1, a, stats);
    if (copy == kNoFrame) return false;
    std::atomic_ref<Entry>(dst[i]).store(Pte::table(PhysAddr{copy} << kPageShift, level).raw(), std::memory_order_relaxed);
    if (level == 2) stats.add(MmuCounter::ForkTablesCopied);
    if (!fork_table(batch, v, child, e.frame(), copy, level - 1, a, tables, stats)) return false;
  }
  return true;
}

// Seed 004's unshare, for the pte table behind PMD entry `pmd` (seen as `seen`, read-only
// because shared). Under this space's share lock (the "local mm->page_table_lock" the seed
// relies on: it only orders this space's own vCPUs; nothing is locked across spaces):
//  - count 1: every other space has let go, the table is ours; pages still counted twice
//    lose their write bit, and the PMD entry gets its write bit back. No copy, no count.
//  - count > 1: copy it (each page it maps gains a reference and is write-protected in
//    the copy), install the copy, drop our reference; whoever drops the last one releases
//    the table. Racing unsharers each copy; only the last drop frees (put_page_testzero).
// The old table's translations stay valid for our TLBs: the copy maps the same frames,
// no more permissively. False: no frame for the copy.
template <class F, class S>
inline auto PagedAddressSpace<F, S>::unshare_table(VcpuId v, const Slot& pmd, Pte seen, VirtAddr addr,
                                                   MmuCounters::Slot& stats) -> bool {
  auto env_ = env(stats);
  MutexUniqueGuard g(share_lock_);
  const Pte cur = pmd.load();
  if (cur.identity() != seen.identity()) return true;  // another vCPU of ours did it
  const FrameNumber shared = cur.frame();
  auto* entries = reinterpret_cast<Entry*>(pool_.frame_ptr(shared));
  if (pool_.refs(shared) == 1) {
    for (unsigned i = 0; i < F::entries(1); ++i) {
      const Slot slot{entries + i, shared, 1};
      (void)S::update(env_, slot, [&](Pte e) -> std::optional<Pte> {
        if (!e.is_present() || !e.is_writable() || !copy_on_write_frame(e.frame())) return std::nullopt;
        return e.without(Pte::kWritable);
      });
      claim_page(slot);
    }
    claim_table(shared);
    (void)S::update(env_, pmd, [&](Pte e) -> std::optional<Pte> { return e.with(Pte::kWritable); });
    stats.add(MmuCounter::UnsharesExclusive);
    return true;
  }
  const FrameNumber copy = alloc_table(v, 1, addr, stats);
  if (copy == kNoFrame) return false;
  auto* to = reinterpret_cast<Entry*>(pool_.frame_ptr(copy));
  for (unsigned i = 0; i < F::entries(1); ++i) {
    const Pte e = Pte(std::atomic_ref<Entry>(entries[i]).load(std::memory_order_acquire)).without_lock();
    std::atomic_ref<Entry>(to[i]).store(share_entry(e).raw(), std::memory_order_relaxed);
  }
  (void)S::update(env_, pmd, [&](Pte) -> std::optional<Pte> { return Pte::table(PhysAddr{copy} << kPageShift, 2); });
  stats.add(MmuCounter::UnsharesCopied);
  g.unlock();
  // Our reference goes only once no vCPU of ours can still be walking the old table (the
  // walk is lock-free; a vCPU acknowledges a shootdown only between walks): after that
  // it may be another space's alone, changed or freed.
  auto batch = make_batch(v);
  batch.invalidate(addr & ~(F::span(2) - 1), F::span(2));
  batch.free_after_flush(shared);
  return true;
}

// What a copy of pte `e` holds, counted: a page gains a reference and loses its write bit
// (copy-on-write, in both copies: the caller write-protects the original), a swap entry
// gains a slot reference. Only entries no fault is working on reach here: tables are
// copied under the mmap lock held for write, or shared, where nothing changes an entry.
template <class F, class S>
inline auto PagedAddressSpace<F, S>::share_entry(Pte e) -> Pte {
  switch (e.kind()) {
    case EntryKind::None: return Pte();
    case EntryKind::Present:
      pool_.add_ref(e.frame());
      return is_shared_memory(e.frame()) ? e : e.without(Pte::kWritable);
    case EntryKind::ProtNone: pool_.add_ref(e.frame()); return e;
    case EntryKind::Swap: config_.swap->dup(static_cast<SwapSlot>(e.swap_slot())); return e;
    case EntryKind::Transition: break;
  }
  std::fprintf(stderr, "emu mmu: a page in transition met while copying a page table\n");
  std::abort();
}

// The reclaimer finds a page through its owner tag and reverse map: once a table or page
// is ours alone again, point them at us (stale ones are only ever skipped).
template <class F, class S>
inline auto PagedAddressSpace<F, S>::claim_table(FrameNumber table) -> void {
  pool_.descriptor(table).owner.store(config_.id, std::memory_order_relaxed);
}

template <class F, class S>
inline auto PagedAddressSpace<F, S>::claim_page(const Slot& slot) -> void {
  const Pte e = slot.load();
  if (!e.is_present() || e.frame() == FramePool::zero_frame() || pool_.refs(e.frame()) != 1) return;
  FrameDescriptor& d = pool_.descriptor(e.frame());
  d.owner.store(config_.id, std::memory_order_relaxed);
  d.rmap_pte.store(slot.paddr(pool_), std::memory_order_release);
}

// A table no space references any more (the last drop): what it maps loses a reference
// (no TLB holds a translation through it: each space flushed before letting go), then the
// frame goes.
template <class F, class S>
inline auto PagedAddressSpace<F, S>::free_table(VcpuId v, FrameNumber table) -> void {
  const int level = pool_.descriptor(table).table_level.load(std::memory_order_relaxed);
  auto* entries = reinterpret_cast<Entry*>(pool_.frame_ptr(table));
  for (unsigned i = 0; i < F::entries(level); ++i) {
    const Pte e = Pte(std::atomic_ref<Entry>(entries[i]).load(std::memory_order_acquire)).without_lock();
    if (level > 1 && e.is_present() && !(F::can_be_large(level) && e.is_large())) {
      if (pool_.drop_ref(e.frame())) free_table(v, e.frame());
      continue;
    }
    if (level == 1) drop_leaf(v, e);
  }
  release_table(table);
  pool_.free(v, table);
}

// One reference less to what a pte maps; the page or swap slot goes with the last.
template <class F, class S>
inline auto PagedAddressSpace<F, S>::drop_leaf(VcpuId v, Pte e) -> void {
  if (e.kind() == EntryKind::Swap) config_.swap->free(static_cast<SwapSlot>(e.swap_slot()));
  if (e.kind() != EntryKind::Present && e.kind() != EntryKind::ProtNone) return;
  if (!pool_.drop_ref(e.frame())) return;
  drop_swap_copy(e.frame());
  pool_.free(v, e.frame());
}

template <class F, class S>
inline auto PagedAddressSpace<F, S>::release_after_flush(VcpuId v, FrameNumber f) -> void {
  if (!pool_.drop_ref(f)) return;
  if (pool_.descriptor(f).state.load(std::memory_order_acquire) == FrameState::PageTable) {
    free_table(v, f);
    return;
  }
  drop_swap_copy(f);
  pool_.free(v, f);
}

}  // namespace mmu
