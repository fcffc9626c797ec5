// Integrity under memory pressure: simulated vCPUs (software TLBs answering shootdowns) write
// page-unique patterns into a working set three times the frame pool and verify them, pass
// after pass, while the reclaimer thread swaps pages out under them and two more threads
// munmap/mmap and mprotect other regions. Afterwards: no mismatch, and every frame and swap
// slot accounted for exactly. For every scheme, both 32-bit 2-level and 64-bit 4-level
// tables; the ThreadSanitizer stage runs it.
#include <gtest/gtest.h>

#include <cstring>
#include <thread>

#include "mmu_test_support.h"

namespace mmu::testing {
namespace {

constexpr unsigned kWorkers = 3;
constexpr unsigned kChurn = kWorkers;       // munmap/mmap thread
constexpr unsigned kProtect = kWorkers + 1; // mprotect thread
constexpr unsigned kThreads = kWorkers + 2;
static_assert(kProtect == kThreads - 1, "the mprotect thread is the last one");
constexpr VcpuId kReclaimerSlot = kThreads;
constexpr uint64_t kPoolBytes = uint64_t{8} << 20;
constexpr uint64_t kWorkingSetPages = 3 * (kPoolBytes / kPageSize);
constexpr unsigned kPasses = 3;
constexpr uint64_t kRevisit = 96;  // pages back (per worker) that a worker touches again

uint64_t word_for(VirtAddr page, unsigned pass, uint64_t word) {
  uint64_t x = (page >> 12) * 0x9E3779B97F4A7C15ull + pass * 0xC2B2AE3D27D4EB4Full + word;
  x ^= x >> 29;
  return x * 0xBF58476D1CE4E5B9ull;
}

class ReclaimRaceTest : public ::testing::TestWithParam<Combo> {};

TEST_P(ReclaimRaceTest, WorkingSetThreeTimesMemoryStaysIntact) {
  auto pool = make_pool(kPoolBytes, kThreads + 1);
  auto swap = make_swap(uint64_t{64} << 20);
  SimulatedVcpus vcpus(kThreads + 1);
  Reclaimer reclaimer(*pool, swap.get(), stress_reclaimer_config(kReclaimerSlot));
  auto as = make_space(*pool, GetParam(), &vcpus, RssMode::PerVcpu, swap.get(), &reclaimer);
  ASSERT_TRUE(as);
  as->set_wait_hook(vcpus.wait_hook());
  reclaimer.attach(*as);
  reclaimer.start();

  MapRequest r;
  r.length = kWorkingSetPages * kPageSize;
  const VirtAddr ws = as->map(0, r).value;
  r.length = 64 * kPageSize;
  const VirtAddr churn = as->map(0, r).value;
  const VirtAddr prot = as->map(0, r).value;

  SpinBarrier barrier(kWorkers);
  std::atomic<int> workers_left{kWorkers};
  std::atomic<uint64_t> mismatches{0}, failed_faults{0}, churn_rounds{0};
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      vcpus.activate(t);
      const auto idle = [&] { vcpus.serve(t); };
      const auto nap = [&] {  // 5 ms, serving the mailbox
        for (int i = 0; i < 50; ++i) {
          vcpus.serve(t);
          std::this_thread::sleep_for(std::chrono::microseconds(100));
        }
      };
      if (t < kWorkers) {
        for (unsigned pass = 1; pass <= kPasses; ++pass) {
          // Each pass a worker takes a different share, so pages change hands between vCPUs.
          for (uint64_t i = (t + pass) % kWorkers; i < kWorkingSetPages; i += kWorkers) {
            const VirtAddr page = ws + i * kPageSize;
            uint8_t* p = vcpus.access(*as, t, page, Access::Write);
            if (!p) {
              ++failed_faults;
              continue;
            }
            for (uint64_t w = 0; w < kPageSize / 64; ++w) {
              const uint64_t v = word_for(page, pass, w);
              std::memcpy(p + w * 64, &v, 8);
            }
            // Write again into a page done a while ago, most likely still in this vCPU's TLB
            // and meanwhile aged by the reclaimer: through a stale translation this write
            // would land in a frame that belongs to someone else by now.
            if (i >= kRevisit * kWorkers) {
              const VirtAddr old = page - kRevisit * kWorkers * kPageSize;
              if (uint8_t* q = vcpus.access(*as, t, old + 8, Access::Write)) {
                const uint64_t v = word_for(old, pass, 0) ^ 1;
                std::memcpy(q, &v, 8);
              } else {
                ++failed_faults;
              }
            }
          }
          barrier.arrive_and_wait(idle);
          for (uint64_t i = t; i < kWorkingSetPages; i += kWorkers) {
            const VirtAddr page = ws + i * kPageSize;
            const uint8_t* p = vcpus.access(*as, t, page, Access::Read);
            if (!p) {
              ++failed_faults;
              continue;
            }
            for (uint64_t w = 0; w < kPageSize / 64; ++w) {
              uint64_t v;
              std::memcpy(&v, p + w * 64, 8);
              if (v != word_for(page, pass, w)) ++mismatches;
            }
            uint64_t v;
            std::memcpy(&v, p + 8, 8);
            if (i + kRevisit * kWorkers < kWorkingSetPages && v != (word_for(page, pass, 0) ^ 1)) ++mismatches;
            // And read one done a while ago again, through what this vCPU's TLB remembers.
            if (i >= kRevisit * kWorkers) {
              const VirtAddr old = page - kRevisit * kWorkers * kPageSize;
              if (const uint8_t* q = vcpus.access(*as, t, old, Access::Read)) {
                std::memcpy(&v, q, 8);
                if (v != word_for(old, pass, 0)) ++mismatches;
              }
            }
          }
          barrier.arrive_and_wait(idle);
        }
        --workers_left;
      } else if (t == kChurn) {
        while (workers_left.load() > 0) {
          for (uint64_t i = 0; i < 64; ++i)
            if (uint8_t* p = vcpus.access(*as, t, churn + i * kPageSize, Access::Write)) p[0] = 1;
          EXPECT_TRUE(as->unmap(t, churn, 64 * kPageSize).ok());
          vcpus.serve(t);
          MapRequest m;
          m.addr = churn;
          m.length = 64 * kPageSize;
          m.placement = MapPlacement::FixedNoReplace;
          EXPECT_TRUE(as->map(t, m).ok());
          ++churn_rounds;
          // Not too often: every munmap flushes every TLB, which would hide stale entries.
          nap();
        }
      } else {
        uint8_t round = 0;
        while (workers_left.load() > 0) {
          ++round;
          for (uint64_t i = 0; i < 64; ++i)
            if (uint8_t* p = vcpus.access(*as, t, prot + i * kPageSize, Access::Write)) p[1] = round;
          EXPECT_TRUE(as->protect(t, prot, 64 * kPageSize, kProtRead).ok());
          vcpus.serve(t);
          for (uint64_t i = 0; i < 64; ++i)
            if (const uint8_t* p = vcpus.access(*as, t, prot + i * kPageSize, Access::Read))
              if (p[1] != round) ++mismatches;
          EXPECT_TRUE(as->protect(t, prot, 64 * kPageSize, kProtRead | kProtWrite).ok());
          vcpus.serve(t);
          nap();
        }
      }
      vcpus.deactivate(t);
    });
  }
  for (auto& th : threads) th.join();
  reclaimer.stop();

  EXPECT_EQ(mismatches.load(), 0u) << "data lost or corrupted under reclaim";
  EXPECT_EQ(failed_faults.load(), 0u);
  EXPECT_GT(churn_rounds.load(), 0u);
  const uint64_t reclaimed = as->counters().total(MmuCounter::Reclaimed);
  const uint64_t major = as->counters().total(MmuCounter::FaultMajor);
  EXPECT_GT(reclaimed, kWorkingSetPages) << "the reclaimer must have worked hard";
  EXPECT_GT(major, kWorkingSetPages / 2);
  EXPECT_EQ(swap->bytes_read(), major * kPageSize) << "one read per major fault (the swap cache)";
  check_invariants(*pool, {as.get()});
  check_swap_accounting(*pool, *swap, {as.get()});
  reclaimer.detach(*as);
  as.reset();
  EXPECT_EQ(swap->slots_used(), 0u);
  const auto n = pool->count_by_state();
  EXPECT_EQ(n[size_t(FrameState::Anon)], 0u);
  EXPECT_EQ(n[size_t(FrameState::PageTable)], 0u);
}

INSTANTIATE_TEST_SUITE_P(BothWidthsAllSchemes, ReclaimRaceTest, ::testing::ValuesIn(two_widths_all_schemes()), combo_name);

}  // namespace
}  // namespace mmu::testing
