// Many vCPUs run the pool dry together while it grows chunk by chunk in parallel: every
// frame must be handed out exactly once, none lost, and the pool must end fully populated.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "mmu/frame_pool.h"

namespace mmu {
namespace {

TEST(FramePoolRace, ParallelGrowthHandsOutEveryFrameOnce) {
  for (int round = 0; round < 5; ++round) {
    FramePoolConfig c;
    c.bytes = uint64_t{64} << 20;            // 16384 frames
    c.populate_chunk_bytes = 64 * kPageSize;  // many small chunks: growth races often
    c.vcpu_slots = 8;
    c.cache_batch = 16;
    std::string err;
    auto pool = FramePool::create(c, &err);
    ASSERT_NE(pool, nullptr) << err;
    const uint32_t threads = 8;
    std::vector<std::vector<FrameNumber>> got(threads);
    std::atomic<int> go{0};
    std::vector<std::thread> ts;
    for (uint32_t t = 0; t < threads; ++t) {
      ts.emplace_back([&, t] {
        while (go.load() == 0) std::this_thread::yield();
        for (;;) {
          const FrameNumber f = pool->allocate(t, FrameState::Anon, FrameFill::Uninitialized);
          if (f == kNoFrame) break;
          // A page-unique mark: a frame handed out twice gets overwritten by its second owner.
          *reinterpret_cast<uint64_t*>(pool->frame_ptr(f)) = (uint64_t{t} << 32) | f;
          got[t].push_back(f);
        }
      });
    }
    go.store(1);
    for (auto& th : ts) th.join();
    std::vector<uint8_t> seen(pool->frame_count(), 0);
    uint64_t total = 0;
    for (uint32_t t = 0; t < threads; ++t) {
      for (FrameNumber f : got[t]) {
        ASSERT_LT(f, pool->frame_count());
        ASSERT_EQ(seen[f]++, 0) << "frame " << f << " handed out twice";
        ASSERT_EQ(*reinterpret_cast<uint64_t*>(pool->frame_ptr(f)), (uint64_t{t} << 32) | f);
        ++total;
      }
    }
    EXPECT_EQ(total, pool->frame_count() - 1u) << "every frame but the zero frame";
    EXPECT_EQ(pool->populated_frames(), pool->frame_count());
    EXPECT_EQ(pool->free_frames(), 0u);
    for (uint32_t t = 0; t < threads; ++t)
      for (FrameNumber f : got[t]) pool->free(t, f);
    EXPECT_EQ(pool->free_frames(), pool->frame_count() - 1u);
  }
}

}  // namespace
}  // namespace mmu
