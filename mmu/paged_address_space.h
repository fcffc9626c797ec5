// The page-table half of an address space, generic over a paging format F and a locking
// scheme S: one walker loop over the levels, one fault handler, one teardown, one protection
// change. Only S::update() differs between schemes, so every scheme runs exactly the same
// algorithm and differs only in how an entry change is made safe.
#pragma once

#include <algorithm>
#include <cstring>

#include "mmu/address_space.h"
#include "mmu/schemes/entry_slot.h"

namespace mmu {

template <class F, class S>
class PagedAddressSpace final : public AddressSpace {
 public:
  using Pte = PageTableEntry<F>;
  using Entry = typename F::Entry;
  using Slot = EntrySlot<F>;

  // The root table comes from the pool; `root` is that frame (allocated by the factory).
  PagedAddressSpace(FramePool& pool, const AddressSpaceConfig& config, FrameNumber root)
      : AddressSpace(pool, config, F::kVirtLimit), root_(root) {
    init_table(root_, F::kLevels, 0);
  }

  ~PagedAddressSpace() override {
    teardown();
    release_table(root_);
    pool_.free(teardown_slot_, root_);
  }

  VirtAddr virt_limit() const override { return F::kVirtLimit; }
  PhysAddr root_table() const override { return PhysAddr{root_} << kPageShift; }

