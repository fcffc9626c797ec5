// Identity, limits, randomness: mostly the host's answers, in the guest's layouts.
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "emu/process/guest_process.h"
#include "emu/process/machine.h"
#include "emu/syscalls/sys_handlers.h"

namespace emu::sys {

int64_t uname(Call& c, uint64_t buf) {
  struct utsname u {};
  if (::uname(&u) != 0) return -errno;
  std::memset(u.machine, 0, sizeof u.machine);
  std::strncpy(u.machine, std::string(machine_name(c.proc.arch())).c_str(), sizeof u.machine - 1);
  return c.mem.write(c.v, buf, &u, sizeof u) ? 0 : -EFAULT;  // six 65-byte strings on both ABIs
}

namespace {
// The limits the guest set (GuestProcess::limit), else the host process's, but for the number
// of open files: the guest's fd table has its own (emu's host limit counts emu's fds and every
// guest process's together).
int limit_of(const GuestProcess& p, int resource, struct rlimit64& r) {
  if (const auto set = p.limit(resource)) {
    r.rlim_cur = set->cur;
    r.rlim_max = set->max;
    return 0;
  }
  if (resource == RLIMIT_NOFILE) {
    r.rlim_cur = r.rlim_max = static_cast<rlim64_t>(const_cast<GuestProcess&>(p).files().limit());
    return 0;
  }
  return ::getrlimit64(static_cast<__rlimit_resource>(resource), &r);
}
int limit_of(Call& c, int resource, struct rlimit64& r) { return limit_of(c.proc, resource, r); }

// Linux's do_prlimit checks: the soft limit within the hard one, a hard limit raised only
// with CAP_SYS_RESOURCE (here: as root), RLIMIT_NOFILE within fs.nr_open.
constexpr uint64_t kNrOpen = 1u << 20;
int64_t set_limit(GuestProcess& p, int resource, uint64_t cur, uint64_t max) {
  if (cur > max) return -EINVAL;
  struct rlimit64 now {};
  if (limit_of(p, resource, now) != 0) return -errno;
  if (max > now.rlim_max && ::geteuid() != 0) return -EPERM;
  if (resource == RLIMIT_NOFILE && max > kNrOpen) return -EPERM;
  p.set_limit(resource, {cur, max});
  if (resource == RLIMIT_NOFILE) p.files().set_limit(static_cast<int>(std::min<uint64_t>(cur, kNrOpen)));
  return 0;
}
}  // namespace

int64_t prlimit64(Call& c, int pid, int resource, uint64_t new_limit, uint64_t old_limit) {
  std::shared_ptr<GuestProcess> target =
      pid == 0 || pid == c.proc.pid() ? c.proc.shared_from_this() : c.proc.machine().find_process(pid);
  if (!target || target->ended()) return -ESRCH;
  if (resource < 0 || resource >= GuestProcess::kLimits) return -EINVAL;
  uint64_t fresh[2] = {};
  if (new_limit && !c.mem.read(c.v, new_limit, fresh, sizeof fresh)) return -EFAULT;
  struct rlimit64 r {};
  if (limit_of(*target, resource, r) != 0) return -errno;
  if (new_limit) {
    if (const int64_t e = set_limit(*target, resource, fresh[0], fresh[1])) return e;
  }
  const uint64_t v[2] = {r.rlim_cur, r.rlim_max};
  return (!old_limit || c.mem.write(c.v, old_limit, v, sizeof v)) ? 0 : -EFAULT;
}

int64_t setrlimit(Call& c, int resource, uint64_t limit) {
  if (resource < 0 || resource >= GuestProcess::kLimits) return -EINVAL;
  uint64_t v[2] = {};
  if (c.i386) {
    // i386's struct rlimit: two unsigned longs, RLIM_INFINITY as ~0 (Linux's compat widening).
    uint32_t w[2] = {};
    if (!c.mem.read(c.v, limit, w, sizeof w)) return -EFAULT;
    for (int i = 0; i < 2; ++i) v[i] = w[i] == 0xffffffffu ? RLIM64_INFINITY : w[i];
  } else if (!c.mem.read(c.v, limit, v, sizeof v)) {
    return -EFAULT;
  }
  return set_limit(c.proc, resource, v[0], v[1]);
}

int64_t getrlimit(Call& c, int resource, uint64_t limit) {
  struct rlimit64 r {};
  if (limit_of(c, resource, r) != 0) return -errno;
  if (!c.i386) {
    const uint64_t v[2] = {r.rlim_cur, r.rlim_max};
    return c.mem.write(c.v, limit, v, sizeof v) ? 0 : -EFAULT;
  }
  auto clamp = [](uint64_t x) { return x > 0xffffffffu ? 0xffffffffu : static_cast<uint32_t>(x); };
  const uint32_t v[2] = {clamp(r.rlim_cur), clamp(r.rlim_max)};
  return c.mem.write(c.v, limit, v, sizeof v) ? 0 : -EFAULT;
}

int64_t getrandom(Call& c, uint64_t buf, uint64_t n, unsigned flags) {
  std::vector<uint8_t> tmp(std::min<uint64_t>(n, 1 << 20));
  const ssize_t r = ::getrandom(tmp.data(), tmp.size(), flags);
  if (r < 0) return -errno;
  return c.mem.write(c.v, buf, tmp.data(), r) ? r : -EFAULT;
}

int64_t sysinfo(Call& c, uint64_t buf) {
  struct sysinfo si {};
  if (::sysinfo(&si) != 0) return -errno;
  if (!c.i386) return c.mem.write(c.v, buf, &si, sizeof si) ? 0 : -EFAULT;
  // i386: longs are 4 bytes; mem_unit lets the totals fit.
  uint32_t out[16] = {};
  const uint64_t unit = si.mem_unit ? si.mem_unit : 1;
  const uint32_t big_unit = 4096;
  out[0] = static_cast<uint32_t>(si.uptime);
  out[1] = static_cast<uint32_t>(si.loads[0]);
  out[2] = static_cast<uint32_t>(si.loads[1]);
  out[3] = static_cast<uint32_t>(si.loads[2]);
  out[4] = static_cast<uint32_t>(si.totalram * unit / big_unit);
  out[5] = static_cast<uint32_t>(si.freeram * unit / big_unit);
  out[6] = static_cast<uint32_t>(si.sharedram * unit / big_unit);
  out[7] = static_cast<uint32_t>(si.bufferram * unit / big_unit);
  out[8] = static_cast<uint32_t>(si.totalswap * unit / big_unit);
  out[9] = static_cast<uint32_t>(si.freeswap * unit / big_unit);
  out[10] = si.procs;  // u16 procs + pad
  out[11] = static_cast<uint32_t>(si.totalhigh * unit / big_unit);
  out[12] = static_cast<uint32_t>(si.freehigh * unit / big_unit);
  out[13] = big_unit;
  return c.mem.write(c.v, buf, out, 64) ? 0 : -EFAULT;
}

}  // namespace emu::sys
