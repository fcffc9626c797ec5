// The typed suite: every paging format x locking scheme, single-threaded behaviour, checked
// with the independent reference walker and the invariant checker.
#include <gtest/gtest.h>

#include <cstring>

#include "mmu_test_support.h"

namespace mmu::testing {
namespace {

class RecordingTlbs final : public TlbShootdown {
 public:
  void flush(const AddressSpace&, std::span<const VirtRange> ranges, VcpuId) override {
    ++flushes;
    for (auto r : ranges) pages += (r.end - r.start) / kPageSize;
    if (ranges.empty()) ++full_flushes;
  }
  int flushes = 0, full_flushes = 0;
  uint64_t pages = 0;
};

class BytesSource final : public PageSource {
 public:
  explicit BytesSource(std::vector<uint8_t> b) : bytes(std::move(b)) {}
  size_t read(uint64_t off, uint8_t* dst, size_t len) const override {
    if (off >= bytes.size()) return 0;
    const size_t n = std::min<size_t>(len, bytes.size() - off);
    std::memcpy(dst, bytes.data() + off, n);
    return n;
  }
  std::string name() const override { return "bytes"; }
  std::vector<uint8_t> bytes;
};

class AddressSpaceTest : public ::testing::TestWithParam<Combo> {
 protected:
  void SetUp() override {
    pool = make_pool(64 << 20);
    as = make_space(*pool, GetParam(), &tlbs);
    ASSERT_TRUE(as);
  }
  void TearDown() override {
    if (!as) return;
    check_invariants(*pool, {as.get()});
    as.reset();
    // Nothing but the zero frame may survive the address space.
    const auto n = pool->count_by_state();
    EXPECT_EQ(n[size_t(FrameState::Anon)], 0u);
    EXPECT_EQ(n[size_t(FrameState::PageTable)], 0u);
    EXPECT_EQ(pool->free_frames(), pool->frame_count() - 1u);
  }
  ReferenceWalker walker() const { return ReferenceWalker(pool->host_base(), as->paging_mode(), as->root_table()); }
  VirtAddr map_anon(uint64_t len, uint8_t prot = kProtRead | kProtWrite) {
    MapRequest r;
    r.length = len;
    r.prot = prot;
    auto m = as->map(0, r);
    EXPECT_TRUE(m.ok());
    return m.value;
  }
  uint64_t counter(MmuCounter c) const { return as->counters().total(c); }
  uint8_t* host(const Translation& t) const { return pool->host(t.page); }

