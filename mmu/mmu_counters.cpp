#include "mmu/mmu_counters.h"

namespace mmu {

std::string_view counter_name(MmuCounter c) {
  static constexpr std::string_view kNames[] = {
      "translate_hit",       "accessed_dirty_set", "fault_zero_fill",      "fault_zero_page",
      "fault_copy_on_write", "fault_write_upgrade", "fault_file_fill",     "fault_stack_growth",
      "fault_major",         "fault_segv_map",     "fault_segv_access",    "fault_out_of_memory",
      "fault_retry",         "lock_acquisitions",  "lock_contended",       "lock_wait_ns",
      "cmpxchg_failures",    "populate_races_lost", "leaf_races_lost",     "tables_allocated",
      "tables_freed",        "table_ctor_failures", "shootdowns",          "shootdown_pages",
      "mmap_calls",          "munmap_calls",       "mprotect_calls",      "reclaim_scanned",
      "reclaim_aged",        "reclaimed",          "reclaim_clean_dropped", "swap_outs",
      "swap_out_errors",     "swap_full",          "swap_in_errors",      "fault_memory_waits",
      "code_invalidations",  "forks",              "fork_tables_shared",  "fork_tables_copied",
      "unshares_copied",     "unshares_exclusive", "shared_tables_dropped", "fault_cow_copy",
      "fault_cow_reuse",     "fault_shared_fill",  "fault_shared_hit",
      "rmap_walks",          "shared_unmapped",      "cow_swapped_out",      "cow_kept",
  };
  static_assert(std::size(kNames) == static_cast<size_t>(MmuCounter::kCount));
  return kNames[static_cast<size_t>(c)];
}

}  // namespace mmu
