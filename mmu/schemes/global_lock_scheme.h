// `global`: one page_table_lock per address space guards every page-table change at every
// level (Linux before split locks). Walks are lock-free under the mmap lock; only changes
// take the lock, and re-check the entry under it.
#pragma once

#include "mmu/schemes/entry_slot.h"

namespace mmu {

template <class F>
struct GlobalLockScheme {
  static constexpr SchemeKind kKind = SchemeKind::Global;

  template <class Change>
  static UpdateResult<F> update(SchemeEnv& env, const EntrySlot<F>& slot, Change&& change) {
    SpinLockGuard guard(env.page_table_lock, env.stats);
    return apply_change(slot, change, env.stats);
  }

  // Many entries of one table changed under one acquisition (zap_pte_range's way).
  template <class Body>
  static void with_table(SchemeEnv& env, const EntrySlot<F>&, Body&& body) {
    SpinLockGuard guard(env.page_table_lock, env.stats);
    body();
  }
  // An update inside with_table(): the lock is already held.
  template <class Change>
  static UpdateResult<F> update_in_table(SchemeEnv& env, const EntrySlot<F>& slot, Change&& change) {
    return apply_change(slot, change, env.stats);
  }
};

}  // namespace mmu