  RecordingTlbs tlbs;
  std::unique_ptr<FramePool> pool;
  std::unique_ptr<AddressSpace> as;
};

TEST_P(AddressSpaceTest, ReadOfUntouchedPageMapsTheZeroFrameReadOnly) {
  const VirtAddr a = map_anon(16 * kPageSize);
  const Translation t = as->translate(0, a + 5, Access::Read);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t.page, 0u);
  EXPECT_FALSE(t.perms & kPermWrite);
  const RefLeaf leaf = walker().walk(a);
  EXPECT_TRUE(leaf.present);
  EXPECT_FALSE(leaf.writable);
  EXPECT_TRUE(leaf.accessed);
  EXPECT_TRUE(leaf.user);
  EXPECT_EQ(counter(MmuCounter::FaultZeroPage), 1u);
  EXPECT_EQ(as->rss_pages(), 0);
}

TEST_P(AddressSpaceTest, WriteFaultInstallsZeroedPrivateFrameWithDirtyBit) {
  const VirtAddr a = map_anon(16 * kPageSize);
  const Translation t = as->translate(0, a + 3 * kPageSize + 7, Access::Write);
  ASSERT_TRUE(t.ok());
  EXPECT_NE(t.page, 0u);
  EXPECT_TRUE(t.perms & kPermWrite);
  for (size_t i = 0; i < kPageSize; ++i) ASSERT_EQ(host(t)[i], 0);
  const RefLeaf leaf = walker().walk(a + 3 * kPageSize);
  EXPECT_EQ(leaf.page, t.page);
  EXPECT_TRUE(leaf.writable && leaf.dirty && leaf.accessed);
  const FrameDescriptor& d = pool->descriptor(t.page >> 12);
  EXPECT_EQ(d.state.load(), FrameState::Anon);
  EXPECT_EQ(d.vaddr.load(), a + 3 * kPageSize);
  // The reverse map names the pte that maps the frame.
  uint64_t pte = 0;
  std::memcpy(&pte, pool->host(d.rmap_pte.load()), as->paging_mode() == PagingMode::I386 ? 4 : 8);
  EXPECT_EQ(pte & 0xFFFFF000u, t.page & 0xFFFFF000u);
  EXPECT_EQ(as->rss_pages(), 1);
  // A second translation of the same page is a hit, with nothing changed.
  const Translation again = as->translate(0, a + 3 * kPageSize, Access::Write);
  EXPECT_EQ(again.page, t.page);
  EXPECT_EQ(counter(MmuCounter::TranslateHit), 1u);
}

TEST_P(AddressSpaceTest, FirstWriteAfterReadCopiesFromZeroFrameAndShootsDown) {
  const VirtAddr a = map_anon(4 * kPageSize);
  ASSERT_EQ(as->translate(0, a, Access::Read).page, 0u);
  const int flushes = tlbs.flushes;
  const Translation w = as->translate(0, a, Access::Write);
  ASSERT_TRUE(w.ok());
  EXPECT_NE(w.page, 0u);
  EXPECT_EQ(counter(MmuCounter::FaultCopyOnWrite), 1u);
  EXPECT_EQ(tlbs.flushes, flushes + 1) << "other vCPUs may still read the zero page";
  host(w)[10] = 42;
  EXPECT_EQ(pool->host(as->translate(0, a, Access::Read).page)[10], 42);
  EXPECT_EQ(pool->frame_ptr(0)[10], 0) << "the zero frame was written";
}

TEST_P(AddressSpaceTest, CleanWritablePageWithholdsWriteUntilFirstWrite) {
  auto src = std::make_shared<BytesSource>(std::vector<uint8_t>(6000, 0xAB));
  MapRequest r;
  r.length = 3 * kPageSize;
  r.prot = kProtRead | kProtWrite;
  r.kind = VmaKind::FilePrivate;
  r.source = src;
  r.source_length = 6000;
  auto m = as->map(0, r);
  ASSERT_TRUE(m.ok());
  const Translation rd = as->translate(0, m.value + kPageSize, Access::Read);
  ASSERT_TRUE(rd.ok());
  EXPECT_FALSE(rd.perms & kPermWrite) << "clean page must come back through the handler on write";
  EXPECT_FALSE(walker().walk(m.value + kPageSize).dirty);
  // File bytes up to 6000, zero after (the ELF bss rule).
  EXPECT_EQ(host(rd)[6000 - 4096 - 1], 0xAB);
  EXPECT_EQ(host(rd)[6000 - 4096], 0);
  const Translation wr = as->translate(0, m.value + kPageSize, Access::Write);
  EXPECT_EQ(wr.page, rd.page);
  EXPECT_TRUE(wr.perms & kPermWrite);
  EXPECT_TRUE(walker().walk(m.value + kPageSize).dirty);
  EXPECT_EQ(counter(MmuCounter::AccessedDirtySet), 1u);
  // The third page lies past the file: all zero.
  const Translation z = as->translate(0, m.value + 2 * kPageSize, Access::Read);
  EXPECT_EQ(host(z)[0], 0);
  EXPECT_EQ(counter(MmuCounter::FaultFileFill), 2u);
}

TEST_P(AddressSpaceTest, ProtectDowngradesFlushesAndRestoresWithDataKept) {
  const VirtAddr a = map_anon(8 * kPageSize);
  Translation w = as->translate(0, a + kPageSize, Access::Write);
  ASSERT_TRUE(w.ok());
  std::memset(host(w), 0x5A, kPageSize);
  int flushes = tlbs.flushes;
  ASSERT_TRUE(as->protect(0, a, 8 * kPageSize, kProtRead).ok());
  EXPECT_EQ(tlbs.flushes, flushes + 1);
  EXPECT_FALSE(walker().walk(a + kPageSize).writable);
  EXPECT_EQ(as->translate(0, a + kPageSize, Access::Write).outcome, FaultOutcome::SegvAccessError);
  ASSERT_TRUE(as->protect(0, a, 8 * kPageSize, kProtNone).ok());
  EXPECT_FALSE(walker().walk(a + kPageSize).present);
  EXPECT_EQ(as->translate(0, a + kPageSize, Access::Read).outcome, FaultOutcome::SegvAccessError);
  check_invariants(*pool, {as.get()});  // protnone still owns its frame
  ASSERT_TRUE(as->protect(0, a, 8 * kPageSize, kProtRead | kProtWrite).ok());
  const Translation back = as->translate(0, a + kPageSize, Access::Write);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back.page, w.page);
  EXPECT_EQ(host(back)[123], 0x5A);
  // Upgrades need no flush.
  flushes = tlbs.flushes;
  ASSERT_TRUE(as->protect(0, a, kPageSize, kProtRead | kProtWrite | kProtExec).ok());
  EXPECT_EQ(tlbs.flushes, flushes);
  EXPECT_EQ(as->vmas(0).size(), 2u) << "mprotect splits the VMA";
}

