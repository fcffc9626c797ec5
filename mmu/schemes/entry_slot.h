// What every locking scheme works on: one entry of one page table, and the change a caller
// wants made to it.
#pragma once

#include <atomic>
#include <optional>

#include "mmu/frame_pool.h"
#include "mmu/mmu_counters.h"
#include "mmu/page_table_entry.h"
#include "mmu/spin_lock.h"

namespace mmu {

template <class F>
struct EntrySlot {
  using Entry = typename F::Entry;
  Entry* word;        // the entry inside the table frame (host memory)
  FrameNumber table;  // frame holding the table
  int level;          // level of that table (1 = pte table)

  std::atomic_ref<Entry> ref() const { return std::atomic_ref<Entry>(*word); }
  PageTableEntry<F> load() const { return PageTableEntry<F>(ref().load(std::memory_order_acquire)); }
  PhysAddr paddr(const FramePool& pool) const {
    return static_cast<PhysAddr>(reinterpret_cast<const uint8_t*>(word) - pool.host_base());
  }
};

template <class F>
struct [[nodiscard]] UpdateResult {
  PageTableEntry<F> before;  // the entry as the change saw it (lock bit stripped)
  bool applied;              // false: the change declined (the entry was not what it expected)
};

// What a scheme may use: the address space's page_table_lock, the frame descriptors (split
// locks live there), and the calling vCPU's counters.
struct SchemeEnv {
  SpinLock& page_table_lock;
  FramePool& pool;
  MmuCounters::Slot& stats;
};

// A change maps the current entry (lock bit stripped) to the entry wanted, or to nullopt to
// leave the entry alone. It may be called more than once: the hardware-style A/D updates of
// other vCPUs are lock-free in every scheme (as on x86, where the MMU sets them with a locked
// cycle whatever locks software holds), so a store is always a compare-and-swap, and a change
// is re-evaluated on the value that actually won.
//
// Runs the change to completion; for lock-based schemes the caller holds the lock.
template <class F, class Change>
UpdateResult<F> apply_change(const EntrySlot<F>& slot, Change&& change, MmuCounters::Slot& stats) {
  auto ref = slot.ref();
  auto cur = ref.load(std::memory_order_acquire);
  for (;;) {
    const PageTableEntry<F> seen(cur);
    const std::optional<PageTableEntry<F>> want = change(seen);
    if (!want) return {seen, false};
    if (ref.compare_exchange_weak(cur, want->raw(), std::memory_order_acq_rel, std::memory_order_acquire))
      return {seen, true};
    stats.add(MmuCounter::CmpxchgFailures);
  }
}

// For schemes without a table lock (atomic, ptebit): bulk changes of one table are just
// single-entry updates in a row.
template <class F, class Scheme>
struct EntryAtATime {
  template <class Body>
  static void with_table(SchemeEnv&, const EntrySlot<F>&, Body&& body) {
    body();
  }
  template <class Change>
  static UpdateResult<F> update_in_table(SchemeEnv& env, const EntrySlot<F>& slot, Change&& change) {
    return Scheme::update(env, slot, change);
  }
};

}  // namespace mmu
