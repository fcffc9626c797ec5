// `split` (seed 002): a lock per pte table and per PMD table, kept in the descriptor of the
// frame holding the table (page->ptl). Changes to a pte take its table's lock
// (pte_offset_map_lock); populating a PMD entry with a new pte table takes the PMD table's
// lock (pmd_lock); the levels above, and the PMD level of 2-level i386 where the PMD is
// folded into the root, stay under the address space's page_table_lock.
#pragma once

#include "mmu/schemes/entry_slot.h"

namespace mmu {

template <class F>
struct SplitLockScheme {
  static constexpr SchemeKind kKind = SchemeKind::Split;

  static SpinLock& lock_for(SchemeEnv& env, const EntrySlot<F>& slot) {
    const bool split = slot.level == 1 || (slot.level == 2 && F::kLevels > 2);
    return split ? env.pool.descriptor(slot.table).ptl : env.page_table_lock;
  }

  template <class Change>
  static UpdateResult<F> update(SchemeEnv& env, const EntrySlot<F>& slot, Change&& change) {
    SpinLockGuard guard(lock_for(env, slot), env.stats);
    return apply_change(slot, change, env.stats);
  }

  template <class Body>
  static void with_table(SchemeEnv& env, const EntrySlot<F>& slot, Body&& body) {
    SpinLockGuard guard(lock_for(env, slot), env.stats);
    body();
  }
  template <class Change>
  static UpdateResult<F> update_in_table(SchemeEnv& env, const EntrySlot<F>& slot, Change&& change) {
    return apply_change(slot, change, env.stats);
  }
};

}  // namespace mmu
