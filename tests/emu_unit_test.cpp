// Pieces of the emulator that can be checked without running a guest.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "emu/cpu/atomic_block_detector.h"
#include "emu/process/guest_process.h"
#include "emu/process/machine.h"
#include "emu/syscalls/sys_handlers.h"

namespace {

using emu::AtomicBlockDetector;
using emu::GuestArch;

bool atomic(GuestArch arch, std::vector<uint8_t> code) {
  AtomicBlockDetector d(arch);
  return d.contains_atomic(code, 0x1000);
}

TEST(AtomicBlockDetector, FindsLockedReadModifyWrites) {
  EXPECT_TRUE(atomic(GuestArch::X86_64, {0xf0, 0xff, 0x00}));              // lock inc dword [rax]
  EXPECT_TRUE(atomic(GuestArch::X86_64, {0x90, 0xf0, 0x0f, 0xb1, 0x17}));  // nop; lock cmpxchg [rdi], edx
  EXPECT_TRUE(atomic(GuestArch::X86_64, {0x87, 0x07}));                    // xchg [rdi], eax (implicitly locked)
  EXPECT_TRUE(atomic(GuestArch::X86_64, {0xf0, 0x48, 0x0f, 0xc7, 0x0e}));  // lock cmpxchg16b [rsi]
  EXPECT_TRUE(atomic(GuestArch::I386, {0xf0, 0x0f, 0xc7, 0x0e}));          // lock cmpxchg8b [esi]
  EXPECT_TRUE(atomic(GuestArch::I386, {0xf0, 0x0f, 0xc1, 0x02}));          // lock xadd [edx], eax
}

TEST(AtomicBlockDetector, IgnoresPlainInstructions) {
  EXPECT_FALSE(atomic(GuestArch::X86_64, {0xff, 0xc0}));        // inc eax
  EXPECT_FALSE(atomic(GuestArch::X86_64, {0x48, 0x87, 0xd8}));  // xchg rax, rbx (registers only)
  EXPECT_FALSE(atomic(GuestArch::X86_64, {0x0f, 0xb1, 0x17}));  // cmpxchg without lock
  EXPECT_FALSE(atomic(GuestArch::I386, {0x89, 0x07, 0xc3}));    // mov [edi], eax; ret
  EXPECT_FALSE(atomic(GuestArch::I386, {}));
}

TEST(AtomicBlockDetector, CachesPerBlockUntilInvalidated) {
  AtomicBlockDetector d(GuestArch::X86_64);
  const std::vector<uint8_t> locked = {0xf0, 0xff, 0x00};
  EXPECT_EQ(d.cached(0x4000, 3), -1);
  EXPECT_TRUE(d.scan(0x4000, 3, locked));
  EXPECT_EQ(d.cached(0x4000, 3), 1);
  EXPECT_EQ(d.cached(0x4000, 5), -1) << "same address, another block size";
  d.invalidate();
  EXPECT_EQ(d.cached(0x4000, 3), -1);
}

// Syscall handlers called directly: a process that never runs a program, one guest page,
// and a vCPU object with no engine or thread behind it (the handlers only need its slot).
class SyscallHandler : public testing::Test {
 protected:
  static constexpr uint64_t kPage = 0x10000;

  void SetUp() override { start_process(); }

  void start_process() {
    vcpu_.reset();
    proc_.reset();
    machine_.reset();
    emu::EmulatorConfig config;
    config.mem_bytes = uint64_t{16} << 20;
    config.max_vcpus = 4;
    std::string error;
    machine_ = emu::Machine::create(config, &error);
    ASSERT_TRUE(machine_) << error;
    proc_ = machine_->new_first_process(GuestArch::X86_64, &error);
    ASSERT_TRUE(proc_) << error;
    mmu::MapRequest page;
    page.addr = kPage;
    page.length = mmu::kPageSize;
    page.placement = mmu::MapPlacement::FixedNoReplace;
    ASSERT_TRUE(proc_->space().map(0, page).ok());
    vcpu_ = std::make_unique<emu::Vcpu>(*proc_, 0, proc_->pid());
  }

  emu::sys::Call call() { return {*vcpu_, *proc_, proc_->memory(), 0, /*i386=*/false, {}}; }
  // A 64-bit timespec at `addr` in the guest page.
  void put_timespec(uint64_t addr, int64_t sec, int64_t nsec) {
    const int64_t v[2] = {sec, nsec};
    ASSERT_TRUE(proc_->memory().write(0, addr, v, sizeof v));
  }

