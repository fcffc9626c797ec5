// fork() of an address space, both ways (tables copied, tables shared as seed 004 has it), for
// every paging format and locking scheme: each side sees only its own writes, unmap and
// mprotect in one side leave the other alone, swapped pages are shared by slot, pages fork
// shares are reclaimed once for the whole family, running out
// of frames leaves nothing behind, and every count adds up afterwards.
#include <gtest/gtest.h>

#include <cstring>

#include "fork_test_support.h"
#include "mmu/cow_reclaim.h"

namespace mmu::testing {
namespace {

struct ForkCase {
  Combo combo;
  ForkTables tables;
};

std::vector<ForkCase> fork_cases() {
  std::vector<ForkCase> out;
  for (const Combo& c : all_combos())
    for (auto t : {ForkTables::Copy, ForkTables::Share}) out.push_back({c, t});
  return out;
}

std::string fork_case_name(const ::testing::TestParamInfo<ForkCase>& info) {
  return std::string(to_string(info.param.combo.paging)) + "_" + std::string(to_string(info.param.combo.scheme)) +
         (info.param.tables == ForkTables::Share ? "_share" : "_copy");
}

uint64_t tag(VirtAddr page, uint64_t who) { return (page >> kPageShift) * 0x9E3779B97F4A7C15ull + who; }

class ForkTest : public ::testing::TestWithParam<ForkCase> {
 protected:
  void SetUp() override { pool_ = make_pool(uint64_t{64} << 20); }

  std::unique_ptr<AddressSpace> space(SwapDevice* swap = nullptr) {
    return make_space(*pool_, GetParam().combo, nullptr, RssMode::PerVcpu, swap);
  }
  std::unique_ptr<AddressSpace> fork(AddressSpace& parent, uint32_t id) {
    AddressSpaceConfig c;
    c.id = id;
    c.swap = swap_;
    std::string error;
    auto child = parent.fork(0, c, GetParam().tables, &error);
    EXPECT_TRUE(child) << error;
    return child;
  }
  void write(AddressSpace& as, VirtAddr va, uint64_t value) {
    const Translation t = as.translate(0, va, Access::Write);
    ASSERT_TRUE(t.ok()) << to_string(t.outcome) << " at " << std::hex << va;
    ASSERT_TRUE(t.perms & kPermWrite);
    std::memcpy(pool_->host(t.page) + (va - page_floor(va)), &value, 8);
  }
  uint64_t read(AddressSpace& as, VirtAddr va) {
    const Translation t = as.translate(0, va, Access::Read);
    EXPECT_TRUE(t.ok()) << to_string(t.outcome) << " at " << std::hex << va;
    if (!t.ok()) return ~uint64_t{0};
    uint64_t value;
    std::memcpy(&value, pool_->host(t.page) + (va - page_floor(va)), 8);
    return value;
  }
  // Enough pages to span several pte tables of any format (an i386 table covers 4 MiB).
  static constexpr uint64_t kPages = 2600;
  VirtAddr map(AddressSpace& as) {
    MapRequest r;
    r.length = kPages * kPageSize;
    const MmResult m = as.map(0, r);
    EXPECT_TRUE(m.ok());
    return m.value;
  }
  uint64_t total(AddressSpace& as, MmuCounter c) { return as.counters().total(c); }
  // Writes tag(page, 1) into the first `pages` pages at `base`; returns their frames.
  std::vector<FrameNumber> write_tagged(AddressSpace& as, VirtAddr base, uint64_t pages) {
    std::vector<FrameNumber> frames;
    for (uint64_t i = 0; i < pages; ++i) {
      const VirtAddr p = base + i * kPageSize;
      write(as, p, tag(p, 1));
      frames.push_back(static_cast<FrameNumber>(as.translate(0, p, Access::Read).page >> kPageShift));
    }
    return frames;
  }

