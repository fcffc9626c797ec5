#include "emu/process/futex_table.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <ctime>
#include <vector>

namespace emu {

namespace {

// Sleeps while *state == seen, until the absolute steady-clock `deadline` if there is one.
// Returns false on timeout.
bool sleep_on(std::atomic<uint32_t>* state, uint32_t seen, const FutexTable::Deadline& deadline) {
  timespec abs{};
  if (deadline) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline->time_since_epoch()).count();
    abs.tv_sec = static_cast<time_t>(ns / 1000000000);
    abs.tv_nsec = static_cast<long>(ns % 1000000000);
  }
  // steady_clock is CLOCK_MONOTONIC, FUTEX_WAIT_BITSET's clock when not told otherwise.
  const long r = ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(state), FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, seen,
                           deadline ? &abs : nullptr, nullptr, FUTEX_BITSET_MATCH_ANY);
  return !(r != 0 && errno == ETIMEDOUT);
}

}  // namespace

void FutexTable::wake_host(std::atomic<uint32_t>* state) {
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(state), FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT_MAX, nullptr, nullptr, 0);
}

void FutexTable::kick(Waiter* w) {
  w->state.fetch_add(kKick, std::memory_order_release);
  wake_host(&w->state);  // under the bucket lock: the waiter cannot leave while it is listed
}

int FutexTable::wait(uint64_t address, const uint32_t* word, uint32_t expected, uint32_t bitset, Deadline deadline,
                     const std::function<void()>& compared, const std::function<bool()>& interrupted,
                     int interrupted_result) {
  Bucket& b = bucket(address);
  if (spin_) {
    // Adaptive waiting, as glibc's adaptive mutexes and the kernel's mutexes spin on a
    // running owner: a guest lock is held across emulated instructions, hundreds of ns,
    // while a host sleep and wake-up cost microseconds, and once one waiter has slept glibc
    // marks the lock contended and every unlock after that wakes (a convoy that emu's
    // slower critical sections kept going; a native run hardly ever sleeps). So the waiter
    // first watches the word for a moment: a change means the holder let go, and the
    // answer is EAGAIN, as if it had come just before the call (futex_wait compares once,
    // at a moment of its choosing). Bounded: a holder that was descheduled is slept for.
    const auto until = std::chrono::steady_clock::now() + kSpin;
    for (unsigned i = 1;; ++i) {
      if (__atomic_load_n(word, __ATOMIC_ACQUIRE) != expected) {
        if (compared) compared();
        return -EAGAIN;
      }
      __builtin_ia32_pause();
      if (i % 64 == 0 && std::chrono::steady_clock::now() >= until) break;
    }
  }
  Waiter w;
  {
    std::lock_guard lk(b.lock);
    if (shut_down_.load()) return -EINTR;
    const bool same = __atomic_load_n(word, __ATOMIC_SEQ_CST) == expected;
    if (compared) compared();
    if (!same) return -EAGAIN;
    w.address = address;
    w.bitset = bitset;
    b.waiters.push_back(&w);
  }
  int result = 0;
  for (;;) {
    // Read before looking at the conditions: a kick after this changes the word, and the
    // sleep below then returns at once.
    const uint32_t seen = w.state.load(std::memory_order_acquire);
    if (seen & kWoken) return 0;
    if (shut_down_.load()) {
      result = -EINTR;
      break;
    }
    if (interrupted && interrupted()) {
      result = interrupted_result;
      break;
    }
    if (!sleep_on(&w.state, seen, deadline)) {
      result = -ETIMEDOUT;
      break;
    }
  }
  std::lock_guard lk(b.lock);
  // A wake that came meanwhile is taken (it was counted as a waiter woken).
  if (w.state.load(std::memory_order_acquire) & kWoken) return 0;
  b.waiters.remove(&w);
  return result;
}

int FutexTable::wake(uint64_t address, int count, uint32_t bitset) {
  Bucket& b = bucket(address);
  std::vector<std::atomic<uint32_t>*> to_wake;
  {
    std::lock_guard lk(b.lock);
    for (auto it = b.waiters.begin(); it != b.waiters.end() && static_cast<int>(to_wake.size()) < count;) {
      Waiter* w = *it;
      if (w->address == address && (w->bitset & bitset)) {
        mark_woken(w);
        to_wake.push_back(&w->state);
        it = b.waiters.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto* state : to_wake) wake_host(state);
  return static_cast<int>(to_wake.size());
}

int FutexTable::requeue(uint64_t from, uint64_t to, int wake_count, int requeue_count, const uint32_t* word,
                        std::optional<uint32_t> expected) {
  // Both buckets locked in address order.
  Bucket& a = bucket(from);
  Bucket& c = bucket(to);
  std::vector<std::atomic<uint32_t>*> to_wake;
  int done = 0, moved = 0;
  {
    std::unique_lock la(a.lock, std::defer_lock), lc(c.lock, std::defer_lock);
    if (&a == &c) {
      la.lock();
    } else if (&a < &c) {
      la.lock();
      lc.lock();
    } else {
      lc.lock();
      la.lock();
    }
    if (expected && __atomic_load_n(word, __ATOMIC_SEQ_CST) != *expected) return -EAGAIN;
    for (auto it = a.waiters.begin(); it != a.waiters.end();) {
      Waiter* w = *it;
      if (w->address != from) {
        ++it;
        continue;
      }
      if (done < wake_count) {
        ++done;
      } else if (moved < requeue_count) {
        // A waiter removes itself from its own bucket when it times out; moving it to
        // another bucket would make it look in the wrong one, so it is woken instead (a
        // spurious wake-up, which futex users must tolerate).
        ++moved;
      } else {
        break;
      }
      mark_woken(w);
      to_wake.push_back(&w->state);
      it = a.waiters.erase(it);
    }
  }
  for (auto* state : to_wake) wake_host(state);
  return done + moved;
}

void FutexTable::shut_down() {
  shut_down_.store(true);
  for (Bucket& b : buckets_) {
    std::lock_guard lk(b.lock);
    for (Waiter* w : b.waiters) kick(w);
  }
}

void FutexTable::interrupt() {
  for (Bucket& b : buckets_) {
    std::lock_guard lk(b.lock);
    for (Waiter* w : b.waiters) kick(w);
  }
}

}  // namespace emu
