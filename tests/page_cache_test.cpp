// Private file mappings through the page cache: every space that maps a file MAP_PRIVATE (an
// ELF segment, a library ld.so maps) reads the file's cached frames, mapped read-only; the
// first write to a page gives that space a private copy and leaves the cache, the file and
// every other space alone, whichever way the pte became writable (a write fault, mprotect,
// fork). A partial last page stays a private copy. MAP_SHARED mappings made writable by
// mprotect are written back. A truncate's zap (zap_object_pages) takes cached pages and private
// copies past the cut out of every mapping. Every paging format and scheme; nothing leaks
// afterwards.
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

TEST_P(PageCacheTest, ZapFromAnOffsetTakesCachedPagesAndPrivateCopiesOutOfEveryMapping) {
  // a maps the file privately and writes page 3 (a private copy), b maps it shared, at a
  // different file offset (page 1 of the file at b's start).
  const VirtAddr va = map_private(*a, kProtRead | kProtWrite);
  MapRequest r;
  r.length = 3 * kPageSize;
  r.kind = VmaKind::Shared;
  r.shared = object;
  r.source_offset = kPageSize;
  const VirtAddr vb = b->map(0, r).value;
  ASSERT_NE(vb, 0u);
  for (uint64_t p = 0; p < kFilePages; ++p) EXPECT_EQ(word(*a, va + p * kPageSize + 8), p);
  for (uint64_t p = 0; p < 3; ++p) EXPECT_EQ(word(*b, vb + p * kPageSize + 8), p + 1);
  const PhysAddr copy = write_word(*a, va + 3 * kPageSize, 99);
  EXPECT_FALSE(cache_frame(copy));
  const uint64_t anon_before = pool->count_by_state()[size_t(FrameState::Anon)];

  // Everything from file page 2 on goes (the file was cut to 2 pages); pages 0 and 1 stay.
  for (AddressSpace* as : {a.get(), b.get()}) {
    const auto zap = as->zap_object_pages(0, *object, 2 * kPageSize);
    EXPECT_TRUE(zap.ok);
    EXPECT_FALSE(zap.code);
  }
  EXPECT_TRUE(a->peek(0, va));
  EXPECT_TRUE(a->peek(0, va + kPageSize));
  EXPECT_FALSE(a->peek(0, va + 2 * kPageSize));
  EXPECT_FALSE(a->peek(0, va + 3 * kPageSize)) << "a private copy of a page past the cut stayed mapped";
  EXPECT_TRUE(b->peek(0, vb)) << "file page 1, at b's start";
  EXPECT_FALSE(b->peek(0, vb + kPageSize));
  EXPECT_FALSE(b->peek(0, vb + 2 * kPageSize));
  EXPECT_EQ(pool->count_by_state()[size_t(FrameState::Anon)], anon_before - 1) << "the private copy's frame was not freed";
  // The VMAs stay: the next touch faults the file's page in again (the file kept its size here).
  EXPECT_EQ(word(*a, va + 3 * kPageSize), 0u) << "the private copy came back";
  EXPECT_EQ(word(*a, va + 3 * kPageSize + 8), 3u);
  EXPECT_EQ(word(*b, vb + 2 * kPageSize + 8), 3u);
  // Executable mappings say so: their translated code must go.
  const VirtAddr vx = map_private(*a, kProtRead | kProtExec);
  EXPECT_EQ(word(*a, vx + 8), 0u);
  EXPECT_TRUE(a->zap_object_pages(0, *object, 0).code);
  EXPECT_FALSE(a->peek(0, vx));
}

INSTANTIATE_TEST_SUITE_P(AllCombos, PageCacheTest, ::testing::ValuesIn(all_combos()), combo_name);

}  // namespace
}  // namespace mmu::testing
