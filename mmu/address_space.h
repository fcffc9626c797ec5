// An address space: VMAs under an mmap lock, page tables of one paging format, a locking
// scheme for changing them, and the fault handler that ties them together.
//
// This base class holds what does not depend on the paging format or scheme (VMAs, the mmap
// lock, brk, argument checking, counters); PagedAddressSpace<Format, Scheme> implements the
// page-table work. make_address_space() picks the pair at run time.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "mmu/frame_pool.h"
#include "mmu/mmap_lock.h"
#include "mmu/mmu_counters.h"
#include "mmu/reclaimer.h"
#include "mmu/shootdown_batch.h"
#include "mmu/spin_lock.h"
#include "mmu/thread_annotations.h"
#include "mmu/tlb_shootdown.h"
#include "mmu/vma_tree.h"

namespace mmu {

struct AddressSpaceConfig {
  PagingMode paging = PagingMode::X86_64;
  SchemeKind scheme = SchemeKind::Split;
  RssMode rss = RssMode::PerVcpu;
  // Mappings placed "anywhere" go top-down below mmap_ceiling and above mmap_floor;
  // 0 picks Linux-like defaults for the format.
  VirtAddr mmap_ceiling = 0;
  VirtAddr mmap_floor = 0x10000;  // vm.mmap_min_addr
  uint64_t max_stack = uint64_t{8} << 20;
  // Who caches translations of this space; nullptr: nobody.
  TlbShootdown* tlbs = nullptr;
  uint32_t id = 1;  // owner tag written to frame descriptors (for the reclaimer)
  // Where reclaimed pages go; nullptr: no swap (anonymous pages stay resident).
  SwapDevice* swap = nullptr;
  // Who frees frames when the pool is empty; nullptr: a fault on an empty pool fails at once.
  Reclaimer* reclaimer = nullptr;
};

class AddressSpace {
 public:
  virtual ~AddressSpace();
  AddressSpace(const AddressSpace&) = delete;
  AddressSpace& operator=(const AddressSpace&) = delete;

  // The fault handler: a guest-physical page and the permissions it grants now, or why not.
  // Called on every emulated TLB miss, by any vCPU, concurrently.
  virtual Translation translate(VcpuId v, VirtAddr addr, Access access) = 0;
  // Where `addr` is mapped right now, without handling any fault or setting accessed bits:
  // for observers (a tracer reading the faulting instruction) that must not change what they
  // watch. nullopt when no present entry maps it. The page stays valid only while the caller
  // serves no shootdown.
  virtual std::optional<PhysAddr> peek(VcpuId v, VirtAddr addr) = 0;

  // mmap: returns the mapped address. Fixed placement replaces what was there.
  MmResult map(VcpuId v, const MapRequest& request) EMU_EXCLUDES(mmap_lock_);
  MmResult unmap(VcpuId v, VirtAddr addr, uint64_t length) EMU_EXCLUDES(mmap_lock_);
  MmResult protect(VcpuId v, VirtAddr addr, uint64_t length, uint8_t prot) EMU_EXCLUDES(mmap_lock_);
  // MADV_WIPEONFORK (`wipe`) and MADV_KEEPONFORK: whether a fork child gets [addr, addr+length)
  // empty. Private anonymous memory only (InvalidArgument otherwise), fully mapped (NoMemory).
  MmResult set_wipe_on_fork(VcpuId v, VirtAddr addr, uint64_t length, bool wipe) EMU_EXCLUDES(mmap_lock_);
  // `object` (a file's page cache, or shared memory) was cut to `from` bytes: every pte that
  // maps it at a file offset of `from` or beyond goes, private copies of its pages included
  // (Linux's unmap_mapping_range with even_cows, as truncate_pagecache calls it). The VMAs
  // stay, so the next touch faults again: SIGBUS past the end of the file, the cache's zeros
  // once the file grew back. `from` is page aligned.
  struct ObjectZap {
    bool ok = true;     // false: a table fork shared could not be copied (no frame); nothing
                        // from that range on was zapped
    bool code = false;  // an executable range lost pages: its translated blocks must go
  };
  ObjectZap zap_object_pages(VcpuId v, const SharedMemory& object, uint64_t from) EMU_EXCLUDES(mmap_lock_);
  // The heap: set_brk_base once (the loader, at the end of the data segment), then brk()
  // like the syscall: returns the new break, or the old one if it could not move.
  void set_brk_base(VcpuId v, VirtAddr base) EMU_EXCLUDES(mmap_lock_);
  VirtAddr brk(VcpuId v, VirtAddr new_end) EMU_EXCLUDES(mmap_lock_);

  PagingMode paging_mode() const { return config_.paging; }
  SchemeKind scheme() const { return config_.scheme; }
  RssMode rss_mode() const { return config_.rss; }
  uint32_t id() const { return config_.id; }
  // Whether a shootdown of this space is answered now (TlbShootdown::can_flush_now).
  bool can_flush_now() const { return tlbs_->can_flush_now(*this); }
  virtual VirtAddr virt_limit() const = 0;
  // Guest-physical address of the root table (what CR3 would hold).
  virtual PhysAddr root_table() const = 0;

