// getrusage(2) and times(2) with the guest process's own figures (process_usage.h): the CPU
// time of its threads, live and ended, and of the children it has reaped.
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cerrno>

#include "emu/process/guest_process.h"
#include "emu/syscalls/sys_handlers.h"

namespace emu::sys {

namespace {

// The process's threads: the ended ones, this one, and the others as their host threads
// say now; the peak size is the guest's resident set, not emu's.
ResourceUsage self_usage(Call& c) {
  ResourceUsage u = c.proc.usage().ended_threads();
  u.add(calling_thread_usage());
  c.proc.for_each_other_vcpu(c.vcpu, [&](Vcpu& v) {
    if (const int tid = v.host_tid()) u.add(host_thread_usage(tid));
  });
  if (c.proc.has_space()) c.proc.usage().note_rss_kb(c.proc.space().rss_pages() * 4);
  u.max_rss_kb = c.proc.usage().max_rss_kb();
  return u;
}

}  // namespace

// struct rusage: two timevals then 14 longs, each of the guest's word size.
int64_t put_rusage(Call& c, uint64_t buf, const ResourceUsage& u) {
  const std::array<int64_t, 18> v = {u.user_us / 1000000, u.user_us % 1000000, u.system_us / 1000000, u.system_us % 1000000,
                                     u.max_rss_kb, 0, 0, 0, u.minor_faults, u.major_faults, 0, u.in_blocks, u.out_blocks,
                                     0, 0, 0, u.voluntary_switches, u.involuntary_switches};
  if (!c.i386) return c.mem.write(c.v, buf, v.data(), sizeof v) ? 0 : -EFAULT;
  std::array<int32_t, 18> narrow;
  for (size_t i = 0; i < v.size(); ++i) narrow[i] = static_cast<int32_t>(v[i]);
  return c.mem.write(c.v, buf, narrow.data(), sizeof narrow) ? 0 : -EFAULT;
}


int64_t getrusage(Call& c, int who, uint64_t buf) {
  ResourceUsage u;
  switch (who) {
    case RUSAGE_SELF: u = self_usage(c); break;
    case RUSAGE_CHILDREN: u = c.proc.usage().children(); break;
    case RUSAGE_THREAD:
      u = calling_thread_usage();
      u.max_rss_kb = self_usage(c).max_rss_kb;  // Linux reports the process's peak here too
      break;
    default: return -EINVAL;
  }
  return put_rusage(c, buf, u);
}

int64_t times(Call& c, uint64_t buf) {
  if (buf) {
    const long tick = ::sysconf(_SC_CLK_TCK);
    const auto ticks = [&](int64_t us) { return us * tick / 1000000; };
    const ResourceUsage self = self_usage(c), children = c.proc.usage().children();
    const std::array<int64_t, 4> v = {ticks(self.user_us), ticks(self.system_us), ticks(children.user_us),
                                      ticks(children.system_us)};
    bool ok;
    if (c.i386) {
      const std::array<int32_t, 4> narrow = {static_cast<int32_t>(v[0]), static_cast<int32_t>(v[1]),
                                             static_cast<int32_t>(v[2]), static_cast<int32_t>(v[3])};
      ok = c.mem.write(c.v, buf, narrow.data(), sizeof narrow);
    } else {
      ok = c.mem.write(c.v, buf, v.data(), sizeof v);
    }
    if (!ok) return -EFAULT;
  }
  // Clock ticks since boot, the host's (it may look negative: Linux returns it anyway).
  return ::syscall(SYS_times, nullptr);
}

}  // namespace emu::sys
