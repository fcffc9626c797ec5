// FileLockTable: Linux's record and flock semantics between guest owners, and the host
// mirror that shows them to other processes.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "emu/process/file_locks.h"

namespace {

using emu::FileLockTable;
using Kind = FileLockTable::Kind;
using Lock = FileLockTable::Lock;
using Type = FileLockTable::Type;

constexpr FileLockTable::Inode kInode{1, 2};
constexpr int64_t kEnd = FileLockTable::kToEnd;

Lock posix(int pid, Type type, int64_t start, int64_t end) {
  return {{Kind::Posix, static_cast<uint64_t>(pid)}, pid, type, start, end};
}
Lock ofd(uint64_t description, Type type, int64_t start, int64_t end) {
  return {{Kind::Ofd, description}, 7, type, start, end};
}
Lock flock_of(uint64_t description, Type type) { return {{Kind::Flock, description}, 7, type, 0, kEnd}; }

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1;
}

TEST(FileLocks, OneOwnersRangesMergeAndSplitAsLinuxKeepsThem) {
  FileLockTable t;
  ASSERT_EQ(t.set_record(kInode, posix(10, Type::Write, 0, 9), -1, nullptr), 0);
  ASSERT_EQ(t.set_record(kInode, posix(10, Type::Write, 10, 19), -1, nullptr), 0);  // adjacent: merged
  ASSERT_EQ(t.set_record(kInode, posix(10, Type::Read, 100, 149), -1, nullptr), 0);
  ASSERT_EQ(t.set_record(kInode, posix(10, Type::Unlock, 120, 129), -1, nullptr), 0);  // split
  auto held = t.test(kInode, posix(20, Type::Read, 5, 5), -1);
  ASSERT_TRUE(held);
  EXPECT_EQ(held->start, 0);
  EXPECT_EQ(held->end, 19);
  EXPECT_EQ(held->pid, 10);
  held = t.test(kInode, posix(20, Type::Write, 125, 200), -1);
  ASSERT_TRUE(held);
  EXPECT_EQ(held->start, 130) << "the piece after the hole";
  EXPECT_EQ(held->end, 149);
  EXPECT_FALSE(t.test(kInode, posix(20, Type::Read, 100, 119), -1)) << "read locks share";
  EXPECT_FALSE(t.test(kInode, posix(10, Type::Write, 0, kEnd), -1)) << "an owner never conflicts with itself";
  // A read lock in the middle of a write lock splits it in three.
  ASSERT_EQ(t.set_record(kInode, posix(10, Type::Read, 5, 5), -1, nullptr), 0);
  EXPECT_EQ(t.set_record(kInode, posix(20, Type::Read, 5, 5), -1, nullptr), 0);
  EXPECT_EQ(t.set_record(kInode, posix(20, Type::Read, 4, 4), -1, nullptr), -EAGAIN);
  held = t.test(kInode, posix(30, Type::Write, 6, 6), -1);
  ASSERT_TRUE(held);
  EXPECT_EQ(held->start, 6);
  EXPECT_EQ(held->end, 19);
}

TEST(FileLocks, OfdLocksBelongToTheDescriptionAndConflictWithPosixOnes) {
  FileLockTable t;
  ASSERT_EQ(t.set_record(kInode, ofd(1, Type::Write, 0, 4), -1, nullptr), 0);
  EXPECT_EQ(t.set_record(kInode, ofd(1, Type::Write, 2, 8), -1, nullptr), 0) << "the same description";
  EXPECT_EQ(t.set_record(kInode, ofd(2, Type::Read, 8, 8), -1, nullptr), -EAGAIN);
  EXPECT_EQ(t.set_record(kInode, posix(10, Type::Read, 0, 0), -1, nullptr), -EAGAIN);
  const auto own = t.test(kInode, ofd(1, Type::Unlock, 0, 100), -1);
  ASSERT_TRUE(own) << "F_OFD_GETLK with F_UNLCK: the owner's own lock";
  EXPECT_EQ(own->end, 8);
  t.release_description(1);
  EXPECT_EQ(t.set_record(kInode, posix(10, Type::Write, 0, 0), -1, nullptr), 0);
}

TEST(FileLocks, AProcessClosingAnyFdLosesItsPosixLocksOnTheFile) {
  FileLockTable t;
  ASSERT_EQ(t.set_record(kInode, posix(10, Type::Write, 0, 0), -1, nullptr), 0);
  ASSERT_EQ(t.set_record(kInode, ofd(5, Type::Write, 10, 10), -1, nullptr), 0);
  EXPECT_TRUE(t.holds_posix_locks(10));
  EXPECT_FALSE(t.holds_posix_locks(11));
  t.release_process(kInode, 10);
  EXPECT_FALSE(t.holds_posix_locks(10));
  EXPECT_EQ(t.set_record(kInode, posix(11, Type::Write, 0, 0), -1, nullptr), 0);
  EXPECT_EQ(t.set_record(kInode, posix(11, Type::Write, 10, 10), -1, nullptr), -EAGAIN) << "OFD locks stay";
}