  int64_t rss_pages() const;
  std::vector<Vma> vmas(VcpuId v) EMU_EXCLUDES(mmap_lock_);
  FramePool& pool() const { return pool_; }
  MmuCounters& counters() { return counters_; }
  const MmuCounters& counters() const { return counters_; }
  // The reclaimer's half of reclaim, for frames this space owns: ages each by its accessed
  // bit, unmaps the cold ones through the locking scheme (entries go to transition, never to
  // empty), flushes every TLB once for the batch, writes the pages to swap and frees the
  // frames. Takes the mmap lock for read; called with no other lock held.
  virtual ReclaimOutcome reclaim_frames(VcpuId v, std::span<const FrameNumber> frames) = 0;

  // The reverse map of shared memory (mmu/shared_reclaim.h): a shared object knows where each
  // space maps it, and asks the space for the pte there. Both take the mmap lock for read.
  //
  // Clears the accessed bit of the pte at `va` if that pte maps `f`; true if it was set.
  virtual bool clear_accessed_if_maps(VcpuId v, VirtAddr va, FrameNumber f) = 0;
  struct RmapTarget {
    VirtAddr va = 0;
    FrameNumber frame = kNoFrame;
    bool cleared = false;  // out: a pte here mapped the frame and is gone
    bool dirty = false;    // out: ... with its dirty bit set
  };
  // Clears every pte at targets[i].va that maps targets[i].frame (a table fork shared is
  // unshared first), flushes this space's TLBs once for all of them and drops the ptes'
  // references after the flush.
  // False, and nothing done, when the mmap lock could not be taken for read at once.
  virtual bool unmap_shared_pages(VcpuId v, std::span<RmapTarget> targets) = 0;

  // The reverse map of pages fork left counted in several spaces (mmu/cow_reclaim.h). Spaces
  // forked from one another form a family (what Linux's anon_vma chains); such a page is found
  // at the same address in each member. The reclaimer holds the mmap lock of every member for
  // read while their ptes are in transition, so no fork copies one; it only tries, since it
  // holds several at once.
  uint32_t family() const { return family_; }
  bool try_lock_for_rmap(VcpuId v) EMU_TRY_ACQUIRE_SHARED(true, mmap_lock_) { return mmap_lock_.try_lock_shared(v); }
  void unlock_for_rmap(VcpuId v) EMU_RELEASE_SHARED(mmap_lock_) { mmap_lock_.unlock_shared(v); }
  struct CowTarget {
    VirtAddr va = 0;
    FrameNumber frame = kNoFrame;
    bool taken = false;   // out: the pte at `va` mapped the frame and is in transition now
    PhysAddr pte = 0;     // out: where that pte is (guest-physical)
    uint64_t before = 0;  // out: what it held
    bool dirty = false;   // out: ... with its dirty bit set
  };
  // Takes the pte at each targets[i].va that maps targets[i].frame and was not accessed since
  // the reclaimer aged it into transition (a table fork shared is unshared first), then
  // flushes this space's TLBs once for all of them.
  virtual void take_cow_ptes(VcpuId v, std::span<CowTarget> targets) EMU_REQUIRES_SHARED(mmap_lock_) = 0;
  // Ends what take_cow_ptes began for one target: the pte becomes a swap entry for `slot`
  // (whose reference it takes over), or gets back what it held when `slot` is kNoSwapSlot.
  virtual void settle_cow_pte(VcpuId v, const CowTarget& t, SwapSlot slot) EMU_REQUIRES_SHARED(mmap_lock_) = 0;
  // The slots a swap entry of this paging format can name (a 2-level i386 pte has 20 bits).
  virtual uint64_t swap_slot_limit() const = 0;

  // fork(): a child with the same mappings, each private page copy-on-write. With
  // ForkTables::Share the pte tables themselves are shared (seed 004): counted, made
  // read-only in the parent and the child, and copied by whichever space first changes an
  // entry in one. `child` names the child's owner tag, TLBs, swap and reclaimer; paging and
  // scheme are the parent's. nullptr and *error when frames run out (nothing is left
  // behind). The parent's TLBs are flushed of the writable translations fork took away.
  std::unique_ptr<AddressSpace> fork(VcpuId v, const AddressSpaceConfig& child, ForkTables tables,
                                     std::string* error) EMU_EXCLUDES(mmap_lock_);

  // The slot the destructor gives frames back through (frame caches are per slot, one thread
  // each): a space destroyed while other threads use the pool must name the destroying
  // thread's slot first. The creating thread's (make_address_space's `v`) by default.
  void set_teardown_slot(VcpuId v) { teardown_slot_ = v; }

