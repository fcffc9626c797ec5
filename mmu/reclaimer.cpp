#include "mmu/reclaimer.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "mmu/address_space.h"
#include "mmu/cow_reclaim.h"
#include "mmu/shared_reclaim.h"

namespace mmu {

namespace {
uint64_t steady_ns() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}
}  // namespace

Reclaimer::Reclaimer(FramePool& pool, SwapDevice* swap, const ReclaimerConfig& config)
    : pool_(pool), swap_(swap), config_(config) {
  // Set before any vCPU runs: the pool calls it from allocating threads without a lock.
  pool_.set_low_watermark_hook([this] { wake(); });
}

Reclaimer::~Reclaimer() {
  stop();
  pool_.set_low_watermark_hook(nullptr);
}

void Reclaimer::attach(AddressSpace& space) {
  MutexGuard g(spaces_lock_);
  spaces_.push_back(&space);
}

void Reclaimer::detach(AddressSpace& space) {
  MutexGuard round(round_lock_);  // no round is using it once this returns
  MutexGuard g(spaces_lock_);
  spaces_.erase(std::remove(spaces_.begin(), spaces_.end(), &space), spaces_.end());
}

void Reclaimer::start() {
  if (thread_.joinable()) return;
  {
    std::lock_guard lk(wake_lock_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { run(); });
}

void Reclaimer::stop() {
  {
    std::lock_guard lk(wake_lock_);
    stopping_ = true;
  }
  wake_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Reclaimer::wake() {
  {
    std::lock_guard lk(wake_lock_);
    wake_pending_ = true;
  }
  wakeups_.fetch_add(1, std::memory_order_relaxed);
  wake_cv_.notify_one();
}

void Reclaimer::run() {
  for (;;) {
    {
      std::unique_lock lk(wake_lock_);
      wake_cv_.wait_for(lk, std::chrono::milliseconds(config_.poll_ms), [&] { return wake_pending_ || stopping_; });
      if (stopping_) return;
      wake_pending_ = false;
    }
    // A round that freed nothing (memory full of pages with nowhere to go) is not repeated
    // for the watermark alone at every wake-up, which each allocation below it sends: only
    // for a fault that waits, or after a pause.
    const bool waiting = waiters_.load(std::memory_order_acquire) > 0;
    const bool pause = last_failed_ns_ != 0 && steady_ns() - last_failed_ns_ < kFailedRoundPauseNs;
    if (waiting || (pool_.below_low_watermark() && !pause)) {
      const uint64_t failures = failed_rounds_.load(std::memory_order_acquire);
      reclaim(std::max<uint64_t>(pool_.high_watermark(), 1));
      last_failed_ns_ = failed_rounds_.load(std::memory_order_acquire) != failures ? steady_ns() : 0;
    }
  }
}

bool Reclaimer::wait_for_frames(const std::function<void()>& serve) {
  // Always once: a fault that keeps failing to allocate while frames look available (an
  // injected failure, say) passes through here on every retry, and must not hold up a
  // shootdown waiting for it.
  if (serve) serve();
  if (!can_reclaim() || failed()) return pool_.available_frames() > 0;
  const uint64_t failures_at_start = failed_rounds_.load(std::memory_order_acquire);
  waiters_.fetch_add(1, std::memory_order_acq_rel);
  wake();
  bool ok = false;
  for (unsigned i = 0;; ++i) {
    if (pool_.available_frames() > 0) {
      ok = true;
      break;
    }
    // Two failed rounds that began after this fault needed memory: nothing can be freed.
    if (failed() || failed_rounds_.load(std::memory_order_acquire) >= failures_at_start + 2) break;
    if (serve) serve();
    if (i % 8 == 7) wake();
    // Sleep until a batch frees frames or a shootdown needs this vCPU's acknowledgement.
    std::unique_lock lk(waiters_lock_);
    const uint64_t seen = nudges_;
    waiters_cv_.wait_for(lk, std::chrono::microseconds(200), [&] { return nudges_ != seen; });
  }
  waiters_.fetch_sub(1, std::memory_order_acq_rel);
  return ok;
}

void Reclaimer::nudge_waiters() {
  if (waiters_.load(std::memory_order_acquire) == 0) return;
  {
    std::lock_guard lk(waiters_lock_);
    ++nudges_;
  }
  waiters_cv_.notify_all();
}

uint64_t Reclaimer::reclaim(uint64_t target, unsigned max_sweeps) {
  if (round_hook_) round_hook_();
  MutexGuard g(round_lock_);
  rounds_.fetch_add(1, std::memory_order_relaxed);
  uint64_t total = 0;
  int empty_sweeps = 0;
  for (unsigned n = 0; n < max_sweeps && pool_.available_frames() < target && empty_sweeps < 2 && !failed(); ++n) {
    const uint64_t got = sweep(target);
    total += got;
    empty_sweeps = got ? 0 : empty_sweeps + 1;
  }
  if (empty_sweeps >= 2 || failed()) failed_rounds_.fetch_add(1, std::memory_order_acq_rel);
  return total;
}

uint64_t Reclaimer::sweep(uint64_t target) {
  // Descriptors exist only once their chunk is grown; a pool still growing has free frames
  // to grow into and needs no reclaim.
  const uint64_t limit = pool_.populated_frames();
  if (limit < pool_.frame_count() || !can_reclaim()) return 0;
  std::vector<AddressSpace*> spaces;
  {
    MutexGuard g(spaces_lock_);
    for (AddressSpace* s : spaces_)
      if (s->can_flush_now()) spaces.push_back(s);
  }
  if (spaces.empty()) return 0;
  // One batch per address space for private pages, one for shared memory and one for the
  // private pages fork left shared (the last two).
  std::vector<std::vector<FrameNumber>> batches(spaces.size() + 2);
  const size_t shared_batch = spaces.size();
  const size_t cow_batch = spaces.size() + 1;
  uint64_t freed = 0;
  auto reclaim_batch = [&](size_t i) {
    if (i == shared_batch) return reclaim_shared_frames(*shared_, config_.slot, batches[i], spaces);
    if (i == cow_batch) return reclaim_cow_frames(pool_, *swap_, config_.slot, batches[i], spaces);
    return spaces[i]->reclaim_frames(config_.slot, batches[i]);
  };
  auto flush = [&](size_t i) {
    if (batches[i].empty()) return;
    ReclaimBatchReport report;
    if (observer_) report.start_ns = steady_ns();
    const ReclaimOutcome r = reclaim_batch(i);
    if (observer_) {
      report.end_ns = steady_ns();
      report.frames = static_cast<uint32_t>(batches[i].size());
      report.outcome = r;
      observer_(report);
    }
    batches[i].clear();
    freed += r.freed;
    pool_.drain_cache(config_.slot);
    if (r.freed) nudge_waiters();
    if (r.io_error && swap_) {
      report_failure("swap write failed on " + swap_->description() + ": " +
                     std::strerror(swap_->last_error()));
    }
  };
  for (uint64_t n = 1; n < limit && !failed(); ++n) {
    const FrameNumber f = hand_;
    hand_ = (hand_ + 1 >= limit) ? 1 : hand_ + 1;
    const FrameDescriptor& d = pool_.descriptor(f);
    const FrameState state = d.state.load(std::memory_order_acquire);
    if (state == FrameState::Shared && shared_) {
      batches[shared_batch].push_back(f);
      if (batches[shared_batch].size() >= config_.batch) flush(shared_batch);
      continue;
    }
    if (state != FrameState::Anon || !swap_) continue;  // private pages go to swap or stay
    if (shared_by_fork(pool_, f)) {
      batches[cow_batch].push_back(f);
      if (batches[cow_batch].size() >= config_.batch) flush(cow_batch);
      continue;
    }
    const uint32_t owner = d.owner.load(std::memory_order_relaxed);
    for (size_t i = 0; i < spaces.size(); ++i) {
      if (spaces[i]->id() != owner) continue;
      batches[i].push_back(f);
      if (batches[i].size() >= config_.batch) flush(i);
      break;
    }
    if (n % config_.batch == 0 && pool_.available_frames() >= target) break;
  }
  for (size_t i = 0; i < batches.size(); ++i) flush(i);
  return freed;
}

void Reclaimer::report_failure(const std::string& message) {
  if (failed_.exchange(true, std::memory_order_acq_rel)) return;
  if (fatal_hook_) fatal_hook_(message);
}

}  // namespace mmu
