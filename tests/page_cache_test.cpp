// Private file mappings through the page cache: every space that maps a file MAP_PRIVATE (an
// ELF segment, a library ld.so maps) reads the file's cached frames, mapped read-only; the
// first write to a page gives that space a private copy and leaves the cache, the file and
// every other space alone, whichever way the pte became writable (a write fault, mprotect,
// fork). A partial last page stays a private copy. MAP_SHARED mappings made writable by
// mprotect are written back. Every paging format and scheme; nothing leaks afterwards.
#include <gtest/gtest.h>

#include <cstring>

#include "memory_file.h"
#include "mmu/shared_memory.h"
#include "mmu_test_support.h"

namespace mmu::testing {
namespace {

constexpr uint64_t kFilePages = 4;

class PageCacheTest : public ::testing::TestWithParam<Combo> {
 protected:
  void SetUp() override {
    pool = make_pool(uint64_t{16} << 20);
    registry = std::make_unique<SharedMemoryRegistry>(*pool);
    file = std::make_shared<MemoryFile>(kFilePages * kPageSize);
    object = registry->get({7, 7}, "file", [&] { return file; });
    a = space(1);
    b = space(2);
  }
  void TearDown() override {
    a.reset();
    b.reset();
    object.reset();
    const auto n = pool->count_by_state();
    EXPECT_EQ(n[size_t(FrameState::Anon)], 0u);
    EXPECT_EQ(n[size_t(FrameState::Shared)], 0u) << "page-cache frames outlived every mapping and the object";
    EXPECT_EQ(n[size_t(FrameState::PageTable)], 0u);
    EXPECT_EQ(pool->free_frames(), pool->frame_count() - 1u);
  }
  std::unique_ptr<AddressSpace> space(uint32_t id) {
    AddressSpaceConfig c;
    c.paging = GetParam().paging;
    c.scheme = GetParam().scheme;
    c.id = id;
    std::string err;
    auto s = make_address_space(*pool, c, &err);
    EXPECT_TRUE(s) << err;
    return s;
  }
  VirtAddr map_private(AddressSpace& as, uint8_t prot, uint64_t file_bytes = kFilePages * kPageSize) {
    MapRequest r;
    r.length = kFilePages * kPageSize;
    r.prot = prot;
    r.kind = VmaKind::FilePrivate;
    r.source = std::make_shared<MemoryFileSource>(file);
    r.source_length = file_bytes;
    r.shared = object;
    const MmResult m = as.map(0, r);
    EXPECT_TRUE(m.ok());
    return m.value;
  }
  uint64_t word(AddressSpace& as, VirtAddr va, PhysAddr* page = nullptr) {
    const Translation t = as.translate(0, va, Access::Read);
    EXPECT_TRUE(t.ok()) << to_string(t.outcome);
    if (!t.ok()) return ~uint64_t{0};
    if (page) *page = t.page;
    uint64_t v;
    std::memcpy(&v, pool->host(t.page) + (va - page_floor(va)), sizeof v);
    return v;
  }
  PhysAddr write_word(AddressSpace& as, VirtAddr va, uint64_t v) {
    const Translation t = as.translate(0, va, Access::Write);
    EXPECT_TRUE(t.ok()) << to_string(t.outcome);
    if (!t.ok()) return 0;
    EXPECT_TRUE(t.perms & kPermWrite);
    std::memcpy(pool->host(t.page) + (va - page_floor(va)), &v, sizeof v);
    return t.page;
  }
  bool cache_frame(PhysAddr page) const {
    return pool->descriptor(page >> kPageShift).state.load() == FrameState::Shared;
  }

