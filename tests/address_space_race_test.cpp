// Race tests: many threads (simulated vCPUs with software TLBs) faulting the same and
// disjoint pages through a spinning barrier, with munmap, mmap and mprotect racing them.
// Afterwards the invariant checker walks everything. Run under ThreadSanitizer in CI.
#include <gtest/gtest.h>

#include <thread>

#include "mmu_test_support.h"

namespace mmu::testing {
namespace {

constexpr unsigned kThreads = 6;

class AddressSpaceRaceTest : public ::testing::TestWithParam<Combo> {
 protected:
  void SetUp() override {
    pool = make_pool(256 << 20, kThreads + 2);
    as = make_space(*pool, GetParam(), &vcpus);
    ASSERT_TRUE(as);
    as->set_wait_hook(vcpus.wait_hook());
  }
  void TearDown() override {
    check_invariants(*pool, {as.get()});
    as.reset();
    const auto n = pool->count_by_state();
    EXPECT_EQ(n[size_t(FrameState::Anon)], 0u);
    EXPECT_EQ(n[size_t(FrameState::PageTable)], 0u);
  }
  template <class Body>
  void run_threads(unsigned n, Body body) {
    std::vector<std::thread> ts;
    for (unsigned t = 0; t < n; ++t)
      ts.emplace_back([&, t] {
        vcpus.activate(t);
        body(t);
        vcpus.deactivate(t);
      });
    for (auto& t : ts) t.join();
  }

