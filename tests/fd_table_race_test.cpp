// FdTable under guest threads that open, dup and close at once (CLONE_FILES: one table).
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "emu/process/fd_table.h"

namespace {

TEST(FdTableRace, NoFdIsHandedOutTwice) {
  constexpr int kThreads = 4, kRounds = 2000, kLimit = 64;
  emu::FdTable table(kLimit);
  const auto file = std::make_shared<emu::HostFile>(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  std::array<std::atomic<int>, kLimit> owner{};
  for (auto& o : owner) o = -1;
  std::atomic<int> clashes{0};
  for (int t = 0; t < kThreads; ++t) ASSERT_EQ(table.install_at(t, file, false), t);  // each thread's own fd
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        if (i % 3 == 0) {  // dup2 onto its own fd, racing the others' lowest-free searches
          EXPECT_EQ(table.install_at(t, file, i % 2), t);
          continue;
        }
        const int fd = table.install(file, i % 2);
        if (fd < 0) continue;  // -EMFILE: every fd taken for a moment
        EXPECT_GE(fd, kThreads);
        int free = -1;
        if (!owner[fd].compare_exchange_strong(free, t)) clashes++;
        EXPECT_EQ(table.get(fd), file);
        owner[fd] = -1;
        EXPECT_EQ(table.close(fd), 0);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(clashes.load(), 0);
  EXPECT_EQ(file.use_count(), 1 + kThreads) << "only the install_at fds still name it";
}

}  // namespace
