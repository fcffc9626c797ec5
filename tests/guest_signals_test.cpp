// ProcessSignals on its own: which signal a thread takes next, what is dropped, merged or
// kept pending, and what dispositions do across sigaction, SA_RESETHAND, fork and execve.
#include <gtest/gtest.h>

#include <csignal>

#include "emu/signals/guest_signals.h"

namespace emu {
namespace {

SigInfo info_for(int sig, int pid = 7) {
  SigInfo i;
  i.signo = sig;
  i.pid = pid;
  return i;
}

SigAction handler_at(uint64_t address, uint64_t flags = 0, uint64_t mask = 0) {
  SigAction a;
  a.handler = address;
  a.flags = flags;
  a.mask = mask;
  return a;
}

TEST(ProcessSignals, ThreadsOwnSignalsComeFirstThenLowestNumber) {
  ProcessSignals ps;
  ThreadSignals t;
  for (int sig : {SIGUSR1, SIGUSR2, SIGTERM, SIGHUP}) ps.set_action(sig, handler_at(0x1000 + sig));
  ps.queue(nullptr, SIGUSR2, info_for(SIGUSR2));
  ps.queue(nullptr, SIGHUP, info_for(SIGHUP));
  ps.queue(&t, SIGTERM, info_for(SIGTERM, 9));
  EXPECT_TRUE(ps.deliverable(t));
  std::vector<int> order;
  while (auto d = ps.dequeue(t)) {
    order.push_back(d->signo);
    EXPECT_EQ(d->action.handler, uint64_t(0x1000 + d->signo));
    if (d->signo == SIGTERM) {
      EXPECT_EQ(d->info.pid, 9);
    }
  }
  EXPECT_EQ(order, (std::vector<int>{SIGTERM, SIGHUP, SIGUSR2}));
  EXPECT_FALSE(ps.deliverable(t));
}

TEST(ProcessSignals, MaskedSignalsWaitAndStandardOnesMerge) {
  ProcessSignals ps;
  ThreadSignals t;
  ps.set_action(SIGUSR1, handler_at(0x2000));
  ps.set_mask(t, signal_bit(SIGUSR1) | kUnblockable);
  EXPECT_EQ(t.mask.load() & kUnblockable, 0u) << "SIGKILL and SIGSTOP cannot be blocked";
  ps.queue(nullptr, SIGUSR1, info_for(SIGUSR1, 1));
  ps.queue(nullptr, SIGUSR1, info_for(SIGUSR1, 2));
  EXPECT_FALSE(ps.deliverable(t));
  EXPECT_FALSE(ps.dequeue(t).has_value());
  EXPECT_EQ(ps.pending_for(t), signal_bit(SIGUSR1));
  ps.set_mask(t, 0);
  const auto d = ps.dequeue(t);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->info.pid, 1) << "the first one's siginfo is kept";
  EXPECT_FALSE(ps.dequeue(t).has_value()) << "two sends while pending make one delivery";
}

TEST(ProcessSignals, IgnoredSignalsAreDroppedFatalDefaultsAreReturned) {
  ProcessSignals ps;
  ThreadSignals t;
  EXPECT_TRUE(ps.ignored(SIGCHLD));
  EXPECT_TRUE(ps.ignored(SIGTSTP)) << "no job control: stop signals do nothing";
  EXPECT_FALSE(ps.ignored(SIGKILL));
  EXPECT_TRUE(ps.fatal_by_default(SIGTERM));
  ps.set_action(SIGUSR1, handler_at(kSigIgnore));
  EXPECT_TRUE(ps.ignored(SIGUSR1));
  ps.queue(nullptr, SIGCHLD, info_for(SIGCHLD));
  ps.queue(nullptr, SIGUSR1, info_for(SIGUSR1));
  ps.queue(&t, SIGTERM, info_for(SIGTERM));
  const auto d = ps.dequeue(t);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->signo, SIGTERM);
  EXPECT_TRUE(d->fatal());
  EXPECT_FALSE(ps.dequeue(t).has_value()) << "the ignored ones were dropped on the way";
  EXPECT_EQ(ps.pending_for(t), 0u);
}

TEST(ProcessSignals, SettingIgnoreDropsWhatIsPending) {
  ProcessSignals ps;
  ThreadSignals t;
  ps.set_mask(t, signal_bit(SIGUSR2));
  ps.set_action(SIGUSR2, handler_at(0x3000));
  ps.queue(nullptr, SIGUSR2, info_for(SIGUSR2));
  EXPECT_EQ(ps.pending_for(t), signal_bit(SIGUSR2));
  ps.set_action(SIGUSR2, handler_at(kSigIgnore));
  EXPECT_EQ(ps.pending_for(t), 0u);
}

TEST(ProcessSignals, ResetHandRunsTheHandlerOnce) {
  ProcessSignals ps;
  ThreadSignals t;
  ps.set_action(SIGUSR1, handler_at(0x4000, kSaResetHand | kSaSigInfo, signal_bit(SIGUSR2)));
  EXPECT_TRUE(ps.any_handler());
  ps.queue(nullptr, SIGUSR1, info_for(SIGUSR1));
  const auto d = ps.dequeue(t);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->action.handler, 0x4000u);
  EXPECT_EQ(d->action.mask, signal_bit(SIGUSR2));
  EXPECT_EQ(ps.action(SIGUSR1).handler, kSigDefault);
  EXPECT_FALSE(ps.any_handler());
}

TEST(ProcessSignals, ForkCopiesActionsExecResetsHandlersKeepsIgnores) {
  ProcessSignals parent;
  parent.set_action(SIGUSR1, handler_at(0x5000, kSaRestart));
  parent.set_action(SIGPIPE, handler_at(kSigIgnore));
  ProcessSignals child;
  child.copy_actions_from(parent);
  EXPECT_EQ(child.action(SIGUSR1).handler, 0x5000u);
  EXPECT_EQ(child.action(SIGUSR1).flags, kSaRestart);
  EXPECT_TRUE(child.any_handler());
  child.reset_handlers();
  EXPECT_EQ(child.action(SIGUSR1).handler, kSigDefault);
  EXPECT_EQ(child.action(SIGPIPE).handler, kSigIgnore);
  EXPECT_FALSE(child.any_handler());
  EXPECT_EQ(parent.action(SIGUSR1).handler, 0x5000u) << "the parent's stay";
}

TEST(ProcessSignals, TakeFindsWantedSignalsWhateverTheMask) {
  ProcessSignals ps;
  ThreadSignals t;
  ps.set_mask(t, ~uint64_t{0});
  ps.queue(nullptr, SIGUSR2, info_for(SIGUSR2, 42));
  ps.queue(&t, SIGHUP, info_for(SIGHUP));
  SigInfo si;
  EXPECT_EQ(ps.take(t, signal_bit(SIGUSR2), &si), SIGUSR2);
  EXPECT_EQ(si.pid, 42);
  EXPECT_EQ(ps.take(t, signal_bit(SIGUSR2), &si), 0);
  EXPECT_EQ(ps.pending_for(t), signal_bit(SIGHUP));
}

TEST(ProcessSignals, RestartCodesAreLinuxs) {
  EXPECT_TRUE(is_restart_code(-kErestartSys));
  EXPECT_TRUE(is_restart_code(-kErestartNoHand));
  EXPECT_TRUE(is_restart_code(-kErestartNoIntr));
  EXPECT_FALSE(is_restart_code(-EINTR));
  EXPECT_FALSE(is_restart_code(512));
}

}  // namespace
}  // namespace emu
