// A guest process's signals as Linux keeps them: one disposition per signal shared by the
// process's threads, a pending set for the process and one per thread, each thread's mask.
//
// Senders (kill, tgkill, a child ending, a pipe with no reader) queue here and then wake the
// thread chosen to take the signal (GuestProcess::send_signal). The receiving vCPU dequeues on
// its own thread, between runs of its engine, and builds the handler's frame (signal_frame.h).
// Blocking syscalls ask `deliverable` to know when to give up with EINTR or restart.
//
// Nothing here touches guest memory or an engine, so it is tested on its own.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "mmu/spin_lock.h"
#include "mmu/thread_annotations.h"

namespace emu {

inline constexpr int kMaxSignal = 64;
// Real-time signals (the kernel's SIGRTMIN; glibc keeps 32 and 33 for itself) queue: each
// one sent is taken once, with its own siginfo. Standard ones merge while pending.
inline constexpr int kSigRtMin = 32;
// How many real-time signals may wait in one process (Linux: RLIMIT_SIGPENDING, in the
// thousands by default); a sigqueue beyond answers EAGAIN.
inline constexpr size_t kMaxQueuedSignals = 4096;
inline constexpr uint64_t kSigDefault = 0;  // SIG_DFL
inline constexpr uint64_t kSigIgnore = 1;   // SIG_IGN
inline constexpr uint64_t signal_bit(int sig) { return uint64_t{1} << (sig - 1); }
// SIGKILL and SIGSTOP can be neither blocked, caught nor ignored.
inline constexpr uint64_t kUnblockable = signal_bit(9) | signal_bit(19);

// sa_flags bits (the same on both ABIs).
inline constexpr uint64_t kSaNoCldStop = 0x1, kSaNoCldWait = 0x2, kSaSigInfo = 0x4, kSaOnStack = 0x08000000,
                          kSaRestart = 0x10000000, kSaNoDefer = 0x40000000, kSaResetHand = 0x80000000,
                          kSaRestorer = 0x04000000;

// What a kernel sigaction holds, ABI-neutral.
struct SigAction {
  uint64_t handler = kSigDefault;
  uint64_t flags = 0;
  uint64_t restorer = 0;
  uint64_t mask = 0;
  bool is_handler() const { return handler != kSigDefault && handler != kSigIgnore; }
};

// The siginfo fields emu fills in (the rest of the guest's 128 bytes are zero).
struct SigInfo {
  int32_t signo = 0;
  int32_t code = 0;    // SI_USER, SI_TKILL, CLD_EXITED, ...
  int32_t pid = 0;     // sender, or the child for SIGCHLD
  int32_t uid = 0;
  int32_t status = 0;  // SIGCHLD: exit code or signal
  // A fault's signal (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP): si_addr instead of pid/uid.
  bool has_addr = false;
  uint64_t addr = 0;
  // sigqueue's and a timer's sigval (si_value, after pid/uid or timer id/overrun).
  bool has_value = false;
  uint64_t value = 0;
  // A POSIX timer's signal (code SI_TIMER): si_timerid and si_overrun instead of pid/uid.
  int32_t timer_id = 0;
  int32_t overrun = 0;
};
// What an interrupted blocking syscall returns inside emu (Linux's values, never seen by the
// guest): the vCPU turns it into EINTR, or runs the call again, once it knows whether a
// handler runs (ERESTARTSYS: again when SA_RESTART; ERESTARTNOHAND: again only without a
// handler; ERESTARTNOINTR: always again).
inline constexpr int64_t kErestartSys = 512, kErestartNoIntr = 513, kErestartNoHand = 514;
inline constexpr bool is_restart_code(int64_t result) { return result <= -kErestartSys && result >= -kErestartNoHand; }

inline constexpr int32_t kSiUser = 0, kSiQueue = -1, kSiTimer = -2, kSiTkill = -6, kSiKernel = 0x80, kCldExited = 1,
                         kCldKilled = 2;
inline constexpr int32_t kSegvMapErr = 1, kSegvAccErr = 2, kBusAdrErr = 2, kIllIllOpn = 2, kFpeIntDiv = 1,
                         kTrapBrkpt = 1;

// What the default action of `sig` does; stop signals do nothing (there is no job control).
enum class DefaultAction : uint8_t { Terminate, Ignore };
DefaultAction default_action(int sig);

// sigaltstack's state for one thread.
struct AltStack {
  uint64_t sp = 0;
  uint64_t size = 0;
  bool disabled = true;  // SS_DISABLE
  bool contains(uint64_t addr) const { return !disabled && addr > sp && addr - sp <= size; }
};

// One thread's part. `mask` and `pending` are written under the process's signal lock and read
// without it by the thread itself and by senders choosing a target (atomics); `info` only under it.
struct ThreadSignals {
  std::atomic<uint64_t> mask{0};
  std::atomic<uint64_t> pending{0};
  // The signals this thread waits for in sigtimedwait (unblocked meanwhile): one sent then is
  // taken by the wait, not acted on by its default.
  std::atomic<uint64_t> awaiting{0};
  std::array<SigInfo, kMaxSignal + 1> info{};
  // Real-time signals beyond the first pending of each number (under the lock too).
  std::array<std::deque<SigInfo>, kMaxSignal + 1> queued{};
  // Owner's thread only: the mask sigsuspend replaced, given back once a handler's frame
  // carries it (or once the call returns without one).
  std::optional<uint64_t> saved_mask;
  AltStack altstack;
};

// What a thread takes next.
struct Dequeued {
  int signo = 0;
  SigInfo info;
  SigAction action;  // as it was when taken (SA_RESETHAND has already reset the disposition)
  bool fatal() const { return action.handler == kSigDefault; }  // ignored ones are never returned
};

// A signalfd's side here: the signals it reads and a host eventfd (its own copy) kept
// readable while one of them is pending, so that poll and epoll see it as Linux would.
struct SignalWatch {
  explicit SignalWatch(int event_fd, uint64_t mask);
  ~SignalWatch();
  SignalWatch(const SignalWatch&) = delete;
  SignalWatch& operator=(const SignalWatch&) = delete;
  const int event_fd;
  std::atomic<uint64_t> mask;
};

class ProcessSignals {
 public:
  ProcessSignals() = default;
  ProcessSignals(const ProcessSignals&) = delete;
  ProcessSignals& operator=(const ProcessSignals&) = delete;

