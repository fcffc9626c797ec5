// One descriptor per guest-physical frame (Linux's struct page). The split page-table lock
// of a page-table frame lives here, as seed 002 keeps page->ptl in struct page: the lock
// scales with the number of tables without growing the tables themselves.
#pragma once

#include <atomic>
#include <cstdint>

#include "mmu/spin_lock.h"

namespace mmu {

enum class FrameState : uint8_t {
  Free,
  Anon,       // private data page, mapped by `refs` page tables (rmap names one pte)
  PageTable,  // holds a page table of some level
  Zero,       // the shared zero frame, never freed
  Internal,   // owned by a user of the pool that is not an address space (tests, loaders)
  Shared,     // a page of shared memory or the page cache (SharedMemory): `refs` is one for
              // the object plus one per pte mapping it; never copied on write; `owner` is the
              // object's id and `vaddr` the page's index in it (mmu/shared_reclaim.h)
};

struct FrameDescriptor {
  std::atomic<FrameState> state{FrameState::Free};
  // Page-table level held (1 = pte table) while state is PageTable.
  std::atomic<uint8_t> table_level{0};
  // References (set to 1 when allocated). An anon page: the pte tables mapping it, more
  // than one once fork copied a table (copy-on-write until its count is back to 1). A pte
  // table: the upper entries pointing at it, more than one while fork shares it (seed 004).
  // Bounded by the address spaces alive at once, far below 2^16 (each has a vCPU).
  std::atomic<uint16_t> refs{0};
  // Address space that owns the frame (page table or anon page), for the reclaimer.
  std::atomic<uint32_t> owner{0};
  // Reverse map: guest-physical address of the pte that maps this anon frame.
  std::atomic<uint64_t> rmap_pte{0};
  // Split page-table lock, meaningful while state is PageTable (the `ptl` of seed 002).
  SpinLock ptl;
  // Swap slot + 1 holding an up-to-date copy of this anon page (0: none): a page read back
  // from swap and not written since is dropped by the reclaimer without another write.
  std::atomic<uint32_t> swap_copy{0};
  // Guest-virtual address the frame maps (anon) or the base of the range a table covers.
  std::atomic<uint64_t> vaddr{0};
};
static_assert(sizeof(FrameDescriptor) == 32, "descriptors are packed two per cache line");

}  // namespace mmu