TEST(FileLocks, AWaiterIsWokenWhenTheLockGoes) {
  FileLockTable t;
  ASSERT_EQ(t.set_record(kInode, posix(10, Type::Write, 0, 0), -1, nullptr), 0);
  FileLockTable::Waiter w;
  ASSERT_EQ(t.set_record(kInode, posix(20, Type::Write, 0, 0), -1, &w), -EAGAIN);
  EXPECT_FALSE(w.external());
  EXPECT_FALSE(readable(w.fd()));
  ASSERT_EQ(t.set_record(kInode, posix(10, Type::Unlock, 0, 0), -1, nullptr), 0);
  EXPECT_TRUE(readable(w.fd()));
  w.drain();
  EXPECT_EQ(t.set_record(kInode, posix(20, Type::Write, 0, 0), -1, &w), 0);
  t.finish(w);
}

TEST(FileLocks, AWaitThatWouldCloseACycleIsADeadlock) {
  FileLockTable t;
  ASSERT_EQ(t.set_record(kInode, posix(10, Type::Write, 0, 0), -1, nullptr), 0);
  ASSERT_EQ(t.set_record(kInode, posix(20, Type::Write, 1, 1), -1, nullptr), 0);
  FileLockTable::Waiter twenty, ten;
  ASSERT_EQ(t.set_record(kInode, posix(20, Type::Write, 0, 0), -1, &twenty), -EAGAIN);  // 20 waits for 10
  EXPECT_EQ(t.set_record(kInode, posix(10, Type::Write, 1, 1), -1, &ten), -EDEADLK);
  t.finish(ten);
  // OFD locks are outside deadlock detection, as in Linux.
  FileLockTable::Waiter three;
  ASSERT_EQ(t.set_record(kInode, ofd(3, Type::Write, 5, 5), -1, nullptr), 0);
  EXPECT_EQ(t.set_record(kInode, ofd(3, Type::Write, 1, 1), -1, &three), -EAGAIN);
  t.finish(three);
  t.finish(twenty);
}

TEST(FileLocks, FlockConversionLetsGoFirst) {
  FileLockTable t;
  ASSERT_EQ(t.set_flock(kInode, flock_of(1, Type::Read), -1, nullptr), 0);
  ASSERT_EQ(t.set_flock(kInode, flock_of(2, Type::Read), -1, nullptr), 0);
  EXPECT_EQ(t.set_flock(kInode, flock_of(1, Type::Write), -1, nullptr), -EAGAIN);
  // 1 holds nothing now: 2 can convert.
  EXPECT_EQ(t.set_flock(kInode, flock_of(2, Type::Write), -1, nullptr), 0);
  EXPECT_EQ(t.set_flock(kInode, flock_of(1, Type::Read), -1, nullptr), -EAGAIN);
  t.release_description(2);
  EXPECT_EQ(t.set_flock(kInode, flock_of(1, Type::Write), -1, nullptr), 0);
  EXPECT_EQ(t.set_flock(kInode, flock_of(1, Type::Unlock), -1, nullptr), 0);
  EXPECT_EQ(t.set_flock(kInode, flock_of(1, Type::Unlock), -1, nullptr), 0) << "nothing held: still 0";
}

// The mirror: guests' locks on a regular file are host locks for everyone else.
TEST(FileLocks, OtherProcessesSeeTheGuestsLocksThroughTheMirror) {
  std::string path = testing::TempDir() + "/file_locks_test_XXXXXX";
  const int fd = ::mkostemp(path.data(), O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const int other = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  ::unlink(path.c_str());
  FileLockTable t;
  ASSERT_EQ(t.set_record(kInode, posix(10, Type::Read, 0, 9), fd, nullptr), 0);
  ASSERT_EQ(t.set_record(kInode, posix(11, Type::Read, 5, 14), fd, nullptr), 0);
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 20;
  EXPECT_EQ(::fcntl(other, F_OFD_SETLK, &fl), -1);
  t.release_process(kInode, 10);  // 5..14 is still read-locked by 11
  fl = {F_WRLCK, SEEK_SET, 0, 5, 0};
  EXPECT_EQ(::fcntl(other, F_OFD_SETLK, &fl), 0) << "0..4 is free on the host now";
  fl = {F_WRLCK, SEEK_SET, 5, 1, 0};
  EXPECT_EQ(::fcntl(other, F_OFD_SETLK, &fl), -1);
  // And the other way: the host's lock is a conflict for the guests.
  EXPECT_EQ(t.set_record(kInode, posix(12, Type::Read, 0, 0), fd, nullptr), -EAGAIN);
  const auto outside = t.test(kInode, posix(12, Type::Read, 0, 0), fd);
  ASSERT_TRUE(outside);
  EXPECT_EQ(outside->pid, -1) << "an OFD lock of a process outside emu";
  ASSERT_EQ(t.set_flock(kInode, flock_of(1, Type::Write), fd, nullptr), 0);
  EXPECT_EQ(::flock(other, LOCK_SH | LOCK_NB), -1);
  t.release_description(1);
  EXPECT_EQ(::flock(other, LOCK_EX | LOCK_NB), 0);
  EXPECT_EQ(t.set_flock(kInode, flock_of(2, Type::Read), fd, nullptr), -EAGAIN);
  ::close(other);
  ::close(fd);
}

}  // namespace
