// Shared memory under concurrency: several address spaces map the same anonymous shared
// object and the same file-backed object (the page cache); simulated vCPUs in every space add
// to counters in every shared page with host atomics, while each space also rewrites a private
// working set. Shared and private pages together are larger than the frame pool, so the
// reclaimer takes both out all along: private pages through their space, shared ones through
// their object's reverse map (anonymous ones to swap once for every space, file pages written
// back to the file or dropped, and read again on the next fault). The read-only file is also
// mapped MAP_PRIVATE in every space, through the page cache: its pages are the cache's frames
// until a thread writes one (then that space's private copy, swapped like any private page),
// and the reclaimer's reverse map takes the cached ones out of those mappings too. Afterwards: no lost add
// (every space reads the same totals), the file gets them on write-back, private data intact,
// and every frame and swap slot accounted for once the spaces and objects go. A churn thread
// per space maps and unmaps a small region all along, so the mmap lock is also taken for
// write while faults wait for pages the reclaimer has made busy (the reclaimer must never
// wait for that lock then: tools/soak.py found it deadlocked). A zapper thread takes the
// writable file's ptes out of every space from a moving offset on, as a truncate of the file
// does (AddressSpace::zap_object_pages; the file keeps its size, so the next touch maps the
// cached page again and no add may be lost). Every scheme, 2-level and 4-level tables; the
// ThreadSanitizer stage runs it.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>

#include "memory_file.h"
#include "mmu/shared_memory.h"
#include "mmu_test_support.h"

