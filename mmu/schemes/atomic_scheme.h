// `atomic` (seed 000): no page-table lock on any path. Empty entries at every level are
// populated by compare-and-swap (pgd/pud/pmd_test_and_populate: allocate, cmpxchg, and the
// loser frees its table); ptes are installed and changed with cmpxchg (ptep_cmpxchg) and
// cleared with an exchange, so a concurrent A/D update is never lost.
//
// Opting out of lock analysis is not needed: there is no lock. What keeps it correct:
//  - an entry only moves none -> table at the upper levels while faults run (tables are
//    freed only under the mmap lock held for write, when no walker runs);
//  - every leaf change is a cmpxchg against the value the decision was based on, so a fault
//    that raced another simply sees its cmpxchg fail and retries or backs out;
//  - the reclaimer (when present) moves present -> transition -> swap, never present ->
//    none, so a fault never mistakes a page in transition for an empty one.
// On a 32-bit host PAE entries would need cmpxchg8b; on x86_64 hosts 64-bit cmpxchg is native.
#pragma once

#include "mmu/schemes/entry_slot.h"

namespace mmu {

template <class F>
struct AtomicScheme : EntryAtATime<F, AtomicScheme<F>> {
  static constexpr SchemeKind kKind = SchemeKind::Atomic;
  static_assert(std::atomic_ref<typename F::Entry>::is_always_lock_free);

  template <class Change>
  static UpdateResult<F> update(SchemeEnv& env, const EntrySlot<F>& slot, Change&& change) {
    return apply_change(slot, change, env.stats);
  }
};

}  // namespace mmu