TEST_P(AddressSpaceTest, FetchHonoursExecutePermission) {
  const VirtAddr data = map_anon(kPageSize, kProtRead | kProtWrite);
  const VirtAddr code = map_anon(kPageSize, kProtRead | kProtExec);
  EXPECT_EQ(as->translate(0, data, Access::Fetch).outcome, FaultOutcome::SegvAccessError);
  const Translation t = as->translate(0, code, Access::Fetch);
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t.perms & kPermExec);
  EXPECT_EQ(as->translate(0, code, Access::Write).outcome, FaultOutcome::SegvAccessError);
  // A page of a data VMA, once mapped, carries NX where the format has it.
  ASSERT_TRUE(as->translate(0, data, Access::Write).ok());
  EXPECT_EQ(walker().walk(data).nx, as->paging_mode() != PagingMode::I386);
}

TEST_P(AddressSpaceTest, UnmapFreesFramesAndEmptyTablesAfterOneFlush) {
  const uint64_t len = 8 << 20;  // spans several pte tables in every format
  const VirtAddr a = map_anon(len);
  const uint64_t free_before = pool->free_frames();
  for (VirtAddr p = a; p < a + len; p += kPageSize) ASSERT_TRUE(as->translate(0, p, Access::Write).ok());
  EXPECT_EQ(as->rss_pages(), int64_t(len / kPageSize));
  check_invariants(*pool, {as.get()});
  const int flushes = tlbs.flushes;
  ASSERT_TRUE(as->unmap(0, a, len).ok());
  EXPECT_EQ(tlbs.flushes, flushes + 1);
  EXPECT_EQ(tlbs.pages, len / kPageSize);
  EXPECT_EQ(as->rss_pages(), 0);
  EXPECT_FALSE(walker().walk(a).present);
  EXPECT_EQ(counter(MmuCounter::TablesFreed), counter(MmuCounter::TablesAllocated));
  EXPECT_EQ(pool->free_frames(), free_before) << "frames or tables leaked";
  EXPECT_EQ(as->translate(0, a, Access::Read).outcome, FaultOutcome::SegvMapError);
}

TEST_P(AddressSpaceTest, PartialUnmapKeepsTheRest) {
  const VirtAddr a = map_anon(4 * kPageSize);
  for (int i = 0; i < 4; ++i) host(as->translate(0, a + i * kPageSize, Access::Write))[0] = uint8_t(i + 1);
  ASSERT_TRUE(as->unmap(0, a + kPageSize, 2 * kPageSize).ok());
  EXPECT_EQ(as->translate(0, a + kPageSize, Access::Read).outcome, FaultOutcome::SegvMapError);
  EXPECT_EQ(host(as->translate(0, a, Access::Read))[0], 1);
  EXPECT_EQ(host(as->translate(0, a + 3 * kPageSize, Access::Read))[0], 4);
  EXPECT_EQ(as->rss_pages(), 2);
  EXPECT_EQ(as->vmas(0).size(), 2u);
}

TEST_P(AddressSpaceTest, FixedMapReplacesOldPages) {
  const VirtAddr a = map_anon(4 * kPageSize);
  host(as->translate(0, a, Access::Write))[0] = 9;
  MapRequest r;
  r.addr = a;
  r.length = kPageSize;
  r.placement = MapPlacement::Fixed;
  ASSERT_EQ(as->map(0, r).value, a);
  EXPECT_EQ(host(as->translate(0, a, Access::Read))[0], 0);
  r.placement = MapPlacement::FixedNoReplace;
  EXPECT_EQ(as->map(0, r).error, MmError::AlreadyMapped);
}