namespace mmu::testing {
namespace {

constexpr unsigned kSpaces = 3;
constexpr unsigned kThreadsPerSpace = 2;
constexpr unsigned kThreads = kSpaces * kThreadsPerSpace;
constexpr VcpuId kReclaimerSlot = kThreads;
constexpr VcpuId kFirstChurnSlot = kThreads + 1;  // one per space
constexpr VcpuId kZapperSlot = kThreads + 1 + kSpaces;
constexpr unsigned kSlots = kThreads + 1 + kSpaces + 1;
constexpr uint64_t kPoolBytes = uint64_t{8} << 20;
// The shared pages alone (1700 + 500) are more than the pool's 2048 frames: the reclaimer
// cannot keep up by taking private pages only.
constexpr uint64_t kAnonPages = 1700;
constexpr uint64_t kFilePages = 500;
constexpr uint64_t kReadOnlyPages = 300;  // a file mapped read-only: clean, dropped and read again
constexpr uint64_t kPrivatePages = 200;
constexpr unsigned kRounds = 8;

uint64_t pattern(unsigned space, uint64_t page, unsigned round) {
  return (uint64_t{space} << 56) ^ (page * 0x9E3779B97F4A7C15ull) ^ round;
}

class SharedMemoryRaceTest : public ::testing::TestWithParam<Combo> {};

TEST_P(SharedMemoryRaceTest, AddsFromEverySpaceAddUpWhileTheReclaimerRuns) {
  auto pool = make_pool(kPoolBytes, kSlots);
  auto swap = make_swap(uint64_t{64} << 20);
  SimulatedVcpus vcpus(kSlots);
  Reclaimer reclaimer(*pool, swap.get(), stress_reclaimer_config(kReclaimerSlot));
  SharedMemoryRegistry registry(*pool, swap.get());
  reclaimer.set_shared_memory(&registry);
  auto file = std::make_shared<MemoryFile>(kFilePages * kPageSize);
  auto anon = registry.create_anonymous(kAnonPages * kPageSize, "anon");
  auto cached = registry.get({1, 1}, "file", [&] { return file; });
  auto ro_file = std::make_shared<MemoryFile>(kReadOnlyPages * kPageSize);
  auto ro = registry.get({1, 2}, "read-only file", [&] { return ro_file; });

  struct Space {
    std::unique_ptr<AddressSpace> as;
    VirtAddr anon = 0, file = 0, ro = 0, priv = 0, cow = 0;
  };
  std::vector<Space> spaces(kSpaces);
  for (unsigned s = 0; s < kSpaces; ++s) {
    AddressSpaceConfig c;
    c.paging = GetParam().paging;
    c.scheme = GetParam().scheme;
    c.tlbs = &vcpus;
    c.swap = swap.get();
    c.reclaimer = &reclaimer;
    c.id = s + 1;
    std::string err;
    spaces[s].as = make_address_space(*pool, c, &err);
    ASSERT_TRUE(spaces[s].as) << err;
    AddressSpace& as = *spaces[s].as;
    as.set_wait_hook(vcpus.wait_hook());
    reclaimer.attach(as);
    // Different placements in each space: the same frames at different addresses.
    MapRequest r;
    r.length = (s + 1) * kPageSize;
    (void)as.map(0, r);
    r.length = kPrivatePages * kPageSize;
    spaces[s].priv = as.map(0, r).value;
    MapRequest sh;
    sh.kind = VmaKind::Shared;
    sh.shared = anon;
    sh.length = kAnonPages * kPageSize;
    spaces[s].anon = as.map(0, sh).value;
    sh.shared = cached;
    sh.length = kFilePages * kPageSize;
    spaces[s].file = as.map(0, sh).value;
    sh.shared = ro;
    sh.prot = kProtRead;
    sh.length = kReadOnlyPages * kPageSize;
    spaces[s].ro = as.map(0, sh).value;
    MapRequest pr;
    pr.kind = VmaKind::FilePrivate;
    pr.source = std::make_shared<MemoryFileSource>(ro_file);
    pr.source_length = kReadOnlyPages * kPageSize;
    pr.shared = ro;
    pr.length = kReadOnlyPages * kPageSize;
    spaces[s].cow = as.map(0, pr).value;
    ASSERT_NE(spaces[s].cow, 0u);
    ASSERT_NE(spaces[s].ro, 0u);
    ASSERT_NE(spaces[s].anon, 0u);
    ASSERT_NE(spaces[s].file, 0u);
  }
  // The objects live on in the mappings only, as a guest's MAP_SHARED object does.
  const std::weak_ptr<SharedMemory> anon_alive = anon, cached_alive = cached, ro_alive = ro;
  const SharedMemory* const cached_object = cached.get();  // alive while the spaces map it
  anon.reset();
  cached.reset();
  ro.reset();
  reclaimer.start();

  std::atomic<uint64_t> mismatches{0}, failed{0};
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      vcpus.activate(t);
      const unsigned s = t / kThreadsPerSpace, half = t % kThreadsPerSpace;
      Space& sp = spaces[s];
      const auto add = [&](VirtAddr va) {
        uint8_t* p = vcpus.access(*sp.as, t, va, Access::Write);
        if (!p) return void(++failed);
        __atomic_fetch_add(reinterpret_cast<uint64_t*>(p), 1, __ATOMIC_SEQ_CST);
      };
      for (unsigned round = 1; round <= kRounds; ++round) {
        for (uint64_t i = 0; i < kAnonPages; ++i) add(sp.anon + i * kPageSize);
        for (uint64_t i = 0; i < kFilePages; ++i) add(sp.file + i * kPageSize);
        // The read-only file's own bytes, each time it is read in again.
        for (uint64_t i = half; i < kReadOnlyPages; i += kThreadsPerSpace) {
          const uint8_t* p = vcpus.access(*sp.as, t, sp.ro + i * kPageSize, Access::Read);
          if (!p) {
            ++failed;
            continue;
          }
          uint64_t v;
          std::memcpy(&v, p + 8, sizeof v);
          if (v != i) ++mismatches;
          // The same file mapped privately: every third page is written from half-way on.
          const bool writer = i % 3 == 0 && round > kRounds / 2;
          uint8_t* c = vcpus.access(*sp.as, t, sp.cow + i * kPageSize, writer ? Access::Write : Access::Read);
          if (!c) {
            ++failed;
            continue;
          }
          uint64_t own;
          std::memcpy(&v, c + 8, sizeof v);
          std::memcpy(&own, c, sizeof own);
          const uint64_t expect = (i % 3 == 0 && round > kRounds / 2 + 1) ? pattern(s, i, round - 1) : 0;
          if (v != i || own != expect) ++mismatches;
          if (writer) {
            own = pattern(s, i, round);
            std::memcpy(c, &own, sizeof own);
          }
        }
        // This thread's half of the private pages: write this round's pattern, check last's.
        for (uint64_t i = half; i < kPrivatePages; i += kThreadsPerSpace) {
          const VirtAddr va = sp.priv + i * kPageSize;
          uint8_t* p = vcpus.access(*sp.as, t, va, Access::Write);
          if (!p) {
            ++failed;
            continue;
          }
          uint64_t v;
          std::memcpy(&v, p, sizeof v);
          if (round > 1 && v != pattern(s, i, round - 1)) ++mismatches;
          v = pattern(s, i, round);
          std::memcpy(p, &v, sizeof v);
        }
      }
      vcpus.deactivate(t);
    });
  }
  std::atomic<bool> workers_done{false};
  std::atomic<uint64_t> churns{0};
  std::vector<std::thread> churners;
  for (unsigned s = 0; s < kSpaces; ++s) {
    churners.emplace_back([&, s] {
      const VcpuId v = kFirstChurnSlot + s;
      vcpus.activate(v);
      AddressSpace& as = *spaces[s].as;
      while (!workers_done.load(std::memory_order_acquire)) {
        MapRequest r;
        r.length = 4 * kPageSize;
        const VirtAddr va = as.map(v, r).value;
        if (!va) continue;
        if (!vcpus.access(as, v, va, Access::Write)) ++failed;
        (void)as.unmap(v, va, r.length);
        ++churns;
      }
      vcpus.deactivate(v);
    });
  }
  std::atomic<uint64_t> zaps{0};
  std::thread zapper([&] {
    vcpus.activate(kZapperSlot);
    for (uint64_t n = 0; !workers_done.load(std::memory_order_acquire); ++n) {
      AddressSpace& as = *spaces[n % kSpaces].as;
      const uint64_t from = (n * 37 % kFilePages) * kPageSize;
      if (as.zap_object_pages(kZapperSlot, *cached_object, from).ok) ++zaps;
      std::this_thread::yield();
    }
    vcpus.deactivate(kZapperSlot);
  });
  for (auto& th : threads) th.join();
  workers_done.store(true, std::memory_order_release);
  for (auto& th : churners) th.join();
  zapper.join();
  EXPECT_GT(churns.load(), 0u);
  EXPECT_GT(zaps.load(), 0u);

  EXPECT_EQ(failed.load(), 0u);
  EXPECT_EQ(mismatches.load(), 0u)
      << "private data lost beside the shared pages, a file page read wrong, or a private copy's write seen elsewhere";
  uint64_t reclaimed = 0;
  for (auto& sp : spaces) reclaimed += sp.as->counters().total(MmuCounter::Reclaimed);
  EXPECT_GT(reclaimed, 0u) << "the reclaimer must have run beside the shared pages";
  const SharedMemoryStats& st = registry.stats();
  EXPECT_GT(st.swapped_out.load(), 0u) << "anonymous shared pages must have gone to swap";
  EXPECT_GT(st.swapped_in.load(), 0u) << "... and come back";
  EXPECT_GT(st.evict_written.load(), 0u) << "dirty file pages must have been written back to leave memory";
  EXPECT_GT(st.dropped.load(), 0u) << "clean file pages must have been dropped";
  uint64_t unmapped = 0;
  for (auto& sp : spaces) unmapped += sp.as->counters().total(MmuCounter::SharedUnmapped);
  EXPECT_GT(unmapped, 0u);
  std::printf("shared reclaim: rmap walks %llu, to swap %llu, back %llu, file dropped %llu, written %llu, kept %llu\n",
              (unsigned long long)st.rmap_walks.load(), (unsigned long long)st.swapped_out.load(),
              (unsigned long long)st.swapped_in.load(), (unsigned long long)st.dropped.load(),
              (unsigned long long)st.evict_written.load(), (unsigned long long)st.evict_aborted.load());
  // Every space reads every add, through its own page tables.
  const uint64_t total = uint64_t{kThreads} * kRounds;
  for (unsigned s = 0; s < kSpaces; ++s) {
    vcpus.activate(0);
    for (uint64_t i = 0; i < kAnonPages; ++i) {
      const uint8_t* p = vcpus.access(*spaces[s].as, 0, spaces[s].anon + i * kPageSize, Access::Read);
      ASSERT_TRUE(p);
      uint64_t v;
      std::memcpy(&v, p, sizeof v);
      EXPECT_EQ(v, total) << "space " << s << " anon page " << i;
    }
    vcpus.deactivate(0);
  }
  const auto by_state = pool->count_by_state();
  EXPECT_LE(by_state[size_t(FrameState::Shared)], kAnonPages + kFilePages + kReadOnlyPages) << "one frame per shared page, whoever maps it";
  auto live = cached_alive.lock();
  ASSERT_TRUE(live);
  ASSERT_TRUE(live->writeback());
  live.reset();
  for (uint64_t i = 0; i < kFilePages; ++i) {
    EXPECT_EQ(file->word(i * kPageSize), total) << "file page " << i << ": the adds reached the file";
    EXPECT_EQ(file->word(i * kPageSize + 8), i) << "file page " << i << ": the file's own bytes were read in";
  }
  // Running until here: reading the totals back faults swapped pages in.
  reclaimer.stop();
  for (auto& sp : spaces) {
    reclaimer.detach(*sp.as);
    sp.as.reset();
  }
  EXPECT_TRUE(anon_alive.expired());
  EXPECT_TRUE(cached_alive.expired());
  EXPECT_TRUE(ro_alive.expired());
  EXPECT_EQ(swap->slots_used(), 0u);
  const auto after = pool->count_by_state();
  EXPECT_EQ(after[size_t(FrameState::Anon)], 0u);
  EXPECT_EQ(after[size_t(FrameState::Shared)], 0u) << "shared frames leaked";
  EXPECT_EQ(after[size_t(FrameState::PageTable)], 0u);
  EXPECT_EQ(after[size_t(FrameState::Free)], pool->free_frames()) << "free lists disagree";
}

INSTANTIATE_TEST_SUITE_P(BothWidthsAllSchemes, SharedMemoryRaceTest, ::testing::ValuesIn(two_widths_all_schemes()), combo_name);

}  // namespace
}  // namespace mmu::testing
