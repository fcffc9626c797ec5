// The invariants of address spaces that fork made share frames and page tables: every count
// the MMU keeps is recomputed here from the tables themselves.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <utility>
#include <vector>

#include "mmu_test_support.h"

namespace mmu::testing {

// For quiescent `spaces` over `pool` (and `swap`, if any):
//  - each table below a root is pointed at by exactly pool.refs() upper entries;
//  - each data frame is mapped by exactly pool.refs() distinct ptes (a shared table's
//    ptes count once), is Anon, and is not writable through any path while counted twice;
//  - each space's RSS is the pages its own tables map;
//  - the pool's per-state counts are exactly what is reachable (nothing leaked, nothing
//    used twice), and each swap slot has exactly as many references as entries and copies.
inline void check_fork_invariants(FramePool& pool, const std::vector<AddressSpace*>& spaces, SwapDevice* swap = nullptr) {
  std::map<uint64_t, int> tables;                 // non-root table -> upper entries pointing at it
  std::map<FrameNumber, int> frames;              // data frame -> ptes mapping it
  std::map<uint64_t, int> slots;                  // swap slot -> references
  std::set<std::pair<uint64_t, unsigned>> ptes;   // (table, index) of leaf entries counted
  std::set<uint64_t> roots;
  for (AddressSpace* as : spaces) {
    ReferenceWalker w(pool.host_base(), as->paging_mode(), as->root_table());
    EXPECT_TRUE(roots.insert(as->root_table()).second);
    int64_t mapped = 0;
    w.for_each_entry([&](uint64_t table, int level, unsigned index, uint64_t va, uint64_t raw) {
      const bool present = raw & 1;
      if (present && level > 1 && !w.is_large(raw, level)) {
        ++tables[raw & w.addr_mask()];
        return;
      }
      if (present && level > 1) return;  // tests' large pages map no pool frames
      const unsigned kind = present ? 0 : (raw >> 1) & 3;
      const FrameNumber f = static_cast<FrameNumber>((raw & w.addr_mask()) >> kPageShift);
      const bool maps_frame = (present || kind == 3) && f != FramePool::zero_frame();
      if (maps_frame) ++mapped;
      if (present && f == FramePool::zero_frame()) {
        EXPECT_FALSE(raw & 2) << "zero frame writable at " << std::hex << va;
      }
      if (!ptes.insert({table, index}).second) return;  // a shared table, seen from another space
      EXPECT_NE(kind, 2u) << "entry left in transition at " << std::hex << va;
      if (maps_frame) {
        ++frames[f];
        EXPECT_EQ(pool.descriptor(f).state.load(), FrameState::Anon) << "pte maps a frame not in use";
        EXPECT_EQ(pool.descriptor(f).vaddr.load(), page_floor(va));
      }
      if (kind == 1) ++slots[(raw & w.addr_mask()) >> kPageShift];
    });
    EXPECT_EQ(as->rss_pages(), mapped) << "RSS counter does not add up";
  }
  for (AddressSpace* as : spaces) {
    ReferenceWalker w(pool.host_base(), as->paging_mode(), as->root_table());
    w.for_each(
        [](uint64_t, int) {},
        [&](uint64_t va, const RefLeaf& leaf) {
          if (leaf.large) return;
          const FrameNumber f = static_cast<FrameNumber>(leaf.page >> kPageShift);
          if (f != FramePool::zero_frame() && frames[f] > 1) {
            EXPECT_FALSE(w.path_writable(va)) << "page shared by fork writable at " << std::hex << va;
          }
        });
  }
  for (const auto& [table, n] : tables) {
    EXPECT_EQ(pool.descriptor(table >> kPageShift).state.load(), FrameState::PageTable);
    EXPECT_EQ(pool.refs(static_cast<FrameNumber>(table >> kPageShift)), n) << "table use count wrong: " << table;
  }
  for (const auto& [f, n] : frames) EXPECT_EQ(pool.refs(f), n) << "frame use count wrong: " << f;
  const auto by_state = pool.count_by_state();
  EXPECT_EQ(by_state[static_cast<size_t>(FrameState::Anon)], frames.size()) << "leaked or lost data frames";
  EXPECT_EQ(by_state[static_cast<size_t>(FrameState::PageTable)], tables.size() + roots.size()) << "leaked page tables";
  EXPECT_EQ(by_state[static_cast<size_t>(FrameState::Free)], pool.free_frames()) << "free lists disagree";
  if (!swap) return;
  for (FrameNumber f = 1; f < pool.populated_frames(); ++f) {
    const uint32_t copy = pool.descriptor(f).swap_copy.load();
    if (!copy) continue;
    EXPECT_EQ(pool.descriptor(f).state.load(), FrameState::Anon) << "a free frame kept a swap copy";
    ++slots[copy - 1];
  }
  EXPECT_EQ(swap->slots_used(), slots.size()) << "swap slots leaked or lost";
  for (const auto& [slot, n] : slots)
    EXPECT_EQ(swap->extra_refs(static_cast<SwapSlot>(slot)) + 1, static_cast<uint32_t>(n)) << "swap slot " << slot;
}

}  // namespace mmu::testing