  std::unique_ptr<FramePool> pool;
  std::unique_ptr<SharedMemoryRegistry> registry;
  std::shared_ptr<MemoryFile> file;
  std::shared_ptr<SharedMemory> object;
  std::unique_ptr<AddressSpace> a, b;
};

TEST_P(PageCacheTest, PrivateMappingsShareTheCachedFrameUntilTheFirstWrite) {
  const VirtAddr va = map_private(*a, kProtRead | kProtWrite);
  const VirtAddr vb = map_private(*b, kProtRead | kProtExec);
  PhysAddr pa = 0, pb = 0;
  EXPECT_EQ(word(*a, va + kPageSize + 8, &pa), 1u);
  EXPECT_EQ(word(*b, vb + kPageSize + 8, &pb), 1u);
  EXPECT_EQ(pa, pb) << "one frame for the page in every space";
  EXPECT_TRUE(cache_frame(pa));
  EXPECT_EQ(registry->stats().misses.load(), 1u);
  EXPECT_EQ(registry->stats().hits.load(), 1u);
  EXPECT_FALSE(a->translate(0, va + kPageSize, Access::Read).perms & kPermWrite) << "mapped read-only";

  // a writes: its own copy, with the file's bytes; b, the cache and the file keep theirs.
  const PhysAddr copy = write_word(*a, va + kPageSize, 0xC0FFEE);
  EXPECT_NE(copy, pa);
  EXPECT_FALSE(cache_frame(copy));
  EXPECT_EQ(word(*a, va + kPageSize + 8), 1u) << "the copy starts as the file's page";
  EXPECT_EQ(word(*a, va + kPageSize), 0xC0FFEEu);
  EXPECT_EQ(word(*b, vb + kPageSize), 0u);
  EXPECT_EQ(a->counters().total(MmuCounter::FaultCowCopy), 1u);
  // A first access that is a write reads the page through the cache and copies it too.
  const PhysAddr direct = write_word(*a, va + 2 * kPageSize, 5);
  EXPECT_FALSE(cache_frame(direct));
  EXPECT_EQ(word(*a, va + 2 * kPageSize + 8), 2u);
  EXPECT_EQ(word(*b, vb + 2 * kPageSize), 0u);
  ASSERT_TRUE(object->writeback());
  EXPECT_EQ(file->writes(), 0u) << "a private mapping never writes the file";
  EXPECT_EQ(file->word(kPageSize), 0u);
}

TEST_P(PageCacheTest, MprotectToWritableStillCopiesOnTheFirstWrite) {
  const VirtAddr va = map_private(*a, kProtRead);
  const VirtAddr vb = map_private(*b, kProtRead);
  PhysAddr pa = 0, pb = 0;
  (void)word(*a, va, &pa);
  (void)word(*b, vb, &pb);
  ASSERT_EQ(pa, pb);
  // PROT_NONE and back, then writable: the pte never becomes a writable cache frame.
  ASSERT_TRUE(a->protect(0, va, kFilePages * kPageSize, kProtNone).ok());
  ASSERT_TRUE(a->protect(0, va, kFilePages * kPageSize, kProtRead | kProtWrite).ok());
  EXPECT_FALSE(a->translate(0, va, Access::Read).perms & kPermWrite);
  const PhysAddr copy = write_word(*a, va, 42);
  EXPECT_NE(copy, pb);
  EXPECT_EQ(word(*b, vb), 0u) << "another space's view of the file changed";
  EXPECT_EQ(file->word(0), 0u);
}

TEST_P(PageCacheTest, APartialLastPageIsAPrivateCopyZeroedPastTheFileBytes) {
  const uint64_t bytes = (kFilePages - 1) * kPageSize + 100;
  const VirtAddr va = map_private(*a, kProtRead, bytes);
  const VirtAddr vb = map_private(*b, kProtRead, bytes);
  PhysAddr pa = 0, pb = 0;
  EXPECT_EQ(word(*a, va + (kFilePages - 1) * kPageSize + 8, &pa), kFilePages - 1);
  EXPECT_EQ(word(*b, vb + (kFilePages - 1) * kPageSize + 8, &pb), kFilePages - 1);
  EXPECT_NE(pa, pb);
  EXPECT_FALSE(cache_frame(pa));
  EXPECT_EQ(word(*a, va + (kFilePages - 1) * kPageSize + 200), 0u);
  EXPECT_EQ(word(*a, va + 8, &pa), 0u);
  EXPECT_TRUE(cache_frame(pa)) << "whole pages still come from the cache";
}

TEST_P(PageCacheTest, ForkSharesTheCachedFrameAndEachSideCopiesOnWrite) {
  const VirtAddr va = map_private(*a, kProtRead | kProtWrite);
  PhysAddr pa = 0;
  EXPECT_EQ(word(*a, va + 3 * kPageSize + 8, &pa), 3u);
  for (ForkTables tables : {ForkTables::Copy, ForkTables::Share}) {
    AddressSpaceConfig c;
    c.id = 9;
    std::string error;
    auto child = a->fork(0, c, tables, &error);
    ASSERT_TRUE(child) << error;
    PhysAddr pc = 0;
    EXPECT_EQ(word(*child, va + 3 * kPageSize + 8, &pc), 3u);
    EXPECT_EQ(pc, pa);
    const PhysAddr copy = write_word(*child, va + 3 * kPageSize, 77);
    EXPECT_NE(copy, pa);
    EXPECT_EQ(word(*a, va + 3 * kPageSize), 0u) << "the child's write reached the parent";
    EXPECT_EQ(word(*a, va + 3 * kPageSize, &pc), 0u);
    EXPECT_EQ(pc, pa) << "the parent still maps the cache";
  }
  EXPECT_EQ(file->writes(), 0u);
}

TEST_P(PageCacheTest, SharedMappingMadeWritableByMprotectIsWrittenBack) {
  MapRequest r;
  r.length = kFilePages * kPageSize;
  r.prot = kProtRead;
  r.kind = VmaKind::Shared;
  r.shared = object;
  const VirtAddr va = a->map(0, r).value;
  ASSERT_NE(va, 0u);
  EXPECT_EQ(word(*a, va + 8), 0u);
  ASSERT_TRUE(a->protect(0, va, kFilePages * kPageSize, kProtRead | kProtWrite).ok());
  const PhysAddr p = write_word(*a, va, 0xABCD);
  EXPECT_TRUE(cache_frame(p)) << "MAP_SHARED writes the cache itself";
  ASSERT_TRUE(object->writeback());
  EXPECT_EQ(file->word(0), 0xABCDu) << "the page written after mprotect must reach the file";
}

INSTANTIATE_TEST_SUITE_P(AllCombos, PageCacheTest, ::testing::ValuesIn(all_combos()), combo_name);

}  // namespace
}  // namespace mmu::testing
