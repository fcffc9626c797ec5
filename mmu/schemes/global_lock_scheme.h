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
};

}  // namespace mmu
