// Reclaim of file pages with no swap, under concurrency: as Linux reclaims its page cache with
// no swap configured, the reclaimer drops clean file pages and writes dirty ones back, and
// leaves anonymous pages (which have nowhere to go) alone. Several address spaces map a
// writable file MAP_SHARED and a read-only file both MAP_SHARED and MAP_PRIVATE; their files
// are larger than the frame pool together, and each space also keeps a private working set.
//
// What emu's vCPUs do is played here too: a space's threads start "hookless" (a flush could
// not reach them), so the space reports can_flush_now() false and the reclaimer must pass it
// over, with every page it maps. A thread takes the hook (stops counting) either when a fault
// of its finds no frame (then it faults again, as emu's vCPU restarts the instruction) or at a
// round of its own choosing (as at a syscall); the space turns reachable once all its threads
// have. A flush the reclaimer asks of a space that was unreachable at that moment is counted:
// there must be none (a space only ever turns reachable, so one seen unreachable during the
// flush was unreachable when the sweep chose it).
//
// Afterwards: no lost add (the file gets every thread's adds on write-back), the read-only
// file read right every time, private pages intact, nothing swapped, and every frame accounted
// for once the spaces and objects go. Every scheme, 2-level and 4-level tables; the
// ThreadSanitizer stage runs it.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
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
constexpr unsigned kSlots = kThreads + 1;
constexpr uint64_t kPoolBytes = uint64_t{4} << 20;  // 1024 frames
// The files alone (900 + 500 pages) are more than the pool: clean pages must be dropped and
// dirty ones written back all along.
constexpr uint64_t kFilePages = 900;
constexpr uint64_t kReadOnlyPages = 500;
constexpr uint64_t kPrivatePages = 30;  // per space, resident throughout
constexpr uint64_t kCopiedPages = 10;   // private copies of the read-only file, per space
constexpr unsigned kRounds = 6;

uint64_t pattern(unsigned space, uint64_t page, unsigned round) {
  return (uint64_t{space} << 56) ^ (page * 0x9E3779B97F4A7C15ull) ^ round;
}

// One space's translation holders: the shared simulated vCPUs, behind a count of threads that
// have not taken the hook yet.
class GatedTlbs final : public TlbShootdown {
 public:
  GatedTlbs(SimulatedVcpus& vcpus, unsigned hookless) : vcpus_(vcpus), hookless_(hookless) {}
  void flush(const AddressSpace& space, std::span<const VirtRange> ranges, VcpuId requester) override {
    if (requester == kReclaimerSlot && hookless_.load(std::memory_order_seq_cst) != 0) ++unreachable_flushes;
    vcpus_.flush(space, ranges, requester);
  }
  bool can_flush_now(const AddressSpace&) const override { return hookless_.load(std::memory_order_seq_cst) == 0; }
  void take_hook() { hookless_.fetch_sub(1, std::memory_order_seq_cst); }
  std::atomic<uint64_t> unreachable_flushes{0};

 private:
  SimulatedVcpus& vcpus_;
  std::atomic<unsigned> hookless_;
};

class FileReclaimRaceTest : public ::testing::TestWithParam<Combo> {};

