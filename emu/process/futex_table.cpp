#include "emu/process/futex_table.h"

#include <cerrno>

namespace emu {

int FutexTable::wait(uint64_t address, const uint32_t* word, uint32_t expected, uint32_t bitset, Deadline deadline,
                     const std::function<void()>& compared, const std::function<bool()>& interrupted,
                     int interrupted_result) {
  Bucket& b = bucket(address);
  std::unique_lock lk(b.lock);
  if (shut_down_.load()) return -EINTR;
  const bool same = __atomic_load_n(word, __ATOMIC_SEQ_CST) == expected;
  if (compared) compared();
  if (!same) return -EAGAIN;
  Waiter w;
  w.address = address;
  w.bitset = bitset;
  b.waiters.push_back(&w);
  int result = 0;
  while (!w.woken) {
    if (shut_down_.load()) {
      result = -EINTR;
      break;
    }
    if (interrupted && interrupted()) {
      result = interrupted_result;
      break;
    }
    if (deadline) {
      if (w.cv.wait_until(lk, *deadline) == std::cv_status::timeout && !w.woken) {
        result = -ETIMEDOUT;
        break;
      }
    } else {
      w.cv.wait(lk);
    }
  }
  if (!w.woken) b.waiters.remove(&w);
  return w.woken ? 0 : result;
}

int FutexTable::wake(uint64_t address, int count, uint32_t bitset) {
  Bucket& b = bucket(address);
  std::lock_guard lk(b.lock);
  int woken = 0;
  for (auto it = b.waiters.begin(); it != b.waiters.end() && woken < count;) {
    Waiter* w = *it;
    if (w->address == address && (w->bitset & bitset)) {
      w->woken = true;
      w->cv.notify_one();
      it = b.waiters.erase(it);
      ++woken;
    } else {
      ++it;
    }
  }
  return woken;
}

int FutexTable::requeue(uint64_t from, uint64_t to, int wake_count, int requeue_count, const uint32_t* word,
                        std::optional<uint32_t> expected) {
  // Both buckets locked in address order.
  Bucket& a = bucket(from);
  Bucket& c = bucket(to);
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
  int done = 0, moved = 0;
  for (auto it = a.waiters.begin(); it != a.waiters.end();) {
    Waiter* w = *it;
    if (w->address != from) {
      ++it;
      continue;
    }
    if (done < wake_count) {
      w->woken = true;
      w->cv.notify_one();
      it = a.waiters.erase(it);
      ++done;
    } else if (moved < requeue_count) {
      // The waiter sleeps on its own condition variable with a's lock; moving it to another
      // bucket would change which mutex it waits with, so it is woken instead (a spurious
      // wake-up, which futex users must tolerate).
      w->woken = true;
      w->cv.notify_one();
      it = a.waiters.erase(it);
      ++moved;
    } else {
      break;
    }
  }
  return done + moved;
}

void FutexTable::shut_down() {
  shut_down_.store(true);
  for (Bucket& b : buckets_) {
    std::lock_guard lk(b.lock);
    for (Waiter* w : b.waiters) w->cv.notify_one();
  }
}

void FutexTable::interrupt() {
  for (Bucket& b : buckets_) {
    std::lock_guard lk(b.lock);
    for (Waiter* w : b.waiters) w->cv.notify_all();
  }
}

}  // namespace emu
