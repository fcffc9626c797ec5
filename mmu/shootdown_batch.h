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

  ShootdownBatch(const AddressSpace& space, TlbShootdown& tlbs, FramePool& pool, MmuCounters::Slot& stats,
                 VcpuId vcpu)
      : space_(space), tlbs_(tlbs), pool_(pool), stats_(stats), vcpu_(vcpu) {}
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
  // A frame (data or page table) to free once nobody can reach it through a TLB.
  void free_after_flush(FrameNumber f) { frames_.push_back(f); }
  bool empty() const { return ranges_.empty() && frames_.empty(); }

  // Flushes (if anything was invalidated) and frees. Call with no page-table lock held.
  void finish() {
    if (!ranges_.empty()) {
      stats_.add(MmuCounter::Shootdowns);
      stats_.add(MmuCounter::ShootdownPages, pages_);
      if (ranges_.size() > kMaxRanges) ranges_.clear();  // empty list: flush everything
      tlbs_.flush(space_, ranges_, vcpu_);
    }
    for (FrameNumber f : frames_) pool_.free(vcpu_, f);
    ranges_.clear();
    frames_.clear();
    pages_ = 0;
  }

 private:
  const AddressSpace& space_;
  TlbShootdown& tlbs_;
  FramePool& pool_;
  MmuCounters::Slot& stats_;
  VcpuId vcpu_;
  std::vector<VirtRange> ranges_;
  std::vector<FrameNumber> frames_;
  uint64_t pages_ = 0;
};

}  // namespace mmu
