// Guest interval timers: setitimer/alarm's ITIMER_REAL and POSIX timers (timer_create).
//
// Linux runs them on hrtimers and sends the signal from the timer interrupt. emu has one host
// thread for the whole machine (TimerService) that sleeps until the next expiry, re-arms
// periodic timers and then sends each guest its signal like any other sender
// (GuestProcess::send_signal), so a timer's signal interrupts blocking calls and is taken
// between engine runs like a kill's. Each process keeps its own timers (ProcessTimers):
// they go with it, and execve deletes its POSIX ones as Linux does.
//
// Every timer runs on the host's steady clock once armed: an absolute CLOCK_REALTIME expiry
// is converted when it is set (a later change of the wall clock does not move it). The CPU
// time clocks (ITIMER_VIRTUAL, ITIMER_PROF, CLOCK_*_CPUTIME_ID) are not offered: EINVAL.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace emu {

class GuestProcess;

struct GuestTimer {
  using Clock = std::chrono::steady_clock;
  // How the expiry is told (sigevent's sigev_notify): SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD_ID.
  std::weak_ptr<GuestProcess> owner;
  int id = 0;              // timer_create's id; -1 for ITIMER_REAL
  int clock = 0;           // the clockid it was created on
  int notify = 0;
  int signo = 0;
  int tid = 0;             // SIGEV_THREAD_ID's thread
  uint64_t value = 0;      // sigev_value
  // Under TimerService's lock.
  std::optional<Clock::time_point> expiry;
  std::chrono::nanoseconds interval{0};
  int overrun = 0;  // expiries missed before the last signal was sent (timer_getoverrun)
};

class TimerService {
 public:
  using Clock = GuestTimer::Clock;
  // What an expiry does: by default, send the timer's signal to its process (`fire`); tests
  // count instead.
  using FireFn = std::function<void(const GuestTimer& t, int overrun)>;
  explicit TimerService(FireFn on_fire = fire) : on_fire_(std::move(on_fire)) {}
  ~TimerService();  // stops the thread
  TimerService(const TimerService&) = delete;
  TimerService& operator=(const TimerService&) = delete;

  // Arms `t` to expire at `expiry` (nullopt: disarms), then every `interval` (0: once).
  // The previous setting, as timer_settime reports it, goes to *old_left / *old_interval.
  void set(const std::shared_ptr<GuestTimer>& t, std::optional<Clock::time_point> expiry,
           std::chrono::nanoseconds interval, std::chrono::nanoseconds* old_left = nullptr,
           std::chrono::nanoseconds* old_interval = nullptr);
  // Time left (0 when disarmed) and the interval.
  void get(const GuestTimer& t, std::chrono::nanoseconds* left, std::chrono::nanoseconds* interval);
  int overrun(const GuestTimer& t);

 private:
  void run();
  // Sends the timer's signal to its process (outside the lock).
  static void fire(const GuestTimer& t, int overrun);

  const FireFn on_fire_;
  std::mutex lock_;
  std::condition_variable changed_;
  std::vector<std::weak_ptr<GuestTimer>> armed_;  // under lock_
  bool stopping_ = false;                          // under lock_
  std::thread thread_;                             // started with the first timer
};

// One process's timers: the ITIMER_REAL one and the POSIX ones by id.
class ProcessTimers {
 public:
  // The ITIMER_REAL timer, made on first use for `owner`.
  std::shared_ptr<GuestTimer> real(const std::shared_ptr<GuestProcess>& owner);
  // A new POSIX timer's id, or -EAGAIN past Linux's per-process limit.
  int add(std::shared_ptr<GuestTimer> t);
  std::shared_ptr<GuestTimer> find(int id);
  // The timer with that id, removed (null if there is none).
  std::shared_ptr<GuestTimer> remove(int id);
  // execve: POSIX timers go; ITIMER_REAL stays.
  std::vector<std::shared_ptr<GuestTimer>> take_posix();

 private:
  static constexpr size_t kMaxTimers = 4096;
  std::mutex lock_;
  std::shared_ptr<GuestTimer> real_;
  std::vector<std::shared_ptr<GuestTimer>> posix_;  // by id (null: free)
};

}  // namespace emu
