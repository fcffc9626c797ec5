// The reclaimer: the host thread that plays kswapd (DESIGN.md "Reclaimer", decision 7).
//
// Woken when the free frames any vCPU can get fall below the pool's low watermark (or when a
// fault found none), it sweeps the frames with a clock hand and hands batches of anonymous
// frames to the address space owning them, which ages them by their accessed bits and writes
// the cold ones to swap under its own locking scheme. Frames of shared memory and the page
// cache go through their object's reverse map instead (mmu/shared_reclaim.h), once a registry
// is set, and private pages fork left in several spaces through the spaces' family
// (mmu/cow_reclaim.h). It stops at the high watermark.
//
// Without swap it still runs when a registry of shared memory is set, as Linux reclaims its
// page cache with no swap configured: clean file pages are dropped and dirty ones written back
// to their files; anonymous pages, private or shared, have nowhere to go and stay.
//
// A space whose TLB holders cannot answer a shootdown now (TlbShootdown::can_flush_now) is
// passed over for the sweep, with every page it maps.
//
// A fault that finds the pool empty does not reclaim by itself: it would have to evict pages
// its own TLB may cache, from inside the TLB-fill hook. It drops its locks and waits for this
// thread instead (wait_for_frames), serving its mailbox meanwhile; when two full sweeps free
// nothing (no swap, swap full, everything pinned by use) the waiters are told so and the
// fault ends in OutOfMemory.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "mmu/frame_pool.h"
#include "mmu/spin_lock.h"
#include "mmu/thread_annotations.h"
#include "mmu/swap_device.h"
#include "mmu/types.h"

namespace mmu {

class AddressSpace;
class SharedMemoryRegistry;

struct ReclaimerConfig {
  VcpuId slot = 0;     // the reclaimer's own slot (frame cache, counters, mmap-lock reader)
  uint32_t batch = 64;  // pages unmapped per TLB shootdown (and written per batch)
  // Period of the watermark check when nobody wakes the thread.
  uint32_t poll_ms = 20;
};

// What one batch did, as the address space reports it.
struct ReclaimOutcome {
  uint32_t freed = 0;
  bool swap_full = false;
  bool io_error = false;
};

// One batch handed to an address space, as a tracer sees it.
struct ReclaimBatchReport {
  uint64_t start_ns = 0;  // steady_clock
  uint64_t end_ns = 0;
  uint32_t frames = 0;    // candidates looked at
  ReclaimOutcome outcome;
};

class Reclaimer {
 public:
  // `swap` may be null: then only file pages can be reclaimed (with a registry set), and
  // without a registry faults on an empty pool fail at once.
  Reclaimer(FramePool& pool, SwapDevice* swap, const ReclaimerConfig& config);
  ~Reclaimer();
  Reclaimer(const Reclaimer&) = delete;
  Reclaimer& operator=(const Reclaimer&) = delete;

  // Address spaces whose frames may be reclaimed. Attach before faults run, detach before
  // the space is destroyed (stop() first).
  void attach(AddressSpace& space);
  void detach(AddressSpace& space);
  // Where shared-memory frames find their objects; without it they stay resident. Set before
  // start().
  void set_shared_memory(SharedMemoryRegistry* registry) { shared_ = registry; }

  void start();
  void stop();
  void wake();

  // From a fault that found no frame, holding no lock: true once frames are available again,
  // false when reclaim cannot make progress. `serve` is called while waiting (the mailbox).
  bool wait_for_frames(const std::function<void()>& serve);
  // Wakes the faults waiting in wait_for_frames so they serve their mailbox now: the emulator
  // calls it after posting a shootdown (the reclaimer's own flush waits for them).
  void nudge_waiters();

  // One synchronous round: reclaims until `target` frames are available or two full sweeps
  // in a row free nothing (or `max_sweeps` sweeps are done). Returns the frames freed. The
  // thread calls it; tests may too.
  uint64_t reclaim(uint64_t target, unsigned max_sweeps = ~0u);

  // Called at the start of every round, from the reclaiming thread, before any space is
  // looked at: the emulator learns that memory ran short, and may make the holders of its
  // spaces' translations answer shootdowns from then on (set before start()).
  void set_round_hook(std::function<void()> hook) { round_hook_ = std::move(hook); }

  // Called once, from the reclaimer, when a swap write fails: the emulator ends the guest.
  void set_fatal_hook(std::function<void(const std::string&)> hook) { fatal_hook_ = std::move(hook); }
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  // Called after every batch, from the reclaiming thread (set before start()).
  void set_batch_observer(std::function<void(const ReclaimBatchReport&)> observer) { observer_ = std::move(observer); }

  VcpuId slot() const { return config_.slot; }
  uint64_t rounds() const { return rounds_.load(std::memory_order_relaxed); }
  uint64_t wakeups() const { return wakeups_.load(std::memory_order_relaxed); }

 private:
  void run();
  // Sweeps from the hand over up to one full turn, one batch per address space at a time;
  // returns frames freed (stops early once `target` frames are available).
  uint64_t sweep(uint64_t target) EMU_REQUIRES(round_lock_);
  void report_failure(const std::string& message);
  // Anything to reclaim at all: swap for anonymous pages, or a registry for file pages.
  bool can_reclaim() const { return swap_ != nullptr || shared_ != nullptr; }

  FramePool& pool_;
  SwapDevice* swap_;
  SharedMemoryRegistry* shared_ = nullptr;
  const ReclaimerConfig config_;
  Mutex spaces_lock_;
  std::vector<AddressSpace*> spaces_ EMU_GUARDED_BY(spaces_lock_);
  Mutex round_lock_;  // one round at a time (the thread, or a test calling reclaim())
  FrameNumber hand_ EMU_GUARDED_BY(round_lock_) = 1;

  std::mutex wake_lock_;
  std::condition_variable wake_cv_;
  bool wake_pending_ = false;
  bool stopping_ = false;
  std::thread thread_;
  static constexpr uint64_t kFailedRoundPauseNs = 200'000'000;
  uint64_t last_failed_ns_ = 0;  // the thread's own: when its last round freed nothing

  std::atomic<uint32_t> waiters_{0};
  std::mutex waiters_lock_;
  std::condition_variable waiters_cv_;
  uint64_t nudges_ = 0;  // guarded by waiters_lock_
  std::atomic<uint64_t> rounds_{0};
  std::atomic<uint64_t> failed_rounds_{0};
  std::atomic<uint64_t> wakeups_{0};
  std::atomic<bool> failed_{false};
  std::function<void(const std::string&)> fatal_hook_;
  std::function<void()> round_hook_;
  std::function<void(const ReclaimBatchReport&)> observer_;
};

}  // namespace mmu