TEST_P(FileReclaimRaceTest, FilePagesLeaveWithoutSwapAndUnreachableSpacesArePassedOver) {
  auto pool = make_pool(kPoolBytes, kSlots);
  SimulatedVcpus vcpus(kSlots);
  Reclaimer reclaimer(*pool, nullptr, stress_reclaimer_config(kReclaimerSlot));
  SharedMemoryRegistry registry(*pool, nullptr);
  reclaimer.set_shared_memory(&registry);
  auto file = std::make_shared<MemoryFile>(kFilePages * kPageSize);
  auto ro_file = std::make_shared<MemoryFile>(kReadOnlyPages * kPageSize);
  auto cached = registry.get({1, 1}, "file", [&] { return file; });
  auto ro = registry.get({1, 2}, "read-only file", [&] { return ro_file; });

  struct Space {
    std::unique_ptr<GatedTlbs> tlbs;
    std::unique_ptr<AddressSpace> as;
    VirtAddr file = 0, ro = 0, cow = 0, priv = 0;
  };
  std::vector<Space> spaces(kSpaces);
  for (unsigned s = 0; s < kSpaces; ++s) {
    spaces[s].tlbs = std::make_unique<GatedTlbs>(vcpus, kThreadsPerSpace);
    AddressSpaceConfig c;
    c.paging = GetParam().paging;
    c.scheme = GetParam().scheme;
    c.tlbs = spaces[s].tlbs.get();
    c.reclaimer = &reclaimer;
    c.id = s + 1;
    std::string err;
    spaces[s].as = make_address_space(*pool, c, &err);
    ASSERT_TRUE(spaces[s].as) << err;
    AddressSpace& as = *spaces[s].as;
    as.set_wait_hook(vcpus.wait_hook());
    reclaimer.attach(as);
    MapRequest r;
    r.length = (s + 1) * kPageSize;  // different placements in each space
    (void)as.map(0, r);
    r.length = kPrivatePages * kPageSize;
    spaces[s].priv = as.map(0, r).value;
    MapRequest sh;
    sh.kind = VmaKind::Shared;
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
    ASSERT_NE(spaces[s].priv, 0u);
    ASSERT_NE(spaces[s].file, 0u);
    ASSERT_NE(spaces[s].ro, 0u);
    ASSERT_NE(spaces[s].cow, 0u);
  }
  const std::weak_ptr<SharedMemory> cached_alive = cached, ro_alive = ro;
  cached.reset();
  ro.reset();
  reclaimer.start();

  std::atomic<uint64_t> mismatches{0}, failed{0}, hooked_at_fault{0}, retried{0};
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      vcpus.activate(t);
      const unsigned s = t / kThreadsPerSpace, half = t % kThreadsPerSpace;
      Space& sp = spaces[s];
      bool hooked = false;
      auto take_hook = [&] {
        if (hooked) return;
        hooked = true;
        sp.tlbs->take_hook();
      };
      // A fault that finds no frame: the first takes the hook; while the space's other
      // thread has not, the reclaimer still passes the space over, so this one waits and
      // faults again (emu's vCPUs of one process all run with the hook; the test's pair is
      // harsher). Only a space that is reachable and still finds no frame has failed.
      const auto access = [&](VirtAddr va, Access a) -> uint8_t* {
        for (unsigned tries = 0;; ++tries) {
          FaultOutcome outcome = FaultOutcome::Ok;
          if (uint8_t* p = vcpus.access(*sp.as, t, va, a, &outcome)) return p;
          if (outcome == FaultOutcome::Ok) continue;  // a write upgrade: ask again
          if (outcome != FaultOutcome::OutOfMemory) return nullptr;
          if (!hooked) {
            ++hooked_at_fault;
            take_hook();
          } else if (sp.tlbs->can_flush_now(*sp.as) && tries > 1000) {
            return nullptr;
          }
          ++retried;
          vcpus.serve(t);
          std::this_thread::yield();
        }
      };
      for (unsigned round = 1; round <= kRounds; ++round) {
        if (round == 2 + t % 3) take_hook();  // a syscall, for those not hooked by a fault yet
        for (uint64_t i = 0; i < kFilePages; ++i) {
          uint8_t* p = access(sp.file + i * kPageSize, Access::Write);
          if (!p) {
            ++failed;
            continue;
          }
          __atomic_fetch_add(reinterpret_cast<uint64_t*>(p), 1, __ATOMIC_SEQ_CST);
        }
        for (uint64_t i = half; i < kReadOnlyPages; i += kThreadsPerSpace) {
          // A pointer holds only until the next access, which may serve a flush: read first.
          const uint8_t* p = access(sp.ro + i * kPageSize, Access::Read);
          if (!p) {
            ++failed;
            continue;
          }
          uint64_t v, w, own;
          std::memcpy(&v, p + 8, sizeof v);
          const bool copy = i < kCopiedPages * kThreadsPerSpace;  // this space's private copies
          uint8_t* c = access(sp.cow + i * kPageSize, copy ? Access::Write : Access::Read);
          if (!c) {
            ++failed;
            continue;
          }
          std::memcpy(&w, c + 8, sizeof w);
          std::memcpy(&own, c, sizeof own);
          const uint64_t expect = copy && round > 1 ? pattern(s, i, round - 1) : 0;
          if (v != i || w != i || own != expect) ++mismatches;
          if (copy) {
            own = pattern(s, i, round);
            std::memcpy(c, &own, sizeof own);
          }
        }
        for (uint64_t i = half; i < kPrivatePages; i += kThreadsPerSpace) {
          uint8_t* p = access(sp.priv + i * kPageSize, Access::Write);
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
  for (auto& th : threads) th.join();

  EXPECT_EQ(failed.load(), 0u) << "a fault found no frame in a reachable space, with only anonymous pages unable to leave";
  EXPECT_EQ(mismatches.load(), 0u) << "a private page lost, a file page read wrong, or a private copy seen elsewhere";
  uint64_t unreachable = 0;
  for (auto& sp : spaces) unreachable += sp.tlbs->unreachable_flushes.load();
  EXPECT_EQ(unreachable, 0u) << "the reclaimer shot down a space that said it could not answer";
  const SharedMemoryStats& st = registry.stats();
  EXPECT_GT(st.evict_written.load(), 0u) << "dirty file pages must have been written back to leave memory";
  EXPECT_GT(st.dropped.load(), 0u) << "clean file pages must have been dropped";
  EXPECT_EQ(st.swapped_out.load(), 0u) << "there is no swap";
  std::printf("file reclaim without swap: rmap walks %llu, dropped %llu, written %llu, kept %llu; faults that took the hook %llu, "
              "retries %llu\n",
              (unsigned long long)st.rmap_walks.load(), (unsigned long long)st.dropped.load(),
              (unsigned long long)st.evict_written.load(), (unsigned long long)st.evict_aborted.load(),
              (unsigned long long)hooked_at_fault.load(), (unsigned long long)retried.load());
  reclaimer.stop();
  auto live = cached_alive.lock();
  ASSERT_TRUE(live);
  ASSERT_TRUE(live->writeback());
  live.reset();
  const uint64_t total = uint64_t{kThreads} * kRounds;
  for (uint64_t i = 0; i < kFilePages; ++i)
    ASSERT_EQ(file->word(i * kPageSize), total) << "file page " << i << ": an add was lost";
  for (auto& sp : spaces) {
    reclaimer.detach(*sp.as);
    sp.as.reset();
  }
  EXPECT_TRUE(cached_alive.expired());
  EXPECT_TRUE(ro_alive.expired());
  const auto after = pool->count_by_state();
  EXPECT_EQ(after[size_t(FrameState::Anon)], 0u);
  EXPECT_EQ(after[size_t(FrameState::Shared)], 0u) << "shared frames leaked";
  EXPECT_EQ(after[size_t(FrameState::PageTable)], 0u);
  EXPECT_EQ(after[size_t(FrameState::Free)], pool->free_frames()) << "free lists disagree";
  EXPECT_EQ(pool->free_frames(), pool->frame_count() - 1u);
}

INSTANTIATE_TEST_SUITE_P(BothWidthsAllSchemes, FileReclaimRaceTest, ::testing::ValuesIn(two_widths_all_schemes()), combo_name);

}  // namespace
}  // namespace mmu::testing
