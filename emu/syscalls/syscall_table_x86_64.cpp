// x86_64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl) to handlers.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>

#include <cerrno>

#include "emu/process/guest_process.h"
#include "emu/syscalls/sys_handlers.h"

namespace emu::sys {

int64_t dispatch_x86_64(Call& c, uint64_t nr, bool* known) {
  const auto& a = c.a;
  const int fd = static_cast<int>(a[0]);
  switch (nr) {
    case 0: return read(c, fd, a[1], a[2]);
    case 1: return write(c, fd, a[1], a[2]);
    case 2: return openat(c, AT_FDCWD, a[0], static_cast<int>(a[1]), static_cast<int>(a[2]));
    case 3: return close(c, fd);
    case 4: return fstatat(c, AT_FDCWD, a[0], a[1], 0);
    case 5: return fstat(c, fd, a[1]);
    case 6: return fstatat(c, AT_FDCWD, a[0], a[1], AT_SYMLINK_NOFOLLOW);
    case 7: return poll(c, a[0], a[1], static_cast<int>(a[2]));
    case 8: return lseek(c, fd, static_cast<int64_t>(a[1]), static_cast<int>(a[2]));
    case 9: return mmap(c, a[0], a[1], static_cast<int>(a[2]), static_cast<int>(a[3]), static_cast<int>(a[4]), a[5]);
    case 10: return mprotect(c, a[0], a[1], static_cast<int>(a[2]));
    case 11: return munmap(c, a[0], a[1]);
    case 12: return brk(c, a[0]);
    case 13: return rt_sigaction(c, static_cast<int>(a[0]), a[1], a[2], a[3]);
    case 14: return rt_sigprocmask(c, static_cast<int>(a[0]), a[1], a[2], a[3]);
    case 15: return sigreturn(c, true);
    case 16: return ioctl(c, fd, a[1], a[2]);
    case 17: return pread(c, fd, a[1], a[2], static_cast<int64_t>(a[3]));
    case 18: return pwrite(c, fd, a[1], a[2], static_cast<int64_t>(a[3]));
    case 19: return readv(c, fd, a[1], a[2]);
    case 20: return writev(c, fd, a[1], a[2]);
    case 21: return faccessat(c, AT_FDCWD, a[0], static_cast<int>(a[1]), 0);
    case 22: return pipe2(c, a[0], 0);
    case 24: return plain(SYS_sched_yield);
    case 25: return mremap(c, a[0], a[1], a[2], static_cast<int>(a[3]), a[4]);
    case 28: return madvise(c, a[0], a[1], static_cast<int>(a[2]));
    case 32: return dup(c, fd);
    case 33: return dup3(c, fd, static_cast<int>(a[1]), 0, true);
    case 34: return pause(c);
    case 35: return nanosleep(c, a[0], a[1], true);
    case 39: return c.proc.pid();
    case 40: return sendfile(c, fd, static_cast<int>(a[1]), a[2], a[3], true);
    case 56: return clone(c, a[0], a[1], a[2], a[3], a[4]);
    case 57: return fork(c, SIGCHLD, 0, 0, 0);
    case 58: return fork(c, CLONE_VFORK | CLONE_VM | SIGCHLD, 0, 0, 0);
    case 59: return execve(c, AT_FDCWD, a[0], a[1], a[2], 0);
    case 61: return wait4(c, static_cast<int>(a[0]), a[1], static_cast<int>(a[2]), a[3]);
    case 60: return exit_thread(c, static_cast<int>(a[0]));
    case 62: return kill(c, static_cast<int>(a[0]), static_cast<int>(a[1]));
    case 63: return uname(c, a[0]);
    case 72: return fcntl(c, fd, static_cast<int>(a[1]), a[2], true);
    case 74: return fd_call(c, SYS_fsync, fd);
    case 75: return fd_call(c, SYS_fdatasync, fd);
    case 77: return fd_call(c, SYS_ftruncate, fd, a[1]);
    case 79: return getcwd(c, a[0], a[1]);
    case 80: return chdir(c, a[0]);
    case 81: return fchdir(c, fd);
    case 82: return two_path_at_call(c, SYS_renameat, AT_FDCWD, a[0], AT_FDCWD, a[1], 0);
    case 83: return path_at_call(c, SYS_mkdirat, AT_FDCWD, a[0], a[1], 0);
    case 84: return path_at_call(c, SYS_unlinkat, AT_FDCWD, a[0], AT_REMOVEDIR, 0);
    case 87: return path_at_call(c, SYS_unlinkat, AT_FDCWD, a[0], 0, 0);
    case 89: return readlinkat(c, AT_FDCWD, a[0], a[1], a[2]);
    case 90: return path_at_call(c, SYS_fchmodat, AT_FDCWD, a[0], a[1], 0);
    case 91: return fd_call(c, SYS_fchmod, fd, a[1]);
    case 95: return plain(SYS_umask, a[0]);
    case 96: return gettimeofday(c, a[0], a[1]);
    case 97: return getrlimit(c, static_cast<int>(a[0]), a[1]);
    case 98: return getrusage(c, static_cast<int>(a[0]), a[1]);
    case 99: return sysinfo(c, a[0]);
    case 102: return plain(SYS_getuid);
    case 104: return plain(SYS_getgid);
    case 107: return plain(SYS_geteuid);
    case 108: return plain(SYS_getegid);
    case 109: return setpgid(c, static_cast<int>(a[0]), static_cast<int>(a[1]));
    case 110: return c.proc.ppid();
    case 111: return getpgid(c, 0);
    case 112: return setsid(c);
    case 121: return getpgid(c, static_cast<int>(a[0]));
    case 124: return getsid(c, static_cast<int>(a[0]));
    case 127: return rt_sigpending(c, a[0], a[1]);
    case 128: return rt_sigtimedwait(c, a[0], a[1], a[2], a[3], true);
    case 130: return rt_sigsuspend(c, a[0], a[1]);
    case 131: return sigaltstack(c, a[0], a[1]);
    case 157: return prctl(c, static_cast<int>(a[0]), a[1], a[2], a[3], a[4]);
    case 158: return arch_prctl(c, static_cast<int>(a[0]), a[1]);
    case 186: return c.vcpu.tid();
    case 200: return tgkill(c, c.proc.pid(), static_cast<int>(a[0]), static_cast<int>(a[1]));
    case 201: return time(c, a[0]);
    case 202: return futex(c, a[0], static_cast<int>(a[1]), static_cast<uint32_t>(a[2]), a[3], a[4], static_cast<uint32_t>(a[5]), true);
    case 204: return sched_getaffinity(c, static_cast<int>(a[0]), a[1], a[2]);
    case 217: return getdents64(c, fd, a[1], a[2]);
    case 218: return set_tid_address(c, a[0]);
    case 227: return clock_settime(c, static_cast<int>(a[0]), a[1], true);
    case 228: return clock_gettime(c, static_cast<int>(a[0]), a[1], true);
    case 229: return clock_getres(c, static_cast<int>(a[0]), a[1], true);
    case 230: return clock_nanosleep(c, static_cast<int>(a[0]), static_cast<int>(a[1]), a[2], a[3], true);
    case 41: return socket(c, fd, static_cast<int>(a[1]), static_cast<int>(a[2]));
    case 42: return connect(c, fd, a[1], a[2]);
    case 43: return accept4(c, fd, a[1], a[2], 0);
    case 44: return sendto(c, fd, a[1], a[2], static_cast<int>(a[3]), a[4], a[5]);
    case 45: return recvfrom(c, fd, a[1], a[2], static_cast<int>(a[3]), a[4], a[5]);
    case 46: return sendmsg(c, fd, a[1], static_cast<int>(a[2]));
    case 47: return recvmsg(c, fd, a[1], static_cast<int>(a[2]));
    case 48: return shutdown(c, fd, static_cast<int>(a[1]));
    case 49: return bind(c, fd, a[1], a[2]);
    case 50: return listen(c, fd, static_cast<int>(a[1]));
    case 51: return sockname(c, fd, a[1], a[2], false);
    case 52: return sockname(c, fd, a[1], a[2], true);
    case 53: return socketpair(c, fd, static_cast<int>(a[1]), static_cast<int>(a[2]), a[3]);
    case 54: return setsockopt(c, fd, static_cast<int>(a[1]), static_cast<int>(a[2]), a[3], a[4]);
    case 55: return getsockopt(c, fd, static_cast<int>(a[1]), static_cast<int>(a[2]), a[3], a[4]);
    case 288: return accept4(c, fd, a[1], a[2], static_cast<int>(a[3]));
    case 137: return statfs(c, a[0], a[1], false);
    case 138: return fstatfs(c, fd, a[1], false);
    case 188: return setxattr(c, a[0], AT_FDCWD, a[1], a[2], a[3], static_cast<int>(a[4]), true);
    case 189: return setxattr(c, a[0], AT_FDCWD, a[1], a[2], a[3], static_cast<int>(a[4]), false);
    case 190: return setxattr(c, 0, fd, a[1], a[2], a[3], static_cast<int>(a[4]), true);
    case 191: return getxattr(c, a[0], a[1], a[2], a[3], true);
    case 192: return getxattr(c, a[0], a[1], a[2], a[3], false);
    case 193: return fgetxattr(c, fd, a[1], a[2], a[3]);
    case 194: return listxattr(c, a[0], a[1], a[2], true);
    case 195: return listxattr(c, a[0], a[1], a[2], false);
    case 196: return flistxattr(c, fd, a[1], a[2]);
    case 197: return removexattr(c, a[0], AT_FDCWD, a[1], true);
    case 198: return removexattr(c, a[0], AT_FDCWD, a[1], false);
    case 199: return removexattr(c, 0, fd, a[1], true);
    case 221: return fadvise(c, fd, static_cast<int64_t>(a[1]), static_cast<int64_t>(a[2]), static_cast<int>(a[3]));
    case 231: return exit_group(c, static_cast<int>(a[0]));
    case 234: return tgkill(c, static_cast<int>(a[0]), static_cast<int>(a[1]), static_cast<int>(a[2]));
    case 85: return openat(c, AT_FDCWD, a[0], O_CREAT | O_WRONLY | O_TRUNC, static_cast<int>(a[1]));  // creat
    case 257: return openat(c, fd, a[1], static_cast<int>(a[2]), static_cast<int>(a[3]));
    case 258: return path_at_call(c, SYS_mkdirat, fd, a[1], a[2], 0);
    case 262: return fstatat(c, fd, a[1], a[2], static_cast<int>(a[3]));
    case 263: return path_at_call(c, SYS_unlinkat, fd, a[1], a[2], 0);
    case 264: return two_path_at_call(c, SYS_renameat, fd, a[1], static_cast<int>(a[2]), a[3], 0);
    case 267: return readlinkat(c, fd, a[1], a[2], a[3]);
    case 268: return path_at_call(c, SYS_fchmodat, fd, a[1], a[2], 0);
    case 269: return faccessat(c, fd, a[1], static_cast<int>(a[2]), 0);
    case 271: return ppoll(c, a[0], a[1], a[2], a[3], a[4], true);
    case 23: return select(c, static_cast<int>(a[0]), a[1], a[2], a[3], a[4]);
    case 270: return pselect6(c, static_cast<int>(a[0]), a[1], a[2], a[3], a[4], a[5], true);
    case 273: return 0;   // set_robust_list: accepted (no robust-futex cleanup on thread death)
    case 292: return dup3(c, fd, static_cast<int>(a[1]), static_cast<int>(a[2]), false);
    case 293: return pipe2(c, a[0], static_cast<int>(a[1]));
    case 160: return setrlimit(c, static_cast<int>(a[0]), a[1]);
    case 302: return prlimit64(c, static_cast<int>(a[0]), static_cast<int>(a[1]), a[2], a[3]);
    case 247: return waitid(c, static_cast<int>(a[0]), static_cast<int>(a[1]), a[2], static_cast<int>(a[3]), a[4]);
    case 318: return getrandom(c, a[0], a[1], static_cast<unsigned>(a[2]));
    case 322: return execve(c, fd, a[1], a[2], a[3], static_cast<int>(a[4]));
    case 332: return statx(c, fd, a[1], static_cast<int>(a[2]), static_cast<unsigned>(a[3]), a[4]);
    case 334: return -ENOSYS;  // rseq: glibc copes (qemu-user answers the same)
    case 424: return pidfd_send_signal(c, fd, static_cast<int>(a[1]), a[2], static_cast<unsigned>(a[3]));
    case 434: return pidfd_open(c, static_cast<int>(a[0]), static_cast<unsigned>(a[1]));
    case 435: return clone3(c, a[0], a[1]);
    case 436: return close_range(c, static_cast<unsigned>(a[0]), static_cast<unsigned>(a[1]), static_cast<unsigned>(a[2]));
    case 439: return faccessat(c, fd, a[1], static_cast<int>(a[2]), static_cast<int>(a[3]));
    // Signals that carry values
    case 129: return rt_sigqueueinfo(c, static_cast<int>(a[0]), static_cast<int>(a[1]), a[2]);
    case 297: return rt_tgsigqueueinfo(c, static_cast<int>(a[0]), static_cast<int>(a[1]), static_cast<int>(a[2]), a[3]);
    // epoll
    case 213: return epoll_create(c, static_cast<int>(a[0]));
    case 232: return epoll_wait(c, fd, a[1], static_cast<int>(a[2]), static_cast<int>(a[3]));
    case 233: return epoll_ctl(c, fd, static_cast<int>(a[1]), static_cast<int>(a[2]), a[3]);
    case 281: return epoll_pwait(c, fd, a[1], static_cast<int>(a[2]), static_cast<int>(a[3]), a[4], a[5]);
    case 291: return epoll_create1(c, static_cast<int>(a[0]));
    case 441: return epoll_pwait2(c, fd, a[1], static_cast<int>(a[2]), a[3], a[4], a[5]);
    // Event descriptors
    case 282: return signalfd4(c, fd, a[1], a[2], 0);
    case 289: return signalfd4(c, fd, a[1], a[2], static_cast<int>(a[3]));
    case 283: return timerfd_create(c, static_cast<int>(a[0]), static_cast<int>(a[1]));
    case 286: return timerfd_settime(c, fd, static_cast<int>(a[1]), a[2], a[3], true);
    case 287: return timerfd_gettime(c, fd, a[1], true);
    case 284: return eventfd2(c, static_cast<unsigned>(a[0]), 0);
    case 290: return eventfd2(c, static_cast<unsigned>(a[0]), static_cast<int>(a[1]));
    case 253: return inotify_init1(c, 0);
    case 254: return inotify_add_watch(c, fd, a[1], static_cast<uint32_t>(a[2]));
    case 255: return inotify_rm_watch(c, fd, static_cast<int>(a[1]));
    case 294: return inotify_init1(c, static_cast<int>(a[0]));
    case 319: return memfd_create(c, a[0], static_cast<unsigned>(a[1]));
    // Timers
    case 36: return getitimer(c, static_cast<int>(a[0]), a[1]);
    case 37: return alarm(c, static_cast<unsigned>(a[0]));
    case 38: return setitimer(c, static_cast<int>(a[0]), a[1], a[2]);
    case 222: return timer_create(c, static_cast<int>(a[0]), a[1], a[2]);
    case 223: return timer_settime(c, static_cast<int>(a[0]), static_cast<int>(a[1]), a[2], a[3], true);
    case 224: return timer_gettime(c, static_cast<int>(a[0]), a[1], true);
    case 225: return timer_getoverrun(c, static_cast<int>(a[0]));
    case 226: return timer_delete(c, static_cast<int>(a[0]));
    case 299: return recvmmsg(c, fd, a[1], a[2], static_cast<int>(a[3]), a[4], true);
    case 307: return sendmmsg(c, fd, a[1], a[2], static_cast<int>(a[3]));
    // Files by name and descriptor, locks, identity, scheduling, memory hints, usage.
    case 73: return flock(c, fd, static_cast<unsigned>(a[1]));
    case 76: return truncate(c, a[0], static_cast<int64_t>(a[1]));
    case 86: return linkat(c, AT_FDCWD, a[0], AT_FDCWD, a[1], 0);
    case 88: return symlinkat(c, a[0], AT_FDCWD, a[1]);
    case 92: return fchownat(c, AT_FDCWD, a[0], static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2]), 0);
    case 93: return fchown(c, fd, static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2]));
    case 94: return fchownat(c, AT_FDCWD, a[0], static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2]), AT_SYMLINK_NOFOLLOW);
    case 132: return utime(c, a[0], a[1]);
    case 133: return mknodat(c, AT_FDCWD, a[0], static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2]));
    case 162: return plain(SYS_sync);
    case 235: return futimesat(c, AT_FDCWD, a[0], a[1]);
    case 259: return mknodat(c, fd, a[1], static_cast<uint32_t>(a[2]), static_cast<uint32_t>(a[3]));
    case 260: return fchownat(c, fd, a[1], static_cast<uint32_t>(a[2]), static_cast<uint32_t>(a[3]), static_cast<int>(a[4]));
    case 261: return futimesat(c, fd, a[1], a[2]);
    case 265: return linkat(c, fd, a[1], static_cast<int>(a[2]), a[3], static_cast<int>(a[4]));
    case 266: return symlinkat(c, a[0], static_cast<int>(a[1]), a[2]);
    case 275: return splice(c, fd, a[1], static_cast<int>(a[2]), a[3], a[4], static_cast<unsigned>(a[5]));
    case 276: return tee(c, fd, static_cast<int>(a[1]), a[2], static_cast<unsigned>(a[3]));
    case 277: return sync_file_range(c, fd, static_cast<int64_t>(a[1]), static_cast<int64_t>(a[2]), static_cast<unsigned>(a[3]));
    case 280: return utimensat(c, fd, a[1], a[2], static_cast<int>(a[3]), true);
    case 285: return fallocate(c, fd, static_cast<int>(a[1]), static_cast<int64_t>(a[2]), static_cast<int64_t>(a[3]));
    case 295: return preadv(c, fd, a[1], a[2], static_cast<int64_t>(a[3]), 0, false);  // the high word is ignored
    case 296: return pwritev(c, fd, a[1], a[2], static_cast<int64_t>(a[3]), 0, false);
    case 306: return fd_call(c, SYS_syncfs, fd);
    case 316: return renameat2(c, fd, a[1], static_cast<int>(a[2]), a[3], static_cast<unsigned>(a[4]));
    case 326: return copy_file_range(c, fd, a[1], static_cast<int>(a[2]), a[3], a[4], static_cast<unsigned>(a[5]));
    case 327: return preadv(c, fd, a[1], a[2], static_cast<int64_t>(a[3]), static_cast<int>(a[5]), true);
    case 328: return pwritev(c, fd, a[1], a[2], static_cast<int64_t>(a[3]), static_cast<int>(a[5]), true);
    case 105: return plain(SYS_setuid, static_cast<uint32_t>(a[0]));
    case 106: return plain(SYS_setgid, static_cast<uint32_t>(a[0]));
    case 113: return plain(SYS_setreuid, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1]));
    case 114: return plain(SYS_setregid, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1]));
    case 115: return getgroups(c, static_cast<int>(a[0]), a[1], false);
    case 116: return setgroups(c, static_cast<int>(a[0]), a[1], false);
    case 117: return plain(SYS_setresuid, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2]));
    case 118: return getresid(c, false, a[0], a[1], a[2], false);
    case 119: return plain(SYS_setresgid, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2]));
    case 120: return getresid(c, true, a[0], a[1], a[2], false);
    case 122: return plain(SYS_setfsuid, static_cast<uint32_t>(a[0]));
    case 123: return plain(SYS_setfsgid, static_cast<uint32_t>(a[0]));
    case 125: return capget(c, a[0], a[1]);
    case 126: return capset(c, a[0], a[1]);
    case 135: return personality(c, static_cast<uint32_t>(a[0]));
    case 140: return getpriority(c, static_cast<int>(a[0]), static_cast<int>(a[1]));
    case 141: return setpriority(c, static_cast<int>(a[0]), static_cast<int>(a[1]), static_cast<int>(a[2]));
    case 142: return sched_setscheduler(c, static_cast<int>(a[0]), 0, a[1], true);
    case 143: return sched_getparam(c, static_cast<int>(a[0]), a[1]);
    case 144: return sched_setscheduler(c, static_cast<int>(a[0]), static_cast<int>(a[1]), a[2], false);
    case 145: return sched_getscheduler(c, static_cast<int>(a[0]));
    case 146: return plain(SYS_sched_get_priority_max, static_cast<uint32_t>(a[0]));
    case 147: return plain(SYS_sched_get_priority_min, static_cast<uint32_t>(a[0]));
    case 148: return sched_rr_get_interval(c, static_cast<int>(a[0]), a[1], true);
    case 203: return sched_setaffinity(c, static_cast<int>(a[0]), a[1], a[2]);
    case 309: return getcpu(c, a[0], a[1]);
    case 324: return membarrier(c, static_cast<int>(a[0]), static_cast<unsigned>(a[1]), static_cast<int>(a[2]));
    case 26: return msync(c, a[0], a[1], static_cast<int>(a[2]));
    case 27: return mincore(c, a[0], a[1], a[2]);
    case 149: return mlock(c, a[0], a[1], 0, true);
    case 150: return mlock(c, a[0], a[1], 0, false);
    case 151: return mlockall(c, static_cast<int>(a[0]));
    case 152: return 0;  // munlockall
    case 153: return -EPERM;  // vhangup: CAP_SYS_TTY_CONFIG, which a guest does not get
    case 325: return mlock(c, a[0], a[1], static_cast<unsigned>(a[2]), true);
    case 100: return times(c, a[0]);
    default:
      *known = false;
      return -ENOSYS;
  }
}

}  // namespace emu::sys
