// The reclaimer and swap, one step at a time (no reclaimer thread unless a test starts it):
// pages go out and come back intact, clean pages are dropped without a write, and every
// failure the issue names has its documented outcome: swap full -> OutOfMemory, a failed
// write -> the page stays and the emulator is told once, a failed read -> SIGBUS for that
// access with the page still in swap, a failed frame allocation or page-table constructor
// -> the fault waits for the reclaimer and succeeds. Every test ends with exact accounting.
#include <gtest/gtest.h>

#include <cstring>

#include "mmu/schemes/pte_bit_scheme.h"
#include "mmu_test_support.h"

namespace mmu::testing {
namespace {

constexpr VcpuId kVcpu = 0;
constexpr VcpuId kReclaimerSlot = 3;

class ReclaimTest : public ::testing::TestWithParam<Combo> {
 protected:
  void SetUp() override { build(uint64_t{4} << 20, uint64_t{16} << 20); }
  void build(uint64_t pool_bytes, uint64_t swap_bytes) {
    as.reset();
    reclaimer.reset();
    pool = make_pool(pool_bytes, 4);
    swap = make_swap(swap_bytes);
    ReclaimerConfig rc;
    rc.slot = kReclaimerSlot;
    reclaimer = std::make_unique<Reclaimer>(*pool, swap.get(), rc);
    as = make_space(*pool, GetParam(), nullptr, RssMode::PerVcpu, swap.get(), reclaimer.get());
    ASSERT_TRUE(as);
    reclaimer->attach(*as);
  }
  void TearDown() override {
    reclaimer->stop();
    check_invariants(*pool, {as.get()});
    check_swap_accounting(*pool, *swap, {as.get()});
    reclaimer->detach(*as);
    as.reset();
    EXPECT_EQ(swap->slots_used(), 0u) << "swap slots leaked at teardown";
    const auto n = pool->count_by_state();
    EXPECT_EQ(n[size_t(FrameState::Anon)], 0u);
    EXPECT_EQ(n[size_t(FrameState::PageTable)], 0u);
  }

  VirtAddr map_pages(uint64_t pages) {
    MapRequest r;
    r.length = pages * kPageSize;
    const MmResult m = as->map(kVcpu, r);
    EXPECT_TRUE(m.ok());
    return m.value;
  }
  static uint64_t pattern(VirtAddr page, uint64_t word, uint64_t round) { return (page * 0x9E3779B97F4A7C15ull) ^ (word << 48) ^ round; }
  // Writes a page-unique pattern in every 64th byte of each page.
  void write_pages(VirtAddr base, uint64_t pages, uint64_t round) {
    for (uint64_t i = 0; i < pages; ++i) {
      const VirtAddr va = base + i * kPageSize;
      const Translation t = as->translate(kVcpu, va, Access::Write);
      ASSERT_TRUE(t.ok()) << to_string(t.outcome);
      for (uint64_t w = 0; w < kPageSize / 64; ++w) {
        const uint64_t v = pattern(va, w, round);
        std::memcpy(pool->host(t.page) + w * 64, &v, 8);
      }
    }
  }
  uint64_t count_bad(VirtAddr base, uint64_t pages, uint64_t round) {
    uint64_t bad = 0;
    for (uint64_t i = 0; i < pages; ++i) {
      const VirtAddr va = base + i * kPageSize;
      const Translation t = as->translate(kVcpu, va, Access::Read);
      if (!t.ok()) return ~uint64_t{0};
      for (uint64_t w = 0; w < kPageSize / 64; ++w) {
        uint64_t v;
        std::memcpy(&v, pool->host(t.page) + w * 64, 8);
        bad += v != pattern(va, w, round);
      }
    }
    return bad;
  }
  // One round: its first sweep clears accessed bits, the next takes the pages.
  uint64_t reclaim_all() { return reclaimer->reclaim(pool->frame_count()); }
  uint64_t count(MmuCounter c) const { return as->counters().total(c); }