  SimulatedVcpus vcpus{kThreads + 2};
  std::unique_ptr<FramePool> pool;
  std::unique_ptr<AddressSpace> as;
};

// All threads fault the same pages at once (read and write mixed, so zero-page and
// copy-on-write races happen too) and count into them with atomic increments: if two
// threads ever got different frames for one page, the totals would split.
TEST_P(AddressSpaceRaceTest, SamePagesFaultedAtOnceGetOneFrame) {
  constexpr unsigned kPages = 128, kRounds = 12;
  MapRequest r;
  r.length = kPages * kPageSize * kRounds;
  const VirtAddr base = as->map(0, r).value;
  SpinBarrier barrier(kThreads);
  run_threads(kThreads, [&](unsigned t) {
    for (unsigned round = 0; round < kRounds; ++round) {
      barrier.arrive_and_wait([&] { vcpus.serve(t); });
      const VirtAddr region = base + round * kPages * kPageSize;
      for (unsigned i = 0; i < kPages; ++i) {
        const unsigned page = (i * 7 + t * 13) % kPages;  // different orders, same pages
        if ((t + i) % 3 == 0) (void)vcpus.access(*as, t, region + page * kPageSize, Access::Read);
        uint8_t* p = nullptr;
        while (!(p = vcpus.access(*as, t, region + page * kPageSize, Access::Write))) {
        }
        std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(p)).fetch_add(1);
      }
    }
  });
  for (unsigned i = 0; i < kPages * kRounds; ++i) {
    const Translation tr = as->translate(0, base + i * kPageSize, Access::Read);
    ASSERT_TRUE(tr.ok());
    uint32_t v;
    std::memcpy(&v, pool->host(tr.page), 4);
    ASSERT_EQ(v, kThreads) << "page " << i << " lost increments: two frames for one page";
  }
  EXPECT_EQ(as->rss_pages(), int64_t(kPages * kRounds));
}

// Disjoint pages that share page tables: every thread writes a page-unique pattern into its
// own pages and verifies all of them afterwards.
TEST_P(AddressSpaceRaceTest, DisjointPagesSharingTablesKeepTheirData) {
  constexpr unsigned kPagesPerThread = 512;
  MapRequest r;
  r.length = uint64_t(kPagesPerThread) * kThreads * kPageSize;
  const VirtAddr base = as->map(0, r).value;
  SpinBarrier barrier(kThreads);
  run_threads(kThreads, [&](unsigned t) {
    barrier.arrive_and_wait([&] { vcpus.serve(t); });
    // Interleaved: page i belongs to thread i % kThreads, so neighbours race on each table.
    for (unsigned i = t; i < kPagesPerThread * kThreads; i += kThreads) {
      uint8_t* p;
      while (!(p = vcpus.access(*as, t, base + uint64_t(i) * kPageSize, Access::Write))) {
      }
      const uint64_t pattern = (base + uint64_t(i) * kPageSize) ^ (uint64_t(t) << 56);
      std::memcpy(p, &pattern, 8);
    }
  });
  for (unsigned i = 0; i < kPagesPerThread * kThreads; ++i) {
    const Translation tr = as->translate(0, base + uint64_t(i) * kPageSize, Access::Read);
    ASSERT_TRUE(tr.ok());
    uint64_t v;
    std::memcpy(&v, pool->host(tr.page), 8);
    ASSERT_EQ(v, (base + uint64_t(i) * kPageSize) ^ (uint64_t(i % kThreads) << 56));
  }
  const uint64_t races = as->counters().total(MmuCounter::PopulateRacesLost);
  const uint64_t tables = as->counters().total(MmuCounter::TablesAllocated);
  // Every allocated table is either reachable or was a lost race freed at once.
  uint64_t reachable = 0;
  ReferenceWalker(pool->host_base(), as->paging_mode(), as->root_table()).for_each([&](uint64_t, int) { ++reachable; },
                                                                                   [](uint64_t, const RefLeaf&) {});
  EXPECT_EQ(tables - races, reachable - 1) << "table accounting (root excluded)";
}

// Faulting threads keep writing and re-reading page-unique patterns in a stable region and
// touching a churn region, while one thread maps/unmaps the churn region and another flips
// the protection of a shared region. Each write through a cached translation checks that
// the frame still belongs to that page: a frame freed before every vCPU acknowledged the
// shootdown would be caught here.
TEST_P(AddressSpaceRaceTest, MunmapAndMprotectRacingFaults) {
  constexpr unsigned kFaulters = kThreads - 2;
  constexpr uint64_t kStable = 256, kChurn = 128, kProt = 64;
  MapRequest r;
  r.length = kStable * kPageSize;
  const VirtAddr stable = as->map(0, r).value;
  r.length = kChurn * kPageSize;
  const VirtAddr churn = as->map(0, r).value;
  r.length = kProt * kPageSize;
  const VirtAddr prot = as->map(0, r).value;
  std::atomic<bool> stop{false};
  std::atomic<int> done{0};
  std::atomic<uint64_t> stale_writes{0}, mismatches{0}, churn_hits{0};

  run_threads(kThreads, [&](unsigned t) {
    if (t == kFaulters) {  // the munmap/mmap thread
      // Not before a faulter has mapped a churn page: on a loaded machine all 40 rounds could
      // otherwise end before any fault, with nothing to unmap and no shootdown to check.
      while (churn_hits.load() == 0) {
        vcpus.serve(t);
        std::this_thread::yield();
      }
      for (int i = 0; i < 40; ++i) {
        EXPECT_TRUE(as->unmap(t, churn, kChurn * kPageSize).ok());
        vcpus.serve(t);
        MapRequest m;
        m.addr = churn;
        m.length = kChurn * kPageSize;
        m.placement = MapPlacement::FixedNoReplace;
        EXPECT_TRUE(as->map(t, m).ok());
        std::this_thread::yield();
      }
      if (++done == 2) stop = true;
      return;
    }
    if (t == kFaulters + 1) {  // the mprotect thread
      for (int i = 0; i < 40; ++i) {
        EXPECT_TRUE(as->protect(t, prot, kProt * kPageSize, kProtRead).ok());
        vcpus.serve(t);
        std::this_thread::yield();
        EXPECT_TRUE(as->protect(t, prot, kProt * kPageSize, kProtRead | kProtWrite).ok());
        vcpus.serve(t);
        std::this_thread::yield();
      }
      if (++done == 2) stop = true;
      return;
    }
    uint64_t iter = 0;
    while (!stop) {
      ++iter;
      const uint64_t i = (iter * 31 + t * kStable / kFaulters) % kStable;
      const VirtAddr page = stable + i * kPageSize;
      if (uint8_t* p = vcpus.access(*as, t, page + 8 * t, Access::Write)) {
        const uint64_t pattern = page ^ (iter << 8) ^ t;
        std::memcpy(p, &pattern, 8);
        uint64_t back;
        if (uint8_t* q = vcpus.access(*as, t, page + 8 * t, Access::Read)) {
          std::memcpy(&back, q, 8);
          if (back != pattern) ++mismatches;
        }
      }
      const VirtAddr cpage = churn + (iter % kChurn) * kPageSize;
      if (uint8_t* p = vcpus.access(*as, t, cpage, Access::Write)) {
        const FrameNumber f = static_cast<FrameNumber>((p - pool->host_base()) >> kPageShift);
        const FrameDescriptor& d = pool->descriptor(f);
        if (d.state.load() != FrameState::Anon || d.vaddr.load() != cpage) ++stale_writes;
        std::atomic_ref<uint8_t>(p[8 + t]).store(uint8_t(iter));
        ++churn_hits;
      }
      const VirtAddr ppage = prot + (iter % kProt) * kPageSize;
      // Denied (SEGV_ACCERR) while the region is read-only; either outcome is fine here.
      if (uint8_t* p = vcpus.access(*as, t, ppage, Access::Write)) std::atomic_ref<uint8_t>(p[t]).store(1);
    }
  });
  EXPECT_EQ(stale_writes.load(), 0u) << "a vCPU wrote through a translation of a freed frame";
  EXPECT_EQ(mismatches.load(), 0u);
  EXPECT_GT(churn_hits.load(), 0u);
  EXPECT_GT(vcpus.flushes(), 0u);
  // After the flips every page of the protect region still translates.
  for (uint64_t i = 0; i < kProt; ++i) {
    const Translation tr = as->translate(0, prot + i * kPageSize, Access::Read);
    ASSERT_TRUE(tr.ok());
  }
}

INSTANTIATE_TEST_SUITE_P(AllFormatsAndSchemes, AddressSpaceRaceTest, ::testing::ValuesIn(all_combos()), combo_name);

}  // namespace
}  // namespace mmu::testing
