// Collects what one mapping change invalidated, flushes once, and only then frees frames
// and page tables (Zircon's batched invalidation: a short list of ranges, then a full flush).
#pragma once

#include <vector>

#include "mmu/frame_pool.h"
#include "mmu/mmu_counters.h"
#include "mmu/tlb_shootdown.h"

namespace mmu {

class ShootdownBatch {
 public:
  static constexpr size_t kMaxRanges = 16;

  ShootdownBatch(AddressSpace& space, TlbShootdown& tlbs, MmuCounters::Slot& stats, VcpuId vcpu)
      : space_(space), tlbs_(tlbs), stats_(stats), vcpu_(vcpu) {}
  ~ShootdownBatch() { finish(); }
  ShootdownBatch(const ShootdownBatch&) = delete;
  ShootdownBatch& operator=(const ShootdownBatch&) = delete;

  // A page whose translation changed in a way a cached copy must not outlive.
  void invalidate(VirtAddr page, uint64_t length = kPageSize) {
    ++pages_;
    if (!ranges_.empty() && ranges_.back().end == page) {
      ranges_.back().end += length;
    } else {
      ranges_.push_back({page, page + length});
    }
  }
  // A reference to a frame (data or page table) to drop once nobody can reach it through a
  // TLB of this space; the frame is freed when that was its last reference.
  void free_after_flush(FrameNumber f) { frames_.push_back(f); }
  bool empty() const { return ranges_.empty() && frames_.empty(); }

  // Flushes (if anything was invalidated), then drops the references. Call with no
  // page-table lock held.
  void finish();

 private:
  AddressSpace& space_;
  TlbShootdown& tlbs_;
  MmuCounters::Slot& stats_;
  VcpuId vcpu_;
  std::vector<VirtRange> ranges_;
  std::vector<FrameNumber> frames_;
  uint64_t pages_ = 0;
};

}  // namespace mmu
