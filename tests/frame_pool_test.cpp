#include "mmu/frame_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <thread>

#include "mmu_test_support.h"

namespace mmu::testing {
namespace {

TEST(FramePool, RejectsBadConfiguration) {
  std::string err;
  FramePoolConfig c;
  c.bytes = 0;
  EXPECT_EQ(FramePool::create(c, &err), nullptr);
  EXPECT_FALSE(err.empty());
  c.bytes = (1 << 20) + 1;
  EXPECT_EQ(FramePool::create(c, &err), nullptr);
  c.bytes = 1 << 20;
  c.vcpu_slots = 0;
  EXPECT_EQ(FramePool::create(c, &err), nullptr);
}

TEST(FramePool, AllocationZeroesAndFrameZeroIsTheZeroFrame) {
  auto pool = make_pool(4 << 20);
  EXPECT_EQ(pool->descriptor(0).state.load(), FrameState::Zero);
  const FrameNumber f = pool->allocate(0, FrameState::Internal, FrameFill::Uninitialized);
  ASSERT_NE(f, kNoFrame);
  EXPECT_NE(f, 0u);
  std::memset(pool->frame_ptr(f), 0xFF, kPageSize);
  pool->free(0, f);
  // The same vCPU gets its cached frame back, zeroed this time.
  const FrameNumber g = pool->allocate(0, FrameState::Internal, FrameFill::Zero);
  EXPECT_EQ(g, f);
  EXPECT_TRUE(std::all_of(pool->frame_ptr(g), pool->frame_ptr(g) + kPageSize, [](uint8_t b) { return b == 0; }));
  pool->free(0, g);
}

TEST(FramePool, GrowsInChunksAndRunsDryCleanly) {
  FramePoolConfig c;
  c.bytes = 8 << 20;
  c.populate_chunk_bytes = 1 << 20;
  c.vcpu_slots = 2;
  std::string err;
  auto pool = FramePool::create(c, &err);
  ASSERT_TRUE(pool);
  EXPECT_LE(pool->populated_frames(), 257u) << "start-up pre-faults one chunk, not the whole pool";
  EXPECT_EQ(pool->free_frames(), pool->frame_count() - 1u);
  std::vector<FrameNumber> got;
  for (;;) {
    const FrameNumber f = pool->allocate(1, FrameState::Internal, FrameFill::Uninitialized);
    if (f == kNoFrame) break;
    got.push_back(f);
  }
  EXPECT_EQ(got.size(), pool->frame_count() - 1u);
  EXPECT_EQ(pool->populated_frames(), pool->frame_count());
  EXPECT_GE(pool->counters().total(PoolCounter::Growths), 8u);
  EXPECT_EQ(pool->counters().total(PoolCounter::AllocationFailures), 1u);
  EXPECT_EQ(std::set<FrameNumber>(got.begin(), got.end()).size(), got.size());
  for (FrameNumber f : got) pool->free(0, f);
  EXPECT_EQ(pool->free_frames(), pool->frame_count() - 1u);
}

TEST(FramePool, LowWatermarkHookFires) {
  FramePoolConfig c;
  c.bytes = 4 << 20;
  c.low_watermark = 512;
  c.high_watermark = 768;
  std::string err;
  auto pool = FramePool::create(c, &err);
  std::atomic<int> fired{0};
  pool->set_low_watermark_hook([&] { ++fired; });
  std::vector<FrameNumber> got;
  while (!pool->below_low_watermark()) got.push_back(pool->allocate(0, FrameState::Internal, FrameFill::Uninitialized));
  for (int i = 0; i < 64; ++i) got.push_back(pool->allocate(0, FrameState::Internal, FrameFill::Uninitialized));
  EXPECT_GT(fired.load(), 0);
  for (FrameNumber f : got) pool->free(0, f);
}

TEST(FramePoolDeathTest, DoubleFreeIsCaught) {
  auto pool = make_pool(1 << 20);
  const FrameNumber f = pool->allocate(0, FrameState::Internal, FrameFill::Zero);
  pool->free(0, f);
  EXPECT_DEATH(pool->free(0, f), "freed a frame twice");
  EXPECT_DEATH(pool->free(0, FramePool::zero_frame()), "zero frame");
}

// Many threads allocating and freeing; frames migrate between vCPU caches through the shared
// list: no frame handed out twice, counts add up.
TEST(FramePool, ConcurrentAllocateFreeNeverDoubleUses) {
  constexpr unsigned kThreads = 8;
  auto pool = make_pool(32 << 20, kThreads);
  std::vector<std::atomic<uint8_t>> owner(pool->frame_count());
  std::atomic<uint64_t> double_use{0};
  SpinBarrier barrier(kThreads);
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      std::vector<FrameNumber> held;
      barrier.arrive_and_wait();
      for (int i = 0; i < 20000; ++i) {
        if (held.size() < 300 && (i % 3 != 2)) {
          const FrameNumber f = pool->allocate(t, FrameState::Internal, FrameFill::Uninitialized);
          if (f == kNoFrame) continue;
          if (owner[f].exchange(uint8_t(t + 1)) != 0) ++double_use;
          held.push_back(f);
        } else if (!held.empty()) {
          const FrameNumber f = held.back();
          held.pop_back();
          owner[f].store(0);
          pool->free(t, f);
        }
      }
      for (FrameNumber f : held) {
        owner[f].store(0);
        pool->free(t, f);
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(double_use.load(), 0u);
  EXPECT_EQ(pool->free_frames(), pool->frame_count() - 1u);
  EXPECT_EQ(pool->counters().total(PoolCounter::Allocations), pool->counters().total(PoolCounter::Frees));
}

}  // namespace
}  // namespace mmu::testing
