#include "mmu/mmap_lock.h"

#include <thread>

#include "mmu/spin_lock.h"

namespace mmu {

void MmapLock::wait_once(VcpuId v) {
  if (wait_hook_) wait_hook_(v);
  // Yield rather than spin: the other side may be waiting for a shootdown acknowledgement,
  // which takes far longer than a page-table critical section.
  std::this_thread::yield();
}

}  // namespace mmu
