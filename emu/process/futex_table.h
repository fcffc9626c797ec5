// Futexes of one guest process, keyed by guest-virtual address (all its threads share one
// address space, so the address is the key, as for FUTEX_PRIVATE_FLAG).
//
// The compare in wait() happens under the bucket lock that wake() takes, so a waker that
// changes the word and then wakes can never slip between a waiter's compare and its sleep.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <optional>

namespace emu {

class FutexTable {
 public:
  using Deadline = std::optional<std::chrono::steady_clock::time_point>;

  // 0 when woken, -EAGAIN when *word != expected, -ETIMEDOUT, -EINTR when the process exits,
  // `interrupted_result` once `interrupted` is true (a signal for the waiter: see interrupt()).
  // `compared` runs once the word has been compared, before any sleep (the caller stops
  // pinning the guest frame there: a sleeping waiter must not hold up a shootdown).
  int wait(uint64_t address, const uint32_t* word, uint32_t expected, uint32_t bitset, Deadline deadline,
           const std::function<void()>& compared = {}, const std::function<bool()>& interrupted = {},
           int interrupted_result = -EINTR);
  // Number woken.
  int wake(uint64_t address, int count, uint32_t bitset);
  // Moves waiters of `from` beyond the first `wake_count` to `to` (FUTEX_REQUEUE/CMP_REQUEUE).
  int requeue(uint64_t from, uint64_t to, int wake_count, int requeue_count, const uint32_t* word,
              std::optional<uint32_t> expected);
  // The process is exiting: every waiter returns -EINTR, now and later.
  void shut_down();
  // Something a waiter's `interrupted` looks at has changed: every waiter checks it again.
  void interrupt();

 private:
  struct Waiter {
    uint64_t address = 0;
    uint32_t bitset = 0;
    bool woken = false;
    std::condition_variable cv;
  };
  struct Bucket {
    std::mutex lock;
    std::list<Waiter*> waiters;
  };
  static constexpr size_t kBuckets = 64;
  Bucket& bucket(uint64_t address) { return buckets_[(address >> 2) % kBuckets]; }

  std::array<Bucket, kBuckets> buckets_;
  std::atomic<bool> shut_down_{false};
};

}  // namespace emu
