// The page-table half of an address space, generic over a paging format F and a locking
// scheme S: one walker loop over the levels, one fault handler, one teardown, one protection
// change. Only S::update() differs between schemes, so every scheme runs exactly the same
// algorithm and differs only in how an entry change is made safe.
//
// This file is the class: member declarations, nested types, data, and the few one-line
// helpers. The members are defined in mmu/paged/, one file per path through the tables,
// included at the end of this file (include this one only):
//   fault_path.h     translate(), the walk, table populate, leaf handling (seeds 000-003)
//   swap_path.h      reclaim_frames(), write-out and swap-in (seed 000's transition rule)
//   fork_sharing.h   fork's copy or share of tables, unshare, deferred frees (seed 004)
//   unmap_protect.h  zap and protection change under the mmap lock held for write
//   shared_rmap.h    the ptes of shared-memory pages, found through their object's mappers
//   cow_rmap.h       the ptes of pages fork left shared, for the family walk of mmu/cow_reclaim.h
#pragma once

#include "mmu/address_space.h"
#include "mmu/schemes/entry_slot.h"
#include "mmu/shared_memory.h"

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

  // The fault path (mmu/paged/fault_path.h).
  Translation translate(VcpuId v, VirtAddr addr, Access access) override;
  std::optional<PhysAddr> peek(VcpuId v, VirtAddr addr) override;
  // Reclaim (mmu/paged/swap_path.h).
  ReclaimOutcome reclaim_frames(VcpuId v, std::span<const FrameNumber> frames) override;
  // The reverse map of shared memory (mmu/paged/shared_rmap.h).
  bool clear_accessed_if_maps(VcpuId v, VirtAddr va, FrameNumber f) override;
  bool unmap_shared_pages(VcpuId v, std::span<RmapTarget> targets) override;
  // The reverse map of pages fork shares (mmu/paged/cow_rmap.h).
  void take_cow_ptes(VcpuId v, std::span<CowTarget> targets) override EMU_REQUIRES_SHARED(mmap_lock_);
  void settle_cow_pte(VcpuId v, const CowTarget& t, SwapSlot slot) override EMU_REQUIRES_SHARED(mmap_lock_);
  uint64_t swap_slot_limit() const override { return Pte::kMaxSwapSlot + 1; }

 private:
  enum class Step : uint8_t { Done, GrowStack };
  enum class Leaf : uint8_t { Done, Retry, Wait };
  enum class Populate : uint8_t { Ok, OutOfMemory };

  Slot slot_at(FrameNumber table, int level, VirtAddr addr) const {
    auto* entries = reinterpret_cast<Entry*>(pool_.frame_ptr(table));
    return Slot{entries + F::index(addr, level), table, level};
  }
  SchemeEnv env(MmuCounters::Slot& stats) { return SchemeEnv{page_table_lock_, pool_, stats}; }

  // ---- the fault path: mmu/paged/fault_path.h (seeds 000-003) ----

  Step fault_locked(VcpuId v, VirtAddr addr, Access access, MmuCounters::Slot& stats, Translation& out)
      EMU_REQUIRES_SHARED(mmap_lock_);
  Populate populate_tables(VcpuId v, VirtAddr addr, MmuCounters::Slot& stats, Slot& slot, int& level);
  FrameNumber alloc_table(VcpuId v, int level, VirtAddr addr, MmuCounters::Slot& stats);
  void init_table(FrameNumber f, int level, VirtAddr base);
  void release_table(FrameNumber f);
  Leaf handle_leaf(VcpuId v, VirtAddr addr, Access access, const Vma& vma, const Slot& slot, int level,
                   MmuCounters::Slot& stats, Translation& out);
  Leaf install(VcpuId v, VirtAddr addr, const Slot& slot, Pte seen, Pte want, FrameNumber fresh,
               MmuCounters::Slot& stats, Translation& out, MmuCounter what);
  Leaf out_of_memory(Translation& out);
  Leaf shared_fault(VcpuId v, VirtAddr addr, Access access, const Vma& vma, const Slot& slot, Pte seen,
                    MmuCounters::Slot& stats, Translation& out);
  // Whether a write to frame `f` must copy it first: the zero frame, or a private page fork
  // left counted more than once. Shared-memory frames are written in place by every mapper.
  bool copy_on_write_frame(FrameNumber f) const {
    if (f == FramePool::zero_frame()) return true;
    return pool_.refs(f) > 1 && !is_shared_memory(f);
  }
  bool is_shared_memory(FrameNumber f) const {
    return pool_.descriptor(f).state.load(std::memory_order_acquire) == FrameState::Shared;
  }
  // Whether an mprotect or a fault that upgrades pte `e` in place must leave it read-only:
  // copy-on-write frames, and shared-memory frames it does not already allow writing. The
  // latter's first write then faults, so write_protected can tell a MAP_SHARED mapping (the
  // object learns the page is written, for write-back) from a private mapping of a page-cache
  // frame (which copies it).
  bool keeps_write_protect(Pte e) const {
    return copy_on_write_frame(e.frame()) || (is_shared_memory(e.frame()) && !(e.is_present() && e.is_writable()));
  }
  // The offset in `vma`'s object or file of the page at `addr`, and that page's index.
  static uint64_t source_offset_of(const Vma& vma, VirtAddr addr) {
    return vma.source_offset + (page_floor(addr) - vma.start);
  }
  static uint64_t shared_index(const Vma& vma, VirtAddr addr) { return source_offset_of(vma, addr) >> kPageShift; }
  // Whether the page at `addr` of a FilePrivate `vma` comes from the file's page cache: it
  // has one, and the page lies wholly within the file bytes (a partial last page is zeroed
  // past them, so it is a private copy).
  static bool from_page_cache(const Vma& vma, VirtAddr addr) {
    if (vma.kind != VmaKind::FilePrivate || !vma.shared) return false;
    const uint64_t off = source_offset_of(vma, addr);
    return off < vma.source_end && vma.source_end - off >= kPageSize;
  }
  FrameNumber new_page_frame(VcpuId v, VirtAddr addr, const Vma& vma, const Slot& slot);
  Leaf copy_on_write(VcpuId v, VirtAddr addr, const Slot& slot, Pte seen, const Vma& vma, MmuCounters::Slot& stats,
                     Translation& out);
  Leaf write_protected(VcpuId v, VirtAddr addr, const Slot& slot, Pte seen, const Vma& vma, MmuCounters::Slot& stats,
                       Translation& out);
  bool mark_accessed(const Slot& slot, Pte seen, Access a, MmuCounters::Slot& stats, Pte* result);
  static uint8_t perms_of(Pte e);
  static bool permits(Pte e, Access a);
  static Translation translation(Pte e, int level, VirtAddr addr, bool read_only = false);

  // ---- reclaim and swap ----
  // mmu/paged/swap_path.h (seed 000: present -> transition -> swap, never -> empty)

  template <class Change>
  UpdateResult<F> reclaim_begin(SchemeEnv& env_, const Slot& slot, Change&& change);
  void reclaim_end(SchemeEnv& env_, const Slot& slot, Pte final);
  bool mapping_slot(FrameNumber f, Slot& out) const;
  // mmu/paged/shared_rmap.h: the reverse maps' way to a pte they may change.
  std::optional<Slot> own_pte_slot(VcpuId v, VirtAddr va, MmuCounters::Slot& stats);
  bool claim_exclusive_table(VcpuId v, FrameNumber f, MmuCounters::Slot& stats);

  // A page taken into transition by reclaim_frames().
  struct Victim {
    FrameNumber frame;
    Slot slot;
    Pte before;
    SwapSlot swap_slot = kNoSwapSlot;
    bool needs_write = false;
  };

  void write_out(VcpuId v, std::vector<Victim>& victims, MmuCounters::Slot& stats, ReclaimOutcome& outcome);
  Leaf swap_in(VcpuId v, VirtAddr addr, Access access, const Vma& vma, const Slot& slot, Pte seen,
               MmuCounters::Slot& stats, Translation& out);
  void drop_swap_copy(FrameNumber f);

  // ---- fork: table sharing (seed 004) and copy-on-write ----
  // mmu/paged/fork_sharing.h

  bool fork_tables_locked(ShootdownBatch& batch, VcpuId v, AddressSpace& child_base, ForkTables tables) override;
  bool fork_table(ShootdownBatch& batch, VcpuId v, PagedAddressSpace& child, FrameNumber from, FrameNumber to,
                  int level, VirtAddr base, ForkTables tables, MmuCounters::Slot& stats);
  bool unshare_table(VcpuId v, const Slot& pmd, Pte seen, VirtAddr addr, MmuCounters::Slot& stats);
  Pte share_entry(Pte e);
  void claim_table(FrameNumber table);
  void claim_page(const Slot& slot);
  void free_table(VcpuId v, FrameNumber table);
  void drop_leaf(VcpuId v, Pte e);
  void release_after_flush(VcpuId v, FrameNumber f) override;

  // ---- unmap and protection change: the mmap lock is held for write ----
  // mmu/paged/unmap_protect.h

  bool zap_range_locked(ShootdownBatch& batch, VcpuId v, VirtAddr start, VirtAddr end) override;
  std::optional<Slot> pmd_slot(VirtAddr addr) const;
  bool unshare_if_partial(VcpuId v, VirtAddr addr, VirtAddr start, VirtAddr end, MmuCounters::Slot& stats);
  bool zap_table(ShootdownBatch& batch, VcpuId v, FrameNumber table, int level, VirtAddr base, VirtAddr start,
                 VirtAddr end, MmuCounters::Slot& stats);
  void forget_leaf(ShootdownBatch& batch, VcpuId v, Pte old, VirtAddr a, uint64_t span);
  int64_t present_pages(FrameNumber table) const;
  bool table_is_empty(FrameNumber table, int level) const;
  bool change_protection_locked(ShootdownBatch& batch, VcpuId v, VirtAddr start, VirtAddr end,
                                uint8_t prot) override;

  const FrameNumber root_;
  // Orders this space's own unsharing vCPUs (seed 004's local page_table_lock).
  Mutex share_lock_;
};

}  // namespace mmu

// The member definitions, one file per path (each includes this file; #pragma once on both
// sides makes the cycle harmless, so either may be included first).
#include "mmu/paged/fault_path.h"
#include "mmu/paged/swap_path.h"
#include "mmu/paged/fork_sharing.h"
#include "mmu/paged/unmap_protect.h"
#include "mmu/paged/shared_rmap.h"
#include "mmu/paged/cow_rmap.h"
