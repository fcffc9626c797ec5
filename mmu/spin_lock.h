// A 4-byte spin lock, small enough to live in a frame descriptor (seed 002's page->ptl).
// Page-table critical sections are a handful of instructions, so spinning beats sleeping;
// after a short spin the waiter yields, because vCPUs may outnumber host cores.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>

#include "mmu/mmu_counters.h"
#include "mmu/thread_annotations.h"

namespace mmu {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Spins, then yields, until ready() holds.
template <class Ready>
inline void spin_until(Ready&& ready) {
  for (unsigned spins = 0; !ready(); ++spins) {
    if (spins < 128)
      cpu_relax();
    else
      std::this_thread::yield();
  }
}

// Accounts for a lock that had to be waited for since `start`.
inline void record_contention(MmuCounters::Slot& stats, std::chrono::steady_clock::time_point start) {
  stats.add(MmuCounter::LockContended);
  stats.add(MmuCounter::LockWaitNs, static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now() - start)
                                        .count()));
}

class EMU_CAPABILITY("spin_lock") SpinLock {
 public:
  SpinLock() = default;
  SpinLock(const SpinLock&) = delete;
  SpinLock& operator=(const SpinLock&) = delete;

  bool try_lock() EMU_TRY_ACQUIRE(true) {
    return word_.load(std::memory_order_relaxed) == 0 &&
           word_.exchange(1, std::memory_order_acquire) == 0;
  }

  void lock() EMU_ACQUIRE() {
    if (try_lock()) return;
    spin_until([&] { return try_lock(); });
  }

  // Takes the lock and records the acquisition, and any wait, in the caller's counters.
  void lock_counted(MmuCounters::Slot& stats) EMU_ACQUIRE() {
    stats.add(MmuCounter::LockAcquisitions);
    if (try_lock()) return;
    const auto start = std::chrono::steady_clock::now();
    spin_until([&] { return try_lock(); });
    record_contention(stats, start);
  }

  void unlock() EMU_RELEASE() { word_.store(0, std::memory_order_release); }

  bool is_locked() const { return word_.load(std::memory_order_relaxed) != 0; }

 private:
  std::atomic<uint32_t> word_{0};
};
static_assert(sizeof(SpinLock) == 4, "the split lock must fit the frame descriptor");

class EMU_SCOPED_CAPABILITY SpinLockGuard {
 public:
  SpinLockGuard(SpinLock& l, MmuCounters::Slot& stats) EMU_ACQUIRE(l) : lock_(l) { l.lock_counted(stats); }
  explicit SpinLockGuard(SpinLock& l) EMU_ACQUIRE(l) : lock_(l) { l.lock(); }
  ~SpinLockGuard() EMU_RELEASE() { lock_.unlock(); }
  SpinLockGuard(const SpinLockGuard&) = delete;
  SpinLockGuard& operator=(const SpinLockGuard&) = delete;

 private:
  SpinLock& lock_;
};

// std::mutex with annotations, for cold paths (pool refills, VMA bookkeeping helpers).
class EMU_CAPABILITY("mutex") Mutex {
 public:
  void lock() EMU_ACQUIRE() { m_.lock(); }
  void unlock() EMU_RELEASE() { m_.unlock(); }

 private:
  std::mutex m_;
};

class EMU_SCOPED_CAPABILITY MutexGuard {
 public:
  explicit MutexGuard(Mutex& m) EMU_ACQUIRE(m) : m_(m) { m.lock(); }
  ~MutexGuard() EMU_RELEASE() { m_.unlock(); }
  MutexGuard(const MutexGuard&) = delete;
  MutexGuard& operator=(const MutexGuard&) = delete;

 private:
  Mutex& m_;
};

// MutexGuard that can let go early (before a shootdown that other lock waiters must answer).
class EMU_SCOPED_CAPABILITY MutexUniqueGuard {
 public:
  explicit MutexUniqueGuard(Mutex& m) EMU_ACQUIRE(m) : m_(m) { m.lock(); }
  ~MutexUniqueGuard() EMU_RELEASE() {
    if (held_) m_.unlock();
  }
  void unlock() EMU_RELEASE() {
    held_ = false;
    m_.unlock();
  }
  MutexUniqueGuard(const MutexUniqueGuard&) = delete;
  MutexUniqueGuard& operator=(const MutexUniqueGuard&) = delete;

 private:
  Mutex& m_;
  bool held_ = true;
};

}  // namespace mmu
