// Futexes of one guest process, keyed by guest-virtual address (all its threads share one
// address space, so the address is the key, as for FUTEX_PRIVATE_FLAG).
//
// The compare in wait() happens under the bucket lock that wake() takes, so a waker that
// changes the word and then wakes can never slip between a waiter's compare and its sleep.
//
// A waiter sleeps on a host futex word of its own, not on a condition variable under the
// bucket lock: a waker marks it woken under the lock and wakes its host futex after letting
// the lock go (as glibc's unlock does), so the woken thread does not run straight into a
// lock its waker still holds. A contended guest mutex makes every unlock a wake, and with a
// condition variable each wake-up cost the woken thread a second host sleep on the bucket lock.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <thread>

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
  // `state`'s low bit is set once the waiter is woken (under the bucket lock); interrupt()
  // and shut_down() add kKick so that a sleep that began after the waiter last looked ends.
  struct Waiter {
    uint64_t address = 0;
    uint32_t bitset = 0;
    std::atomic<uint32_t> state{0};
  };
  static constexpr uint32_t kWoken = 1, kKick = 2;
  // Marks `w` woken (bucket lock held); the caller wakes it with wake_host once unlocked.
  static void mark_woken(Waiter* w) { w->state.fetch_or(kWoken, std::memory_order_release); }
  // The host futex wake for a waiter marked woken. It may have returned and gone by now:
  // a wake on memory that is no longer a waiter's is a spurious wake-up for whatever sleeps
  // there, which every waiter here tolerates.
  static void wake_host(std::atomic<uint32_t>* state);
  static void kick(Waiter* w);  // bucket lock held
  struct Bucket {
    std::mutex lock;
    std::list<Waiter*> waiters;
  };
  static constexpr size_t kBuckets = 64;
  Bucket& bucket(uint64_t address) { return buckets_[(address >> 2) % kBuckets]; }

  // How long wait() watches the word before sleeping: only where another host CPU can run
  // the holder meanwhile.
  static constexpr std::chrono::nanoseconds kSpin{4000};
  const bool spin_ = std::thread::hardware_concurrency() > 1;

  std::array<Bucket, kBuckets> buckets_;
  std::atomic<bool> shut_down_{false};
};

}  // namespace emu
