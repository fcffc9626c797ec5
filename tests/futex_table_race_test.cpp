// The futex table under many threads: a futex-based mutex built on it must give an exact
// count, timeouts must expire, a changed word must refuse to sleep, and shutting down (the
// guest's exit_group) must release every sleeper.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <thread>
#include <vector>

#include "emu/process/futex_table.h"

namespace {

using emu::FutexTable;
constexpr uint32_t kAny = 0xffffffffu;

// Drepper's mutex ("Futexes are tricky", take 3): 0 free, 1 locked, 2 locked with waiters.
struct FutexMutex {
  FutexTable& table;
  uint32_t word = 0;
  uint64_t key() const { return reinterpret_cast<uint64_t>(&word); }
  void lock() {
    uint32_t c = 0;
    if (__atomic_compare_exchange_n(&word, &c, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return;
    if (c != 2) c = __atomic_exchange_n(&word, 2, __ATOMIC_ACQUIRE);
    while (c != 0) {
      table.wait(key(), &word, 2, kAny, std::nullopt);
      c = __atomic_exchange_n(&word, 2, __ATOMIC_ACQUIRE);
    }
  }
  void unlock() {
    if (__atomic_fetch_sub(&word, 1, __ATOMIC_RELEASE) != 1) {
      __atomic_store_n(&word, 0, __ATOMIC_RELEASE);
      table.wake(key(), 1, kAny);
    }
  }
};

TEST(FutexTableRace, MutexBuiltOnItCountsExactly) {
  FutexTable table;
  FutexMutex m{table};
  uint64_t plain = 0;
  constexpr int kThreads = 8, kIters = 20000;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < kIters; ++i) {
        m.lock();
        ++plain;
        m.unlock();
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(plain, uint64_t{kThreads} * kIters);
  EXPECT_EQ(m.word, 0u);
}

TEST(FutexTableRace, WaitRefusesAChangedWordAndTimesOut) {
  FutexTable table;
  uint32_t word = 5;
  EXPECT_EQ(table.wait(1, &word, 4, kAny, std::nullopt), -EAGAIN);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(table.wait(1, &word, 5, kAny, start + std::chrono::milliseconds(20)), -ETIMEDOUT);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(20));
}

TEST(FutexTableRace, WakeRespectsBitsetsAndCounts) {
  FutexTable table;
  uint32_t word = 0;
  std::atomic<int> woken{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; ++i)
    ts.emplace_back([&, i] {
      if (table.wait(7, &word, 0, i < 2 ? 1u : 2u, std::nullopt) == 0) woken.fetch_add(1);
    });
  // Wake until all four are asleep and woken: bitset 1 reaches only the first two.
  int done = 0;
  while (done < 2) done += table.wake(7, 10, 1u);
  while (done < 4) done += table.wake(7, 10, 2u);
  for (auto& t : ts) t.join();
  EXPECT_EQ(woken.load(), 4);
  EXPECT_EQ(table.wake(7, 10, kAny), 0) << "nobody left";
}

TEST(FutexTableRace, ShutDownReleasesEverySleeper) {
  FutexTable table;
  uint32_t word = 0;
  std::atomic<int> interrupted{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 6; ++i)
    ts.emplace_back([&, i] {
      if (table.wait(100 + i, &word, 0, kAny, std::nullopt) == -EINTR) interrupted.fetch_add(1);
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  table.shut_down();
  for (auto& t : ts) t.join();
  EXPECT_EQ(interrupted.load(), 6);
  EXPECT_EQ(table.wait(1, &word, 0, kAny, std::nullopt), -EINTR) << "and later waits do not sleep";
}

}  // namespace