  std::unique_ptr<FramePool> pool;
  std::unique_ptr<SwapDevice> swap;
  std::unique_ptr<Reclaimer> reclaimer;
  std::unique_ptr<AddressSpace> as;
};

TEST_P(ReclaimTest, PagesGoToSwapAndComeBackIntact) {
  constexpr uint64_t kPages = 256;
  const VirtAddr base = map_pages(kPages);
  write_pages(base, kPages, 1);
  const int64_t rss_before = as->rss_pages();
  const uint64_t freed = reclaim_all();
  EXPECT_GE(freed, kPages);
  EXPECT_EQ(count(MmuCounter::SwapOuts), kPages);
  EXPECT_EQ(swap->slots_used(), kPages);
  EXPECT_EQ(as->rss_pages(), rss_before - static_cast<int64_t>(kPages));
  check_swap_accounting(*pool, *swap, {as.get()});

  EXPECT_EQ(count_bad(base, kPages, 1), 0u);
  EXPECT_EQ(count(MmuCounter::FaultMajor), kPages);
  EXPECT_EQ(swap->bytes_read(), kPages * kPageSize);
  // Read back and not written: the swap copy is still good, so the next reclaim drops the
  // pages without writing them again.
  reclaim_all();
  EXPECT_EQ(count(MmuCounter::ReclaimCleanDropped), kPages);
  EXPECT_EQ(count(MmuCounter::SwapOuts), kPages);
  // Written after coming back: dirty, so written again (to the slot it already had).
  write_pages(base, kPages, 2);
  reclaim_all();
  EXPECT_EQ(count(MmuCounter::SwapOuts), 2 * kPages);
  EXPECT_EQ(count_bad(base, kPages, 2), 0u);
}

TEST_P(ReclaimTest, AccessedPagesGetASecondChance) {
  const VirtAddr base = map_pages(8);
  write_pages(base, 8, 1);
  reclaimer->reclaim(pool->frame_count(), 1);  // one sweep: accessed bits cleared, nothing taken
  EXPECT_EQ(count(MmuCounter::Reclaimed), 0u);
  EXPECT_GE(count(MmuCounter::ReclaimAged), 8u);
  EXPECT_EQ(count_bad(base, 8, 1), 0u);  // touched again: accessed again
  reclaimer->reclaim(pool->frame_count(), 1);
  EXPECT_EQ(count(MmuCounter::Reclaimed), 0u);
  EXPECT_GE(count(MmuCounter::ReclaimAged), 16u);
  reclaimer->reclaim(pool->frame_count(), 1);  // not touched since: taken
  EXPECT_EQ(count(MmuCounter::Reclaimed), 8u);
}

// peek() is for observers: it reports the mapping without faulting pages in or marking them
// accessed, so a peeked page is still reclaimed as cold.
TEST_P(ReclaimTest, PeekNeitherFaultsNorAges) {
  const VirtAddr base = map_pages(2);
  EXPECT_FALSE(as->peek(kVcpu, base).has_value());
  const auto before = as->counters().sum();
  write_pages(base, 1, 4);
  const Translation t = as->translate(kVcpu, base, Access::Read);
  ASSERT_TRUE(t.ok());
  reclaimer->reclaim(pool->frame_count(), 1);  // clears the accessed bit
  const auto after_fault = as->counters().sum();
  for (int i = 0; i < 100; ++i) ASSERT_EQ(as->peek(kVcpu, base), std::optional<PhysAddr>(t.page));
  EXPECT_FALSE(as->peek(kVcpu, base + kPageSize).has_value()) << "never touched: not faulted in by peek";
  EXPECT_EQ(as->counters().sum(), after_fault) << "peek counted something";
  reclaimer->reclaim(pool->frame_count(), 1);
  EXPECT_EQ(count(MmuCounter::Reclaimed), 1u) << "peeked page still cold";
  EXPECT_NE(before, after_fault);
  EXPECT_EQ(count_bad(base, 1, 4), 0u);
}

TEST_P(ReclaimTest, UnmapReleasesSwapSlotsAndCopies) {
  const VirtAddr base = map_pages(64);
  write_pages(base, 64, 1);
  reclaim_all();
  EXPECT_EQ(count_bad(base, 32, 1), 0u);  // half back in memory, with swap copies
  EXPECT_EQ(swap->slots_used(), 64u);
  ASSERT_TRUE(as->unmap(kVcpu, base, 64 * kPageSize).ok());
  EXPECT_EQ(swap->slots_used(), 0u);
}

TEST_P(ReclaimTest, SwapFullEndsInOutOfMemoryAndNothingLeaks) {
  build(uint64_t{2} << 20, 64 * kPageSize);
  reclaimer->start();
  const uint64_t pages = 2 * pool->frame_count();
  const VirtAddr base = map_pages(pages);
  FaultOutcome last = FaultOutcome::Ok;
  uint64_t done = 0;
  for (; done < pages; ++done) {
    const Translation t = as->translate(kVcpu, base + done * kPageSize, Access::Write);
    if (!t.ok()) {
      last = t.outcome;
      break;
    }
    std::memset(pool->host(t.page), 0x5a, 16);
  }
  EXPECT_EQ(last, FaultOutcome::OutOfMemory);
  EXPECT_GT(done, pool->frame_count() / 2);
  EXPECT_EQ(swap->slots_used(), swap->slot_count());
  EXPECT_GT(count(MmuCounter::SwapFull), 0u);
  EXPECT_GT(count(MmuCounter::FaultMemoryWaits), 0u);
  EXPECT_EQ(count(MmuCounter::FaultOutOfMemory), 1u);
}

TEST_P(ReclaimTest, FailedSwapWriteKeepsThePageAndReportsOnce) {
  int reports = 0;
  std::string message;
  reclaimer->set_fatal_hook([&](const std::string& m) {
    ++reports;
    message = m;
  });
  const VirtAddr base = map_pages(64);
  write_pages(base, 64, 7);
  swap->inject_write_failures(10, 1000);
  reclaim_all();
  EXPECT_EQ(reports, 1);
  EXPECT_NE(message.find("swap write failed"), std::string::npos) << message;
  EXPECT_TRUE(reclaimer->failed());
  EXPECT_EQ(count(MmuCounter::SwapOuts), 10u);
  EXPECT_GE(count(MmuCounter::SwapOutErrors), 1u);
  EXPECT_EQ(count_bad(base, 64, 7), 0u);  // written ones come back, failed ones never left
  EXPECT_EQ(count(MmuCounter::FaultMajor), 10u);
}

TEST_P(ReclaimTest, FailedSwapReadIsSigBusAndThePageStaysInSwap) {
  const VirtAddr base = map_pages(4);
  write_pages(base, 4, 3);
  reclaim_all();
  swap->inject_read_failures(0, 1);
  const Translation t = as->translate(kVcpu, base, Access::Read);
  EXPECT_EQ(t.outcome, FaultOutcome::SigBus);
  EXPECT_EQ(count(MmuCounter::SwapInErrors), 1u);
  check_swap_accounting(*pool, *swap, {as.get()});
  EXPECT_EQ(count_bad(base, 4, 3), 0u);  // the next try reads it
}

TEST_P(ReclaimTest, FrameAllocationFailureOnSwapInWaitsAndSucceeds) {
  const VirtAddr base = map_pages(4);
  write_pages(base, 4, 5);
  reclaim_all();
  pool->inject_allocation_failures(0, 3);
  EXPECT_EQ(count_bad(base, 4, 5), 0u);
  EXPECT_GE(count(MmuCounter::FaultMemoryWaits), 3u);
  EXPECT_EQ(count(MmuCounter::FaultOutOfMemory), 0u);
}

TEST_P(ReclaimTest, TableConstructorFailureWaitsAndSucceeds) {
  as->inject_table_ctor_failures(0, 2);
  const VirtAddr base = map_pages(4);
  write_pages(base, 4, 9);
  EXPECT_EQ(count(MmuCounter::TableCtorFailures), 2u);
  EXPECT_EQ(count(MmuCounter::FaultOutOfMemory), 0u);
  reclaim_all();
  EXPECT_EQ(count_bad(base, 4, 9), 0u);
}

// ptebit: the reclaimer keeps an entry locked in transition while it waits for shootdown
// acknowledgements; a fault that spun on that lock without serving its mailbox would deadlock
// with it. A change meeting such an entry must give up at once (the fault then waits on the
// transition entry, serving its mailbox), and leave the entry as it was.
TEST(PteBitScheme, ChangeOnAnEntryLockedInTransitionGivesUp) {
  using F = X86_64Format;
  using Pte = PageTableEntry<F>;
  auto pool = make_pool(1 << 20, 2);
  MmuCounters counters(2);
  SpinLock table_lock;
  SchemeEnv env{table_lock, *pool, counters.slot(0)};
  const F::Entry locked_transition = Pte::transition(5).raw() | Pte::kLockBit;
  F::Entry word = locked_transition;
  const EntrySlot<F> slot{&word, 1, 1};
  const auto r = PteBitScheme<F>::update(env, slot, [](Pte) { return std::optional<Pte>(Pte()); });
  EXPECT_FALSE(r.applied);
  EXPECT_EQ(r.before.kind(), EntryKind::Transition);
  EXPECT_EQ(word, locked_transition);
  // Once the holder stores the final entry (unlocking it), changes go through again.
  PteBitScheme<F>::unlock_to(slot, Pte::swap(9));
  const auto again = PteBitScheme<F>::update(env, slot, [](Pte) { return std::optional<Pte>(Pte()); });
  EXPECT_TRUE(again.applied);
  EXPECT_EQ(word, F::Entry{0});
}

TEST(SwapDevice, I386LimitKeepsSlotsInRange) {
  auto swap = make_swap(16 * kPageSize);
  swap->limit_slots(5);
  std::set<SwapSlot> got;
  for (int i = 0; i < 5; ++i) got.insert(swap->allocate());
  EXPECT_EQ(*got.rbegin(), 4u);
  EXPECT_EQ(swap->allocate(), kNoSwapSlot);
  EXPECT_EQ(swap->slot_count(), 5u);
  for (SwapSlot s : got) swap->free(s);
}

// One device for spaces of every format: an i386 space takes only slots its 20-bit ptes can
// name, without shrinking the device for the others; shared slots count their references.
TEST(SwapDevice, PerCallLimitAndSharedSlots) {
  auto swap = make_swap(200 * kPageSize);
  std::vector<SwapSlot> low;
  for (int i = 0; i < 70; ++i) {
    const SwapSlot s = swap->allocate(70);
    ASSERT_NE(s, kNoSwapSlot);
    EXPECT_LT(s, 70u);
    low.push_back(s);
  }
  EXPECT_EQ(swap->allocate(70), kNoSwapSlot) << "all 70 slots below the limit are taken";
  const SwapSlot high = swap->allocate();
  ASSERT_NE(high, kNoSwapSlot);
  EXPECT_GE(high, 70u) << "the others still have the whole device";
  swap->dup(high);
  EXPECT_EQ(swap->extra_refs(high), 1u);
  swap->free(high);
  EXPECT_EQ(swap->slots_used(), 71u) << "one reference left";
  swap->free(high);
  for (SwapSlot s : low) swap->free(s);
  EXPECT_EQ(swap->slots_used(), 0u);
}

TEST(SwapDevice, RejectsBadSizesAndPaths) {
  std::string err;
  EXPECT_FALSE(SwapDevice::open_temporary(100, &err));
  EXPECT_NE(err.find("at least one page"), std::string::npos);
  EXPECT_FALSE(SwapDevice::open("/nonexistent-dir/swap", 1 << 20, &err));
  EXPECT_NE(err.find("cannot create swap file"), std::string::npos) << err;
}

TEST(SwapDevice, SlotsAreHandedOutOnceAndFullIsReported) {
  auto swap = make_swap(8 * kPageSize);
  std::set<SwapSlot> got;
  for (int i = 0; i < 8; ++i) got.insert(swap->allocate());
  EXPECT_EQ(got.size(), 8u);
  EXPECT_EQ(swap->allocate(), kNoSwapSlot);
  swap->free(3);
  EXPECT_EQ(swap->allocate(), 3u);
  std::vector<uint8_t> page(kPageSize, 0xab), back(kPageSize);
  ASSERT_TRUE(swap->write(5, page.data()));
  ASSERT_TRUE(swap->read(5, back.data()));
  EXPECT_EQ(page, back);
  for (SwapSlot s : got) swap->free(s);
  EXPECT_EQ(swap->slots_used(), 0u);
}

TEST(SwapDevice, FullDiskWriteIsAnError) {
  std::string err;
  auto swap = SwapDevice::open("/dev/full", 16 * kPageSize, &err);
  ASSERT_TRUE(swap) << err;
  std::vector<uint8_t> page(kPageSize, 1);
  EXPECT_FALSE(swap->write(0, page.data()));
  EXPECT_EQ(swap->write_errors(), 1u);
  EXPECT_EQ(swap->last_error(), ENOSPC);
}

INSTANTIATE_TEST_SUITE_P(AllFormatsAndSchemes, ReclaimTest, ::testing::ValuesIn(all_combos()), combo_name);

}  // namespace
}  // namespace mmu::testing
