// End to end: guest-programs/syscalls_files.c (file calls, record and flock locks between
// guest processes, identity, scheduling, memory hints, resource usage, each with bad
// arguments) under emu and natively, stdout and status compared, for both ABIs; and file
// locks between a guest and a process outside emu (this test), both ways.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "tests/e2e/reference_runner.h"

namespace {

using emu_test::run_process;

std::string guest(const std::string& arch) { return std::string(EMU_GUEST_DIR) + "/" + arch + "/syscalls_files"; }

class SyscallsFiles : public testing::TestWithParam<std::string> {};

TEST_P(SyscallsFiles, MatchesNative) {
  const std::string& arch = GetParam();
  const auto prefix = emu_test::reference_prefix(arch, {std::string(EMU_GUEST_DIR) + "/" + arch + "/hello"});
  if (!prefix) GTEST_SKIP() << "nothing on this host runs " << arch << " programs natively";
  // qemu-user checks arguments in an order of its own (EFAULT for a NULL path before
  // Linux's EINVAL for bad flags, and more): the reference must be a kernel.
  if (!prefix->empty()) GTEST_SKIP() << "the " << arch << " reference would be " << prefix->front() << ", not Linux";
  const auto native = run_process({guest(arch)});
  ASSERT_EQ(native.status, 0) << native.out << native.err;
  const auto emulated = run_process({EMU_BINARY, guest(arch)});
  EXPECT_EQ(emulated.status, native.status) << "emu stderr:\n" << emulated.err;
  // Line by line, so that a failure names the call.
  std::vector<std::string> want, got;
  const auto split = [](const std::string& s, std::vector<std::string>& out) {
    size_t at = 0;
    while (at < s.size()) {
      const size_t nl = s.find('\n', at);
      out.push_back(s.substr(at, nl == std::string::npos ? std::string::npos : nl - at));
      if (nl == std::string::npos) break;
      at = nl + 1;
    }
  };
  split(native.out, want);
  split(emulated.out, got);
  for (size_t i = 0; i < std::max(want.size(), got.size()); ++i) {
    const std::string w = i < want.size() ? want[i] : "<nothing>", g = i < got.size() ? got[i] : "<nothing>";
    ASSERT_EQ(g, w) << "line " << i + 1 << "; emu stderr:\n" << emulated.err;
  }
}

// A scratch file for the lock tests, removed with the fixture.
class LockFile {
 public:
  LockFile() {
    path_ = testing::TempDir() + "/emu_locks_XXXXXX";
    const int fd = ::mkstemp(path_.data());
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::write(fd, "0123456789", 10), 10);
    ::close(fd);
  }
  ~LockFile() { ::unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

bool contains(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

TEST_P(SyscallsFiles, GuestSeesLocksOfProcessesOutsideEmu) {
  LockFile file;
  const int ofd = ::open(file.path().c_str(), O_RDWR | O_CLOEXEC);
  const int fl = ::open(file.path().c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(ofd, 0);
  ASSERT_GE(fl, 0);
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  lock.l_start = 0;
  lock.l_len = 1;
  ASSERT_EQ(::fcntl(ofd, F_OFD_SETLK, &lock), 0);
  ASSERT_EQ(::flock(fl, LOCK_EX | LOCK_NB), 0);
  auto r = run_process({EMU_BINARY, guest(GetParam()), "probe", file.path()});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "lk(fd, CMD_SETLK64, F_WRLCK, 0, 1) = -1 EAGAIN")) << r.out;
  EXPECT_TRUE(contains(r.out, "getlk: type WR whence 0 start 0 len 1 pid -1")) << r.out;
  EXPECT_TRUE(contains(r.out, "flock(fd, LOCK_EX | LOCK_NB) = -1 EAGAIN")) << r.out;
  // Let go: the guest gets both.
  ::close(ofd);
  ::close(fl);
  r = run_process({EMU_BINARY, guest(GetParam()), "probe", file.path()});
  EXPECT_TRUE(contains(r.out, "lk(fd, CMD_SETLK64, F_WRLCK, 0, 1) = 0")) << r.out;
  EXPECT_TRUE(contains(r.out, "getlk: type UN")) << r.out;
  EXPECT_TRUE(contains(r.out, "flock(fd, LOCK_EX | LOCK_NB) = 0")) << r.out;
}

TEST_P(SyscallsFiles, ProcessesOutsideEmuSeeTheGuestsLocks) {
  LockFile file;
  // emu, its stdout read until the guest says it holds its locks, its stdin kept open.
  int in[2], out[2];
  ASSERT_EQ(::pipe2(in, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  const std::string emu = EMU_BINARY, program = guest(GetParam()), mode = "hold";
  std::vector<char*> argv = {const_cast<char*>(emu.c_str()), const_cast<char*>(program.c_str()),
                             const_cast<char*>(mode.c_str()), const_cast<char*>(file.path().c_str()), nullptr};
  pid_t pid = -1;
  ASSERT_EQ(::posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  ::close(in[0]);
  ::close(out[1]);
  std::string said;
  char buf[256];
  while (!contains(said, "held\n")) {
    pollfd p{out[0], POLLIN, 0};
    ASSERT_GT(::poll(&p, 1, 30000), 0) << "the guest never said it held its locks: " << said;
    const ssize_t n = ::read(out[0], buf, sizeof buf);
    ASSERT_GT(n, 0) << said;
    said.append(buf, static_cast<size_t>(n));
  }
  EXPECT_TRUE(contains(said, "lk(fd, CMD_SETLK64, F_WRLCK, 0, 1) = 0")) << said;
  EXPECT_TRUE(contains(said, "flock(fd, LOCK_EX | LOCK_NB) = 0")) << said;
  const int fd = ::open(file.path().c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  lock.l_len = 1;
  EXPECT_EQ(::fcntl(fd, F_OFD_GETLK, &lock), 0);
  EXPECT_EQ(lock.l_type, F_WRLCK) << "the guest's record lock, seen from outside";
  EXPECT_EQ(::flock(fd, LOCK_SH | LOCK_NB), -1);
  EXPECT_EQ(errno, EWOULDBLOCK) << "the guest's flock, seen from outside";
  // The guest ends: its locks go with it.
  ::close(in[1]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ::close(out[0]);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  lock = {};  // F_OFD_GETLK wrote the holder's l_pid (-1), which F_OFD_SETLK refuses
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  lock.l_len = 1;
  EXPECT_EQ(::fcntl(fd, F_OFD_SETLK, &lock), 0);
  EXPECT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  ::close(fd);
}

INSTANTIATE_TEST_SUITE_P(BothArches, SyscallsFiles, testing::Values("x86_64", "i386"),
                         [](const auto& info) { return info.param; });

}  // namespace
