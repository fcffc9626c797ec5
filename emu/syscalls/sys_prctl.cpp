// prctl(2): the process and thread settings a guest may change, kept per guest process by emu
// (ProcessControls), with Linux's argument checks (kernel/sys.c) and errors. The host's own
// settings are emu's, shared by every guest process, so none of these reach the host; a few
// questions only the host can answer (the capability bounding set) are passed through.
#include <linux/capability.h>
#include <sys/prctl.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <string>

#include "emu/cpu/vcpu.h"
#include "emu/process/guest_process.h"
#include "emu/syscalls/procfs_process.h"
#include "emu/syscalls/sys_handlers.h"

namespace emu::sys {

namespace {

constexpr size_t kCommBytes = 16;  // TASK_COMM_LEN, the terminating zero included
constexpr int kNsig = 64;          // _NSIG: signals 1..64 are valid

int64_t host_answer(int r) { return r < 0 ? -errno : r; }

int64_t put_int(Call& c, uint64_t addr, int value) { return c.mem.write_value(c.v, addr, value) ? 0 : -EFAULT; }

int64_t set_name(Call& c, uint64_t addr) {
  std::string name;
  // strncpy_from_user of at most 15 bytes: a longer name is cut, a fault before a NUL is EFAULT.
  if (!c.mem.read_string(c.v, addr, kCommBytes - 1, name)) {
    char buf[kCommBytes - 1];
    if (!c.mem.read(c.v, addr, buf, sizeof buf)) return -EFAULT;
    name.assign(buf, sizeof buf);
  }
  c.proc.controls().set_thread_name(c.vcpu.tid(), std::move(name));
  return 0;
}

int64_t get_name(Call& c, uint64_t addr) {
  char out[kCommBytes] = {};
  const std::string name = c.proc.controls().thread_name(c.vcpu.tid(), procfs::comm_of(c.proc.exe_path()));
  std::memcpy(out, name.data(), std::min(name.size(), kCommBytes - 1));
  return c.mem.write(c.v, addr, out, sizeof out) ? 0 : -EFAULT;
}

}  // namespace

int64_t prctl(Call& c, int option, uint64_t arg2, uint64_t arg3, uint64_t arg4, uint64_t arg5) {
  ProcessControls& pc = c.proc.controls();
  const bool rest_zero = arg3 == 0 && arg4 == 0 && arg5 == 0;
  switch (option) {
    case PR_SET_PDEATHSIG:
      if (arg2 > kNsig) return -EINVAL;
      pc.pdeath_signal.store(static_cast<int>(arg2));
      return 0;
    case PR_GET_PDEATHSIG: return put_int(c, arg2, pc.pdeath_signal.load());
    case PR_GET_DUMPABLE: return pc.dumpable.load();
    case PR_SET_DUMPABLE:
      if (arg2 > 1) return -EINVAL;  // SUID_DUMP_DISABLE or SUID_DUMP_USER only
      pc.dumpable.store(static_cast<int>(arg2));
      return 0;
    case PR_SET_NAME: return set_name(c, arg2);
    case PR_GET_NAME: return get_name(c, arg2);
    case PR_GET_TIMERSLACK: return static_cast<int64_t>(pc.timer_slack_ns.load());
    case PR_SET_TIMERSLACK:
      pc.timer_slack_ns.store(arg2 ? arg2 : pc.default_timer_slack_ns.load());
      return 0;
    case PR_SET_CHILD_SUBREAPER: pc.child_subreaper.store(arg2 != 0); return 0;
    case PR_GET_CHILD_SUBREAPER: return put_int(c, arg2, pc.child_subreaper.load() ? 1 : 0);
    case PR_SET_NO_NEW_PRIVS:
      if (arg2 != 1 || !rest_zero) return -EINVAL;
      pc.no_new_privs.store(true);
      return 0;
    case PR_GET_NO_NEW_PRIVS:
      if (arg2 != 0 || !rest_zero) return -EINVAL;
      return pc.no_new_privs.load() ? 1 : 0;
    case PR_SET_THP_DISABLE:
      if (!rest_zero) return -EINVAL;
      pc.thp_disable.store(arg2 != 0);
      return 0;
    case PR_GET_THP_DISABLE:
      if (arg2 != 0 || !rest_zero) return -EINVAL;
      return pc.thp_disable.load() ? 1 : 0;
    case PR_GET_KEEPCAPS: return pc.keep_caps.load() ? 1 : 0;
    case PR_SET_KEEPCAPS:
      if (arg2 > 1) return -EINVAL;
      pc.keep_caps.store(arg2 != 0);
      return 0;
    case PR_GET_SECCOMP: return 0;  // no filter: emu has no seccomp to run one
    case PR_SET_SECCOMP: return -EINVAL;  // as a kernel built without it
    case PR_CAPBSET_READ:
      if (arg2 > CAP_LAST_CAP) return -EINVAL;
      return host_answer(::prctl(PR_CAPBSET_READ, arg2, 0, 0, 0));
    case PR_CAPBSET_DROP: return -EPERM;  // would drop it for every guest process (emu's own set)
    case PR_CAP_AMBIENT:
      if (arg2 == PR_CAP_AMBIENT_IS_SET) {
        if (arg4 != 0 || arg5 != 0) return -EINVAL;
        return host_answer(::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, arg3, 0, 0));
      }
      if (arg2 == PR_CAP_AMBIENT_RAISE || arg2 == PR_CAP_AMBIENT_LOWER) {
        if (arg3 > CAP_LAST_CAP || arg4 != 0 || arg5 != 0) return -EINVAL;
        // Lowering what is not raised changes nothing; raising needs the capability
        // permitted and inheritable, which emu never gives a guest.
        return arg2 == PR_CAP_AMBIENT_LOWER ? 0 : -EPERM;
      }
      if (arg2 == PR_CAP_AMBIENT_CLEAR_ALL) return rest_zero ? 0 : -EINVAL;
      return -EINVAL;
    case PR_GET_TID_ADDRESS:
      if (c.i386) return c.mem.write_value(c.v, arg2, static_cast<uint32_t>(c.vcpu.clear_child_tid)) ? 0 : -EFAULT;
      return c.mem.write_value(c.v, arg2, c.vcpu.clear_child_tid) ? 0 : -EFAULT;
    case PR_SET_PTRACER: return 0;  // Yama's ptrace scope: emu offers no ptrace to restrict
    case PR_SET_MM:
    case PR_SET_IO_FLUSHER: return -EPERM;  // CAP_SYS_RESOURCE, which a guest does not get
    default: return -EINVAL;
  }
}

}  // namespace emu::sys
