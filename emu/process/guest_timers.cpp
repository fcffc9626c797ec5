#include "emu/process/guest_timers.h"

#include <csignal>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <utility>

#include "emu/cpu/vcpu.h"
#include "emu/process/guest_process.h"

namespace emu {

TimerService::~TimerService() {
  {
    std::lock_guard lk(lock_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void TimerService::set(const std::shared_ptr<GuestTimer>& t, std::optional<Clock::time_point> expiry,
                       std::chrono::nanoseconds interval, std::chrono::nanoseconds* old_left,
                       std::chrono::nanoseconds* old_interval) {
  {
    std::lock_guard lk(lock_);
    const auto now = Clock::now();
    if (old_left) *old_left = t->expiry ? std::max(*t->expiry - now, Clock::duration::zero()) : Clock::duration::zero();
    if (old_interval) *old_interval = t->interval;
    t->expiry = expiry;
    t->interval = expiry ? interval : std::chrono::nanoseconds{0};
    t->overrun = 0;
    if (expiry) watch_locked(armed_, t);
  }
  changed_.notify_all();
}

void TimerService::watch_locked(std::vector<std::weak_ptr<GuestTimer>>& list, const std::shared_ptr<GuestTimer>& t) {
  if (std::none_of(list.begin(), list.end(), [&](const auto& w) { return w.lock() == t; })) list.push_back(t);
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
}

void TimerService::get(const GuestTimer& t, std::chrono::nanoseconds* left, std::chrono::nanoseconds* interval) {
  std::lock_guard lk(lock_);
  const auto now = Clock::now();
  // An armed timer about to fire shows at least 1 ns, as Linux never reports an armed one as 0.
  *left = t.expiry ? std::max<std::chrono::nanoseconds>(*t.expiry - now, std::chrono::nanoseconds{1})
                   : std::chrono::nanoseconds{0};
  *interval = t.interval;
}

void TimerService::set_cpu(const std::shared_ptr<GuestTimer>& t, std::optional<int64_t> expiry,
                           std::chrono::nanoseconds interval, int64_t now, std::chrono::nanoseconds* old_left,
                           std::chrono::nanoseconds* old_interval) {
  {
    std::lock_guard lk(lock_);
    if (old_left)
      *old_left = std::chrono::nanoseconds(t->cpu_expiry ? std::max<int64_t>(*t->cpu_expiry - now, 1) : 0);
    if (old_interval) *old_interval = t->interval;
    t->cpu_expiry = expiry;
    t->interval = expiry ? interval : std::chrono::nanoseconds{0};
    t->overrun = 0;
    if (expiry) watch_locked(cpu_armed_, t);
  }
  changed_.notify_all();
}

void TimerService::get_cpu(const GuestTimer& t, int64_t now, std::chrono::nanoseconds* left,
                           std::chrono::nanoseconds* interval) {
  std::lock_guard lk(lock_);
  *left = std::chrono::nanoseconds(t.cpu_expiry ? std::max<int64_t>(*t.cpu_expiry - now, 1) : 0);
  *interval = t.interval;
}

int TimerService::overrun(const GuestTimer& t) {
  std::lock_guard lk(lock_);
  return t.overrun;
}

void TimerService::run() {
  std::unique_lock lk(lock_);
  while (!stopping_) {
    const auto now = Clock::now();
    std::optional<Clock::time_point> next;
    std::vector<std::pair<std::shared_ptr<GuestTimer>, int>> due;
    for (auto it = armed_.begin(); it != armed_.end();) {
      auto t = it->lock();
      if (!t || !t->expiry) {  // deleted, or disarmed since
        it = armed_.erase(it);
        continue;
      }
      if (*t->expiry <= now) {
        int missed = 0;
        if (t->interval.count() > 0) {
          // Expiries the thread slept through count as overruns, as Linux's hrtimer_forward.
          const auto late = now - *t->expiry;
          const auto n = late / t->interval;
          missed = static_cast<int>(std::min<int64_t>(n, INT32_MAX));
          *t->expiry += t->interval * (n + 1);
        } else {
          t->expiry.reset();
        }
        t->overrun = missed;
        due.emplace_back(t, missed);
      }
      if (t->expiry && (!next || *t->expiry < *next)) next = t->expiry;
      ++it;
    }
    // CPU-time timers: their processes' CPU time is read outside the lock (it takes the
    // process's thread list), then the due ones are re-armed under it.
    std::vector<std::shared_ptr<GuestTimer>> cpu;
    for (auto it = cpu_armed_.begin(); it != cpu_armed_.end();) {
      auto t = it->lock();
      if (!t || !t->cpu_expiry) {
        it = cpu_armed_.erase(it);
        continue;
      }
      cpu.push_back(std::move(t));
      ++it;
    }
    if (!cpu.empty()) {
      lk.unlock();
      std::vector<int64_t> used(cpu.size(), -1);
      for (size_t i = 0; i < cpu.size(); ++i)
        if (auto owner = cpu[i]->owner.lock()) used[i] = owner->cpu_time_ns(cpu[i]->cpu == GuestTimer::Cpu::User);
      lk.lock();
      for (size_t i = 0; i < cpu.size(); ++i) {
        GuestTimer& t = *cpu[i];
        if (used[i] < 0 || !t.cpu_expiry || used[i] < *t.cpu_expiry) continue;
        int missed = 0;
        if (t.interval.count() > 0) {
          const int64_t n = (used[i] - *t.cpu_expiry) / t.interval.count();
          missed = static_cast<int>(std::min<int64_t>(n, INT32_MAX));
          *t.cpu_expiry += t.interval.count() * (n + 1);
        } else {
          t.cpu_expiry.reset();
        }
        t.overrun = missed;
        due.emplace_back(cpu[i], missed);
      }
      const auto poll = Clock::now() + kCpuPoll;
      if (!next || poll < *next) next = poll;
    }
    if (!due.empty()) {
      lk.unlock();
      for (auto& [t, missed] : due) on_fire_(*t, missed);
      lk.lock();
      continue;
    }
    if (next) {
      changed_.wait_until(lk, *next);
    } else {
      changed_.wait(lk);
    }
  }
}

void TimerService::fire(const GuestTimer& t, int overrun) {
  auto proc = t.owner.lock();
  if (!proc || proc->ended() || t.notify == SIGEV_NONE) return;
  SigInfo info;
  info.signo = t.signo;
  if (t.id < 0) {
    info.code = kSiKernel;  // an itimer's signal comes from the kernel
  } else {
    info.code = kSiTimer;
    info.timer_id = t.id;
    info.overrun = overrun;
    info.has_value = true;
    info.value = t.value;
  }
  if (t.notify == SIGEV_THREAD_ID) {
    if (auto thread = proc->find_thread(t.tid)) proc->send_signal(t.signo, info, thread.get());
    return;
  }
  proc->send_signal(t.signo, info);
}

std::shared_ptr<GuestTimer> ProcessTimers::itimer(const std::shared_ptr<GuestProcess>& owner, int which) {
  std::lock_guard lk(lock_);
  auto& t = itimers_[which];
  if (!t) {
    t = std::make_shared<GuestTimer>();
    t->owner = owner;
    t->id = -1;
    t->clock = CLOCK_REALTIME;
    t->notify = SIGEV_SIGNAL;
    // ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF.
    t->signo = which == 0 ? SIGALRM : which == 1 ? SIGVTALRM : SIGPROF;
    t->cpu = which == 0 ? GuestTimer::Cpu::None : which == 1 ? GuestTimer::Cpu::User : GuestTimer::Cpu::UserSystem;
  }
  return t;
}

int ProcessTimers::add(std::shared_ptr<GuestTimer> t) {
  std::lock_guard lk(lock_);
  for (size_t i = 0; i < posix_.size(); ++i) {
    if (!posix_[i]) {
      t->id = static_cast<int>(i);
      posix_[i] = std::move(t);
      return static_cast<int>(i);
    }
  }
  if (posix_.size() >= kMaxTimers) return -EAGAIN;
  t->id = static_cast<int>(posix_.size());
  posix_.push_back(std::move(t));
  return static_cast<int>(posix_.size() - 1);
}

std::shared_ptr<GuestTimer> ProcessTimers::find(int id) {
  std::lock_guard lk(lock_);
  return (id >= 0 && static_cast<size_t>(id) < posix_.size()) ? posix_[id] : nullptr;
}

std::shared_ptr<GuestTimer> ProcessTimers::remove(int id) {
  std::lock_guard lk(lock_);
  if (id < 0 || static_cast<size_t>(id) >= posix_.size()) return nullptr;
  return std::exchange(posix_[id], nullptr);
}

std::vector<std::shared_ptr<GuestTimer>> ProcessTimers::take_posix() {
  std::lock_guard lk(lock_);
  return std::exchange(posix_, {});
}

}  // namespace emu
