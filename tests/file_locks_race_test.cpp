// FileLockTable under contention: owners taking and releasing one write lock through the
// waiting protocol (poll the waiter's fd, ask again) never overlap and never miss a wake-up.
#include <gtest/gtest.h>

#include <poll.h>

#include <atomic>
#include <thread>
#include <vector>

#include "emu/process/file_locks.h"

namespace {

using emu::FileLockTable;

TEST(FileLocksRace, WaitersTakeTurnsWithoutOverlapOrLostWakeups) {
  constexpr int kOwners = 4, kRounds = 300;
  FileLockTable t;
  const FileLockTable::Inode inode{3, 4};
  std::atomic<int> inside{0};
  std::atomic<int> overlaps{0};
  int64_t counter = 0;  // guarded by the guest lock itself
  std::vector<std::thread> threads;
  for (int o = 0; o < kOwners; ++o) {
    threads.emplace_back([&, o] {
      // Alternately POSIX and flock owners, on two different lock families of one inode.
      const bool use_flock = o % 2;
      FileLockTable::Lock lock{{use_flock ? FileLockTable::Kind::Flock : FileLockTable::Kind::Posix,
                                static_cast<uint64_t>(100 + o)},
                               100 + o, FileLockTable::Type::Write, 0, 0};
      for (int r = 0; r < kRounds; ++r) {
        FileLockTable::Waiter w;
        for (;;) {
          const int got = use_flock ? t.set_flock(inode, lock, -1, &w) : t.set_record(inode, lock, -1, &w);
          if (got == 0) break;
          ASSERT_EQ(got, -EAGAIN);
          pollfd p{w.fd(), POLLIN, 0};
          ASSERT_EQ(::poll(&p, 1, 10000), 1) << "a wake-up was lost";
          w.drain();
        }
        t.finish(w);
        if (!use_flock) {
          if (inside.fetch_add(1) != 0) overlaps.fetch_add(1);
          ++counter;
          inside.fetch_sub(1);
        }
        FileLockTable::Lock unlock = lock;
        unlock.type = FileLockTable::Type::Unlock;
        ASSERT_EQ(use_flock ? t.set_flock(inode, unlock, -1, nullptr) : t.set_record(inode, unlock, -1, nullptr), 0);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_EQ(counter, int64_t{kOwners / 2} * kRounds);
}

}  // namespace
