// ProcessSignals under many threads: senders queueing process- and thread-directed signals
// while receiver threads change their masks and dequeue. A sender queues its signal only once
// it is no longer pending (so nothing merges), which makes the count exact: every signal
// queued is taken exactly once, none twice, none lost, and nothing is left pending.
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <memory>
#include <atomic>
#include <thread>
#include <vector>

#include "emu/signals/guest_signals.h"

namespace emu {
namespace {

TEST(ProcessSignalsRace, EverySignalQueuedIsTakenExactlyOnce) {
  constexpr int kReceivers = 4, kRounds = 5000;
  // Process-directed: SIGHUP..; thread-directed: one signal per receiver.
  const std::array<int, 4> shared_sigs = {1, 2, 10, 12};
  const int first_thread_sig = 34;  // real-time numbers, one per receiver
  ProcessSignals ps;
  for (int s = 1; s <= kMaxSignal; ++s)
    if (s != 9 && s != 19) ps.set_action(s, SigAction{0x1000, 0, 0, 0});
  std::array<ThreadSignals, kReceivers> threads;
  std::array<std::atomic<long>, kMaxSignal + 1> sent{}, taken{};
  std::atomic<int> senders_left{static_cast<int>(shared_sigs.size()) + kReceivers};

  std::vector<std::thread> workers;
  for (int sig : shared_sigs)
    workers.emplace_back([&, sig] {
      for (int i = 0; i < kRounds; ++i) {
        // Only this thread sends `sig`: once not pending anywhere, a queue cannot merge.
        while (ps.pending_for(threads[0]) & signal_bit(sig)) std::this_thread::yield();
        ps.queue(nullptr, sig, SigInfo{sig, 0, i, 0, 0});
        sent[sig].fetch_add(1);
      }
      senders_left.fetch_sub(1);
    });
  for (int r = 0; r < kReceivers; ++r)
    workers.emplace_back([&, r] {
      const int sig = first_thread_sig + r;
      for (int i = 0; i < kRounds; ++i) {
        while (threads[r].pending.load() & signal_bit(sig)) std::this_thread::yield();
        ps.queue(&threads[r], sig, SigInfo{sig, 0, i, 0, 0});
        sent[sig].fetch_add(1);
      }
      senders_left.fetch_sub(1);
    });
  for (int r = 0; r < kReceivers; ++r)
    workers.emplace_back([&, r] {
      ThreadSignals& me = threads[r];
      unsigned step = 0;
      auto drain = [&] {
        while (auto d = ps.dequeue(me)) {
          EXPECT_EQ(d->info.signo, d->signo);
          EXPECT_FALSE(me.mask.load() & signal_bit(d->signo)) << "a masked signal was taken";
          taken[d->signo].fetch_add(1);
        }
      };
      while (senders_left.load() > 0) {
        // Receivers block and unblock the shared signals in turn, as handlers' sa_mask would.
        ps.set_mask(me, (++step % 3 == 0) ? signal_bit(shared_sigs[r % shared_sigs.size()]) : 0);
        drain();
      }
      ps.set_mask(me, 0);
      drain();
    });
  for (auto& w : workers) w.join();
  for (auto& t : threads)
    while (auto d = ps.dequeue(t)) taken[d->signo].fetch_add(1);

  for (int s = 1; s <= kMaxSignal; ++s) EXPECT_EQ(taken[s].load(), sent[s].load()) << "signal " << s;
  for (int sig : shared_sigs) EXPECT_EQ(sent[sig].load(), kRounds);
  for (auto& t : threads) EXPECT_EQ(ps.pending_for(t), 0u);
}

}  // namespace
}  // namespace emu

namespace emu {
namespace {

// Real-time signals queue: senders on several threads queue values without waiting for the
// previous one to be taken, a taker drains them, and a signalfd watch must be readable
// whenever one is pending. Every value sent is taken exactly once, in order per sender, and
// the queue's count comes back to zero (no more EAGAIN once drained).
TEST(ProcessSignalsRace, RealTimeSignalsQueueEveryValueOnce) {
  constexpr int kSenders = 4, kPerSender = 3000, kSig = 40;
  ProcessSignals ps;
  ps.set_action(kSig, SigAction{0x1000, 0, 0, 0});
  ThreadSignals taker;
  taker.mask.store(signal_bit(kSig));  // blocked: only take() gets it, as sigwaitinfo does
  const int efd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ASSERT_GE(efd, 0);
  auto watch = std::make_shared<SignalWatch>(efd, signal_bit(kSig));
  ps.add_watch(watch);
  std::atomic<int> full{0};
  std::vector<std::thread> senders;
  for (int s = 0; s < kSenders; ++s)
    senders.emplace_back([&, s] {
      for (int i = 0; i < kPerSender;) {
        SigInfo info{kSig, -1, s, 0, 0};
        info.has_value = true;
        info.value = static_cast<uint64_t>(s) << 32 | static_cast<uint32_t>(i);
        if (ps.queue(nullptr, kSig, info)) {
          ++i;
        } else {
          full.fetch_add(1);  // the queue is full: as sigqueue's EAGAIN, try again
          std::this_thread::yield();
        }
      }
    });
  std::vector<int> next(kSenders, 0);
  int taken = 0;
  while (taken < kSenders * kPerSender) {
    SigInfo info;
    const int sig = ps.take(taker, signal_bit(kSig), &info);
    if (!sig) {
      std::this_thread::yield();
      continue;
    }
    ASSERT_EQ(sig, kSig);
    const int s = static_cast<int>(info.value >> 32), i = static_cast<int>(info.value & 0xffffffff);
    ASSERT_TRUE(s >= 0 && s < kSenders);
    EXPECT_EQ(i, next[s]) << "sender " << s << "'s values out of order or lost";
    next[s] = i + 1;
    ++taken;
    if (taken % 97 == 0) ps.rearm_watch(*watch, taker);
  }
  for (auto& t : senders) t.join();
  EXPECT_EQ(ps.pending_for(taker) & signal_bit(kSig), 0u) << "something is still pending";
  ps.rearm_watch(*watch, taker);
  uint64_t count = 0;
  EXPECT_LT(::read(efd, &count, sizeof count), 0) << "the watch is readable with nothing pending";
  // Drained: the queue takes kMaxQueuedSignals again.
  for (size_t i = 0; i < kMaxQueuedSignals; ++i) ASSERT_TRUE(ps.queue(nullptr, kSig, SigInfo{kSig, -1, 0, 0, 0}));
  EXPECT_FALSE(ps.queue(nullptr, kSig, SigInfo{kSig, -1, 0, 0, 0}));
  ps.rearm_watch(*watch, taker);
  EXPECT_EQ(::read(efd, &count, sizeof count), 8) << "pending signals, but the watch is not readable";
  std::printf("real-time queue: %d values taken, %d sends found the queue full\n", taken, full.load());
}

}  // namespace
}  // namespace emu