  // Called in every wait loop of a vCPU (mmap lock, entries in transition): the emulator
  // serves its mailbox there.
  void set_wait_hook(WaitHook hook) { mmap_lock_.set_wait_hook(std::move(hook)); }
  // Test seam (seed 002's note): the next `count` page-table constructors after `skip` more
  // successes fail, as ptlock_alloc can.
  void inject_table_ctor_failures(uint64_t skip, uint64_t count);

 protected:
  AddressSpace(FramePool& pool, const AddressSpaceConfig& config, VirtAddr limit);

  // Page-table side of unmap/protect, with the mmap lock held for write. They record what
  // must be flushed and freed in the batch, which the caller finishes after the change.
  // False when a table shared by fork had to be copied and no frame was free: a zap then
  // changed nothing, a protection change may have done part of the range (as Linux's).
  [[nodiscard]] virtual bool zap_range_locked(ShootdownBatch& batch, VcpuId v, VirtAddr start, VirtAddr end)
      EMU_REQUIRES(mmap_lock_) = 0;
  [[nodiscard]] virtual bool change_protection_locked(ShootdownBatch& batch, VcpuId v, VirtAddr start, VirtAddr end,
                                                      uint8_t prot) EMU_REQUIRES(mmap_lock_) = 0;
  // The page-table side of fork(), both mmap locks held for write: copies or shares every
  // table into `child` (a fresh space of the same type). False: out of frames.
  [[nodiscard]] virtual bool fork_tables_locked(ShootdownBatch& batch, VcpuId v, AddressSpace& child, ForkTables tables)
      EMU_REQUIRES(mmap_lock_) = 0;
  // Drops a reference a flushed batch held (ShootdownBatch::finish): frees the frame when
  // it was the last, and for a page table first drops what the table maps.
  friend class ShootdownBatch;
  virtual void release_after_flush(VcpuId v, FrameNumber f) = 0;

  enum class StackGrowth : uint8_t { NotAStack, Grow };
  // A fault below a grows-down VMA that may extend it (checked again under the write lock).
  StackGrowth stack_growth_for_locked(VirtAddr addr) const EMU_REQUIRES_SHARED(mmap_lock_);
  bool grow_stack(VcpuId v, VirtAddr addr) EMU_EXCLUDES(mmap_lock_);

  void rss_add(VcpuId v, int64_t delta) {
    if (config_.rss == RssMode::SharedAtomic) {
      rss_shared_.fetch_add(delta, std::memory_order_relaxed);
    } else {
      auto& c = rss_split_[v].value;
      c.store(c.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
    }
  }
  bool table_ctor_should_fail();
  ShootdownBatch make_batch(VcpuId v) { return ShootdownBatch(*this, *tlbs_, counters_.slot(v), v); }
  // Unmaps everything; derived destructors call it while the tables still exist.
  void teardown();
  VcpuId teardown_slot_ = 0;

  FramePool& pool_;
  const AddressSpaceConfig config_;
  const VirtAddr limit_;
  TlbShootdown* tlbs_;
  MmapLock mmap_lock_;
  VmaTree vmas_ EMU_GUARDED_BY(mmap_lock_);
  // Guards page-table changes in `global`, the upper levels in `split`; unused otherwise.
  SpinLock page_table_lock_;
  MmuCounters counters_;

 private:
  MmResult map_locked(ShootdownBatch& batch, VcpuId v, const MapRequest& request) EMU_REQUIRES(mmap_lock_);
  std::unique_ptr<AddressSpace> fork_once(VcpuId v, const AddressSpaceConfig& child, ForkTables tables,
                                          std::string* error) EMU_EXCLUDES(mmap_lock_);
  [[nodiscard]] bool unmap_locked(ShootdownBatch& batch, VcpuId v, VirtAddr start, VirtAddr end) EMU_REQUIRES(mmap_lock_);

  struct alignas(64) RssSlot {
    std::atomic<int64_t> value{0};
  };
  alignas(64) std::atomic<int64_t> rss_shared_{0};
  std::unique_ptr<RssSlot[]> rss_split_;
  VirtAddr brk_base_ EMU_GUARDED_BY(mmap_lock_) = 0;
  VirtAddr brk_end_ EMU_GUARDED_BY(mmap_lock_) = 0;
  uint32_t family_;  // the id of the first space, forked ever since; set before the space is used
  std::atomic<int64_t> ctor_fail_skip_{0};
  std::atomic<int64_t> ctor_fail_count_{0};
  NoTlbs no_tlbs_;
};

// Builds the address space for config.paging x config.scheme over `pool`; nullptr and a
// reason in *error if the pool cannot back that format (i386 entries reach 4 GiB) or has no
// frame for the root table. The root comes through slot `v` (the calling thread's).
std::unique_ptr<AddressSpace> make_address_space(FramePool& pool, const AddressSpaceConfig& config,
                                                 std::string* error, VcpuId v = 0);

}  // namespace mmu
