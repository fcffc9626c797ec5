// Interval timers: alarm, setitimer/getitimer (ITIMER_REAL) and the POSIX timer_* calls, on
// the machine's TimerService (emu/process/guest_timers.h), which sends the signals.
#include <signal.h>
#include <sys/time.h>

#include <cerrno>
#include <limits>
#include <chrono>
#include <cstring>

#include "emu/cpu/vcpu.h"
#include "emu/process/guest_process.h"
#include "emu/process/machine.h"
#include "emu/syscalls/sys_handlers.h"

namespace emu::sys {

namespace {

using std::chrono::nanoseconds;

// Saturating at 2^62 ns (146 years): a guest may ask for an interval of 2^62 seconds
// (found by fuzz/syscalls: the conversion overflowed). Such a time never comes within a run,
// and the cap leaves room for the timer service to add it to a clock reading.
nanoseconds to_ns(const timespec& t) {
  constexpr nanoseconds kCap{int64_t{1} << 62};
  if (t.tv_sec >= std::chrono::duration_cast<std::chrono::seconds>(kCap).count()) return kCap;
  if (t.tv_sec <= -std::chrono::duration_cast<std::chrono::seconds>(kCap).count()) return -kCap;
  return std::chrono::seconds(t.tv_sec) + nanoseconds(t.tv_nsec);
}

timespec to_timespec(nanoseconds ns) {
  return timespec{static_cast<time_t>(ns.count() / 1000000000), static_cast<long>(ns.count() % 1000000000)};
}

bool valid(const timespec& t) { return valid_timespec(t.tv_sec, t.tv_nsec); }

// The clocks a timer may be created on (CPU-time clocks are not offered, guest_timers.h).
bool timer_clock(int clock) {
  return clock == CLOCK_REALTIME || clock == CLOCK_MONOTONIC || clock == CLOCK_BOOTTIME || clock == CLOCK_TAI ||
         clock == CLOCK_REALTIME_ALARM || clock == CLOCK_BOOTTIME_ALARM;
}

// The guest's struct itimerval: interval then value, timevals of guest longs.
bool read_itimerval(Call& c, uint64_t addr, timespec& interval, timespec& value, bool* ok_range) {
  int64_t s0, u0, s1, u1;
  const uint64_t half = c.i386 ? 8 : 16;
  if (!read_timeval(c, addr, s0, u0) || !read_timeval(c, addr + half, s1, u1)) return false;
  *ok_range = s0 >= 0 && s1 >= 0 && u0 >= 0 && u0 < 1000000 && u1 >= 0 && u1 < 1000000;
  if (!*ok_range) return true;  // EINVAL: the microseconds, out of range, must not be scaled
  interval = {static_cast<time_t>(s0), static_cast<long>(u0 * 1000)};
  value = {static_cast<time_t>(s1), static_cast<long>(u1 * 1000)};
  return true;
}

// A timeval for a time left: Linux rounds a sub-microsecond rest up, never showing an armed
// timer as 0.
bool write_itimerval(Call& c, uint64_t addr, nanoseconds interval, nanoseconds left) {
  const auto us = [](nanoseconds ns) { return (ns.count() + 999) / 1000; };
  const uint64_t half = c.i386 ? 8 : 16;
  const int64_t i = us(interval), v = us(left);
  return write_timeval(c, addr, i / 1000000, i % 1000000) && write_timeval(c, addr + half, v / 1000000, v % 1000000);
}

// An armed timer's expiry: one too far for the steady clock never comes, but stays armed.
std::chrono::steady_clock::time_point expiry_after(const timespec& t) {
  if (const Deadline d = deadline_after(t.tv_sec, t.tv_nsec)) return *d;
  // Past a century (deadline_after's "never"): still exact as far as the steady clock
  // reaches, so that the time left reads back as what was set (alarm(0xc9c9c9c9) then
  // answered 292 years, more than an i386 alarm can return; found by fuzz/syscalls).
  using std::chrono::steady_clock;
  const auto now = steady_clock::now();
  const int64_t room = std::chrono::duration_cast<std::chrono::seconds>(steady_clock::time_point::max() - now).count();
  if (t.tv_sec >= room - 1) return steady_clock::time_point::max();
  return now + std::chrono::seconds(t.tv_sec) + std::chrono::nanoseconds(t.tv_nsec);
}

std::shared_ptr<GuestTimer> itimer(Call& c, int which) { return c.proc.timers().itimer(c.proc.shared_from_this(), which); }
std::shared_ptr<GuestTimer> real_timer(Call& c) { return itimer(c, ITIMER_REAL); }
bool valid_itimer(int which) { return which == ITIMER_REAL || which == ITIMER_VIRTUAL || which == ITIMER_PROF; }

}  // namespace

bool read_itimerspec(Call& c, uint64_t addr, bool time64, itimerspec& out) {
  int64_t s0, n0, s1, n1;
  const uint64_t half = (time64 || !c.i386) ? 16 : 8;
  if (!read_timespec(c, addr, time64, s0, n0) || !read_timespec(c, addr + half, time64, s1, n1)) return false;
  out.it_interval = {static_cast<time_t>(s0), static_cast<long>(n0)};
  out.it_value = {static_cast<time_t>(s1), static_cast<long>(n1)};
  return true;
}

bool write_itimerspec(Call& c, uint64_t addr, bool time64, const itimerspec& v) {
  const uint64_t half = (time64 || !c.i386) ? 16 : 8;
  return write_timespec(c, addr, v.it_interval, time64) && write_timespec(c, addr + half, v.it_value, time64);
}

int64_t alarm(Call& c, unsigned seconds) {
  nanoseconds left{}, interval{};
  const timespec value{static_cast<time_t>(seconds), 0};
  c.proc.machine().timer_service().set(real_timer(c), seconds ? Deadline{expiry_after(value)} : Deadline{}, {}, &left,
                                       &interval);
  // Linux rounds the seconds left to the nearest, and a rest under one second up to 1.
  const int64_t ns = left.count();
  if (ns == 0) return 0;
  const int64_t secs = ns / 1000000000, rest = ns % 1000000000;
  // Linux's alarm returns an unsigned int (a longer setitimer's rest comes back cut).
  return static_cast<unsigned>((secs == 0 || rest >= 500000000) ? secs + 1 : secs);
}

int64_t setitimer(Call& c, int which, uint64_t fresh, uint64_t old) {
  if (!valid_itimer(which)) return -EINVAL;
  timespec interval{}, value{};
  if (fresh) {
    bool in_range = false;
    if (!read_itimerval(c, fresh, interval, value, &in_range)) return -EFAULT;
    if (!in_range) return -EINVAL;
  }
  // A null new value disarms, as Linux still allows.
  nanoseconds old_left{}, old_interval{};
  const bool arm = value.tv_sec || value.tv_nsec;
  TimerService& service = c.proc.machine().timer_service();
  const auto t = itimer(c, which);
  if (t->cpu != GuestTimer::Cpu::None) {
    const int64_t now = c.proc.cpu_time_ns(t->cpu == GuestTimer::Cpu::User);
    service.set_cpu(t, arm ? std::optional<int64_t>{now + to_ns(value).count()} : std::nullopt, to_ns(interval), now,
                    &old_left, &old_interval);
  } else {
    service.set(t, arm ? Deadline{expiry_after(value)} : Deadline{}, to_ns(interval), &old_left, &old_interval);
  }
  return (!old || write_itimerval(c, old, old_interval, old_left)) ? 0 : -EFAULT;
}

int64_t getitimer(Call& c, int which, uint64_t cur) {
  if (!valid_itimer(which)) return -EINVAL;
  nanoseconds left{}, interval{};
  const auto t = itimer(c, which);
  if (t->cpu != GuestTimer::Cpu::None) {
    c.proc.machine().timer_service().get_cpu(*t, c.proc.cpu_time_ns(t->cpu == GuestTimer::Cpu::User), &left, &interval);
  } else {
    c.proc.machine().timer_service().get(*t, &left, &interval);
  }
  return write_itimerval(c, cur, interval, left) ? 0 : -EFAULT;
}

int64_t timer_create(Call& c, int clock, uint64_t sevp, uint64_t id_out) {
  if (!timer_clock(clock)) return -EINVAL;
  auto t = std::make_shared<GuestTimer>();
  t->owner = c.proc.weak_from_this();
  t->clock = clock;
  t->notify = SIGEV_SIGNAL;
  t->signo = SIGALRM;
  bool value_given = false;
  if (sevp) {
    // struct sigevent: sigev_value (a pointer-sized union), sigev_signo, sigev_notify, then
    // the thread id for SIGEV_THREAD_ID.
    uint8_t raw[20];
    const size_t bytes = c.i386 ? 16 : 20;
    if (!c.mem.read(c.v, sevp, raw, bytes)) return -EFAULT;
    const size_t word = c.i386 ? 4 : 8;
    uint64_t value = 0;
    std::memcpy(&value, raw, word);
    int32_t fields[3];
    std::memcpy(fields, raw + word, sizeof fields);
    t->value = value;
    t->signo = fields[0];
    t->notify = fields[1];
    t->tid = fields[2];
    value_given = true;
    if (t->notify != SIGEV_NONE && t->notify != SIGEV_SIGNAL && t->notify != SIGEV_THREAD_ID) return -EINVAL;
    if (t->notify != SIGEV_NONE && (t->signo < 1 || t->signo > kMaxSignal)) return -EINVAL;
    if (t->notify == SIGEV_THREAD_ID && !c.proc.find_thread(t->tid)) return -EINVAL;
  }
  const int id = c.proc.timers().add(t);
  if (id < 0) return id;
  if (!value_given) t->value = static_cast<uint64_t>(id);  // Linux: sigev_value is the timer's id
  if (!c.mem.write_value(c.v, id_out, static_cast<int32_t>(id))) {
    c.proc.timers().remove(id);
    return -EFAULT;
  }
  return 0;
}

int64_t timer_settime(Call& c, int id, int flags, uint64_t fresh, uint64_t old, bool time64) {
  itimerspec v{};
  if (!read_itimerspec(c, fresh, time64, v)) return -EFAULT;
  auto t = c.proc.timers().find(id);
  if (!t) return -EINVAL;
  if (!valid(v.it_value) || !valid(v.it_interval)) return -EINVAL;
  Deadline expiry;
  if (v.it_value.tv_sec || v.it_value.tv_nsec) {
    expiry = (flags & TIMER_ABSTIME) ? deadline_at(t->clock == CLOCK_REALTIME_ALARM ? CLOCK_REALTIME
                                                   : t->clock == CLOCK_BOOTTIME_ALARM ? CLOCK_BOOTTIME
                                                                                       : t->clock,
                                                   v.it_value.tv_sec, v.it_value.tv_nsec)
                                     : Deadline{expiry_after(v.it_value)};
    if (!expiry) expiry = std::chrono::steady_clock::time_point::max();  // too far to ever come
  }
  nanoseconds old_left{}, old_interval{};
  c.proc.machine().timer_service().set(t, expiry, to_ns(v.it_interval), &old_left, &old_interval);
  if (old && !write_itimerspec(c, old, time64, itimerspec{to_timespec(old_interval), to_timespec(old_left)})) return -EFAULT;
  return 0;
}

int64_t timer_gettime(Call& c, int id, uint64_t cur, bool time64) {
  auto t = c.proc.timers().find(id);
  if (!t) return -EINVAL;
  nanoseconds left{}, interval{};
  c.proc.machine().timer_service().get(*t, &left, &interval);
  return write_itimerspec(c, cur, time64, itimerspec{to_timespec(interval), to_timespec(left)}) ? 0 : -EFAULT;
}

int64_t timer_getoverrun(Call& c, int id) {
  auto t = c.proc.timers().find(id);
  return t ? c.proc.machine().timer_service().overrun(*t) : -EINVAL;
}

int64_t timer_delete(Call& c, int id) {
  auto t = c.proc.timers().remove(id);
  if (!t) return -EINVAL;
  c.proc.machine().timer_service().set(t, std::nullopt, {});
  return 0;
}

}  // namespace emu::sys
