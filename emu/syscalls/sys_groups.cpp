// Process groups and sessions, kept by emu in guest pids so that shells can do job control:
// setpgid, getpgid, setsid, getsid, the terminal's foreground group, and signals to a group.
// A pid that is no guest process's is asked of the host (getpgid(1) answers as natively).
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>

#include "emu/process/guest_process.h"
#include "emu/process/machine.h"
#include "emu/syscalls/sys_handlers.h"
#include "emu/syscalls/sys_paths.h"

namespace emu::sys {

namespace {

std::shared_ptr<GuestProcess> guest(Call& c, int pid) {
  if (pid == 0 || pid == c.proc.pid()) return c.proc.shared_from_this();
  auto p = c.proc.machine().find_process(pid);
  return p;
}

// A group with a member in session `sid` (zombies count, as on Linux).
bool group_in_session(Call& c, int pgid, int sid) {
  for (auto& p : c.proc.machine().processes())
    if (p->pgid() == pgid && p->sid() == sid) return true;
  return false;
}

}  // namespace

int64_t setpgid(Call& c, int pid, int pgid) {
  if (pid < 0 || pgid < 0) return -EINVAL;
  if (pid == 0) pid = c.proc.pid();
  if (pgid == 0) pgid = pid;
  std::shared_ptr<GuestProcess> p = guest(c, pid);
  // Only the caller itself or one of its children (Linux: ESRCH for anyone else).
  if (!p || (p.get() != &c.proc && p->ppid() != c.proc.pid()) || p->ended()) return -ESRCH;
  if (p.get() != &c.proc) {
    if (p->sid() != c.proc.sid()) return -EPERM;
    if (p->execed()) return -EACCES;
  }
  if (p->sid() == p->pid()) return -EPERM;  // a session leader stays where it is
  if (pgid != pid && !group_in_session(c, pgid, c.proc.sid())) return -EPERM;
  p->set_pgid(pgid);
  return 0;
}

int64_t getpgid(Call& c, int pid) {
  if (pid < 0) return -ESRCH;
  if (auto p = guest(c, pid)) return p->pgid();
  return host_result(::getpgid(pid));
}

int64_t setsid(Call& c) {
  // A process group leader cannot start a session: its group would span two.
  for (auto& p : c.proc.machine().processes())
    if (p->pgid() == c.proc.pid()) return -EPERM;
  c.proc.set_sid(c.proc.pid());
  c.proc.set_pgid(c.proc.pid());
  return c.proc.pid();
}

int64_t getsid(Call& c, int pid) {
  if (pid < 0) return -ESRCH;
  if (auto p = guest(c, pid)) return p->sid();
  return host_result(::getsid(pid));
}

int64_t terminal_pgrp_ioctl(Call& c, int fd, uint64_t request, uint64_t arg) {
  const auto f = c.proc.files().get(fd);
  if (!f) return -EBADF;
  if (!::isatty(f->fd())) return -ENOTTY;
  Machine& m = c.proc.machine();
  switch (request) {
    case TIOCGPGRP: {
      const int pgrp = m.foreground_pgrp(f->fd());
      if (pgrp < 0) return -errno;
      return c.mem.write_value(c.v, arg, static_cast<int32_t>(pgrp)) ? 0 : -EFAULT;
    }
    case TIOCSPGRP: {
      int32_t pgrp = 0;
      if (!c.mem.read_value(c.v, arg, pgrp)) return -EFAULT;
      if (pgrp < 0) return -EINVAL;
      if (!group_in_session(c, pgrp, c.proc.sid())) return -EPERM;
      m.set_foreground_pgrp(pgrp);
      return 0;
    }
    case TIOCGSID:
      return c.mem.write_value(c.v, arg, static_cast<int32_t>(c.proc.sid())) ? 0 : -EFAULT;
    default:
      return -ENOTTY;
  }
}

}  // namespace emu::sys
