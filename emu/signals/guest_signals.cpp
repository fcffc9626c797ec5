#include "emu/signals/guest_signals.h"

#include <unistd.h>

#include <csignal>

namespace emu {

DefaultAction default_action(int sig) {
  switch (sig) {
    case SIGCHLD: case SIGURG: case SIGWINCH: case SIGCONT:
    // Stopping needs job control, which emu does not have: the stop signals do nothing.
    case SIGSTOP: case SIGTSTP: case SIGTTIN: case SIGTTOU:
      return DefaultAction::Ignore;
    default:
      return DefaultAction::Terminate;
  }
}

SigAction ProcessSignals::action(int sig) const {
  mmu::MutexGuard lk(lock_);
  return action_locked(sig);
}

SigAction ProcessSignals::set_action(int sig, const SigAction& fresh) {
  mmu::MutexGuard lk(lock_);
  const SigAction old = actions_[sig];
  actions_[sig] = fresh;
  // Linux: setting SIG_IGN (or a default that ignores) drops what is pending of it.
  if (fresh.handler == kSigIgnore || (fresh.handler == kSigDefault && default_action(sig) == DefaultAction::Ignore)) {
    if ((shared_pending_.fetch_and(~signal_bit(sig), std::memory_order_acq_rel) & signal_bit(sig)) && sig >= kSigRtMin)
      queued_count_ -= 1 + shared_queued_[sig].size();
    shared_queued_[sig].clear();
  }
  refresh_any_handler();
  return old;
}

void ProcessSignals::refresh_any_handler() {
  bool any = false;
  for (int s = 1; s <= kMaxSignal; ++s) any |= actions_[s].is_handler();
  any_handler_.store(any, std::memory_order_release);
}

void ProcessSignals::copy_actions_from(const ProcessSignals& parent) {
  std::array<SigAction, kMaxSignal + 1> copy;
  {
    mmu::MutexGuard lk(parent.lock_);
    copy = parent.actions_;
  }
  mmu::MutexGuard lk(lock_);
  actions_ = copy;
  refresh_any_handler();
}

void ProcessSignals::reset_handlers() {
  mmu::MutexGuard lk(lock_);
  for (auto& a : actions_) {
    const bool ignored = a.handler == kSigIgnore;
    a = SigAction{};
    if (ignored) a.handler = kSigIgnore;
  }
  refresh_any_handler();
}

bool ProcessSignals::ignored(int sig) const {
  if (sig == SIGKILL) return false;
  const SigAction a = action(sig);
  return a.handler == kSigIgnore || (a.handler == kSigDefault && default_action(sig) == DefaultAction::Ignore);
}

bool ProcessSignals::fatal_by_default(int sig) const {
  return action(sig).handler == kSigDefault && default_action(sig) == DefaultAction::Terminate;
}

bool ProcessSignals::queue(ThreadSignals* thread, int sig, const SigInfo& info) {
  mmu::MutexGuard lk(lock_);
  std::atomic<uint64_t>& pending = thread ? thread->pending : shared_pending_;
  const bool realtime = sig >= kSigRtMin;
  if (realtime && queued_count_ >= kMaxQueuedSignals) return false;
  if (pending.load(std::memory_order_relaxed) & signal_bit(sig)) {
    if (!realtime) return true;  // a standard signal already pending: merged
    (thread ? thread->queued : shared_queued_)[sig].push_back(info);
    ++queued_count_;
    notify_watches_locked(sig);
    return true;
  }
  queued_count_ += realtime;
  (thread ? thread->info : shared_info_)[sig] = info;
  pending.fetch_or(signal_bit(sig), std::memory_order_acq_rel);
  notify_watches_locked(sig);
  return true;
}

SigInfo ProcessSignals::pop_locked(std::atomic<uint64_t>& pending, std::array<SigInfo, kMaxSignal + 1>& info,
                                   std::array<std::deque<SigInfo>, kMaxSignal + 1>& queued, int sig) {
  const SigInfo taken = info[sig];
  if (sig >= kSigRtMin) --queued_count_;
  if (queued[sig].empty()) {
    pending.fetch_and(~signal_bit(sig), std::memory_order_acq_rel);
  } else {
    info[sig] = queued[sig].front();  // the next one sent becomes the pending one
    queued[sig].pop_front();
  }
  return taken;
}

void ProcessSignals::thread_gone(ThreadSignals& thread) {
  mmu::MutexGuard lk(lock_);
  const uint64_t pending = thread.pending.exchange(0, std::memory_order_acq_rel);
  for (int sig = kSigRtMin; sig <= kMaxSignal; ++sig) {
    if (!(pending & signal_bit(sig))) continue;
    queued_count_ -= 1 + thread.queued[sig].size();
    thread.queued[sig].clear();
  }
}

SignalWatch::SignalWatch(int fd, uint64_t m) : event_fd(fd), mask(m) {}
SignalWatch::~SignalWatch() { ::close(event_fd); }

void ProcessSignals::notify_watches_locked(int sig) {
  for (auto it = watches_.begin(); it != watches_.end();) {
    auto w = it->lock();
    if (!w) {
      it = watches_.erase(it);
      continue;
    }
    if (w->mask.load(std::memory_order_acquire) & signal_bit(sig)) {
      const uint64_t one = 1;
      (void)!::write(w->event_fd, &one, sizeof one);  // non-blocking; a full counter is still readable
    }
    ++it;
  }
}

void ProcessSignals::add_watch(const std::shared_ptr<SignalWatch>& watch) {
  mmu::MutexGuard lk(lock_);
  watches_.push_back(watch);
}

void ProcessSignals::rearm_watch(SignalWatch& watch, const ThreadSignals& reader) {
  mmu::MutexGuard lk(lock_);
  uint64_t count = 0;
  while (::read(watch.event_fd, &count, sizeof count) > 0) {
  }
  const uint64_t pending = reader.pending.load(std::memory_order_relaxed) | shared_pending_.load(std::memory_order_relaxed);
  if (pending & watch.mask.load(std::memory_order_acquire)) {
    const uint64_t one = 1;
    (void)!::write(watch.event_fd, &one, sizeof one);
  }
}

std::optional<Dequeued> ProcessSignals::dequeue(ThreadSignals& thread) {
  mmu::MutexGuard lk(lock_);
  for (;;) {
    const uint64_t mask = thread.mask.load(std::memory_order_relaxed);
    const uint64_t own = thread.pending.load(std::memory_order_relaxed) & ~mask;
    const uint64_t shared = shared_pending_.load(std::memory_order_relaxed) & ~mask;
    if (!own && !shared) return std::nullopt;
    // The thread's own first (a fault, tgkill), then the process's; lowest number first.
    const bool from_thread = own != 0;
    const int sig = __builtin_ctzll(from_thread ? own : shared) + 1;
    Dequeued d;
    d.signo = sig;
    d.info = from_thread ? pop_locked(thread.pending, thread.info, thread.queued, sig)
                         : pop_locked(shared_pending_, shared_info_, shared_queued_, sig);
    d.action = action_locked(sig);
    if (sig == SIGKILL) d.action = SigAction{};
    if (d.action.handler == kSigIgnore) continue;
    if (d.action.handler == kSigDefault && default_action(sig) == DefaultAction::Ignore) continue;
    if (d.action.is_handler() && (d.action.flags & kSaResetHand)) {
      actions_[sig] = SigAction{};
      refresh_any_handler();
    }
    return d;
  }
}

int ProcessSignals::take(ThreadSignals& thread, uint64_t wanted, SigInfo* info) {
  mmu::MutexGuard lk(lock_);
  for (bool own : {true, false}) {
    std::atomic<uint64_t>& pending = own ? thread.pending : shared_pending_;
    const uint64_t hit = pending.load(std::memory_order_relaxed) & wanted;
    if (!hit) continue;
    const int sig = __builtin_ctzll(hit) + 1;
    *info = own ? pop_locked(thread.pending, thread.info, thread.queued, sig)
                : pop_locked(shared_pending_, shared_info_, shared_queued_, sig);
    return sig;
  }
  return 0;
}

void ProcessSignals::set_mask(ThreadSignals& thread, uint64_t mask) {
  mmu::MutexGuard lk(lock_);
  thread.mask.store(mask & ~kUnblockable, std::memory_order_release);
}

}  // namespace emu
