// Scheduling: affinity, policy and priority, nice values, the current CPU, memory barriers,
// personality.
//
// Every guest thread runs on a host thread of its own (its vCPU), so each of these acts on
// that host thread, as qemu-user's do: a guest pid or tid is turned into the host tid of the
// guest thread it names (0 for the caller itself), so a call on another guest thread reaches
// that thread, and a number that names no guest task is given to the host as one that names
// no host task either (ESRCH where Linux says it), never as somebody else's process. The
// CPUs are the host's, as sched_getaffinity and /proc/cpuinfo already show them to the guest.
#include <linux/membarrier.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <vector>

#include "emu/process/guest_process.h"
#include "emu/process/machine.h"
#include "emu/syscalls/sys_handlers.h"
#include "emu/syscalls/sys_paths.h"

namespace emu::sys {

namespace {

void* const kFaulting = reinterpret_cast<void*>(1);
constexpr int kGetRegistrations = 1 << 9;  // MEMBARRIER_CMD_GET_REGISTRATIONS (Linux 6.3)

// The host tid of the guest thread `tid` of `proc` (0 when it has none).
int host_tid_in(GuestProcess& proc, const Vcpu& self, int tid) {
  int found = 0;
  proc.for_each_other_vcpu(self, [&](Vcpu& v) {
    if (v.tid() == tid) found = v.host_tid();
  });
  return found;
}

// What the host is to be given for guest pid `pid`: 0 for the caller; the host tid of the
// guest thread it names (a process id names its main thread); a negative one as it is (the
// host refuses it as Linux does); INT_MAX, which no host task has, for anything else.
int host_task(Call& c, int pid) {
  if (pid == 0 || pid == c.vcpu.tid()) return 0;
  if (pid < 0) return pid;
  if (const int t = host_tid_in(c.proc, c.vcpu, pid)) return t;
  if (const auto other = c.proc.machine().find_process(pid); other && !other->ended())
    if (const int t = host_tid_in(*other, c.vcpu, pid)) return t;
  return INT_MAX;
}

// The host's cpumask size (what a sched_getaffinity copies out at most).
size_t host_cpumask_bytes() {
  static const size_t bytes = [] {
    cpu_set_t set;
    const long r = ::syscall(SYS_sched_getaffinity, 0, sizeof set, &set);
    return r > 0 ? static_cast<size_t>(r) : sizeof set;
  }();
  return bytes;
}

// The host tids of the guest threads getpriority/setpriority's (which, who) names, or the
// error when it names none: every thread of the processes of a group, or of every guest
// process for this user (the guest runs as the user emu runs as).
int priority_targets(Call& c, int which, int who, std::vector<int>& tids) {
  if (which == PRIO_PROCESS) {
    const int t = host_task(c, who);
    if (t < 0 || t == INT_MAX) return -ESRCH;
    tids.push_back(t);
    return 0;
  }
  if (which == PRIO_USER && who != 0 && static_cast<uid_t>(who) != ::getuid()) return -ESRCH;
  const int group = who == 0 ? c.proc.pgid() : who;
  for (const auto& p : c.proc.machine().processes()) {
    if (p->ended() || (which == PRIO_PGRP && p->pgid() != group)) continue;
    if (p.get() == &c.proc) tids.push_back(0);
    p->for_each_other_vcpu(c.vcpu, [&](Vcpu& v) {
      if (v.host_tid()) tids.push_back(v.host_tid());
    });
  }
  return tids.empty() ? -ESRCH : 0;
}

// The host's membarrier, for this process's barriers: emu's threads are the guest's, so a
// barrier over emu's threads is one over the guest's. The host registration is emu's own,
// made once.
int64_t host_barrier(int cmd, int register_cmd) {
  static std::atomic<uint32_t> registered{0};
  if (!(registered.load() & static_cast<uint32_t>(register_cmd))) {
    if (::syscall(SYS_membarrier, register_cmd, 0, 0) == 0) registered.fetch_or(static_cast<uint32_t>(register_cmd));
  }
  if (::syscall(SYS_membarrier, cmd, 0, 0) != 0) {
    // At least a full fence: a sequentially consistent read-modify-write is one on x86 (and,
    // unlike a bare fence, ThreadSanitizer models it).
    static std::atomic<uint32_t> fence{0};
    fence.fetch_add(1, std::memory_order_seq_cst);
  }
  return 0;
}

}  // namespace

// Linux's checks first (the length must hold the kernel's mask and be a whole number of the
// ABI's longs), then the thread `pid` names (ESRCH for none), then the mask copied out.
int64_t sched_getaffinity(Call& c, int pid, uint64_t size, uint64_t mask) {
  const uint64_t word = c.i386 ? 4 : 8;
  const long cpus = ::sysconf(_SC_NPROCESSORS_CONF);
  if (size * 8 < static_cast<uint64_t>(cpus > 0 ? cpus : 1) || (size & (word - 1))) return -EINVAL;
  const int t = host_task(c, pid);
  if (t < 0 || t == INT_MAX) return -ESRCH;
  cpu_set_t set;
  const long r = ::syscall(SYS_sched_getaffinity, t, sizeof set, &set);
  if (r < 0) return -errno;
  const size_t n = std::min<uint64_t>(size, static_cast<uint64_t>(r));
  return c.mem.write(c.v, mask, &set, n) ? static_cast<int64_t>(n) : -EFAULT;
}

int64_t sched_setaffinity(Call& c, int pid, uint64_t len, uint64_t mask) {
  // Linux reads at most its cpumask's size, zero-filling a shorter one, before it looks
  // the task up.
  cpu_set_t set;
  CPU_ZERO(&set);
  const size_t n = std::min<uint64_t>(len, host_cpumask_bytes());
  const bool readable = n == 0 || c.mem.read(c.v, mask, &set, n);
  return host_result(::syscall(SYS_sched_setaffinity, host_task(c, pid), len, readable ? static_cast<void*>(&set) : kFaulting));
}

int64_t sched_getparam(Call& c, int pid, uint64_t param) {
  sched_param p{};
  if (::syscall(SYS_sched_getparam, host_task(c, pid), param ? &p : nullptr) != 0) return -errno;
  return c.mem.write_value(c.v, param, p) ? 0 : -EFAULT;
}

int64_t sched_setscheduler(Call& c, int pid, int policy, uint64_t param, bool keep_policy) {
  sched_param p{};
  void* host = nullptr;
  if (param) host = c.mem.read_value(c.v, param, p) ? static_cast<void*>(&p) : kFaulting;
  const int t = host_task(c, pid);
  return host_result(keep_policy ? ::syscall(SYS_sched_setparam, t, host) : ::syscall(SYS_sched_setscheduler, t, policy, host));
}

int64_t sched_getscheduler(Call& c, int pid) { return host_result(::syscall(SYS_sched_getscheduler, host_task(c, pid))); }

int64_t sched_rr_get_interval(Call& c, int pid, uint64_t interval, bool time64) {
  timespec ts{};
  if (::syscall(SYS_sched_rr_get_interval, host_task(c, pid), &ts) != 0) return -errno;
  return write_timespec(c, interval, ts, time64) ? 0 : -EFAULT;
}

int64_t getpriority(Call& c, int which, int who) {
  if (which < PRIO_PROCESS || which > PRIO_USER) return -EINVAL;
  std::vector<int> tids;
  if (const int r = priority_targets(c, which, who, tids)) return r;
  // The raw call's answer is 20 - nice, the highest of the tasks' (glibc turns it back).
  long best = -1;
  for (const int t : tids) best = std::max(best, ::syscall(SYS_getpriority, PRIO_PROCESS, t));
  return best < 0 ? -ESRCH : best;
}

int64_t setpriority(Call& c, int which, int who, int nice) {
  if (which < PRIO_PROCESS || which > PRIO_USER) return -EINVAL;
  std::vector<int> tids;
  if (const int r = priority_targets(c, which, who, tids)) return r;
  int64_t result = 0;
  for (const int t : tids) result = host_result(::syscall(SYS_setpriority, PRIO_PROCESS, t, nice));
  return result;
}

int64_t getcpu(Call& c, uint64_t cpu, uint64_t node) {
  unsigned host_cpu = 0, host_node = 0;
  if (::syscall(SYS_getcpu, &host_cpu, &host_node, nullptr) != 0) return -errno;
  // Both are written if they can be, as Linux does, and either failing is EFAULT.
  bool ok = true;
  if (cpu) ok = c.mem.write_value(c.v, cpu, static_cast<uint32_t>(host_cpu)) && ok;
  if (node) ok = c.mem.write_value(c.v, node, static_cast<uint32_t>(host_node)) && ok;
  return ok ? 0 : -EFAULT;
}

int64_t membarrier(Call& c, int cmd, unsigned flags, int) {
  if (cmd == MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ ? flags & ~static_cast<unsigned>(MEMBARRIER_CMD_FLAG_CPU) : flags)
    return -EINVAL;
  std::atomic<uint32_t>& registered = c.proc.membarrier_registrations();
  const auto registration = [&](int reg) -> int64_t {
    registered.fetch_or(static_cast<uint32_t>(reg));
    return 0;
  };
  // An expedited barrier needs the matching registration by this process (EPERM, as Linux).
  const auto expedited = [&](int cmd_, int reg) -> int64_t {
    if (!(registered.load() & static_cast<uint32_t>(reg))) return -EPERM;
    return host_barrier(cmd_, reg);
  };
  switch (cmd) {
    case MEMBARRIER_CMD_QUERY: return host_result(::syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0));
    // The host's own answer, which is EINVAL where it runs nohz_full.
    case MEMBARRIER_CMD_GLOBAL: return host_result(::syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0));
    case MEMBARRIER_CMD_GLOBAL_EXPEDITED: return host_barrier(cmd, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED);
    case MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED: return registration(cmd);
    case MEMBARRIER_CMD_PRIVATE_EXPEDITED: return expedited(cmd, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED);
    case MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: return registration(cmd);
    case MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE: return expedited(cmd, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE);
    case MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE: return registration(cmd);
    // No rseq critical sections to restart (emu answers rseq with ENOSYS): a barrier is all.
    case MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ:
      if (!(registered.load() & static_cast<uint32_t>(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ))) return -EPERM;
      return host_barrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED);
    case MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ: return registration(cmd);
    case kGetRegistrations: return registered.load();
    default: return -EINVAL;
  }
}

int64_t personality(Call& c, uint32_t persona) {
  // 0xffffffff only asks. The persona is kept, not acted on (ADDR_NO_RANDOMIZE does not
  // change where execve loads: --no-aslr does).
  if (persona == 0xffffffff) return c.proc.persona().load();
  return c.proc.persona().exchange(persona);
}

}  // namespace emu::sys
