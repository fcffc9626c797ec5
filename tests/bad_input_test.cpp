// Bad input: a clear error value, no crash, nothing leaked.
#include <gtest/gtest.h>

#include "mmu_test_support.h"

namespace mmu::testing {
namespace {

class BadInputTest : public ::testing::TestWithParam<Combo> {
 protected:
  void SetUp() override {
    pool = make_pool(16 << 20);
    as = make_space(*pool, GetParam());
    ASSERT_TRUE(as);
  }
  void TearDown() override {
    check_invariants(*pool, {as.get()});
    as.reset();
    EXPECT_EQ(pool->count_by_state()[size_t(FrameState::Anon)], 0u);
    EXPECT_EQ(pool->count_by_state()[size_t(FrameState::PageTable)], 0u);
  }
  MmResult map(VirtAddr addr, uint64_t len, MapPlacement placement = MapPlacement::Fixed) {
    MapRequest r;
    r.addr = addr;
    r.length = len;
    r.placement = placement;
    return as->map(0, r);
  }
  std::unique_ptr<FramePool> pool;
  std::unique_ptr<AddressSpace> as;
};

TEST_P(BadInputTest, UnalignedOrEmptyRangesAreInvalid) {
  EXPECT_EQ(map(0x10001, kPageSize).error, MmError::InvalidArgument);
  EXPECT_EQ(map(0x10000, 0).error, MmError::InvalidArgument);
  EXPECT_EQ(as->unmap(0, 0x10001, kPageSize).error, MmError::InvalidArgument);
  EXPECT_EQ(as->unmap(0, 0x10000, 0).error, MmError::InvalidArgument);
  EXPECT_EQ(as->protect(0, 0x10001, kPageSize, kProtRead).error, MmError::InvalidArgument);
  EXPECT_EQ(as->protect(0, 0x10000, kPageSize, 0x80).error, MmError::InvalidArgument);
  MapRequest r;
  r.length = kPageSize;
  r.prot = 0x40;
  EXPECT_EQ(as->map(0, r).error, MmError::InvalidArgument);
  EXPECT_EQ(as->vmas(0).size(), 0u);
}

TEST_P(BadInputTest, OverflowingRangesAreRejected) {
  EXPECT_EQ(map(0x10000, ~uint64_t{0} - 100).error, MmError::NoMemory);
  EXPECT_EQ(map(~uint64_t{0} - 2 * kPageSize, kPageSize).error, MmError::InvalidArgument);
  EXPECT_EQ(map(page_floor(~uint64_t{0}), kPageSize).error, MmError::NoMemory);
  EXPECT_EQ(as->unmap(0, 0x10000, ~uint64_t{0} - 0x1000).error, MmError::InvalidArgument);
  EXPECT_EQ(as->protect(0, 0x10000, ~uint64_t{0} - 0x1000, kProtRead).error, MmError::NoMemory);
  EXPECT_EQ(as->vmas(0).size(), 0u);
}

TEST_P(BadInputTest, MappingBeyondTheFormatsAddressSpaceFails) {
  const VirtAddr limit = as->virt_limit();
  EXPECT_EQ(map(limit - kPageSize, 2 * kPageSize).error, MmError::NoMemory);
  EXPECT_EQ(map(limit, kPageSize).error, MmError::NoMemory);
  EXPECT_TRUE(map(limit - kPageSize, kPageSize).ok());
  EXPECT_EQ(map(0, limit + kPageSize, MapPlacement::Anywhere).error, MmError::NoMemory);
  if (limit == (uint64_t{1} << 32)) {
    // 32-bit guests: 5 GiB can never fit, and a fixed map above 4 GiB is refused.
    EXPECT_EQ(map(0, uint64_t{5} << 30, MapPlacement::Anywhere).error, MmError::NoMemory);
    EXPECT_EQ(map(uint64_t{1} << 33, kPageSize).error, MmError::NoMemory);
  }
  EXPECT_EQ(as->translate(0, limit + 5, Access::Read).outcome, FaultOutcome::SegvMapError);
}

TEST_P(BadInputTest, ProtectOfUnmappedRangeIsNoMemory) {
  const VirtAddr a = map(0, 4 * kPageSize, MapPlacement::Anywhere).value;
  EXPECT_EQ(as->protect(0, a, 8 * kPageSize, kProtRead).error, MmError::NoMemory);
  // Nothing changed: the VMA is still writable.
  EXPECT_TRUE(as->translate(0, a, Access::Write).ok());
}

TEST_P(BadInputTest, ExhaustedPoolGivesOutOfMemoryAndLeaksNothing) {
  const uint64_t len = 32 << 20;  // twice the pool
  const VirtAddr a = map(0, len, MapPlacement::Anywhere).value;
  uint64_t ok = 0;
  FaultOutcome last = FaultOutcome::Ok;
  for (VirtAddr p = a; p < a + len; p += kPageSize) {
    const Translation t = as->translate(0, p, Access::Write);
    if (!t.ok()) {
      last = t.outcome;
      break;
    }
    ++ok;
  }
  EXPECT_EQ(last, FaultOutcome::OutOfMemory);
  EXPECT_GT(ok, 3000u);
  EXPECT_EQ(pool->free_frames(), 0u);
  check_invariants(*pool, {as.get()});
  ASSERT_TRUE(as->unmap(0, a, len).ok());
  EXPECT_EQ(pool->free_frames(), pool->frame_count() - 2u) << "everything back but the zero frame and root";
}

TEST_P(BadInputTest, InjectedFrameAllocationFailureIsOutOfMemory) {
  const VirtAddr a = map(0, 64 * kPageSize, MapPlacement::Anywhere).value;
  pool->inject_allocation_failures(0, 1);
  EXPECT_EQ(as->translate(0, a, Access::Write).outcome, FaultOutcome::OutOfMemory);
  EXPECT_TRUE(as->translate(0, a, Access::Write).ok()) << "the next fault succeeds";
}

TEST_P(BadInputTest, PageTableConstructorFailureIsOutOfMemory) {
  const VirtAddr a = map(0, 64 * kPageSize, MapPlacement::Anywhere).value;
  const uint64_t free_before = pool->free_frames();
  as->inject_table_ctor_failures(0, 1);
  EXPECT_EQ(as->translate(0, a, Access::Write).outcome, FaultOutcome::OutOfMemory);
  EXPECT_EQ(as->counters().total(MmuCounter::TableCtorFailures), 1u);
  // Tables built above the failing level stay (reachable, not leaked); the failed one is back.
  check_invariants(*pool, {as.get()});
  EXPECT_TRUE(as->translate(0, a, Access::Write).ok());
  EXPECT_LT(pool->free_frames(), free_before);
}

INSTANTIATE_TEST_SUITE_P(AllFormatsAndSchemes, BadInputTest, ::testing::ValuesIn(all_combos()), combo_name);

TEST(AddressSpaceFactory, RefusesPoolBeyondI386PhysicalReach) {
  FramePoolConfig c;
  c.bytes = uint64_t{5} << 30;  // reserved only, never touched beyond the first chunk
  c.populate_chunk_bytes = 1 << 20;
  std::string err;
  auto pool = FramePool::create(c, &err);
  ASSERT_TRUE(pool) << err;
  AddressSpaceConfig ac;
  ac.paging = PagingMode::I386;
  EXPECT_EQ(make_address_space(*pool, ac, &err), nullptr);
  EXPECT_NE(err.find("4096 MiB"), std::string::npos) << err;
  ac.paging = PagingMode::Pae;
  EXPECT_NE(make_address_space(*pool, ac, &err), nullptr);
}

}  // namespace
}  // namespace mmu::testing
