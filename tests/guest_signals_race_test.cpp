// ProcessSignals under many threads: senders queueing process- and thread-directed signals
// while receiver threads change their masks and dequeue. A sender queues its signal only once
// it is no longer pending (so nothing merges), which makes the count exact: every signal
// queued is taken exactly once, none twice, none lost, and nothing is left pending.
#include <gtest/gtest.h>

#include <array>
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
