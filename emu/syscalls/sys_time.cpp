// Clocks and sleeping. Sleeps end early when the process exits (exit_group from another
// thread), so no vCPU outlives its process.
#include <sys/time.h>

#include <cerrno>
#include <chrono>
#include <ctime>

#include "emu/process/guest_process.h"
#include "emu/process/machine.h"
#include "emu/syscalls/sys_handlers.h"

namespace emu::sys {

namespace {

bool valid_clock(int clock) { return clock >= 0 && clock <= 11; }

// Sleeps until the deadline (nullopt: until the process exits).
// A signal with a handler ends it with EINTR; one without lets it sleep again (Linux would
// sleep for the rest of the time; emu sleeps the whole request again).
int64_t sleep_until(Call& c, Deadline deadline) {
  switch (c.proc.sleep_until(deadline, &c.vcpu)) {
    case GuestProcess::SleepEnd::Deadline: return 0;
    case GuestProcess::SleepEnd::Signal: return -kErestartNoHand;
    case GuestProcess::SleepEnd::Exiting: break;
  }
  return -EINTR;
}

}  // namespace

bool valid_timespec(int64_t sec, int64_t nsec) { return sec >= 0 && nsec >= 0 && nsec < 1000000000; }

Deadline deadline_after(int64_t sec, int64_t nsec) {
  // steady_clock counts int64 nanoseconds (about 292 years): anything past a century is
  // as good as never, and seconds(sec) below stays far from overflowing.
  constexpr int64_t kCenturySec = int64_t{100} * 365 * 24 * 3600;
  if (sec >= kCenturySec) return std::nullopt;
  return std::chrono::steady_clock::now() + std::chrono::seconds(sec) + std::chrono::nanoseconds(nsec);
}

Deadline deadline_at(clockid_t clock, int64_t sec, int64_t nsec) {
  timespec now{};
  ::clock_gettime(clock, &now);
  // Difference in seconds and nanoseconds first: both operands are non-negative, so no
  // overflow whatever the guest asked for.
  int64_t left_sec = sec - now.tv_sec, left_nsec = nsec - now.tv_nsec;
  if (left_nsec < 0) {
    left_nsec += 1000000000;
    --left_sec;
  }
  if (left_sec < 0) return std::chrono::steady_clock::now();
  return deadline_after(left_sec, left_nsec);
}

bool write_timespec(Call& c, uint64_t addr, const timespec& ts, bool time64) {
  if (time64) {
    const int64_t v[2] = {ts.tv_sec, ts.tv_nsec};
    return c.mem.write(c.v, addr, v, sizeof v);
  }
  if (c.i386) {
    const int32_t v[2] = {static_cast<int32_t>(ts.tv_sec), static_cast<int32_t>(ts.tv_nsec)};
    return c.mem.write(c.v, addr, v, sizeof v);
  }
  const int64_t v[2] = {ts.tv_sec, ts.tv_nsec};
  return c.mem.write(c.v, addr, v, sizeof v);
}

bool read_timeval(Call& c, uint64_t addr, int64_t& sec, int64_t& usec) {
  return read_timespec(c, addr, false, sec, usec);  // two longs of the guest's size
}

bool write_timeval(Call& c, uint64_t addr, int64_t sec, int64_t usec) {
  return write_timespec(c, addr, timespec{static_cast<time_t>(sec), static_cast<long>(usec)}, false);
}

bool read_timespec(Call& c, uint64_t addr, bool time64, int64_t& sec, int64_t& nsec) {
  if (time64 || !c.i386) {
    int64_t v[2];
    if (!c.mem.read(c.v, addr, v, sizeof v)) return false;
    sec = v[0];
    nsec = v[1];
    return true;
  }
  int32_t v[2];
  if (!c.mem.read(c.v, addr, v, sizeof v)) return false;
  sec = v[0];
  nsec = v[1];
  return true;
}

namespace {

// A CPU clock of another thread or process (Linux's MAKE_PROCESS_CPUCLOCK and
// MAKE_THREAD_CPUCLOCK, what pthread_getcpuclockid and clock_getcpuclockid return): its id
// holds ~pid << 3, the per-thread bit 4 and the kind (0 user+system, 1 user, 2 scheduler).
// The guest's numbers name guest threads and processes: a thread's clock is its host
// thread's, a process's the sum of its threads'. False for an id naming nothing.
bool cpu_clock_time(Call& c, int clock, timespec& out) {
  const int kind = clock & 3;
  if (kind == 3) return false;
  const int id = ~(clock >> 3);
  if (clock & 4) {
    int host_tid = 0;
    if (id == 0 || id == c.vcpu.tid()) {
      host_tid = c.vcpu.host_tid();
    } else if (const auto v = c.proc.find_thread(id)) {
      host_tid = v->host_tid();
    }
    if (host_tid <= 0) return false;
    const clockid_t host = static_cast<clockid_t>((~static_cast<unsigned>(host_tid) << 3) | static_cast<unsigned>(kind) | 4u);
    return ::clock_gettime(host, &out) == 0;
  }
  const auto p = id == 0 || id == c.proc.pid() ? c.proc.shared_from_this() : c.proc.machine().find_process(id);
  if (!p || p->ended()) return false;
  const int64_t ns = p->cpu_time_ns(kind == 1);
  out.tv_sec = ns / 1000000000;
  out.tv_nsec = ns % 1000000000;
  return true;
}

}  // namespace

int64_t clock_gettime(Call& c, int clock, uint64_t ts, bool time64) {
  timespec now{};
  if (clock < 0) {
    if (!cpu_clock_time(c, clock, now)) return -EINVAL;
    return write_timespec(c, ts, now, time64) ? 0 : -EFAULT;
  }
  if (!valid_clock(clock)) return -EINVAL;
  if (::clock_gettime(clock, &now) != 0) return -errno;
  return write_timespec(c, ts, now, time64) ? 0 : -EFAULT;
}

// The guest may not set the host's clocks: Linux's answer to a caller without CAP_SYS_TIME.
// In Linux's order: the timespec read, the clock looked up, the value checked.
int64_t clock_settime(Call& c, int clock, uint64_t ts, bool time64) {
  int64_t sec = 0, nsec = 0;
  if (!read_timespec(c, ts, time64, sec, nsec)) return -EFAULT;
  if (clock < 0) {  // a CPU clock can never be set
    timespec probe{};
    return cpu_clock_time(c, clock, probe) ? -EPERM : -EINVAL;
  }
  if (clock != CLOCK_REALTIME) return -EINVAL;  // the only settable fixed clock
  if (nsec < 0 || nsec >= 1000000000 || sec < 0) return -EINVAL;
  return -EPERM;
}

int64_t clock_getres(Call& c, int clock, uint64_t ts, bool time64) {
  if (clock < 0) {
    timespec probe{};
    if (!cpu_clock_time(c, clock, probe)) return -EINVAL;
    const timespec one{0, 1};
    return (!ts || write_timespec(c, ts, one, time64)) ? 0 : -EFAULT;
  }
  if (!valid_clock(clock)) return -EINVAL;
  timespec res{};
  if (::clock_getres(clock, &res) != 0) return -errno;
  return (!ts || write_timespec(c, ts, res, time64)) ? 0 : -EFAULT;
}

int64_t gettimeofday(Call& c, uint64_t tv, uint64_t tz) {
  timeval now{};
  ::gettimeofday(&now, nullptr);
  if (tv) {
    if (!write_timeval(c, tv, now.tv_sec, now.tv_usec)) return -EFAULT;
  }
  if (tz && !c.mem.fill(c.v, tz, 0, 8)) return -EFAULT;
  return 0;
}

int64_t time(Call& c, uint64_t t) {
  const int64_t now = ::time(nullptr);
  if (t) {
    const bool ok = c.i386 ? c.mem.write_value(c.v, t, static_cast<int32_t>(now)) : c.mem.write_value(c.v, t, now);
    if (!ok) return -EFAULT;
  }
  return now;
}

int64_t nanosleep(Call& c, uint64_t req, uint64_t, bool time64) {
  int64_t sec = 0, nsec = 0;
  if (!read_timespec(c, req, time64, sec, nsec)) return -EFAULT;
  if (!valid_timespec(sec, nsec)) return -EINVAL;
  return sleep_until(c, deadline_after(sec, nsec));
}

int64_t clock_nanosleep(Call& c, int clock, int flags, uint64_t req, uint64_t rem, bool time64) {
  // The syscall returns -errno like the others; only glibc's wrapper turns it positive.
  if (!valid_clock(clock)) return -EINVAL;
  int64_t sec = 0, nsec = 0;
  if (!read_timespec(c, req, time64, sec, nsec)) return -EFAULT;
  if (!valid_timespec(sec, nsec)) return -EINVAL;
  (void)rem;
  return sleep_until(c, (flags & TIMER_ABSTIME) ? deadline_at(clock, sec, nsec) : deadline_after(sec, nsec));
}

}  // namespace emu::sys
