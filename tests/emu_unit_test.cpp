// Pieces of the emulator that can be checked without running a guest.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <ctime>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "emu/atomic_block_detector.h"
#include "emu/guest_process.h"
#include "emu/sys_handlers.h"

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
    emu::EmulatorConfig config;
    config.mem_bytes = uint64_t{16} << 20;
    config.max_vcpus = 4;
    std::string error;
    proc_ = emu::GuestProcess::create(config, GuestArch::X86_64, &error);
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

  std::unique_ptr<emu::GuestProcess> proc_;
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

// A pipe, and a guest pollfd asking for its read end to become readable.
class PollHandler : public SyscallHandler {
 protected:
  static constexpr uint64_t kPollFd = kPage + 128;

  void SetUp() override {
    SyscallHandler::SetUp();
    ASSERT_EQ(::pipe(pipe_), 0);
    const pollfd p{pipe_[0], POLLIN, 0};
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
  EXPECT_EQ(emu::sys::ppoll(c, kPollFd, 1, kPage, true), 0);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::microseconds(500)) << "0.5 ms became 0";
}

TEST_F(PollHandler, FarPpollTimeoutWaitsForTheFd) {
  // 2^61 s is 0 once turned into milliseconds in 64 bits.
  put_timespec(kPage, int64_t{1} << 61, 0);
  Blocking wait([&] {
    auto c = call();
    return emu::sys::ppoll(c, kPollFd, 1, kPage, true);
  });
  EXPECT_FALSE(wait.returned_within(kBlockedFor));
  ASSERT_EQ(::write(pipe_[1], "x", 1), 1);
  EXPECT_EQ(wait.result(), 1);
}

TEST_F(PollHandler, PpollRejectsInvalidTimeout) {
  auto c = call();
  put_timespec(kPage, -1, 0);
  EXPECT_EQ(emu::sys::ppoll(c, kPollFd, 1, kPage, true), -EINVAL);
  put_timespec(kPage, 0, 1000000000);
  EXPECT_EQ(emu::sys::ppoll(c, kPollFd, 1, kPage, true), -EINVAL);
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
