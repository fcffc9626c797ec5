// Credentials: user and group ids, supplementary groups, capabilities.
//
// They pass to the host as qemu-user passes them: credentials are per thread in Linux (glibc
// makes setuid process-wide by having every thread make the call, which a guest's glibc does
// through emu's signals), and each guest thread is a host thread of its own, so a call
// changes exactly the calling guest thread's ids, on its vCPU's host thread. The consequence:
// whatever emu does on that thread for the guest from then on (opening its files, reading
// /proc for it) runs with the new ids, which is what the guest's own access needs, and a
// thread that drops privileges cannot get them back for emu either. Other guest processes
// keep theirs (they run on other host threads), and new threads and processes inherit the
// creating thread's, as in Linux.
//
// i386's old calls take 16-bit ids: Linux widens 0xffff to -1 and narrows an id that does not
// fit to the overflow id (65534).
#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <vector>

#include "emu/process/guest_process.h"
#include "emu/process/machine.h"
#include "emu/process/machine.h"
#include "emu/syscalls/sys_handlers.h"
#include "emu/syscalls/sys_paths.h"

namespace emu::sys {

namespace {

constexpr int kNgroupsMax = 65536;  // NGROUPS_MAX
constexpr uint32_t kOverflowId = 65534;
// A host address the kernel cannot read: the host answers EFAULT where Linux would.
void* const kFaulting = reinterpret_cast<void*>(1);

uint16_t narrow_id(uint32_t id) { return id > 0xffff ? kOverflowId : static_cast<uint16_t>(id); }

// Writes `ids` one after the other, as Linux's put_user calls do: a bad pointer stops there.
int64_t put_ids(Call& c, const uint64_t ptrs[3], const uint32_t ids[3], bool narrow) {
  for (int i = 0; i < 3; ++i) {
    const bool ok = narrow ? c.mem.write_value(c.v, ptrs[i], narrow_id(ids[i])) : c.mem.write_value(c.v, ptrs[i], ids[i]);
    if (!ok) return -EFAULT;
  }
  return 0;
}

// capget/capset's pid as the host sees it: this thread is 0; the process, or another guest
// process, is this thread too (all of them hold the ids emu started with, unless one changed
// its own); pid 1 is the host's init; a pid no guest has becomes one no host task has
// (ESRCH/EPERM from the host).
int host_cap_pid(Call& c, int pid, bool for_set) {
  if (pid == 0 || pid == c.vcpu.tid()) return 0;
  if (pid < 0) return pid;
  if (!for_set && (pid == c.proc.pid() || c.proc.machine().find_process(pid))) return 0;
  // init: the process that guests' orphans name as their parent is the host's (as getppid
  // answers 1 for them), and anyone may read its capabilities.
  if (!for_set && pid == 1) return 1;
  return INT_MAX;
}

// Entries of the capability data array for a header version (0: unknown version).
int cap_entries(uint32_t version) {
  switch (version) {
    case _LINUX_CAPABILITY_VERSION_1: return 1;
    case _LINUX_CAPABILITY_VERSION_2: case _LINUX_CAPABILITY_VERSION_3: return 2;
    default: return 0;
  }
}

}  // namespace

uint32_t id_from16(uint64_t id) {
  const uint32_t v = static_cast<uint32_t>(id & 0xffff);
  return v == 0xffff ? UINT32_MAX : v;
}

int64_t get_id16(long host_nr) { return narrow_id(static_cast<uint32_t>(::syscall(host_nr))); }

int64_t getresid(Call& c, bool group, uint64_t r, uint64_t e, uint64_t s, bool narrow) {
  uint32_t ids[3];
  if (::syscall(group ? SYS_getresgid : SYS_getresuid, &ids[0], &ids[1], &ids[2]) != 0) return -errno;
  const uint64_t ptrs[3] = {r, e, s};
  return put_ids(c, ptrs, ids, narrow);
}

int64_t getgroups(Call& c, int size, uint64_t list, bool narrow) {
  if (size < 0) return -EINVAL;
  std::vector<gid_t> groups(kNgroupsMax);
  const long n = ::syscall(SYS_getgroups, kNgroupsMax, groups.data());
  if (n < 0) return -errno;
  if (size == 0) return n;  // how many there are
  if (n > size) return -EINVAL;
  for (long i = 0; i < n; ++i) {
    const bool ok = narrow ? c.mem.write_value(c.v, list + i * 2, narrow_id(groups[i]))
                           : c.mem.write_value(c.v, list + i * 4, static_cast<uint32_t>(groups[i]));
    if (!ok) return -EFAULT;
  }
  return n;
}

int64_t setgroups(Call& c, int size, uint64_t list, bool narrow) {
  if (size < 0 || size > kNgroupsMax) return -EINVAL;
  std::vector<gid_t> groups(static_cast<size_t>(size));
  bool readable = true;
  for (int i = 0; i < size && readable; ++i) {
    if (narrow) {
      uint16_t g;
      readable = c.mem.read_value(c.v, list + i * 2, g);
      groups[i] = id_from16(g);  // 0xffff: -1, which the host refuses (EINVAL) as Linux does
    } else {
      readable = c.mem.read_value(c.v, list + i * 4, groups[i]);
    }
  }
  // Unreadable: the host is given a list it cannot read either, after its permission check.
  return host_result(::syscall(SYS_setgroups, size, readable ? static_cast<void*>(groups.data()) : kFaulting));
}

int64_t capget(Call& c, uint64_t header, uint64_t data) {
  __user_cap_header_struct h{};
  if (!c.mem.read_value(c.v, header, h)) return host_result(::syscall(SYS_capget, kFaulting, nullptr));
  const uint32_t asked = h.version;
  h.pid = host_cap_pid(c, h.pid, false);
  __user_cap_data_struct d[2] = {};
  const long r = ::syscall(SYS_capget, &h, data ? d : nullptr);
  const int err = errno;
  // An unknown version: Linux writes the one it prefers into the header (the handshake
  // libcap makes with a NULL data pointer).
  if (h.version != asked && !c.mem.write_value(c.v, header, h.version)) return -EFAULT;
  if (r < 0) return -err;
  if (data && !c.mem.write(c.v, data, d, cap_entries(h.version) * sizeof d[0])) return -EFAULT;
  return 0;
}

int64_t capset(Call& c, uint64_t header, uint64_t data) {
  __user_cap_header_struct h{};
  if (!c.mem.read_value(c.v, header, h)) return host_result(::syscall(SYS_capset, kFaulting, nullptr));
  const uint32_t asked = h.version;
  h.pid = host_cap_pid(c, h.pid, true);  // only the calling thread may be changed
  __user_cap_data_struct d[2] = {};
  const size_t bytes = cap_entries(h.version) * sizeof d[0];
  const bool readable = !bytes || c.mem.read(c.v, data, d, bytes);
  const long r = ::syscall(SYS_capset, &h, readable ? static_cast<void*>(d) : kFaulting);
  const int err = errno;
  if (h.version != asked && !c.mem.write_value(c.v, header, h.version)) return -EFAULT;
  return r < 0 ? -err : 0;
}

}  // namespace emu::sys
