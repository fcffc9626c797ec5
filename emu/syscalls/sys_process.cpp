// Processes: fork, vfork, clone without CLONE_VM, execve, wait4, waitid, getppid. Every
// guest process lives inside this one host process (emu/process/machine.h).
#include <fcntl.h>
#include <linux/sched.h>
#include <spdlog/spdlog.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "emu/process/guest_process.h"
#include "emu/signals/signal_frame.h"
#include "emu/syscalls/sys_handlers.h"
#include "emu/syscalls/sys_paths.h"

namespace emu::sys {

namespace {

// A NULL-terminated array of guest string pointers (argv, envp).
// Linux's limits: each string at most MAX_ARG_STRLEN, all of them (with their pointers) at
// most a quarter of the 8 MiB default stack limit; past them E2BIG, before emu copies more.
int64_t read_string_array(Call& c, uint64_t array, std::vector<std::string>& out, size_t& total) {
  constexpr size_t kMaxString = 128 << 10, kMaxTotal = (8 << 20) / 4;
  if (!array) return 0;  // Linux takes a NULL argv or envp as empty
  const size_t ptr = c.i386 ? 4 : 8;
  for (size_t i = 0;; ++i) {
    uint64_t p = 0;
    if (!c.mem.read(c.v, array + i * ptr, &p, ptr)) return -EFAULT;
    if (!p) return 0;
    std::string s;
    // read_string stops at the limit with what it read: too long is E2BIG, unreadable EFAULT.
    if (!c.mem.read_string(c.v, p, kMaxString, s)) return s.size() == kMaxString ? -E2BIG : -EFAULT;
    total += s.size() + 1 + ptr;
    if (total > kMaxTotal) return -E2BIG;
    out.push_back(std::move(s));
  }
}


}  // namespace

int64_t fork(Call& c, uint64_t flags, uint64_t stack, uint64_t parent_tid, uint64_t child_tid) {
  const VcpuStart start = child_start(c, stack);
  // vfork and posix_spawn's CLONE_VM | CLONE_VFORK: the child runs in this process's memory
  // until it calls execve or ends (the parent waits), as on Linux. CLONE_VM without
  // CLONE_VFORK (a process sharing memory while both run) gets a copy-on-write copy.
  const bool vfork = flags & CLONE_VFORK;
  const bool share_vm = vfork && (flags & CLONE_VM);
  const int r = c.proc.fork(c.vcpu, start, vfork, [&](GuestProcess& child, int pid) {
    if (flags & CLONE_PARENT_SETTID) (void)c.mem.write_value(c.v, parent_tid, static_cast<uint32_t>(pid));
    // The child's copy of the word, written before it runs (glibc's fork: its tid field).
    if (flags & CLONE_CHILD_SETTID) (void)child.memory().write_value(c.v, child_tid, static_cast<uint32_t>(pid));
    // clone3's CLONE_CLEAR_SIGHAND: handlers back to the default, ignored ones stay ignored.
    if (flags & kCloneClearSighand) child.signals().reset_handlers();
  }, share_vm);
  return r;
}

int64_t execve(Call& c, int dirfd, uint64_t path, uint64_t argv, uint64_t envp, int flags) {
  if (flags & ~AT_EMPTY_PATH) return -EINVAL;
  HostPath where;
  if (const int64_t r = host_path(c, dirfd, path, where); r < 0) return r;
  if (where.path.empty()) return -ENOENT;
  std::vector<std::string> args, env;
  size_t total = 0;
  if (const int64_t r = read_string_array(c, argv, args, total); r < 0) return r;
  if (const int64_t r = read_string_array(c, envp, env, total); r < 0) return r;
  // The guest's path: absolute ones are looked up in the sysroot by open_program (host_path
  // did so already, and a second lookup finds the same file), relative ones through the
  // guest's directory fd.
  ElfError error;
  auto program = open_program(where.path, std::move(args), c.proc.config().sysroot, &error, where.dirfd);
  if (!program) {
    spdlog::debug("execve {}: {}", where.path, error.message);
    return -error.errno_value;
  }
  // AT_EXECFN is the name execve was given ("/proc/self/exe" stays that), not the file found.
  if (std::string raw; c.mem.read_string(c.v, path, PATH_MAX, raw)) program->execfn = raw;
  VcpuStart start;
  if (const int r = c.proc.exec(c.vcpu, *program, env, &start); r < 0) return r;
  c.vcpu.signals().altstack = AltStack{};  // the old image's memory; mask and pending signals stay
  c.vcpu.request_exec(start);
  return 0;
}

int64_t wait4(Call& c, int pid, uint64_t status, int options, uint64_t rusage) {
  if (options & ~(WNOHANG | WUNTRACED | WCONTINUED | __WALL | __WCLONE | __WNOTHREAD)) return -EINVAL;
  ExitInfo info;
  ResourceUsage used;
  const int r = c.proc.wait_child(pid, !(options & WNOHANG), false, &info, &c.vcpu, &used);
  if (r <= 0) return r;
  if (status && !c.mem.write_value(c.v, status, static_cast<int32_t>(info.wait_status()))) return -EFAULT;
  if (rusage && put_rusage(c, rusage, used) != 0) return -EFAULT;
  return r;
}

int64_t waitid(Call& c, int idtype, int id, uint64_t infop, int options, uint64_t rusage) {
  if (!(options & (WEXITED | WSTOPPED | WCONTINUED))) return -EINVAL;
  if (options & ~(WNOHANG | WEXITED | WSTOPPED | WCONTINUED | WNOWAIT | __WALL | __WCLONE | __WNOTHREAD)) return -EINVAL;
  int pid = -1;
  if (idtype == P_PID) {
    if (id <= 0) return -EINVAL;
    pid = id;
  } else if (idtype == P_PGID) {
    if (id < 0) return -EINVAL;
    if (id == 1) return -ECHILD;  // init's group: no guest child is in it (and -1 means "any" below)
    pid = -id;                    // wait_child's encoding of a group; 0: the caller's
  } else if (idtype != P_ALL) {
    return -EINVAL;
  }
  if (!(options & WEXITED)) return -ECHILD;  // stops and continues are never reported
  ExitInfo info;
  ResourceUsage used;
  const int r = c.proc.wait_child(pid, !(options & WNOHANG), options & WNOWAIT, &info, &c.vcpu, &used);
  if (r < 0) return r;
  if (infop) {
    // siginfo_t: signo, errno, code, then (after padding on x86_64) pid, uid, status.
    std::array<uint8_t, 128> si{};
    if (r > 0) write_siginfo(si.data(), child_siginfo(r, info), c.i386);
    if (!c.mem.write(c.v, infop, si.data(), si.size())) return -EFAULT;
  }
  if (rusage) {
    // The reaped child's usage; none when nothing was waited for (WNOHANG).
    if (put_rusage(c, rusage, r > 0 ? used : ResourceUsage{}) != 0) return -EFAULT;
  }
  return 0;
}

}  // namespace emu::sys
