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
// is converted when it is set (a later change of the wall clock does not move it).
// ITIMER_VIRTUAL and ITIMER_PROF run on the process's CPU time, which the thread polls every
// couple of milliseconds while one is armed (Linux checks at the scheduler tick, so both
// fire a little after their time). POSIX timers on the CPU-time clocks are not offered.
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
  // ITIMER_VIRTUAL and ITIMER_PROF count the process's CPU time, not the clock's: `cpu` is
  // then set, and `cpu_expiry` is a CPU time (GuestProcess::cpu_time_ns) the service polls for.
  enum class Cpu : uint8_t { None, User, UserSystem };
  Cpu cpu = Cpu::None;
  // Under TimerService's lock.
  std::optional<Clock::time_point> expiry;
  std::optional<int64_t> cpu_expiry;  // ns of CPU time
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
  // The same for a CPU-time timer: `expiry` in ns of its process's CPU time (`now` is the
  // current one, which the caller read), polled every kCpuPoll.
  void set_cpu(const std::shared_ptr<GuestTimer>& t, std::optional<int64_t> expiry, std::chrono::nanoseconds interval,
               int64_t now, std::chrono::nanoseconds* old_left, std::chrono::nanoseconds* old_interval);
  void get_cpu(const GuestTimer& t, int64_t now, std::chrono::nanoseconds* left, std::chrono::nanoseconds* interval);
  static constexpr std::chrono::milliseconds kCpuPoll{2};
  int overrun(const GuestTimer& t);

 private:
  void run();
  // Puts an armed timer on `list` (once) and starts the thread if need be; lock_ held.
  void watch_locked(std::vector<std::weak_ptr<GuestTimer>>& list, const std::shared_ptr<GuestTimer>& t);
  // Sends the timer's signal to its process (outside the lock).
  static void fire(const GuestTimer& t, int overrun);

  const FireFn on_fire_;
  std::mutex lock_;
  std::condition_variable changed_;
  std::vector<std::weak_ptr<GuestTimer>> armed_;  // under lock_
  std::vector<std::weak_ptr<GuestTimer>> cpu_armed_;  // under lock_: the CPU-time ones
  bool stopping_ = false;                          // under lock_
  std::thread thread_;                             // started with the first timer
};

// One process's timers: setitimer's three and the POSIX ones by id.
class ProcessTimers {
 public:
  // setitimer's timer `which` (ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF: 0 to 2), made on
  // first use for `owner`.
  std::shared_ptr<GuestTimer> itimer(const std::shared_ptr<GuestProcess>& owner, int which);
  // A new POSIX timer's id, or -EAGAIN past Linux's per-process limit.
  int add(std::shared_ptr<GuestTimer> t);
  std::shared_ptr<GuestTimer> find(int id);
  // The timer with that id, removed (null if there is none).
  std::shared_ptr<GuestTimer> remove(int id);
  // execve: POSIX timers go; the itimers stay.
  std::vector<std::shared_ptr<GuestTimer>> take_posix();

 private:
  static constexpr size_t kMaxTimers = 4096;
  std::mutex lock_;
  std::shared_ptr<GuestTimer> itimers_[3];
  std::vector<std::shared_ptr<GuestTimer>> posix_;  // by id (null: free)
};

}  // namespace emu
