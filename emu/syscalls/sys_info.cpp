// Identity, limits, randomness: mostly the host's answers, in the guest's layouts.
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "emu/process/guest_process.h"
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
// The host process's limits, but for the number of open files: the guest's fd table has its
// own (emu's host limit counts emu's fds and every guest process's together).
int limit_of(Call& c, int resource, struct rlimit64& r) {
  if (resource == RLIMIT_NOFILE) {
    r.rlim_cur = r.rlim_max = static_cast<rlim64_t>(c.proc.files().limit());
    return 0;
  }
  return ::getrlimit64(static_cast<__rlimit_resource>(resource), &r);
}
}  // namespace

int64_t prlimit64(Call& c, int pid, int resource, uint64_t new_limit, uint64_t old_limit) {
  if (pid != 0 && pid != c.proc.pid()) return -ESRCH;
  if (new_limit) return -EPERM;  // limits are the host process's; the guest may only look
  struct rlimit64 r {};
  if (limit_of(c, resource, r) != 0) return -errno;
  const uint64_t v[2] = {r.rlim_cur, r.rlim_max};
  return (!old_limit || c.mem.write(c.v, old_limit, v, sizeof v)) ? 0 : -EFAULT;
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

int64_t prctl(Call& c, int option, uint64_t arg2) {
  switch (option) {
    case PR_SET_NAME: return 0;
    case PR_GET_NAME: {
      char name[16] = "emu-guest";
      return c.mem.write(c.v, arg2, name, sizeof name) ? 0 : -EFAULT;
    }
    default: return -EINVAL;
  }
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

int64_t getrusage(Call& c, int who, uint64_t buf) {
  struct rusage ru {};
  if (::getrusage(who == 1 ? RUSAGE_THREAD : RUSAGE_SELF, &ru) != 0) return -errno;
  if (!c.i386) return c.mem.write(c.v, buf, &ru, sizeof ru) ? 0 : -EFAULT;
  // i386: two 8-byte timevals then 14 longs, all 4-byte fields.
  uint32_t out[18] = {static_cast<uint32_t>(ru.ru_utime.tv_sec), static_cast<uint32_t>(ru.ru_utime.tv_usec),
                      static_cast<uint32_t>(ru.ru_stime.tv_sec), static_cast<uint32_t>(ru.ru_stime.tv_usec),
                      static_cast<uint32_t>(ru.ru_maxrss)};
  return c.mem.write(c.v, buf, out, sizeof out) ? 0 : -EFAULT;
}

}  // namespace emu::sys
