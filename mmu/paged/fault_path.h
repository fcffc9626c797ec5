// PagedAddressSpace, the fault path: translate() and peek(), the lock-free walk, populating
// missing tables, and what a leaf entry becomes on a fault (shared zero page, fresh or
// file-filled frame, copy-on-write, in-place upgrade, a wait on a page in transition).
//
// Seeds 000-003, the schemes' populate and update: every entry change here goes through
// S::update(), which is a cmpxchg for `atomic` (seed 000), the entry's own lock bit for
// `ptebit` (seed 001), the table's split lock for `split` (seeds 002 and 003) or the one
// page_table_lock for `global`. populate_tables() allocates a table first and publishes it
// through the scheme, the loser of a race freeing its unpublished table (seed 000's
// *_test_and_populate); alloc_table()/release_table() are the page-table constructor and
// destructor, whose failure is handled (seed 002). A write below a table fork shares
// unshares it first (seed 004, see fork_sharing.h).
//
// Part of mmu/paged_address_space.h, which includes it at its end: include that file.
#pragma once

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "mmu/paged_address_space.h"

namespace mmu {

template <class F, class S>
inline auto PagedAddressSpace<F, S>::translate(VcpuId v, VirtAddr addr, Access access) -> Translation {
  auto& stats = counters_.slot(v);
  if (addr >= F::kVirtLimit) {
    stats.add(MmuCounter::FaultSegvMap);
    return {FaultOutcome::SegvMapError};
  }
  for (;;) {
    bool wait_for_memory = false;
    {
      MmapReadGuard guard(mmap_lock_, v);
      Translation t;
      if (fault_locked(v, addr, access, stats, t) == Step::Done) {
        if (t.outcome != FaultOutcome::OutOfMemory || !config_.reclaimer) {
          if (t.outcome == FaultOutcome::OutOfMemory) stats.add(MmuCounter::FaultOutOfMemory);
          return t;
        }
        wait_for_memory = true;
      }
    }
    if (wait_for_memory) {
      // No frame: wait for the reclaimer with no lock held (it needs the mmap lock, and a
      // writer queued behind us would otherwise keep it out), serving the mailbox.
      stats.add(MmuCounter::FaultMemoryWaits);
      if (config_.reclaimer->wait_for_frames([&] { mmap_lock_.wait_once(v); })) continue;
      stats.add(MmuCounter::FaultOutOfMemory);
      return {FaultOutcome::OutOfMemory};
    }
    // The address is just below a grows-down stack: extend it (needs the lock for write).
    if (!grow_stack(v, addr)) {
      stats.add(MmuCounter::FaultSegvMap);
      return {FaultOutcome::SegvMapError};
    }
  }
}

template <class F, class S>
inline auto PagedAddressSpace<F, S>::peek(VcpuId v, VirtAddr addr) -> std::optional<PhysAddr> {
  if (addr >= F::kVirtLimit) return std::nullopt;
  MmapReadGuard guard(mmap_lock_, v);
  FrameNumber table = root_;
  for (int level = F::kLevels;; --level) {
    const Pte e = slot_at(table, level, addr).load();
    if (!e.is_present()) return std::nullopt;
    if (level == 1 || (F::can_be_large(level) && e.is_large())) return translation(e, level, addr).page;
    table = e.frame();
  }
}

// The whole fault, under the mmap lock held for read. Loops until the access can proceed or
// must not; Step::GrowStack asks the caller to extend a stack and come back.
template <class F, class S>
inline auto PagedAddressSpace<F, S>::fault_locked(VcpuId v, VirtAddr addr, Access access, MmuCounters::Slot& stats,
                                                  Translation& out) -> Step {
  for (;;) {
    // Fast path: a lock-free walk, as the hardware walker would do.
    // A pte table shared by fork is reached through a read-only PMD entry: as on x86, the
    // write permission is that of every level, so a write comes to the slow path.
    FrameNumber table = root_;
    int level = F::kLevels;
    Slot slot = slot_at(table, level, addr);
    Pte e = slot.load();
    bool shared = false;
    while (level > 1 && e.is_present() && !(F::can_be_large(level) && e.is_large())) {
      if (level == 2) shared = !e.is_writable();
      table = e.frame();
      --level;
      slot = slot_at(table, level, addr);
      e = slot.load();
    }
    if (e.is_present() && permits(e, access) && !(shared && access == Access::Write)) {
      Pte now;
      if (mark_accessed(slot, e, access, stats, &now)) {
        out = translation(now, level, addr, shared);
        return Step::Done;
      }
      stats.add(MmuCounter::FaultRetry);
      continue;
    }

    // Slow path: the VMA decides.
    const Vma* vma = vmas_.find(addr);
    if (!vma) {
      if (stack_growth_for_locked(addr) == StackGrowth::Grow) return Step::GrowStack;
      stats.add(MmuCounter::FaultSegvMap);
      out = {FaultOutcome::SegvMapError};
      return Step::Done;
    }
    if (!vma->allows(access)) {
      stats.add(MmuCounter::FaultSegvAccess);
      out = {FaultOutcome::SegvAccessError};
      return Step::Done;
    }
    if (populate_tables(v, addr, stats, slot, level) == Populate::OutOfMemory) {
      out = {FaultOutcome::OutOfMemory};
      return Step::Done;
    }
    const Leaf r = handle_leaf(v, addr, access, *vma, slot, level, stats, out);
    if (r == Leaf::Done) return Step::Done;
    stats.add(MmuCounter::FaultRetry);
    // The reclaimer may be waiting for this vCPU's shootdown acknowledgement.
    if (r == Leaf::Wait) mmap_lock_.wait_once(v);
  }
}

// Walks from the root, allocating missing tables (pte_alloc/pmd_alloc: allocate first,
// then publish through the scheme; the loser of a race frees its table). Leaves `slot` at
// the leaf entry: level 1, or a large page above it.
template <class F, class S>
inline auto PagedAddressSpace<F, S>::populate_tables(VcpuId v, VirtAddr addr, MmuCounters::Slot& stats, Slot& slot,
                                                     int& level) -> Populate {
  FrameNumber table = root_;
  level = F::kLevels;
  for (;; --level) {
    slot = slot_at(table, level, addr);
    if (level == 1) return Populate::Ok;
    Pte e = slot.load();
    if (!e.is_present()) {
      const FrameNumber fresh = alloc_table(v, level - 1, addr, stats);
      if (fresh == kNoFrame) return Populate::OutOfMemory;
      const Pte want = Pte::table(PhysAddr{fresh} << kPageShift, level);
      auto env_ = env(stats);
      const auto r = S::update(env_, slot, [&](Pte cur) -> std::optional<Pte> {
        if (!cur.is_none()) return std::nullopt;
        return want;
      });
      if (!r.applied) {
        // Never published: nobody can have seen it, free it now.
        stats.add(MmuCounter::PopulateRacesLost);
        release_table(fresh);
        pool_.free(v, fresh);
      }
      e = slot.load();
    }
    if (F::can_be_large(level) && e.is_large()) return Populate::Ok;
    if (level == 2 && !e.is_writable()) {
      // Every change below a table shared by fork starts by unsharing it (seed 004).
      if (!unshare_table(v, slot, e, addr, stats)) return Populate::OutOfMemory;
      ++level;  // look at this entry again: it now points at a table of our own
      continue;
    }
    table = e.frame();
  }
}

// Page-table constructor: the frame becomes a table of `level` (seed 002: the split lock
// is initialised here). May fail, as ptlock_alloc may.
template <class F, class S>
inline auto PagedAddressSpace<F, S>::alloc_table(VcpuId v, int level, VirtAddr addr,
                                                 MmuCounters::Slot& stats) -> FrameNumber {
  const FrameNumber f = pool_.allocate(v, FrameState::PageTable, FrameFill::Zero);
  if (f == kNoFrame) return kNoFrame;
  if (table_ctor_should_fail()) {
    stats.add(MmuCounter::TableCtorFailures);
    pool_.free(v, f);
    return kNoFrame;
  }
  init_table(f, level, addr & ~(F::span(level + 1) - 1));
  stats.add(MmuCounter::TablesAllocated);
  return f;
}

template <class F, class S>
inline auto PagedAddressSpace<F, S>::init_table(FrameNumber f, int level, VirtAddr base) -> void {
  FrameDescriptor& d = pool_.descriptor(f);
  d.table_level.store(static_cast<uint8_t>(level), std::memory_order_relaxed);
  d.owner.store(config_.id, std::memory_order_relaxed);
  d.vaddr.store(base, std::memory_order_relaxed);
}

// Page-table destructor: nothing may hold the split lock of a table being freed.
template <class F, class S>
inline auto PagedAddressSpace<F, S>::release_table(FrameNumber f) -> void {
  FrameDescriptor& d = pool_.descriptor(f);
  if (d.ptl.is_locked()) std::abort();
  d.table_level.store(0, std::memory_order_relaxed);
}

template <class F, class S>
inline auto PagedAddressSpace<F, S>::handle_leaf(VcpuId v, VirtAddr addr, Access access, const Vma& vma,
                                                 const Slot& slot, int level, MmuCounters::Slot& stats,
                                                 Translation& out) -> Leaf {
  const Pte e = slot.load().without_lock();
  const bool writable = vma.prot & kProtWrite;
  const bool exec = (vma.prot & kProtExec) || !F::kHasNx;
  const bool write = access == Access::Write;
  switch (e.kind()) {
    case EntryKind::None: {
      if (vma.kind == VmaKind::Shared) return shared_fault(v, addr, access, vma, slot, e, stats, out);
      if (from_page_cache(vma, addr)) {
        // The file's cached page, read-only; a write comes back to copy it (write_protected).
        const Leaf r = shared_fault(v, addr, access, vma, slot, e, stats, out);
        return r == Leaf::Done && write && out.ok() ? Leaf::Retry : r;
      }
      if (vma.kind == VmaKind::Anonymous && !write) {
        // Untouched anonymous page read: share the zero frame read-only until written.
        const Pte want = Pte::page(PhysAddr{FramePool::zero_frame()} << kPageShift, false, exec, true, false);
        return install(v, addr, slot, e, want, kNoFrame, stats, out, MmuCounter::FaultZeroPage);
      }
      const FrameNumber f = new_page_frame(v, addr, vma, slot);
      if (f == kNoFrame) return out_of_memory(out);
      const Pte want = Pte::page(PhysAddr{f} << kPageShift, writable, exec, true, write);
      return install(v, addr, slot, e, want, f, stats, out,
                     vma.kind == VmaKind::Anonymous ? MmuCounter::FaultZeroFill : MmuCounter::FaultFileFill);
    }
    case EntryKind::Present: {
      if (level > 1) {
        // Large pages are only ever installed from outside (tests); the VMA already allowed
        // the access, so only A/D or an in-place upgrade can be missing.
        Pte now;
        if (permits(e, access) && mark_accessed(slot, e, access, stats, &now)) {
          out = translation(now, level, addr);
          return Leaf::Done;
        }
        stats.add(MmuCounter::FaultSegvAccess);
        out = {FaultOutcome::SegvAccessError};
        return Leaf::Done;
      }
      if (write && !e.is_writable() && writable) return write_protected(v, addr, slot, e, vma, stats, out);
      if (permits(e, access)) return Leaf::Retry;  // fixed meanwhile; the fast path takes it
      // The VMA allows more than the entry (mprotect upgraded it): upgrade in place. No
      // flush: cached copies are only less permissive. Never W for the zero page or a page
      // fork left counted twice (a partly failed mprotect can leave such a pte behind), nor
      // for a shared-memory frame not yet writable: its first write goes to write_protected.
      const bool shared = keeps_write_protect(e);
      const Pte want = Pte::page(e.address(), writable && !shared, exec, true, (write && !shared) || e.is_dirty());
      return install(v, addr, slot, e, want, kNoFrame, stats, out, MmuCounter::FaultWriteUpgrade);
    }
    case EntryKind::ProtNone: {
      const bool shared = keeps_write_protect(e);
      const Pte want = Pte::page(e.address(), writable && !shared, exec, true, e.is_dirty());
      return install(v, addr, slot, e, want, kNoFrame, stats, out, MmuCounter::FaultWriteUpgrade);
    }
    case EntryKind::Transition:
      // The reclaimer owns the page for now: wait for it to finish, never treat it as empty.
      return Leaf::Wait;
    case EntryKind::Swap:
      return swap_in(v, addr, access, vma, slot, e, stats, out);
  }
  return Leaf::Retry;
}

// Installs `want` if the entry still is `seen` (A/D aside). On success the translation is
// written to `out`; on a lost race the prepared frame (if any) is freed, never published.
template <class F, class S>
inline auto PagedAddressSpace<F, S>::install(VcpuId v, VirtAddr addr, const Slot& slot, Pte seen, Pte want,
                                             FrameNumber fresh, MmuCounters::Slot& stats, Translation& out,
                                             MmuCounter what) -> Leaf {
  auto env_ = env(stats);
  const auto r = S::update(env_, slot, [&](Pte cur) -> std::optional<Pte> {
    if (cur.identity() != seen.identity()) return std::nullopt;
    return want;
  });
  if (!r.applied) {
    stats.add(MmuCounter::LeafRacesLost);
    if (fresh != kNoFrame) pool_.free(v, fresh);
    return Leaf::Retry;
  }
  if (fresh != kNoFrame) rss_add(v, 1);
  stats.add(what);
  out = translation(want, 1, addr);
  return Leaf::Done;
}

// A page of a MAP_SHARED mapping: the object's frame for it (found, zero-filled or read from
// the file), mapped with the VMA's permissions; every mapper writes the same frame. A private
// file mapping's page-cache page comes here too, and is mapped read-only.
template <class F, class S>
inline auto PagedAddressSpace<F, S>::shared_fault(VcpuId v, VirtAddr addr, Access access, const Vma& vma,
                                                  const Slot& slot, Pte seen, MmuCounters::Slot& stats,
                                                  Translation& out) -> Leaf {
  const bool writable = (vma.prot & kProtWrite) && vma.kind == VmaKind::Shared;
  const uint64_t index = shared_index(vma, addr);
  FrameNumber f = kNoFrame;
  bool hit = false;
  switch (vma.shared->page(v, index, writable, &f, &hit)) {
    case SharedPageResult::OutOfMemory: return out_of_memory(out);
    // The reclaimer is taking the page out of memory: wait for it, as for a transition entry.
    case SharedPageResult::Busy: return Leaf::Wait;
    case SharedPageResult::IoError:
      stats.add(MmuCounter::SwapInErrors);
      out = {FaultOutcome::SigBus};
      return Leaf::Done;
    case SharedPageResult::BeyondEnd:
      // Past the end of the file (or of a truncated one): SIGBUS, as on Linux.
      out = {FaultOutcome::SigBus};
      return Leaf::Done;
    case SharedPageResult::Ok: break;
  }
  const bool exec = (vma.prot & kProtExec) || !F::kHasNx;
  const Pte want = Pte::page(PhysAddr{f} << kPageShift, writable, exec, true, writable && access == Access::Write);
  const Leaf r = install(v, addr, slot, seen, want, kNoFrame, stats, out,
                         hit ? MmuCounter::FaultSharedHit : MmuCounter::FaultSharedFill);
  if (r == Leaf::Done) {
    rss_add(v, 1);
  } else if (pool_.drop_ref(f)) {
    pool_.free(v, f);  // the object let go meanwhile: the page is gone with it
  }
  return r;
}

// Counted by translate(), which may still wait for the reclaimer and retry.
template <class F, class S>
inline auto PagedAddressSpace<F, S>::out_of_memory(Translation& out) -> Leaf {
  out = {FaultOutcome::OutOfMemory};
  return Leaf::Done;
}

// A fresh private frame for the page at `addr` of `vma`: zeroed, or filled from the file.
template <class F, class S>
inline auto PagedAddressSpace<F, S>::new_page_frame(VcpuId v, VirtAddr addr, const Vma& vma,
                                                    const Slot& slot) -> FrameNumber {
  const bool from_file = vma.kind == VmaKind::FilePrivate;
  const FrameNumber f = pool_.allocate(v, FrameState::Anon, from_file ? FrameFill::Uninitialized : FrameFill::Zero);
  if (f == kNoFrame) return f;
  if (from_file) {
    uint8_t* dst = pool_.frame_ptr(f);
    const uint64_t off = source_offset_of(vma, addr);
    size_t got = 0;
    if (off < vma.source_end) got = vma.source->read(off, dst, std::min<uint64_t>(kPageSize, vma.source_end - off));
    std::memset(dst + got, 0, kPageSize - got);
  }
  // Reverse map before the frame becomes reachable, so a reclaimer never sees it without.
  FrameDescriptor& d = pool_.descriptor(f);
  d.owner.store(config_.id, std::memory_order_relaxed);
  d.vaddr.store(page_floor(addr), std::memory_order_relaxed);
  d.rmap_pte.store(slot.paddr(pool_), std::memory_order_release);
  return f;
}

// First write to a page mapped to the zero frame: a private zeroed frame replaces it, and
// every other vCPU must drop its read-only copy of the zero page before this one writes.
template <class F, class S>
inline auto PagedAddressSpace<F, S>::copy_on_write(VcpuId v, VirtAddr addr, const Slot& slot, Pte seen, const Vma& vma,
                                                   MmuCounters::Slot& stats, Translation& out) -> Leaf {
  const FrameNumber f = new_page_frame(v, addr, vma, slot);
  if (f == kNoFrame) return out_of_memory(out);
  const Pte want = Pte::page(PhysAddr{f} << kPageShift, true, (vma.prot & kProtExec) || !F::kHasNx, true, true);
  const Leaf r = install(v, addr, slot, seen, want, f, stats, out, MmuCounter::FaultCopyOnWrite);
  if (r == Leaf::Done) {
    auto batch = make_batch(v);
    batch.invalidate(page_floor(addr));
  }
  return r;
}

// A write to a present page the VMA allows writing but the pte does not: the zero page
// or a page fork left counted twice gets a private copy; a page whose other mappers are
// all gone is reused in place (do_wp_page's reuse).
template <class F, class S>
inline auto PagedAddressSpace<F, S>::write_protected(VcpuId v, VirtAddr addr, const Slot& slot, Pte seen,
                                                     const Vma& vma, MmuCounters::Slot& stats,
                                                     Translation& out) -> Leaf {
  const FrameNumber old = seen.frame();
  if (old == FramePool::zero_frame()) return copy_on_write(v, addr, slot, seen, vma, stats, out);
  const bool shared_memory = is_shared_memory(old);
  if (shared_memory && vma.kind == VmaKind::Shared) {
    // Shared memory (fork or mprotect left the pte read-only): written in place by all, and
    // written back to its file from now on.
    vma.shared->note_written(shared_index(vma, addr));
    const Pte want = Pte::page(seen.address(), true, (vma.prot & kProtExec) || !F::kHasNx, true, true);
    return install(v, addr, slot, seen, want, kNoFrame, stats, out, MmuCounter::FaultWriteUpgrade);
  }
  // A page-cache page in a private mapping is always copied: the file keeps its bytes.
  if (!shared_memory && pool_.refs(old) == 1) {
    claim_page(slot);
    const Pte want = Pte::page(seen.address(), true, (vma.prot & kProtExec) || !F::kHasNx, true, true);
    return install(v, addr, slot, seen, want, kNoFrame, stats, out, MmuCounter::FaultCowReuse);
  }
  const FrameNumber f = pool_.allocate(v, FrameState::Anon, FrameFill::Uninitialized);
  if (f == kNoFrame) return out_of_memory(out);
  std::memcpy(pool_.frame_ptr(f), pool_.frame_ptr(old), kPageSize);
  FrameDescriptor& d = pool_.descriptor(f);
  d.owner.store(config_.id, std::memory_order_relaxed);
  d.vaddr.store(page_floor(addr), std::memory_order_relaxed);
  d.rmap_pte.store(slot.paddr(pool_), std::memory_order_release);
  const Pte want = Pte::page(PhysAddr{f} << kPageShift, true, (vma.prot & kProtExec) || !F::kHasNx, true, true);
  const Leaf r = install(v, addr, slot, seen, want, f, stats, out, MmuCounter::FaultCowCopy);
  if (r == Leaf::Done) {
    rss_add(v, -1);  // install counted the new frame; the old one is no longer ours
    {
      auto batch = make_batch(v);
      batch.invalidate(page_floor(addr));
      batch.free_after_flush(old);  // our reference, after our TLBs let go of it
    }
    // Code translated from the old frame must not run for the new one (a JIT's RWX page).
    if (vma.prot & kProtExec) tlbs_->invalidate_code(*this);  // fetches need an exec VMA on every format
  }
  return r;
}

// Sets A (and D for a write) the way the hardware walker does: atomically, and only on the
// very entry that was looked at. False if the entry changed meanwhile.
template <class F, class S>
inline auto PagedAddressSpace<F, S>::mark_accessed(const Slot& slot, Pte seen, Access a, MmuCounters::Slot& stats,
                                                   Pte* result) -> bool {
  const Entry need = Pte::kAccessed | (a == Access::Write ? Pte::kDirty : 0);
  if ((seen.raw() & need) == need) {
    stats.add(MmuCounter::TranslateHit);
    *result = seen;
    return true;
  }
  auto ref = slot.ref();
  Entry cur = seen.raw();
  while (!ref.compare_exchange_weak(cur, cur | need, std::memory_order_acq_rel, std::memory_order_acquire)) {
    if (Pte(cur).identity() != seen.identity()) return false;
  }
  stats.add(MmuCounter::AccessedDirtySet);
  *result = Pte(cur | need);
  return true;
}

template <class F, class S>
inline auto PagedAddressSpace<F, S>::perms_of(Pte e) -> uint8_t {
  uint8_t p = kPermRead;
  if (e.is_writable() && e.is_dirty()) p |= kPermWrite;
  if (e.is_executable()) p |= kPermExec;
  return p;
}

template <class F, class S>
inline auto PagedAddressSpace<F, S>::permits(Pte e, Access a) -> bool {
  switch (a) {
    case Access::Read: return true;
    case Access::Write: return e.is_writable();
    case Access::Fetch: return e.is_executable();
  }
  return false;
}

// `read_only`: reached through a table shared by fork, so not writable whatever the pte.
template <class F, class S>
inline auto PagedAddressSpace<F, S>::translation(Pte e, int level, VirtAddr addr, bool read_only) -> Translation {
  const PhysAddr base = e.address(level);
  const PhysAddr offset = level > 1 ? (addr & (F::span(level) - 1)) : 0;
  uint8_t perms = perms_of(e);
  if (read_only) perms &= static_cast<uint8_t>(~kPermWrite);
  return {FaultOutcome::Ok, page_floor(base + offset), perms};
}

}  // namespace mmu
