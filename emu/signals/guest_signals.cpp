#include "emu/signals/guest_signals.h"

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
  if (fresh.handler == kSigIgnore || (fresh.handler == kSigDefault && default_action(sig) == DefaultAction::Ignore))
    shared_pending_.fetch_and(~signal_bit(sig), std::memory_order_acq_rel);
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

void ProcessSignals::queue(ThreadSignals* thread, int sig, const SigInfo& info) {
  mmu::MutexGuard lk(lock_);
  std::atomic<uint64_t>& pending = thread ? thread->pending : shared_pending_;
  if (pending.load(std::memory_order_relaxed) & signal_bit(sig)) return;  // already pending: merged
  (thread ? thread->info : shared_info_)[sig] = info;
  pending.fetch_or(signal_bit(sig), std::memory_order_acq_rel);
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
    d.info = (from_thread ? thread.info : shared_info_)[sig];
    (from_thread ? thread.pending : shared_pending_).fetch_and(~signal_bit(sig), std::memory_order_acq_rel);
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
    *info = (own ? thread.info : shared_info_)[sig];
    pending.fetch_and(~signal_bit(sig), std::memory_order_acq_rel);
    return sig;
  }
  return 0;
}

void ProcessSignals::set_mask(ThreadSignals& thread, uint64_t mask) {
  mmu::MutexGuard lk(lock_);
  thread.mask.store(mask & ~kUnblockable, std::memory_order_release);
}

}  // namespace emu