  Translation translate(VcpuId v, VirtAddr addr, Access access) override {
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

  std::optional<PhysAddr> peek(VcpuId v, VirtAddr addr) override {
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

  ReclaimOutcome reclaim_frames(VcpuId v, std::span<const FrameNumber> frames) override {
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
        if (!mapping_slot(f, slot)) continue;
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

 private:
  enum class Step : uint8_t { Done, GrowStack };
  enum class Leaf : uint8_t { Done, Retry, Wait };

  Slot slot_at(FrameNumber table, int level, VirtAddr addr) const {
    auto* entries = reinterpret_cast<Entry*>(pool_.frame_ptr(table));
    return Slot{entries + F::index(addr, level), table, level};
  }
  SchemeEnv env(MmuCounters::Slot& stats) { return SchemeEnv{page_table_lock_, pool_, stats}; }

  static uint8_t perms_of(Pte e) {
    uint8_t p = kPermRead;
    if (e.is_writable() && e.is_dirty()) p |= kPermWrite;
    if (e.is_executable()) p |= kPermExec;
    return p;
  }
  static bool permits(Pte e, Access a) {
    switch (a) {
      case Access::Read: return true;
      case Access::Write: return e.is_writable();
      case Access::Fetch: return e.is_executable();
    }
    return false;
  }
  // `read_only`: reached through a table shared by fork, so not writable whatever the pte.
  static Translation translation(Pte e, int level, VirtAddr addr, bool read_only = false) {
    const PhysAddr base = e.address(level);
    const PhysAddr offset = level > 1 ? (addr & (F::span(level) - 1)) : 0;
    uint8_t perms = perms_of(e);
    if (read_only) perms &= static_cast<uint8_t>(~kPermWrite);
    return {FaultOutcome::Ok, page_floor(base + offset), perms};
  }

  // Sets A (and D for a write) the way the hardware walker does: atomically, and only on the
  // very entry that was looked at. False if the entry changed meanwhile.
  bool mark_accessed(const Slot& slot, Pte seen, Access a, MmuCounters::Slot& stats, Pte* result) {
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

  // ---- reclaim and swap ----

  // The scheme's way of taking an entry into transition and out again: clear-and-lock for
  // ptebit (the lock bit stays set while the page is in transition), an ordinary update for
  // the others.
  template <class Change>
  UpdateResult<F> reclaim_begin(SchemeEnv& env_, const Slot& slot, Change&& change) {
    if constexpr (S::kKind == SchemeKind::PteBit) {
      return S::clear_and_lock(env_, slot, change);
    } else {
      return S::update(env_, slot, change);
    }
  }
  void reclaim_end(SchemeEnv& env_, const Slot& slot, Pte final) {
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
  bool mapping_slot(FrameNumber f, Slot& out) const {
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

  // A page taken into transition by reclaim_frames().
  struct Victim {
    FrameNumber frame;
    Slot slot;
    Pte before;
    SwapSlot swap_slot = kNoSwapSlot;
    bool needs_write = false;
  };

  // Writes the victims to swap (unless an up-to-date copy is there already), points their
  // ptes at their slots and frees their frames. Slots are taken first and the writes go out
  // in runs of consecutive slots, one vectored write each: a page at a time, the swap's write
  // rate was a third of a plain sequential write's. A page that cannot go (swap full, a
  // failed write) gets its pte back.
  void write_out(VcpuId v, std::vector<Victim>& victims, MmuCounters::Slot& stats, ReclaimOutcome& outcome) {
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
  Leaf swap_in(VcpuId v, VirtAddr addr, Access access, const Vma& vma, const Slot& slot, Pte seen,
               MmuCounters::Slot& stats, Translation& out) {
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
  void drop_swap_copy(FrameNumber f) {
    const uint32_t copy = pool_.descriptor(f).swap_copy.exchange(0, std::memory_order_acq_rel);
    if (copy && config_.swap) config_.swap->free(copy - 1);
  }

  // Page-table constructor: the frame becomes a table of `level` (seed 002: the split lock
  // is initialised here). May fail, as ptlock_alloc may.
  FrameNumber alloc_table(VcpuId v, int level, VirtAddr addr, MmuCounters::Slot& stats) {
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
  void init_table(FrameNumber f, int level, VirtAddr base) {
    FrameDescriptor& d = pool_.descriptor(f);
    d.table_level.store(static_cast<uint8_t>(level), std::memory_order_relaxed);
    d.owner.store(config_.id, std::memory_order_relaxed);
    d.vaddr.store(base, std::memory_order_relaxed);
  }
  // Page-table destructor: nothing may hold the split lock of a table being freed.
  void release_table(FrameNumber f) {
    FrameDescriptor& d = pool_.descriptor(f);
    if (d.ptl.is_locked()) std::abort();
    d.table_level.store(0, std::memory_order_relaxed);
  }

  // The whole fault, under the mmap lock held for read. Loops until the access can proceed or
  // must not; Step::GrowStack asks the caller to extend a stack and come back.
  Step fault_locked(VcpuId v, VirtAddr addr, Access access, MmuCounters::Slot& stats, Translation& out)
      EMU_REQUIRES_SHARED(mmap_lock_) {
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

  enum class Populate : uint8_t { Ok, OutOfMemory };

  // ---- fork: table sharing (seed 004) and copy-on-write ----

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
  bool unshare_table(VcpuId v, const Slot& pmd, Pte seen, VirtAddr addr, MmuCounters::Slot& stats) {
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
          if (!e.is_present() || !e.is_writable() || pool_.refs(e.frame()) == 1) return std::nullopt;
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
  Pte share_entry(Pte e) {
    switch (e.kind()) {
      case EntryKind::None: return Pte();
      case EntryKind::Present:
        pool_.add_ref(e.frame());
        return e.without(Pte::kWritable);
      case EntryKind::ProtNone: pool_.add_ref(e.frame()); return e;
      case EntryKind::Swap: config_.swap->dup(static_cast<SwapSlot>(e.swap_slot())); return e;
      case EntryKind::Transition: break;
    }
    std::fprintf(stderr, "emu mmu: a page in transition met while copying a page table\n");
    std::abort();
  }

  // The reclaimer finds a page through its owner tag and reverse map: once a table or page
  // is ours alone again, point them at us (stale ones are only ever skipped).
  void claim_table(FrameNumber table) { pool_.descriptor(table).owner.store(config_.id, std::memory_order_relaxed); }
  void claim_page(const Slot& slot) {
    const Pte e = slot.load();
    if (!e.is_present() || e.frame() == FramePool::zero_frame() || pool_.refs(e.frame()) != 1) return;
    FrameDescriptor& d = pool_.descriptor(e.frame());
    d.owner.store(config_.id, std::memory_order_relaxed);
    d.rmap_pte.store(slot.paddr(pool_), std::memory_order_release);
  }

  // A table no space references any more (the last drop): what it maps loses a reference
  // (no TLB holds a translation through it: each space flushed before letting go), then the
  // frame goes.
  void free_table(VcpuId v, FrameNumber table) {
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
  void drop_leaf(VcpuId v, Pte e) {
    if (e.kind() == EntryKind::Swap) config_.swap->free(static_cast<SwapSlot>(e.swap_slot()));
    if (e.kind() != EntryKind::Present && e.kind() != EntryKind::ProtNone) return;
    if (!pool_.drop_ref(e.frame())) return;
    drop_swap_copy(e.frame());
    pool_.free(v, e.frame());
  }

  void release_after_flush(VcpuId v, FrameNumber f) override {
    if (!pool_.drop_ref(f)) return;
    if (pool_.descriptor(f).state.load(std::memory_order_acquire) == FrameState::PageTable) {
      free_table(v, f);
      return;
    }
    drop_swap_copy(f);
    pool_.free(v, f);
  }

  // Both mmap locks held for write: no fault, reclaim or swap-in runs in the parent, so no
  // entry is in transition and none changes but through us.
  bool fork_tables_locked(ShootdownBatch& batch, VcpuId v, AddressSpace& child_base, ForkTables tables) override {
    auto& child = static_cast<PagedAddressSpace&>(child_base);
    return fork_table(batch, v, child, root_, child.root_, F::kLevels, 0, tables, counters_.slot(v));
  }

  bool fork_table(ShootdownBatch& batch, VcpuId v, PagedAddressSpace& child, FrameNumber from, FrameNumber to,
                  int level, VirtAddr base, ForkTables tables, MmuCounters::Slot& stats) {
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
        if (e.is_present() && e.is_writable()) {
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

  // A write to a present page the VMA allows writing but the pte does not: the zero page
  // or a page fork left counted twice gets a private copy; a page whose other mappers are
  // all gone is reused in place (do_wp_page's reuse).
  Leaf write_protected(VcpuId v, VirtAddr addr, const Slot& slot, Pte seen, const Vma& vma, MmuCounters::Slot& stats,
                       Translation& out) {
    const FrameNumber old = seen.frame();
    if (old == FramePool::zero_frame()) return copy_on_write(v, addr, slot, seen, vma, stats, out);
    if (pool_.refs(old) == 1) {
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

  // Walks from the root, allocating missing tables (pte_alloc/pmd_alloc: allocate first,
  // then publish through the scheme; the loser of a race frees its table). Leaves `slot` at
  // the leaf entry: level 1, or a large page above it.
  Populate populate_tables(VcpuId v, VirtAddr addr, MmuCounters::Slot& stats, Slot& slot, int& level) {
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

  // A fresh private frame for the page at `addr` of `vma`: zeroed, or filled from the file.
  FrameNumber new_page_frame(VcpuId v, VirtAddr addr, const Vma& vma, const Slot& slot) {
    const bool from_file = vma.kind == VmaKind::FilePrivate;
    const FrameNumber f = pool_.allocate(v, FrameState::Anon, from_file ? FrameFill::Uninitialized : FrameFill::Zero);
    if (f == kNoFrame) return f;
    if (from_file) {
      uint8_t* dst = pool_.frame_ptr(f);
      const uint64_t off = vma.source_offset + (page_floor(addr) - vma.start);
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

  // Installs `want` if the entry still is `seen` (A/D aside). On success the translation is
  // written to `out`; on a lost race the prepared frame (if any) is freed, never published.
  Leaf install(VcpuId v, VirtAddr addr, const Slot& slot, Pte seen, Pte want, FrameNumber fresh,
               MmuCounters::Slot& stats, Translation& out, MmuCounter what) {
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

  Leaf handle_leaf(VcpuId v, VirtAddr addr, Access access, const Vma& vma, const Slot& slot, int level,
                   MmuCounters::Slot& stats, Translation& out) {
    const Pte e = slot.load().without_lock();
    const bool writable = vma.prot & kProtWrite;
    const bool exec = (vma.prot & kProtExec) || !F::kHasNx;
    const bool write = access == Access::Write;
    switch (e.kind()) {
      case EntryKind::None: {
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
        // fork left counted twice (a partly failed mprotect can leave such a pte behind).
        const bool shared = e.frame() == FramePool::zero_frame() || pool_.refs(e.frame()) > 1;
        const Pte want = Pte::page(e.address(), writable && !shared, exec, true, (write && !shared) || e.is_dirty());
        return install(v, addr, slot, e, want, kNoFrame, stats, out, MmuCounter::FaultWriteUpgrade);
      }
      case EntryKind::ProtNone: {
        const bool shared = e.frame() == FramePool::zero_frame() || pool_.refs(e.frame()) > 1;
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

  // Counted by translate(), which may still wait for the reclaimer and retry.
  Leaf out_of_memory(Translation& out) {
    out = {FaultOutcome::OutOfMemory};
    return Leaf::Done;
  }

  // First write to a page mapped to the zero frame: a private zeroed frame replaces it, and
  // every other vCPU must drop its read-only copy of the zero page before this one writes.
  Leaf copy_on_write(VcpuId v, VirtAddr addr, const Slot& slot, Pte seen, const Vma& vma, MmuCounters::Slot& stats,
                     Translation& out) {
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

  // ---- unmap and protection change: the mmap lock is held for write ----

  bool zap_range_locked(ShootdownBatch& batch, VcpuId v, VirtAddr start, VirtAddr end) override {
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
  std::optional<Slot> pmd_slot(VirtAddr addr) const {
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
  bool unshare_if_partial(VcpuId v, VirtAddr addr, VirtAddr start, VirtAddr end, MmuCounters::Slot& stats) {
    const auto pmd = pmd_slot(addr);
    if (!pmd) return true;
    const Pte e = pmd->load();
    const VirtAddr base = addr & ~(F::span(2) - 1);
    if (e.is_writable() || (start <= base && base + F::span(2) <= end)) return true;
    return unshare_table(v, *pmd, e, addr, stats);
  }

  // Clears the entries of `table` (covering from `base`) that fall in [start, end). Returns
  // true when the table is left with no entry at all, so the caller may free it.
  bool zap_table(ShootdownBatch& batch, VcpuId v, FrameNumber table, int level, VirtAddr base, VirtAddr start,
                 VirtAddr end, MmuCounters::Slot& stats) {
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
  void forget_leaf(ShootdownBatch& batch, VcpuId v, Pte old, VirtAddr a, uint64_t span) {
    if (old.kind() == EntryKind::Present) batch.invalidate(a, span);
    if (old.kind() == EntryKind::Swap && config_.swap) config_.swap->free(static_cast<SwapSlot>(old.swap_slot()));
    if ((old.kind() == EntryKind::Present || old.kind() == EntryKind::ProtNone) &&
        old.frame() != FramePool::zero_frame()) {
      rss_add(v, -1);
      batch.free_after_flush(old.frame());
    }
  }
  int64_t present_pages(FrameNumber table) const {
    auto* entries = reinterpret_cast<Entry*>(pool_.frame_ptr(table));
    int64_t n = 0;
    for (unsigned i = 0; i < F::entries(1); ++i) {
      const Pte e(std::atomic_ref<Entry>(entries[i]).load(std::memory_order_relaxed));
      n += (e.kind() == EntryKind::Present || e.kind() == EntryKind::ProtNone) && e.frame() != FramePool::zero_frame();
    }
    return n;
  }

  // Entries outside a zapped range, or children that kept entries, keep a table alive.
  bool table_is_empty(FrameNumber table, int level) const {
    if (level == F::kLevels) return false;  // the root stays
    auto* entries = reinterpret_cast<Entry*>(pool_.frame_ptr(table));
    for (unsigned i = 0; i < F::entries(level); ++i)
      if (!Pte(std::atomic_ref<Entry>(entries[i]).load(std::memory_order_relaxed)).is_none()) return false;
    return true;
  }

  bool change_protection_locked(ShootdownBatch& batch, VcpuId v, VirtAddr start, VirtAddr end,
                                uint8_t prot) override {
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
        const bool shared = cur.frame() == FramePool::zero_frame() || pool_.refs(cur.frame()) > 1;
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

  const FrameNumber root_;
  // Orders this space's own unsharing vCPUs (seed 004's local page_table_lock).
  Mutex share_lock_;
};

}  // namespace mmu