  std::unique_ptr<FramePool> pool_;
  SwapDevice* swap_ = nullptr;
};

TEST_P(ForkTest, EachSideSeesOnlyItsOwnWrites) {
  auto parent = space();
  const VirtAddr base = map(*parent);
  // Every other page written, a few read only (the zero page), the rest never touched.
  for (uint64_t i = 0; i < kPages; ++i) {
    const VirtAddr p = base + i * kPageSize;
    if (i % 2 == 0) write(*parent, p, tag(p, 1));
    if (i % 2 == 1 && i % 7 == 1) {
      EXPECT_EQ(read(*parent, p), 0u);
    }
  }
  auto child = fork(*parent, 2);
  ASSERT_TRUE(child);
  check_fork_invariants(*pool_, {parent.get(), child.get()});
  const auto original = [&](uint64_t i) { return i % 2 == 0 ? tag(base + i * kPageSize, 1) : 0; };
  for (uint64_t i = 0; i < kPages; ++i) ASSERT_EQ(read(*child, base + i * kPageSize), original(i)) << i;

  // The parent writes a third of the pages, the child another third, and both the last third
  // (the parent first: its copy leaves the child the only one mapping the original).
  for (uint64_t i = 0; i < kPages; ++i) {
    const VirtAddr p = base + i * kPageSize;
    if (i % 3 == 0 || i % 3 == 2) write(*parent, p, tag(p, 2));
  }
  for (uint64_t i = 0; i < kPages; ++i) {
    const VirtAddr p = base + i * kPageSize;
    if (i % 3 == 1 || i % 3 == 2) write(*child, p, tag(p, 3));
  }
  for (uint64_t i = 0; i < kPages; ++i) {
    const VirtAddr p = base + i * kPageSize;
    ASSERT_EQ(read(*parent, p), i % 3 != 1 ? tag(p, 2) : original(i)) << i;
    ASSERT_EQ(read(*child, p), i % 3 != 0 ? tag(p, 3) : original(i)) << i;
  }
  check_fork_invariants(*pool_, {parent.get(), child.get()});

  EXPECT_EQ(total(*parent, MmuCounter::Forks), 1u);
  EXPECT_GT(total(*parent, MmuCounter::FaultCowCopy) + total(*child, MmuCounter::FaultCowCopy), 0u);
  EXPECT_GT(total(*child, MmuCounter::FaultCowReuse), 0u) << "the child was left alone on pages the parent copied";
  if (GetParam().tables == ForkTables::Share) {
    EXPECT_GT(total(*parent, MmuCounter::ForkTablesShared), 0u);
    EXPECT_EQ(total(*parent, MmuCounter::ForkTablesCopied), 0u);
    // The child's first faults (reads of untouched pages) copy the tables it shares; the
    // parent then finds itself their only user and takes them back without a copy.
    EXPECT_GT(total(*child, MmuCounter::UnsharesCopied), 0u);
    EXPECT_GT(total(*parent, MmuCounter::UnsharesExclusive), 0u);
  } else {
    EXPECT_GT(total(*parent, MmuCounter::ForkTablesCopied), 0u);
    EXPECT_EQ(total(*parent, MmuCounter::ForkTablesShared), 0u);
  }

  child.reset();
  check_fork_invariants(*pool_, {parent.get()});
  for (uint64_t i = 0; i < kPages; ++i) {
    const VirtAddr p = base + i * kPageSize;
    ASSERT_EQ(read(*parent, p), i % 3 != 1 ? tag(p, 2) : original(i)) << i;
  }
  parent.reset();
  const auto by_state = pool_->count_by_state();
  EXPECT_EQ(by_state[static_cast<size_t>(FrameState::Anon)], 0u);
  EXPECT_EQ(by_state[static_cast<size_t>(FrameState::PageTable)], 0u);
}

TEST_P(ForkTest, UnmapAndProtectInTheChildLeaveTheParentAlone) {
  auto parent = space();
  const VirtAddr base = map(*parent);
  for (uint64_t i = 0; i < kPages; ++i) write(*parent, base + i * kPageSize, tag(base + i * kPageSize, 1));
  auto child = fork(*parent, 2);
  ASSERT_TRUE(child);
  // Pieces that start and end inside tables, and one that covers whole tables.
  const VirtAddr hole = base + 100 * kPageSize, ro = base + 700 * kPageSize;
  EXPECT_TRUE(child->unmap(0, hole, 300 * kPageSize).ok());
  EXPECT_TRUE(child->protect(0, ro, 50 * kPageSize, kProtNone).ok());
  EXPECT_EQ(child->translate(0, hole + 5 * kPageSize, Access::Read).outcome, FaultOutcome::SegvMapError);
  EXPECT_EQ(child->translate(0, ro, Access::Read).outcome, FaultOutcome::SegvAccessError);
  for (uint64_t i = 0; i < kPages; ++i) ASSERT_EQ(read(*parent, base + i * kPageSize), tag(base + i * kPageSize, 1)) << i;
  check_fork_invariants(*pool_, {parent.get(), child.get()});
  EXPECT_TRUE(child->protect(0, ro, 50 * kPageSize, kProtRead | kProtWrite).ok());
  EXPECT_EQ(read(*child, ro), tag(ro, 1));
  write(*child, ro, 7);
  EXPECT_EQ(read(*parent, ro), tag(ro, 1));
  EXPECT_TRUE(child->unmap(0, base, kPages * kPageSize).ok());
  if (GetParam().tables == ForkTables::Share) {
    EXPECT_GT(total(*child, MmuCounter::SharedTablesDropped), 0u) << "whole shared tables are dropped, not copied";
  }
  check_fork_invariants(*pool_, {parent.get(), child.get()});
  for (uint64_t i = 0; i < kPages; ++i) ASSERT_EQ(read(*parent, base + i * kPageSize), tag(base + i * kPageSize, 1)) << i;
}

TEST_P(ForkTest, SwappedPagesAreSharedBySlotAndReadBackByBoth) {
  auto swap = make_swap(uint64_t{32} << 20);
  swap_ = swap.get();
  auto parent = space(swap.get());
  const VirtAddr base = map(*parent);
  std::vector<FrameNumber> frames;
  for (uint64_t i = 0; i < 600; ++i) {
    const VirtAddr p = base + i * kPageSize;
    write(*parent, p, tag(p, 1));
    if (i % 2 == 0) frames.push_back(static_cast<FrameNumber>(parent->translate(0, p, Access::Read).page >> kPageShift));
  }
  (void)parent->reclaim_frames(0, frames);  // ages them
  const ReclaimOutcome out = parent->reclaim_frames(0, frames);
  EXPECT_EQ(out.freed, frames.size());
  auto child = fork(*parent, 2);
  ASSERT_TRUE(child);
  check_fork_invariants(*pool_, {parent.get(), child.get()}, swap.get());
  auto grandchild = fork(*child, 3);
  ASSERT_TRUE(grandchild);
  for (uint64_t i = 0; i < 600; i += 3) write(*child, base + i * kPageSize, tag(base + i * kPageSize, 2));
  check_fork_invariants(*pool_, {parent.get(), child.get(), grandchild.get()}, swap.get());
  for (uint64_t i = 0; i < 600; ++i) {
    const VirtAddr p = base + i * kPageSize;
    ASSERT_EQ(read(*parent, p), tag(p, 1)) << i;
    ASSERT_EQ(read(*grandchild, p), tag(p, 1)) << i;
    ASSERT_EQ(read(*child, p), i % 3 == 0 ? tag(p, 2) : tag(p, 1)) << i;
  }
  check_fork_invariants(*pool_, {parent.get(), child.get(), grandchild.get()}, swap.get());
  grandchild.reset();
  child.reset();
  parent.reset();
  EXPECT_EQ(swap->slots_used(), 0u);
}

// The reverse map of pages fork shares (mmu/cow_reclaim.h): a page counted in three spaces
// goes to one swap slot referenced by all three ptes, a page one of them touched since the
// aging pass stays, and each space reads back (and writes) what it should.
TEST_P(ForkTest, PagesForkSharedGoToSwapOnceForTheWholeFamily) {
  auto swap = make_swap(uint64_t{32} << 20);
  swap_ = swap.get();
  auto parent = space(swap.get());
  const VirtAddr base = map(*parent);
  constexpr uint64_t kUsed = 600;
  const std::vector<FrameNumber> frames = write_tagged(*parent, base, kUsed);
  auto child = fork(*parent, 2);
  ASSERT_TRUE(child);
  auto grandchild = fork(*child, 3);
  ASSERT_TRUE(grandchild);
  std::vector<AddressSpace*> family{parent.get(), child.get(), grandchild.get()};
  EXPECT_EQ(reclaim_cow_frames(*pool_, *swap, 0, frames, family).freed, 0u) << "every page was accessed: aged only";
  EXPECT_EQ(read(*child, base), tag(base, 1));  // accessed again: stays for the next pass
  const ReclaimOutcome out = reclaim_cow_frames(*pool_, *swap, 0, frames, family);
  EXPECT_EQ(out.freed, kUsed - 1);
  EXPECT_FALSE(out.swap_full || out.io_error);
  uint64_t swapped = 0, kept = 0;
  for (AddressSpace* s : family) {
    swapped += total(*s, MmuCounter::CowSwappedOut);
    kept += total(*s, MmuCounter::CowKept);
    EXPECT_EQ(s->rss_pages(), 1) << "only the page read between the passes is still mapped";
  }
  EXPECT_EQ(swapped, kUsed - 1);
  EXPECT_EQ(kept, 0u);
  EXPECT_EQ(swap->slots_used(), kUsed - 1) << "one slot per page, however many spaces map it";
  check_fork_invariants(*pool_, family, swap.get());
  for (uint64_t i = 0; i < kUsed; i += 3) write(*child, base + i * kPageSize, tag(base + i * kPageSize, 2));
  for (uint64_t i = 0; i < kUsed; ++i) {
    const VirtAddr p = base + i * kPageSize;
    ASSERT_EQ(read(*parent, p), tag(p, 1)) << i;
    ASSERT_EQ(read(*grandchild, p), tag(p, 1)) << i;
    ASSERT_EQ(read(*child, p), i % 3 == 0 ? tag(p, 2) : tag(p, 1)) << i;
  }
  check_fork_invariants(*pool_, family, swap.get());
  grandchild.reset();
  child.reset();
  parent.reset();
  EXPECT_EQ(swap->slots_used(), 0u);
}

// A space the reclaimer was not given (not attached yet, or outside the family) still
// counts in the page: its pte is not found, so every pte taken goes back as it was.
TEST_P(ForkTest, APageMappedWhereTheReclaimerCannotSeeStaysResident) {
  auto swap = make_swap(uint64_t{32} << 20);
  swap_ = swap.get();
  auto parent = space(swap.get());
  const VirtAddr base = map(*parent);
  constexpr uint64_t kUsed = 300;
  const std::vector<FrameNumber> frames = write_tagged(*parent, base, kUsed);
  auto child = fork(*parent, 2);
  ASSERT_TRUE(child);
  std::vector<AddressSpace*> seen{parent.get()};
  (void)reclaim_cow_frames(*pool_, *swap, 0, frames, seen);
  const ReclaimOutcome out = reclaim_cow_frames(*pool_, *swap, 0, frames, seen);
  EXPECT_EQ(out.freed, 0u);
  EXPECT_EQ(total(*parent, MmuCounter::CowKept), kUsed);
  EXPECT_EQ(swap->slots_used(), 0u);
  check_fork_invariants(*pool_, {parent.get(), child.get()}, swap.get());
  for (uint64_t i = 0; i < kUsed; ++i) {
    const VirtAddr p = base + i * kPageSize;
    ASSERT_EQ(read(*parent, p), tag(p, 1)) << i;
    ASSERT_EQ(read(*child, p), tag(p, 1)) << i;
  }
}

TEST_P(ForkTest, RunningOutOfFramesLeavesNothingBehind) {
  auto parent = space();
  const VirtAddr base = map(*parent);
  for (uint64_t i = 0; i < kPages; i += 5) write(*parent, base + i * kPageSize, tag(base + i * kPageSize, 1));
  for (uint64_t skip : {0, 1, 3}) {
    pool_->inject_allocation_failures(skip, 1);
    AddressSpaceConfig c;
    c.id = 2;
    std::string error;
    auto child = parent->fork(0, c, GetParam().tables, &error);
    pool_->inject_allocation_failures(0, 0);
    if (child) continue;  // fewer tables to allocate than `skip`: the fork went through
    EXPECT_FALSE(error.empty());
    check_fork_invariants(*pool_, {parent.get()});
  }
  for (uint64_t i = 0; i < kPages; i += 5) {
    const VirtAddr p = base + i * kPageSize;
    ASSERT_EQ(read(*parent, p), tag(p, 1));
    write(*parent, p, tag(p, 4));
  }
  check_fork_invariants(*pool_, {parent.get()});
}

INSTANTIATE_TEST_SUITE_P(AllFormatsSchemesAndModes, ForkTest, ::testing::ValuesIn(fork_cases()), fork_case_name);

}  // namespace
}  // namespace mmu::testing