  SigAction action(int sig) const EMU_EXCLUDES(lock_);
  // rt_sigaction's change (the caller checked `sig`); the previous action.
  SigAction set_action(int sig, const SigAction& fresh) EMU_EXCLUDES(lock_);
  // Some signal has a handler: the vCPUs then need their block hook to take signals promptly.
  bool any_handler() const { return any_handler_.load(std::memory_order_acquire); }
  // fork: the child's dispositions are the parent's.
  void copy_actions_from(const ProcessSignals& parent) EMU_EXCLUDES(lock_);
  // execve: handlers are code of the old image, back to the default; ignored stays ignored.
  void reset_handlers() EMU_EXCLUDES(lock_);

  // `sig` is ignored, explicitly or by default: sent while no thread blocks it, it is dropped.
  bool ignored(int sig) const EMU_EXCLUDES(lock_);
  // True when `sig`'s action is the default one and that ends the process.
  bool fatal_by_default(int sig) const EMU_EXCLUDES(lock_);
  // Queues `sig` for `thread`, or for the process when null. A standard signal already
  // pending is not queued twice; a real-time one is, up to kMaxQueuedSignals in the process
  // (false beyond: sigqueue's EAGAIN).
  bool queue(ThreadSignals* thread, int sig, const SigInfo& info) EMU_EXCLUDES(lock_);

  // A thread has ended: the real-time signals still pending for it leave the count.
  void thread_gone(ThreadSignals& thread) EMU_EXCLUDES(lock_);

  // signalfd: `watch` is told of signals in its mask from now on (and at once of those
  // pending for the process); dropped when the last reference to it goes.
  void add_watch(const std::shared_ptr<SignalWatch>& watch) EMU_EXCLUDES(lock_);
  // After a signalfd read or a mask change: its eventfd readable exactly when a signal of its
  // mask is pending for `reader` or the process.
  void rearm_watch(SignalWatch& watch, const ThreadSignals& reader) EMU_EXCLUDES(lock_);

  // Something `thread` would take now: pending for it or the process, and not masked.
  bool deliverable(const ThreadSignals& thread) const {
    return ((thread.pending.load(std::memory_order_acquire) | shared_pending_.load(std::memory_order_acquire)) &
            ~thread.mask.load(std::memory_order_acquire)) != 0;
  }
  // The next signal for `thread` with a handler or a fatal default (the thread's own first,
  // then the lowest number); ignored ones met on the way are dropped.
  std::optional<Dequeued> dequeue(ThreadSignals& thread) EMU_EXCLUDES(lock_);
  // A pending signal among `wanted` (rt_sigtimedwait), whatever the mask; 0 when none.
  int take(ThreadSignals& thread, uint64_t wanted, SigInfo* info) EMU_EXCLUDES(lock_);
  // The thread's mask changes (SIGKILL and SIGSTOP stay unblocked).
  void set_mask(ThreadSignals& thread, uint64_t mask) EMU_EXCLUDES(lock_);
  uint64_t shared_pending() const { return shared_pending_.load(std::memory_order_acquire); }
  uint64_t pending_for(const ThreadSignals& thread) const {
    return thread.pending.load(std::memory_order_acquire) | shared_pending_.load(std::memory_order_acquire);
  }

 private:
  SigAction action_locked(int sig) const EMU_REQUIRES(lock_) { return actions_[sig]; }
  // Takes `sig`'s next siginfo from a pending set (the thread's or the process's).
  SigInfo pop_locked(std::atomic<uint64_t>& pending, std::array<SigInfo, kMaxSignal + 1>& info,
                     std::array<std::deque<SigInfo>, kMaxSignal + 1>& queued, int sig) EMU_REQUIRES(lock_);
  void notify_watches_locked(int sig) EMU_REQUIRES(lock_);
  void refresh_any_handler() EMU_REQUIRES(lock_);

  mutable mmu::Mutex lock_;
  std::array<SigAction, kMaxSignal + 1> actions_ EMU_GUARDED_BY(lock_){};
  std::atomic<uint64_t> shared_pending_{0};  // written under lock_
  std::array<SigInfo, kMaxSignal + 1> shared_info_ EMU_GUARDED_BY(lock_){};
  std::array<std::deque<SigInfo>, kMaxSignal + 1> shared_queued_ EMU_GUARDED_BY(lock_){};
  size_t queued_count_ EMU_GUARDED_BY(lock_) = 0;  // real-time signals waiting (pending ones too), all threads
  std::vector<std::weak_ptr<SignalWatch>> watches_ EMU_GUARDED_BY(lock_);
  std::atomic<bool> any_handler_{false};
};

}  // namespace emu
