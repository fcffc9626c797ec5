// FdTable: a guest process's descriptors, over HostFiles that own host fds.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>

#include "emu/process/fd_table.h"

namespace {

using emu::FdTable;
using emu::HostFile;

std::shared_ptr<HostFile> dev_null() { return std::make_shared<HostFile>(::open("/dev/null", O_RDONLY | O_CLOEXEC)); }

// A file of ten bytes, already unlinked (the test leaves nothing behind).
std::shared_ptr<HostFile> scratch_file() {
  std::string path = testing::TempDir() + "/fd_table_test_XXXXXX";
  const int fd = ::mkostemp(path.data(), O_CLOEXEC);
  EXPECT_GE(fd, 0);
  ::unlink(path.c_str());
  EXPECT_EQ(::write(fd, "0123456789", 10), 10);
  return std::make_shared<HostFile>(fd);
}

bool host_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

TEST(FdTable, InstallTakesTheLowestFreeFd) {
  FdTable t;
  EXPECT_EQ(t.install(dev_null(), false), 0);
  EXPECT_EQ(t.install(dev_null(), false), 1);
  EXPECT_EQ(t.install(dev_null(), false), 2);
  EXPECT_EQ(t.close(1), 0);
  EXPECT_EQ(t.install(dev_null(), false), 1);
  EXPECT_EQ(t.install(dev_null(), false, 7), 7) << "F_DUPFD's minimum";
  EXPECT_EQ(t.install(dev_null(), false), 3);
  EXPECT_EQ(t.install(dev_null(), false, 7), 8);
}

TEST(FdTable, DupSharesTheOpenFileDescription) {
  FdTable t;
  const int a = t.install(scratch_file(), false);
  const int b = t.install(t.get(a), false);
  ASSERT_NE(a, b);
  EXPECT_EQ(t.get(a), t.get(b));
  ASSERT_EQ(::lseek(t.get(a)->fd(), 3, SEEK_SET), 3);
  EXPECT_EQ(::lseek(t.get(b)->fd(), 0, SEEK_CUR), 3) << "one offset, as after dup on Linux";
}

TEST(FdTable, TheHostFdClosesWithTheLastGuestFd) {
  FdTable t;
  const int a = t.install(dev_null(), false);
  const int b = t.install(t.get(a), false);
  const int host = t.get(a)->fd();
  EXPECT_EQ(t.close(a), 0);
  EXPECT_TRUE(host_open(host)) << "fd " << b << " still names it";
  EXPECT_EQ(t.close(b), 0);
  EXPECT_FALSE(host_open(host));
}

TEST(FdTable, AHeldFileOutlivesItsClose) {
  // A guest thread blocked in a host call holds the HostFile: another thread's close must
  // not close the host fd under it.
  FdTable t;
  const int a = t.install(dev_null(), false);
  const auto held = t.get(a);
  EXPECT_EQ(t.close(a), 0);
  EXPECT_EQ(t.get(a), nullptr);
  EXPECT_TRUE(host_open(held->fd()));
}

TEST(FdTable, InstallAtReplacesAndClosesWhatWasThere) {
  FdTable t;
  const int a = t.install(dev_null(), false);
  const int old_host = t.get(a)->fd();
  const auto file = dev_null();
  EXPECT_EQ(t.install_at(a, file, true), a);
  EXPECT_EQ(t.get(a), file);
  EXPECT_EQ(t.cloexec(a), 1);
  EXPECT_FALSE(host_open(old_host));
  EXPECT_EQ(t.install_at(a, t.get(a), false), a) << "onto itself: the file stays open";
  EXPECT_TRUE(host_open(file->fd()));
  EXPECT_EQ(t.install_at(40, file, false), 40) << "beyond every fd taken so far";
  EXPECT_EQ(t.install(dev_null(), false), 1);
}

TEST(FdTable, OutOfRangeFdsAreBadOrInvalid) {
  FdTable t(8);
  EXPECT_EQ(t.install_at(-1, dev_null(), false), -EBADF);
  EXPECT_EQ(t.install_at(8, dev_null(), false), -EBADF);
  EXPECT_EQ(t.install(dev_null(), false, 8), -EINVAL);
  EXPECT_EQ(t.install(dev_null(), false, -1), -EINVAL);
}

TEST(FdTable, FdsThatAreNotOpenAreEbadf) {
  FdTable t;
  EXPECT_EQ(t.get(0), nullptr);
  EXPECT_EQ(t.get(-1), nullptr);
  EXPECT_EQ(t.get(t.limit()), nullptr);
  EXPECT_EQ(t.close(3), -EBADF);
  EXPECT_EQ(t.close(-1), -EBADF);
  EXPECT_EQ(t.cloexec(3), -EBADF);
  EXPECT_EQ(t.set_cloexec(3, true), -EBADF);
  const int a = t.install(dev_null(), false);
  EXPECT_EQ(t.close(a), 0);
  EXPECT_EQ(t.close(a), -EBADF) << "closed twice";
}

TEST(FdTable, FullTableIsEmfile) {
  FdTable t(4);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(t.install(dev_null(), false), i);
  EXPECT_EQ(t.install(dev_null(), false), -EMFILE);
  EXPECT_EQ(t.install(dev_null(), false, 3), -EMFILE);
  EXPECT_EQ(t.close(2), 0);
  EXPECT_EQ(t.install(dev_null(), false), 2);
}

TEST(FdTable, CloseOnExecIsPerGuestFd) {
  FdTable t;
  const int a = t.install(dev_null(), true);
  const int b = t.install(t.get(a), false);
  EXPECT_EQ(t.cloexec(a), 1);
  EXPECT_EQ(t.cloexec(b), 0) << "dup clears it; the description does not carry it";
  EXPECT_EQ(t.set_cloexec(b, true), 0);
  EXPECT_EQ(t.set_cloexec(a, false), 0);
  EXPECT_EQ(t.cloexec(a), 0);
  EXPECT_EQ(t.cloexec(b), 1);
}

TEST(FdTable, CloseOnExecClosesOnlyThoseFds) {
  FdTable t;
  const int keep = t.install(dev_null(), false);
  const int drop = t.install(dev_null(), true);
  const int host_dropped = t.get(drop)->fd();
  t.close_on_exec();
  EXPECT_NE(t.get(keep), nullptr);
  EXPECT_EQ(t.get(drop), nullptr);
  EXPECT_FALSE(host_open(host_dropped));
  EXPECT_EQ(t.install(dev_null(), false), drop) << "its number is free again";
  EXPECT_EQ(t.cloexec(drop), 0);
}

TEST(FdTable, CloneIsIndependent) {
  FdTable parent;
  const int a = parent.install(dev_null(), true);
  const int b = parent.install(dev_null(), false);
  FdTable child = parent.clone();
  EXPECT_EQ(child.get(a), parent.get(a)) << "the same open file descriptions";
  EXPECT_EQ(child.cloexec(a), 1);
  EXPECT_EQ(child.cloexec(b), 0);

  const int host_a = parent.get(a)->fd();
  EXPECT_EQ(child.close(a), 0);
  EXPECT_NE(parent.get(a), nullptr) << "closing in the clone keeps the original's open";
  EXPECT_TRUE(host_open(host_a));
  EXPECT_EQ(child.set_cloexec(b, true), 0);
  EXPECT_EQ(parent.cloexec(b), 0);
  EXPECT_EQ(child.install(dev_null(), false), a);
  EXPECT_NE(child.get(a), parent.get(a));

  EXPECT_EQ(child.cwd(), parent.cwd());
  child.set_cwd(nullptr);
  EXPECT_NE(parent.cwd(), nullptr) << "a chdir in one leaves the other's directory";
}

TEST(FdTable, CloseAllClosesEveryFd) {
  FdTable t;
  const int a = t.install(dev_null(), false);
  const int b = t.install(dev_null(), true);
  const int host_a = t.get(a)->fd();
  t.close_all();
  EXPECT_EQ(t.get(a), nullptr);
  EXPECT_EQ(t.get(b), nullptr);
  EXPECT_FALSE(host_open(host_a));
  EXPECT_EQ(t.install(dev_null(), false), 0);
}

TEST(FdTable, MovingTakesTheFdsAndTheDirectory) {
  FdTable from;
  const auto file = dev_null();
  ASSERT_EQ(from.install(file, true), 0);
  const auto dir = from.cwd();
  const auto to = std::make_unique<FdTable>(std::move(from));
  EXPECT_EQ(to->get(0), file);
  EXPECT_EQ(to->cloexec(0), 1);
  EXPECT_EQ(to->cwd(), dir);
  EXPECT_EQ(to->limit(), from.limit());
}

TEST(FdTable, StdioIsACopyOfEmusOwn) {
  FdTable t = FdTable::with_stdio();
  for (int fd = 0; fd < 3; ++fd) {
    struct stat host {}, guest {};
    if (::fstat(fd, &host) != 0) {
      EXPECT_EQ(t.get(fd), nullptr) << "emu has no fd " << fd << ", neither has the guest";
      continue;
    }
    ASSERT_NE(t.get(fd), nullptr) << fd;
    EXPECT_GE(t.get(fd)->fd(), 10) << "away from the host's low fds";
    ASSERT_EQ(::fstat(t.get(fd)->fd(), &guest), 0);
    EXPECT_EQ(guest.st_ino, host.st_ino);
    EXPECT_EQ(t.cloexec(fd), 0);
    EXPECT_TRUE(::fcntl(t.get(fd)->fd(), F_GETFD) & FD_CLOEXEC) << "a host child must not inherit it";
  }
  if (host_open(1)) {
    EXPECT_EQ(t.close(1), 0);
    EXPECT_TRUE(host_open(1)) << "the guest's close(1) is not emu's";
  }
}

TEST(FdTable, TheCurrentDirectoryStartsAsEmus) {
  FdTable t;
  ASSERT_NE(t.cwd(), nullptr);
  struct stat dir {}, dot {};
  ASSERT_EQ(::fstat(t.cwd()->fd(), &dir), 0);
  ASSERT_EQ(::stat(".", &dot), 0);
  EXPECT_EQ(dir.st_ino, dot.st_ino);
  EXPECT_TRUE(::fcntl(t.cwd()->fd(), F_GETFD) & FD_CLOEXEC);
}

}  // namespace