  void TearDown() override {
    vcpu_.reset();
    proc_.reset();
    machine_.reset();
  }

  std::unique_ptr<emu::Machine> machine_;
  std::shared_ptr<emu::GuestProcess> proc_;
  std::unique_ptr<emu::Vcpu> vcpu_;
};

// mremap that has to move a read-only mapping: the data arrives, the protection is kept, and
// the old range is gone (the copy used to go through a permission-checked write and fail).
TEST_F(SyscallHandler, MremapMovesAReadOnlyMappingWithItsData) {
  auto c = call();
  const int64_t a = emu::sys::mmap(c, 0, 2 * mmu::kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_GT(a, 0);
  const uint64_t addr = static_cast<uint64_t>(a);
  ASSERT_TRUE(proc_->memory().write_value(0, addr + 8, uint64_t{0x1234567890}));
  ASSERT_EQ(emu::sys::mprotect(c, addr, 2 * mmu::kPageSize, PROT_READ), 0);
  // Block growth in place so the mapping has to move.
  ASSERT_EQ(emu::sys::mmap(c, addr + 2 * mmu::kPageSize, mmu::kPageSize, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0),
            static_cast<int64_t>(addr + 2 * mmu::kPageSize));
  const int64_t moved = emu::sys::mremap(c, addr, 2 * mmu::kPageSize, 8 * mmu::kPageSize, MREMAP_MAYMOVE, 0);
  ASSERT_GT(moved, 0) << moved;
  ASSERT_NE(static_cast<uint64_t>(moved), addr);
  uint64_t v = 0;
  ASSERT_TRUE(proc_->memory().read_value(0, static_cast<uint64_t>(moved) + 8, v));
  EXPECT_EQ(v, 0x1234567890u);
  EXPECT_FALSE(proc_->memory().write_value(0, static_cast<uint64_t>(moved) + 8, v)) << "protection kept";
  EXPECT_FALSE(proc_->memory().read_value(0, addr + 8, v)) << "old range unmapped";
}

TEST_F(SyscallHandler, ClockNanosleepReturnsNegativeErrno) {
  auto c = call();
  put_timespec(kPage, 0, 1000);
  EXPECT_EQ(emu::sys::clock_nanosleep(c, 99, 0, kPage, 0, true), -EINVAL) << "unknown clock";
  EXPECT_EQ(emu::sys::clock_nanosleep(c, CLOCK_MONOTONIC, 0, 0x5000, 0, true), -EFAULT) << "unmapped timespec";
  put_timespec(kPage, 0, 1000000000);
  EXPECT_EQ(emu::sys::clock_nanosleep(c, CLOCK_MONOTONIC, 0, kPage, 0, true), -EINVAL);
  put_timespec(kPage, -1, 0);
  EXPECT_EQ(emu::sys::clock_nanosleep(c, CLOCK_MONOTONIC, 0, kPage, 0, true), -EINVAL);
  put_timespec(kPage, 0, 1000);
  EXPECT_EQ(emu::sys::clock_nanosleep(c, CLOCK_MONOTONIC, 0, kPage, 0, true), 0);
}

// A handler that should block, on a thread of its own.
class Blocking {
 public:
  template <typename Fn>
  explicit Blocking(Fn fn) : thread_([this, fn] {
    result_ = fn();
    done_ = true;
  }) {}
  ~Blocking() {
    if (thread_.joinable()) thread_.join();
  }
  bool returned_within(std::chrono::milliseconds span) {
    std::this_thread::sleep_for(span);
    return done_;
  }
  bool returned() const { return done_; }
  int64_t result() {
    thread_.join();
    return result_;
  }

 private:
  std::atomic<bool> done_{false};
  int64_t result_ = 0;
  std::thread thread_;
};

constexpr std::chrono::milliseconds kBlockedFor{150};
// Far timeouts whose nanoseconds overflow int64: the deadline must not land in the past.
constexpr int64_t kFarSeconds[] = {INT64_MAX, int64_t{1} << 40};

TEST_F(SyscallHandler, NanosleepRejectsInvalidTimespec) {
  auto c = call();
  put_timespec(kPage, -1, 0);
  EXPECT_EQ(emu::sys::nanosleep(c, kPage, 0, true), -EINVAL);
  put_timespec(kPage, 0, -1);
  EXPECT_EQ(emu::sys::nanosleep(c, kPage, 0, true), -EINVAL);
  put_timespec(kPage, 0, 1000000000);
  EXPECT_EQ(emu::sys::nanosleep(c, kPage, 0, true), -EINVAL);
}

TEST_F(SyscallHandler, FarNanosleepSleepsUntilTheProcessExits) {
  for (const int64_t sec : kFarSeconds) {
    start_process();  // exit_group below ends the previous one
    put_timespec(kPage, sec, 999999999);
    Blocking sleep([&] {
      auto c = call();
      return emu::sys::nanosleep(c, kPage, 0, true);
    });
    EXPECT_FALSE(sleep.returned_within(kBlockedFor)) << "sleep(" << sec << " s) returned at once";
    proc_->exit_group(0);
    EXPECT_EQ(sleep.result(), -EINTR);
  }
}

TEST_F(SyscallHandler, FarAbsoluteClockNanosleepSleepsUntilTheProcessExits) {
  put_timespec(kPage, INT64_MAX, 0);
  Blocking sleep([&] {
    auto c = call();
    return emu::sys::clock_nanosleep(c, CLOCK_REALTIME, TIMER_ABSTIME, kPage, 0, true);
  });
  EXPECT_FALSE(sleep.returned_within(kBlockedFor));
  proc_->exit_group(0);
  EXPECT_EQ(sleep.result(), -EINTR);
}

TEST_F(SyscallHandler, FutexRejectsInvalidTimeout) {
  auto c = call();
  const uint64_t word = kPage + 64;
  ASSERT_TRUE(proc_->memory().write_value(0, word, uint32_t{7}));
  for (const int op : {FUTEX_WAIT_PRIVATE, FUTEX_WAIT_BITSET_PRIVATE}) {
    put_timespec(kPage, -1, 0);
    EXPECT_EQ(emu::sys::futex(c, word, op, 7, kPage, 0, FUTEX_BITSET_MATCH_ANY, true), -EINVAL) << op;
    put_timespec(kPage, 0, 1000000000);
    EXPECT_EQ(emu::sys::futex(c, word, op, 7, kPage, 0, FUTEX_BITSET_MATCH_ANY, true), -EINVAL) << op;
    put_timespec(kPage, 0, -1);
    EXPECT_EQ(emu::sys::futex(c, word, op, 7, kPage, 0, FUTEX_BITSET_MATCH_ANY, true), -EINVAL) << op;
  }
  // An absolute deadline already past times out at once.
  put_timespec(kPage, 1, 0);
  EXPECT_EQ(emu::sys::futex(c, word, FUTEX_WAIT_BITSET_PRIVATE, 7, kPage, 0, FUTEX_BITSET_MATCH_ANY, true), -ETIMEDOUT);
}

TEST_F(SyscallHandler, FarFutexTimeoutWaitsForTheWake) {
  const uint64_t word = kPage + 64;
  for (const int op : {FUTEX_WAIT_PRIVATE, FUTEX_WAIT_BITSET_PRIVATE, FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME}) {
    for (const int64_t sec : kFarSeconds) {
      ASSERT_TRUE(proc_->memory().write_value(0, word, uint32_t{7}));
      put_timespec(kPage, sec, 0);
      Blocking wait([&] {
        auto c = call();
        return emu::sys::futex(c, word, op, 7, kPage, 0, FUTEX_BITSET_MATCH_ANY, true);
      });
      EXPECT_FALSE(wait.returned_within(kBlockedFor)) << "op " << op << ", " << sec << " s: returned at once";
      while (!wait.returned()) {
        proc_->futexes().wake(word, 1, FUTEX_BITSET_MATCH_ANY);
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      EXPECT_EQ(wait.result(), 0) << "op " << op << ", " << sec << " s";
    }
  }
}

// A pipe, its read end a guest fd, and a guest pollfd asking for it to become readable.
class PollHandler : public SyscallHandler {
 protected:
  static constexpr uint64_t kPollFd = kPage + 128;

  void SetUp() override {
    SyscallHandler::SetUp();
    ASSERT_EQ(::pipe(pipe_), 0);
    const int guest_fd = proc_->files().install(std::make_shared<emu::HostFile>(::dup(pipe_[0])), false);
    ASSERT_GE(guest_fd, 0);
    const pollfd p{guest_fd, POLLIN, 0};
    ASSERT_TRUE(proc_->memory().write_value(0, kPollFd, p));
  }
  void TearDown() override {
    ::close(pipe_[0]);
    ::close(pipe_[1]);
  }

  int pipe_[2] = {-1, -1};
};

TEST_F(PollHandler, PpollWaitsOutASubMillisecondTimeout) {
  auto c = call();
  put_timespec(kPage, 0, 500000);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(emu::sys::ppoll(c, kPollFd, 1, kPage, 0, 0, true), 0);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::microseconds(500)) << "0.5 ms became 0";
}

TEST_F(PollHandler, FarPpollTimeoutWaitsForTheFd) {
  // 2^61 s is 0 once turned into milliseconds in 64 bits.
  put_timespec(kPage, int64_t{1} << 61, 0);
  Blocking wait([&] {
    auto c = call();
    return emu::sys::ppoll(c, kPollFd, 1, kPage, 0, 0, true);
  });
  EXPECT_FALSE(wait.returned_within(kBlockedFor));
  ASSERT_EQ(::write(pipe_[1], "x", 1), 1);
  EXPECT_EQ(wait.result(), 1);
}

TEST_F(PollHandler, PpollRejectsInvalidTimeout) {
  auto c = call();
  put_timespec(kPage, -1, 0);
  EXPECT_EQ(emu::sys::ppoll(c, kPollFd, 1, kPage, 0, 0, true), -EINVAL);
  put_timespec(kPage, 0, 1000000000);
  EXPECT_EQ(emu::sys::ppoll(c, kPollFd, 1, kPage, 0, 0, true), -EINVAL);
}

TEST_F(PollHandler, FdNotOpenIsPollnvalWithoutWaiting) {
  auto c = call();
  const pollfd in[3] = {{77, POLLIN, 0}, {-1, POLLIN, 0}, {1, 0, 0}};
  ASSERT_TRUE(proc_->memory().write(0, kPollFd, in, sizeof in));
  EXPECT_EQ(emu::sys::poll(c, kPollFd, 3, -1), 1) << "returns at once, counting the bad fd";
  pollfd out[3];
  ASSERT_TRUE(proc_->memory().read(0, kPollFd, out, sizeof out));
  EXPECT_EQ(out[0].fd, 77) << "the guest's fds come back, not the host's";
  EXPECT_EQ(out[0].revents, POLLNVAL);
  EXPECT_EQ(out[1].revents, 0) << "a negative fd is ignored";
  EXPECT_EQ(out[2].fd, 1);
}

// Descriptor and directory syscalls: the guest's table, never emu's own fds or directory.
class FdHandler : public SyscallHandler {
 protected:
  static constexpr uint64_t kPath = kPage + 256;
  static constexpr uint64_t kBuf = kPage + 1024;

  void SetUp() override {
    SyscallHandler::SetUp();
    dir_ = testing::TempDir() + "/emu_fd_handler_XXXXXX";
    ASSERT_NE(::mkdtemp(dir_.data()), nullptr);
    char real[PATH_MAX];
    ASSERT_NE(::realpath(dir_.c_str(), real), nullptr);
    dir_ = real;
  }
  void TearDown() override {
    ::rmdir(dir_.c_str());
    SyscallHandler::TearDown();
  }
  uint64_t path(const std::string& p) {
    EXPECT_TRUE(proc_->memory().write(0, kPath, p.c_str(), p.size() + 1));
    return kPath;
  }
  static std::shared_ptr<emu::HostFile> dev_null() {
    return std::make_shared<emu::HostFile>(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  }
  std::string guest_cwd() {
    auto c = call();
    const int64_t n = emu::sys::getcwd(c, kBuf, 512);
    if (n <= 0) return "error " + std::to_string(n);
    std::string s(n - 1, '\0');
    EXPECT_TRUE(proc_->memory().read(0, kBuf, s.data(), s.size()));
    return s;
  }

  std::string dir_;
};

TEST_F(FdHandler, CloseOfTheGuestsStdoutLeavesEmusOpen) {
  if (::fcntl(1, F_GETFD) == -1) GTEST_SKIP() << "this test runs without a stdout";
  auto c = call();
  EXPECT_EQ(emu::sys::close(c, 1), 0);
  EXPECT_NE(::fcntl(1, F_GETFD), -1);
  EXPECT_EQ(emu::sys::write(c, 1, kPage, 1), -EBADF);
  EXPECT_EQ(emu::sys::close(c, 1), -EBADF);
}

TEST_F(FdHandler, Dup2AndDup3OntoTheSameFd) {
  auto c = call();
  const int fd = proc_->files().install(dev_null(), false);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(emu::sys::dup3(c, fd, fd, 0, /*dup2_semantics=*/true), fd);
  EXPECT_NE(proc_->files().get(fd), nullptr) << "dup2 onto itself closes nothing";
  EXPECT_EQ(emu::sys::dup3(c, fd, fd, 0, false), -EINVAL);
  EXPECT_EQ(emu::sys::dup3(c, fd, 5, O_NONBLOCK, false), -EINVAL);
  EXPECT_EQ(emu::sys::dup3(c, 50, 50, 0, true), -EBADF);
  EXPECT_EQ(emu::sys::dup3(c, fd, -1, 0, true), -EBADF);
  EXPECT_EQ(emu::sys::dup3(c, fd, 9, O_CLOEXEC, false), 9);
  EXPECT_EQ(emu::sys::fcntl(c, 9, F_GETFD, 0, true), FD_CLOEXEC);
  EXPECT_EQ(emu::sys::fcntl(c, 9, F_DUPFD, 4, true), 4);
  EXPECT_EQ(emu::sys::fcntl(c, 4, F_GETFD, 0, true), 0);
  EXPECT_EQ(emu::sys::fcntl(c, 4, F_DUPFD, 1 << 20, true), -EINVAL);
}

TEST_F(FdHandler, PipeEndsAreGuestFdsWithTheGuestsFlags) {
  auto c = call();
  ASSERT_EQ(emu::sys::pipe2(c, kBuf, O_CLOEXEC), 0);
  int fds[2];
  ASSERT_TRUE(proc_->memory().read(0, kBuf, fds, sizeof fds));
  EXPECT_NE(fds[0], fds[1]);
  EXPECT_EQ(proc_->files().cloexec(fds[0]), 1);
  EXPECT_EQ(proc_->files().cloexec(fds[1]), 1);
  EXPECT_TRUE(::fcntl(proc_->files().get(fds[0])->fd(), F_GETFD) & FD_CLOEXEC);
  ASSERT_TRUE(proc_->memory().write(0, kPage, "ping", 4));
  EXPECT_EQ(emu::sys::write(c, fds[1], kPage, 4), 4);
  EXPECT_EQ(emu::sys::read(c, fds[0], kPage + 8, 4), 4);
  char got[4];
  ASSERT_TRUE(proc_->memory().read(0, kPage + 8, got, 4));
  EXPECT_EQ(std::string(got, 4), "ping");
  const int next_free = proc_->files().install(dev_null(), false);
  ASSERT_EQ(proc_->files().close(next_free), 0);
  EXPECT_EQ(emu::sys::pipe2(c, 0x1, 0), -EFAULT);
  EXPECT_EQ(proc_->files().install(dev_null(), false), next_free) << "no fds left behind by the failed pipe2";
}

TEST_F(FdHandler, ChdirIsTheGuestsAndRelativePathsFollowIt) {
  char emu_cwd[PATH_MAX];
  ASSERT_NE(::getcwd(emu_cwd, sizeof emu_cwd), nullptr);
  auto c = call();
  ASSERT_EQ(emu::sys::chdir(c, path(dir_)), 0);
  EXPECT_EQ(guest_cwd(), dir_);
  char now[PATH_MAX];
  EXPECT_STREQ(::getcwd(now, sizeof now), emu_cwd) << "emu's own directory did not move";
  EXPECT_EQ(emu::sys::getcwd(c, kBuf, dir_.size()), -ERANGE) << "no room for the NUL";

  ASSERT_EQ(emu::sys::path_at_call(c, SYS_mkdirat, AT_FDCWD, path("sub"), 0700, 0), 0);
  ASSERT_EQ(emu::sys::chdir(c, path("sub")), 0);
  EXPECT_EQ(guest_cwd(), dir_ + "/sub");
  const int64_t fd = emu::sys::openat(c, AT_FDCWD, path("f"), O_CREAT | O_WRONLY, 0600);
  ASSERT_GE(fd, 3);
  struct stat st {};
  EXPECT_EQ(::stat((dir_ + "/sub/f").c_str(), &st), 0) << "created in the guest's directory";
  EXPECT_EQ(emu::sys::readlinkat(c, AT_FDCWD, path("/proc/self/fd/" + std::to_string(fd)), kBuf, 512),
            static_cast<int64_t>(dir_.size() + 6));
  EXPECT_EQ(emu::sys::chdir(c, path("f")), -ENOTDIR);
  EXPECT_EQ(emu::sys::fchdir(c, static_cast<int>(fd)), -ENOTDIR);
  EXPECT_EQ(emu::sys::close(c, static_cast<int>(fd)), 0);
  EXPECT_EQ(emu::sys::path_at_call(c, SYS_unlinkat, AT_FDCWD, path("f"), 0, 0), 0);

  const int64_t parent = emu::sys::openat(c, AT_FDCWD, path(".."), O_RDONLY | O_DIRECTORY, 0);
  ASSERT_GE(parent, 0);
  ASSERT_EQ(emu::sys::fchdir(c, static_cast<int>(parent)), 0);
  EXPECT_EQ(guest_cwd(), dir_);
  EXPECT_EQ(emu::sys::path_at_call(c, SYS_unlinkat, static_cast<int>(parent), path("sub"), AT_REMOVEDIR, 0), 0);
  EXPECT_EQ(emu::sys::path_at_call(c, SYS_unlinkat, 99, path("sub"), AT_REMOVEDIR, 0), -EBADF);
  EXPECT_EQ(emu::sys::fchdir(c, 99), -EBADF);
}

// Record locks reach the host fd in the guest's struct flock: an OFD lock taken through one
// open file description is what F_GETLK on another reports, in each layout.
TEST_F(FdHandler, RecordLocksInTheGuestsLayout) {
  const std::string file = dir_ + "/locked";
  const int fd = ::open(file.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ::unlink(file.c_str());
  const int a = proc_->files().install(std::make_shared<emu::HostFile>(fd), false);
  const int reopened = ::open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(reopened, 0);
  const int b = proc_->files().install(std::make_shared<emu::HostFile>(reopened), false);

  // x86_64: the host's struct flock.
  auto c = call();
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_start = 10;
  lock.l_len = 5;
  ASSERT_TRUE(proc_->memory().write_value(0, kBuf, lock));
  ASSERT_EQ(emu::sys::fcntl(c, a, F_OFD_SETLK, kBuf, true), 0);
  struct flock probe {};
  probe.l_type = F_RDLCK;
  ASSERT_TRUE(proc_->memory().write_value(0, kBuf, probe));
  ASSERT_EQ(emu::sys::fcntl(c, b, F_OFD_GETLK, kBuf, true), 0);
  ASSERT_TRUE(proc_->memory().read_value(0, kBuf, probe));
  EXPECT_EQ(probe.l_type, F_WRLCK);
  EXPECT_EQ(probe.l_start, 10);
  EXPECT_EQ(probe.l_len, 5);

  // i386: fcntl64's flock64 (24 bytes, 64-bit offsets at 4) and the 32-bit flock (16 bytes).
  emu::sys::Call c32{*vcpu_, *proc_, proc_->memory(), 0, /*i386=*/true, {}};
  const int16_t rdlck = F_RDLCK;
  uint8_t wide[24] = {};
  std::memcpy(wide, &rdlck, 2);
  ASSERT_TRUE(proc_->memory().write(0, kBuf, wide, sizeof wide));
  ASSERT_EQ(emu::sys::fcntl(c32, b, 12 /* i386 F_GETLK64 */, kBuf, true), 0);
  ASSERT_TRUE(proc_->memory().read(0, kBuf, wide, sizeof wide));
  int16_t type;
  int64_t start, len;
  std::memcpy(&type, wide, 2);
  std::memcpy(&start, wide + 4, 8);
  std::memcpy(&len, wide + 12, 8);
  EXPECT_EQ(type, F_WRLCK);
  EXPECT_EQ(start, 10);
  EXPECT_EQ(len, 5);
  // i386's plain fcntl is compat_sys_fcntl64 on an x86_64 kernel (syscall_32.tbl): *LK64 too.
  EXPECT_EQ(emu::sys::fcntl(c32, b, 12, kBuf, /*fcntl64=*/false), 0) << "as an x86_64 kernel answers i386's fcntl";

  uint8_t narrow[16] = {};
  std::memcpy(narrow, &rdlck, 2);
  ASSERT_TRUE(proc_->memory().write(0, kBuf, narrow, sizeof narrow));
  ASSERT_EQ(emu::sys::fcntl(c32, b, F_GETLK, kBuf, true), 0);
  ASSERT_TRUE(proc_->memory().read(0, kBuf, narrow, sizeof narrow));
  int32_t start32, len32;
  std::memcpy(&type, narrow, 2);
  std::memcpy(&start32, narrow + 4, 4);
  std::memcpy(&len32, narrow + 8, 4);
  EXPECT_EQ(type, F_WRLCK);
  EXPECT_EQ(start32, 10);
  EXPECT_EQ(len32, 5);
}

// /proc and /dev paths that name a guest fd name the host fd behind it, or nothing.
TEST_F(FdHandler, ProcFdPathsAreTheGuestsFds) {
  auto c = call();
  const std::string own_pid = std::to_string(proc_->pid());
  EXPECT_EQ(emu::sys::readlinkat(c, AT_FDCWD, path("/proc/self/fd/77"), kBuf, 512), -ENOENT);
  EXPECT_EQ(emu::sys::fstatat(c, AT_FDCWD, path("/dev/fd/77"), kBuf, 0), -ENOENT);
  ASSERT_EQ(emu::sys::chdir(c, path(dir_)), 0);
  for (const std::string& p : {std::string("/proc/self/cwd"), std::string("/proc/thread-self/cwd"), "/proc/" + own_pid + "/cwd"}) {
    const int64_t n = emu::sys::readlinkat(c, AT_FDCWD, path(p), kBuf, 512);
    ASSERT_EQ(n, static_cast<int64_t>(dir_.size())) << p;
    std::string got(n, '\0');
    ASSERT_TRUE(proc_->memory().read(0, kBuf, got.data(), n));
    EXPECT_EQ(got, dir_) << p;
  }
  ASSERT_EQ(emu::sys::path_at_call(c, SYS_mkdirat, AT_FDCWD, path("/proc/self/cwd/made"), 0700, 0), 0);
  struct stat st {};
  EXPECT_EQ(::stat((dir_ + "/made").c_str(), &st), 0) << "a path below /proc/self/cwd";
  ::rmdir((dir_ + "/made").c_str());
  EXPECT_EQ(emu::sys::readlinkat(c, AT_FDCWD, path("/dev/stdout"), kBuf, 512), 15) << "the symlink itself: /proc/self/fd/1";
}

TEST_F(FdHandler, GetcwdOfARemovedDirectoryIsEnoent) {
  auto c = call();
  const std::string gone = dir_ + "/gone";
  ASSERT_EQ(::mkdir(gone.c_str(), 0700), 0);
  ASSERT_EQ(emu::sys::chdir(c, path(gone)), 0);
  ASSERT_EQ(::rmdir(gone.c_str()), 0);
  EXPECT_EQ(emu::sys::getcwd(c, kBuf, 512), -ENOENT);
}

TEST_F(FdHandler, ForkedTablesHaveTheirOwnDirectory) {
  auto c = call();
  emu::FdTable child = proc_->files().clone();
  ASSERT_EQ(emu::sys::chdir(c, path(dir_)), 0);
  EXPECT_NE(child.cwd(), proc_->files().cwd());
}

// The stack size of threads created without attributes (std::thread's), for a scope.
class DefaultThreadStack {
 public:
  explicit DefaultThreadStack(size_t bytes) {
    pthread_getattr_default_np(&saved_);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, bytes);
    pthread_setattr_default_np(&attr);
    pthread_attr_destroy(&attr);
  }
  ~DefaultThreadStack() {
    pthread_setattr_default_np(&saved_);
    pthread_attr_destroy(&saved_);
  }

 private:
  pthread_attr_t saved_;
};

TEST_F(SyscallHandler, SpawnThreadIsEagainWhenTheHostCannotCreateOne) {
  int tid = 0;
  {
    // 128 TiB: more than a process's whole lower address space, so no host thread starts.
    DefaultThreadStack too_big(size_t{1} << 47);
    EXPECT_EQ(proc_->spawn_thread(emu::VcpuStart{}, 0, &tid, [](int) {}), -EAGAIN);
  }
  EXPECT_FALSE(proc_->multi_vcpu());
  int registered = 0;
  proc_->for_each_other_vcpu(*vcpu_, [&](emu::Vcpu&) { ++registered; });
  EXPECT_EQ(registered, 0) << "the failed thread's vCPU slot is still taken";
}

}  // namespace
