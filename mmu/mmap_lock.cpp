#include "mmu/mmap_lock.h"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <thread>

#include "mmu/spin_lock.h"

namespace mmu {

namespace {
int membarrier(int cmd) { return static_cast<int>(syscall(__NR_membarrier, cmd, 0, 0)); }

// Registers once per process; false when the kernel lacks private expedited membarrier
// (before 4.14) or a sanitizer cannot follow it (ThreadSanitizer does not model the
// barrier, so those builds keep the symmetric fences it understands).
bool membarrier_usable() {
#if defined(__SANITIZE_THREAD__)
  return false;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
  return false;
#endif
#endif
  static const bool ok = [] {
    const int cmds = membarrier(MEMBARRIER_CMD_QUERY);
    if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED)) return false;
    return membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
  }();
  return ok;
}
}  // namespace

MmapLock::MmapLock(uint32_t slots)
    : readers_(new ReaderSlot[slots]), slots_(slots), asymmetric_fence_(membarrier_usable()) {}

void MmapLock::heavy_fence() {
  // Registered at construction, so this cannot fail short of a kernel bug; abort rather than
  // run without the barrier the readers rely on.
  if (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0) {
    std::perror("emu mmu: membarrier");
    std::abort();
  }
}

void MmapLock::wait_once(VcpuId v) {
  if (wait_hook_) wait_hook_(v);
  // Yield rather than spin: the other side may be waiting for a shootdown acknowledgement,
  // which takes far longer than a page-table critical section.
  std::this_thread::yield();
}

}  // namespace mmu
