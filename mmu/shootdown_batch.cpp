#include "mmu/shootdown_batch.h"

#include "mmu/address_space.h"

namespace mmu {

void ShootdownBatch::finish() {
  if (!ranges_.empty()) {
    stats_.add(MmuCounter::Shootdowns);
    stats_.add(MmuCounter::ShootdownPages, pages_);
    if (ranges_.size() > kMaxRanges) ranges_.clear();  // empty list: flush everything
    tlbs_.flush(space_, ranges_, vcpu_);
  }
  for (FrameNumber f : frames_) space_.release_after_flush(vcpu_, f);
  ranges_.clear();
  frames_.clear();
  pages_ = 0;
}

}  // namespace mmu