TEST_P(AddressSpaceTest, StackGrowsDownOnFaultBelowIt) {
  MapRequest r;
  r.length = 16 * kPageSize;
  r.flags = kVmaGrowsDown;
  auto m = as->map(0, r);
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(as->translate(0, m.value - 3 * kPageSize, Access::Write).ok());
  EXPECT_EQ(counter(MmuCounter::FaultStackGrowth), 1u);
  EXPECT_EQ(as->vmas(0).front().start, m.value - 3 * kPageSize);
  // Beyond the stack limit: a segfault, not growth.
  EXPECT_EQ(as->translate(0, m.value - (64 << 20), Access::Write).outcome, FaultOutcome::SegvMapError);
}

TEST_P(AddressSpaceTest, BrkGrowsAndShrinks) {
  const VirtAddr base = 0x800000 + 123;
  as->set_brk_base(0, base);
  EXPECT_EQ(as->brk(0, 0), base) << "brk(0) reports the break";
  EXPECT_EQ(as->brk(0, base + 100000), base + 100000);
  host(as->translate(0, base + 99999, Access::Write))[0] = 1;
  EXPECT_EQ(as->rss_pages(), 1);
  EXPECT_EQ(as->brk(0, base + 10), base + 10);
  EXPECT_EQ(as->rss_pages(), 0);
  EXPECT_EQ(as->translate(0, base + 99999, Access::Read).outcome, FaultOutcome::SegvMapError);
  EXPECT_EQ(as->brk(0, base - kPageSize), base + 10) << "below the base: unchanged";
}

TEST_P(AddressSpaceTest, WalkerFollowsLargePages) {
  // Build a large-page entry by hand next to a populated table and translate through it.
  const uint64_t span = as->paging_mode() == PagingMode::I386 ? (4 << 20) : (2 << 20);
  const VirtAddr a = map_anon(4 * span);
  const VirtAddr region = (a + span - 1) & ~(span - 1);
  ASSERT_TRUE(as->translate(0, region + span, Access::Write).ok());  // creates the level-2 table
  ReferenceWalker w = walker();
  // Find the level-2 entry for `region` through the reference walker's tables.
  uint64_t table = as->root_table();
  const RefFormat f = ref_format(as->paging_mode());
  for (int level = f.levels; level > 2; --level) table = w.read_entry(table, (region >> w.shift(level)) & ((1u << w.bits(level)) - 1)) & w.addr_mask();
  const unsigned idx = (region >> w.shift(2)) & ((1u << w.bits(2)) - 1);
  const uint64_t large = span /*phys base*/ | 0x80 | 0x7;
  if (f.entry_bytes == 4) {
    const uint32_t v = uint32_t(large);
    std::memcpy(pool->host_base() + table + idx * 4, &v, 4);
  } else {
    std::memcpy(pool->host_base() + table + idx * 8, &large, 8);
  }
  const Translation t = as->translate(0, region + 5 * kPageSize + 17, Access::Read);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t.page, span + 5 * kPageSize);
  EXPECT_TRUE(w.walk(region).large);
  EXPECT_TRUE(w.walk(region).accessed) << "A set on the large entry";
  ASSERT_TRUE(as->unmap(0, region, span).ok());
  EXPECT_FALSE(w.walk(region).present);
}

TEST_P(AddressSpaceTest, OutsideAnyMappingIsSegvMapError) {
  EXPECT_EQ(as->translate(0, 0x1000, Access::Read).outcome, FaultOutcome::SegvMapError);
  EXPECT_EQ(as->translate(0, as->virt_limit(), Access::Read).outcome, FaultOutcome::SegvMapError);
  EXPECT_EQ(as->translate(0, ~uint64_t{0}, Access::Write).outcome, FaultOutcome::SegvMapError);
}

TEST_P(AddressSpaceTest, RssModesCountTheSame) {
  for (RssMode mode : {RssMode::SharedAtomic, RssMode::PerVcpu}) {
    auto space = make_space(*pool, GetParam(), nullptr, mode);
    MapRequest r;
    r.length = 64 * kPageSize;
    const VirtAddr a = space->map(0, r).value;
    for (int v = 0; v < 4; ++v)
      for (int i = 0; i < 16; ++i) ASSERT_TRUE(space->translate(v, a + (v * 16 + i) * kPageSize, Access::Write).ok());
    EXPECT_EQ(space->rss_pages(), 64);
    ASSERT_TRUE(space->unmap(5, a, 32 * kPageSize).ok());
    EXPECT_EQ(space->rss_pages(), 32);
  }
}

INSTANTIATE_TEST_SUITE_P(AllFormatsAndSchemes, AddressSpaceTest, ::testing::ValuesIn(all_combos()), combo_name);

}  // namespace
}  // namespace mmu::testing
