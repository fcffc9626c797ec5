// i386 syscall numbers (arch/x86/entry/syscalls/syscall_32.tbl) to handlers. 64-bit file
// offsets arrive split over two registers (low word first).
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>

#include <cerrno>

#include "emu/process/guest_process.h"
#include "emu/syscalls/sys_handlers.h"

namespace emu::sys {

namespace {
int64_t pair64(uint64_t lo, uint64_t hi) { return static_cast<int64_t>((hi << 32) | (lo & 0xffffffffu)); }
int s32(uint64_t v) { return static_cast<int>(static_cast<int32_t>(v)); }

// The old i386 mmap(2) takes a pointer to its six arguments.
int64_t old_mmap(Call& c, uint64_t args) {
  uint32_t a[6];
  if (!c.mem.read(c.v, args, a, sizeof a)) return -EFAULT;
  return mmap(c, a[0], a[1], s32(a[2]), s32(a[3]), s32(a[4]), a[5]);
}
}  // namespace

int64_t dispatch_i386(Call& c, uint64_t nr, bool* known) {
  const auto& a = c.a;
  const int fd = s32(a[0]);
  switch (nr) {
    case 1: return exit_thread(c, s32(a[0]));
    case 2: return fork(c, SIGCHLD, 0, 0, 0);
    case 7: return wait4(c, static_cast<int>(a[0]), a[1], static_cast<int>(a[2]), 0);  // waitpid
    case 11: return execve(c, AT_FDCWD, a[0], a[1], a[2], 0);
    case 114: return wait4(c, static_cast<int>(a[0]), a[1], static_cast<int>(a[2]), a[3]);
    case 190: return fork(c, CLONE_VFORK | CLONE_VM | SIGCHLD, 0, 0, 0);
    case 284: return waitid(c, static_cast<int>(a[0]), static_cast<int>(a[1]), a[2], static_cast<int>(a[3]), a[4]);
    case 358: return execve(c, static_cast<int>(a[0]), a[1], a[2], a[3], static_cast<int>(a[4]));
    case 3: return read(c, fd, a[1], a[2]);
    case 4: return write(c, fd, a[1], a[2]);
    case 5: return openat(c, AT_FDCWD, a[0], s32(a[1]), s32(a[2]));
    case 8: return openat(c, AT_FDCWD, a[0], O_CREAT | O_WRONLY | O_TRUNC, s32(a[1]));  // creat
    case 6: return close(c, fd);
    case 10: return path_at_call(c, SYS_unlinkat, AT_FDCWD, a[0], 0, 0);
    case 12: return chdir(c, a[0]);
    case 13: return time(c, a[0]);
    case 15: return path_at_call(c, SYS_fchmodat, AT_FDCWD, a[0], a[1], 0);
    case 19: return lseek(c, fd, s32(a[1]), s32(a[2]));
    case 20: return c.proc.pid();
    case 29: return pause(c);
    case 33: return faccessat(c, AT_FDCWD, a[0], s32(a[1]), 0);
    case 37: return kill(c, s32(a[0]), s32(a[1]));
    case 38: return two_path_at_call(c, SYS_renameat, AT_FDCWD, a[0], AT_FDCWD, a[1], 0);
    case 39: return path_at_call(c, SYS_mkdirat, AT_FDCWD, a[0], a[1], 0);
    case 40: return path_at_call(c, SYS_unlinkat, AT_FDCWD, a[0], AT_REMOVEDIR, 0);
    case 41: return dup(c, fd);
    case 42: return pipe2(c, a[0], 0);
    case 45: return brk(c, a[0]);
    case 47: return get_id16(SYS_getgid);  // the old calls answer in 16 bits
    case 49: return get_id16(SYS_geteuid);
    case 50: return get_id16(SYS_getegid);
    case 24: return get_id16(SYS_getuid);
    case 54: return ioctl(c, fd, a[1], a[2]);
    case 55: return fcntl(c, fd, s32(a[1]), a[2], false);
    case 221: return fcntl(c, fd, s32(a[1]), a[2], true);
    case 57: return setpgid(c, s32(a[0]), s32(a[1]));
    case 60: return plain(SYS_umask, a[0]);
    case 63: return dup3(c, fd, s32(a[1]), 0, true);
    case 64: return c.proc.ppid();
    case 65: return getpgid(c, 0);
    case 66: return setsid(c);
    case 75: return setrlimit(c, s32(a[0]), a[1]);
    case 76: case 191: return getrlimit(c, s32(a[0]), a[1]);
    case 77: return getrusage(c, s32(a[0]), a[1]);
    case 78: return gettimeofday(c, a[0], a[1]);
    case 85: return readlinkat(c, AT_FDCWD, a[0], a[1], a[2]);
    case 90: return old_mmap(c, a[0]);
    case 91: return munmap(c, a[0], a[1]);
    case 93: return fd_call(c, SYS_ftruncate, fd, static_cast<uint64_t>(static_cast<int64_t>(s32(a[1]))));
    case 94: return fd_call(c, SYS_fchmod, fd, a[1]);
    case 116: return sysinfo(c, a[0]);
    case 111: return -EPERM;  // vhangup: CAP_SYS_TTY_CONFIG, which a guest does not get
    case 118: return fd_call(c, SYS_fsync, fd);
    case 120: return clone(c, a[0], a[1], a[2], a[4], a[3]);  // i386: flags, stack, ptid, tls, ctid
    case 122: return uname(c, a[0]);
    case 125: return mprotect(c, a[0], a[1], s32(a[2]));
    case 132: return getpgid(c, s32(a[0]));
    case 133: return fchdir(c, fd);
    case 140: return llseek(c, fd, a[1], a[2], a[3], s32(a[4]));
    case 145: return readv(c, fd, a[1], a[2]);
    case 146: return writev(c, fd, a[1], a[2]);
    case 147: return getsid(c, s32(a[0]));
    case 148: return fd_call(c, SYS_fdatasync, fd);
    case 158: return plain(SYS_sched_yield);
    case 162: return nanosleep(c, a[0], a[1], false);
    case 163: return mremap(c, a[0], a[1], a[2], s32(a[3]), a[4]);
    case 168: return poll(c, a[0], a[1], s32(a[2]));
    case 172: return prctl(c, s32(a[0]), a[1], a[2], a[3], a[4]);
    case 119: return sigreturn(c, false);
    case 173: return sigreturn(c, true);
    case 174: return rt_sigaction(c, s32(a[0]), a[1], a[2], a[3]);
    case 175: return rt_sigprocmask(c, s32(a[0]), a[1], a[2], a[3]);
    case 176: return rt_sigpending(c, a[0], a[1]);
    case 177: return rt_sigtimedwait(c, a[0], a[1], a[2], a[3], false);
    case 179: return rt_sigsuspend(c, a[0], a[1]);
    case 180: return pread(c, fd, a[1], a[2], pair64(a[3], a[4]));
    case 181: return pwrite(c, fd, a[1], a[2], pair64(a[3], a[4]));
    case 183: return getcwd(c, a[0], a[1]);
    case 186: return sigaltstack(c, a[0], a[1]);
    case 192: return mmap(c, a[0], a[1], s32(a[2]), s32(a[3]), s32(a[4]), a[5] * 4096);  // mmap2: offset in pages
    case 194: return fd_call(c, SYS_ftruncate, fd, static_cast<uint64_t>(pair64(a[1], a[2])));
    case 195: return fstatat(c, AT_FDCWD, a[0], a[1], 0);
    case 196: return fstatat(c, AT_FDCWD, a[0], a[1], AT_SYMLINK_NOFOLLOW);
    case 197: return fstat(c, fd, a[1]);
    case 199: return plain(SYS_getuid);
    case 200: return plain(SYS_getgid);
    case 201: return plain(SYS_geteuid);
    case 202: return plain(SYS_getegid);
    case 219: return madvise(c, a[0], a[1], s32(a[2]));
    case 220: return getdents64(c, fd, a[1], a[2]);
    case 224: return c.vcpu.tid();
    case 238: return tgkill(c, c.proc.pid(), s32(a[0]), s32(a[1]));
    case 239: return sendfile(c, fd, s32(a[1]), a[2], a[3], true);
    case 240: return futex(c, a[0], s32(a[1]), static_cast<uint32_t>(a[2]), a[3], a[4], static_cast<uint32_t>(a[5]), false);
    case 242: return sched_getaffinity(c, s32(a[0]), a[1], a[2]);
    case 243: return set_thread_area(c, a[0]);
    case 102: return socketcall(c, s32(a[0]), a[1]);
    // The direct socket calls (Linux 4.3+), which glibc uses where it can.
    case 359: return socket(c, fd, s32(a[1]), s32(a[2]));
    case 360: return socketpair(c, fd, s32(a[1]), s32(a[2]), a[3]);
    case 361: return bind(c, fd, a[1], a[2]);
    case 362: return connect(c, fd, a[1], a[2]);
    case 363: return listen(c, fd, s32(a[1]));
    case 364: return accept4(c, fd, a[1], a[2], s32(a[3]));
    case 365: return getsockopt(c, fd, s32(a[1]), s32(a[2]), a[3], a[4]);
    case 366: return setsockopt(c, fd, s32(a[1]), s32(a[2]), a[3], a[4]);
    case 367: return sockname(c, fd, a[1], a[2], false);
    case 368: return sockname(c, fd, a[1], a[2], true);
    case 369: return sendto(c, fd, a[1], a[2], s32(a[3]), a[4], a[5]);
    case 370: return sendmsg(c, fd, a[1], s32(a[2]));
    case 371: return recvfrom(c, fd, a[1], a[2], s32(a[3]), a[4], a[5]);
    case 372: return recvmsg(c, fd, a[1], s32(a[2]));
    case 373: return shutdown(c, fd, s32(a[1]));
    case 99: return statfs(c, a[0], a[1], false);
    case 100: return fstatfs(c, fd, a[1], false);
    // statfs64 and fstatfs64 name the structure's size: i386's compat_statfs64 is 84 bytes
    // (packed), and x86 Linux takes no other.
    case 268: return a[1] == 84 ? statfs(c, a[0], a[2], true) : -EINVAL;
    case 269: return a[1] == 84 ? fstatfs(c, fd, a[2], true) : -EINVAL;
    case 226: return setxattr(c, a[0], AT_FDCWD, a[1], a[2], a[3], s32(a[4]), true);
    case 227: return setxattr(c, a[0], AT_FDCWD, a[1], a[2], a[3], s32(a[4]), false);
    case 228: return setxattr(c, 0, fd, a[1], a[2], a[3], s32(a[4]), true);
    case 229: return getxattr(c, a[0], a[1], a[2], a[3], true);
    case 230: return getxattr(c, a[0], a[1], a[2], a[3], false);
    case 231: return fgetxattr(c, fd, a[1], a[2], a[3]);
    case 232: return listxattr(c, a[0], a[1], a[2], true);
    case 233: return listxattr(c, a[0], a[1], a[2], false);
    case 234: return flistxattr(c, fd, a[1], a[2]);
    case 235: return removexattr(c, a[0], AT_FDCWD, a[1], true);
    case 236: return removexattr(c, a[0], AT_FDCWD, a[1], false);
    case 237: return removexattr(c, 0, fd, a[1], true);
    case 250: return fadvise(c, fd, pair64(a[1], a[2]), static_cast<int64_t>(a[3] & 0xffffffffu), s32(a[4]));
    case 272: return fadvise(c, fd, pair64(a[1], a[2]), pair64(a[3], a[4]), s32(a[5]));
    case 436: return close_range(c, static_cast<unsigned>(a[0]), static_cast<unsigned>(a[1]), static_cast<unsigned>(a[2]));
    case 252: return exit_group(c, s32(a[0]));
    case 258: return set_tid_address(c, a[0]);
    case 264: return clock_settime(c, s32(a[0]), a[1], false);
    case 265: return clock_gettime(c, s32(a[0]), a[1], false);
    case 266: return clock_getres(c, s32(a[0]), a[1], false);
    case 267: return clock_nanosleep(c, s32(a[0]), s32(a[1]), a[2], a[3], false);
    case 270: return tgkill(c, s32(a[0]), s32(a[1]), s32(a[2]));
    case 295: return openat(c, fd, a[1], s32(a[2]), s32(a[3]));
    case 296: return path_at_call(c, SYS_mkdirat, fd, a[1], a[2], 0);
    case 300: return fstatat(c, fd, a[1], a[2], s32(a[3]));
    case 301: return path_at_call(c, SYS_unlinkat, fd, a[1], a[2], 0);
    case 302: return two_path_at_call(c, SYS_renameat, fd, a[1], s32(a[2]), a[3], 0);
    case 305: return readlinkat(c, fd, a[1], a[2], a[3]);
    case 306: return path_at_call(c, SYS_fchmodat, fd, a[1], a[2], 0);
    case 307: return faccessat(c, fd, a[1], s32(a[2]), 0);
    case 309: return ppoll(c, a[0], a[1], a[2], a[3], a[4], false);
    case 82: return old_select(c, a[0]);
    case 142: return select(c, s32(a[0]), a[1], a[2], a[3], a[4]);
    case 308: return pselect6(c, s32(a[0]), a[1], a[2], a[3], a[4], a[5], false);
    case 413: return pselect6(c, s32(a[0]), a[1], a[2], a[3], a[4], a[5], true);
    case 311: return 0;  // set_robust_list
    case 330: return dup3(c, fd, s32(a[1]), s32(a[2]), false);
    case 331: return pipe2(c, a[0], s32(a[1]));
    case 340: return prlimit64(c, s32(a[0]), s32(a[1]), a[2], a[3]);
    case 355: return getrandom(c, a[0], a[1], static_cast<unsigned>(a[2]));
    case 383: return statx(c, fd, a[1], s32(a[2]), static_cast<unsigned>(a[3]), a[4]);
    case 386: return -ENOSYS;  // rseq
    case 403: return clock_gettime(c, s32(a[0]), a[1], true);
    case 404: return clock_settime(c, s32(a[0]), a[1], true);
    case 406: return clock_getres(c, s32(a[0]), a[1], true);
    case 407: return clock_nanosleep(c, s32(a[0]), s32(a[1]), a[2], a[3], true);
    case 414: return ppoll(c, a[0], a[1], a[2], a[3], a[4], true);
    case 421: return rt_sigtimedwait(c, a[0], a[1], a[2], a[3], true);
    case 422: return futex(c, a[0], s32(a[1]), static_cast<uint32_t>(a[2]), a[3], a[4], static_cast<uint32_t>(a[5]), true);
    case 424: return pidfd_send_signal(c, fd, static_cast<int>(a[1]), a[2], static_cast<unsigned>(a[3]));
    case 434: return pidfd_open(c, static_cast<int>(a[0]), static_cast<unsigned>(a[1]));
    case 435: return clone3(c, a[0], a[1]);
    case 439: return faccessat(c, fd, a[1], s32(a[2]), s32(a[3]));
    // Signals that carry values
    case 178: return rt_sigqueueinfo(c, s32(a[0]), s32(a[1]), a[2]);
    case 335: return rt_tgsigqueueinfo(c, s32(a[0]), s32(a[1]), s32(a[2]), a[3]);
    // epoll
    case 254: return epoll_create(c, s32(a[0]));
    case 255: return epoll_ctl(c, fd, s32(a[1]), s32(a[2]), a[3]);
    case 256: return epoll_wait(c, fd, a[1], s32(a[2]), s32(a[3]));
    case 319: return epoll_pwait(c, fd, a[1], s32(a[2]), s32(a[3]), a[4], a[5]);
    case 329: return epoll_create1(c, s32(a[0]));
    case 441: return epoll_pwait2(c, fd, a[1], s32(a[2]), a[3], a[4], a[5]);
    // Event descriptors
    case 321: return signalfd4(c, fd, a[1], a[2], 0);
    case 327: return signalfd4(c, fd, a[1], a[2], s32(a[3]));
    case 322: return timerfd_create(c, s32(a[0]), s32(a[1]));
    case 325: return timerfd_settime(c, fd, s32(a[1]), a[2], a[3], false);
    case 326: return timerfd_gettime(c, fd, a[1], false);
    case 410: return timerfd_gettime(c, fd, a[1], true);
    case 411: return timerfd_settime(c, fd, s32(a[1]), a[2], a[3], true);
    case 323: return eventfd2(c, static_cast<unsigned>(a[0]), 0);
    case 328: return eventfd2(c, static_cast<unsigned>(a[0]), s32(a[1]));
    case 291: return inotify_init1(c, 0);
    case 292: return inotify_add_watch(c, fd, a[1], static_cast<uint32_t>(a[2]));
    case 293: return inotify_rm_watch(c, fd, s32(a[1]));
    case 332: return inotify_init1(c, s32(a[0]));
    case 356: return memfd_create(c, a[0], static_cast<unsigned>(a[1]));
    // Timers
    case 27: return alarm(c, static_cast<unsigned>(a[0]));
    case 104: return setitimer(c, s32(a[0]), a[1], a[2]);
    case 105: return getitimer(c, s32(a[0]), a[1]);
    case 259: return timer_create(c, s32(a[0]), a[1], a[2]);
    case 260: return timer_settime(c, s32(a[0]), s32(a[1]), a[2], a[3], false);
    case 261: return timer_gettime(c, s32(a[0]), a[1], false);
    case 262: return timer_getoverrun(c, s32(a[0]));
    case 263: return timer_delete(c, s32(a[0]));
    case 408: return timer_gettime(c, s32(a[0]), a[1], true);
    case 409: return timer_settime(c, s32(a[0]), s32(a[1]), a[2], a[3], true);
    case 337: return recvmmsg(c, fd, a[1], a[2], s32(a[3]), a[4], false);
    case 417: return recvmmsg(c, fd, a[1], a[2], s32(a[3]), a[4], true);
    case 345: return sendmmsg(c, fd, a[1], a[2], s32(a[3]));
    // Files by name and descriptor, locks, identity, scheduling, memory hints, usage. The
    // plain chown/lchown/fchown and the set/get*id calls are the 16-bit ones, *32 the wide.
    case 9: return linkat(c, AT_FDCWD, a[0], AT_FDCWD, a[1], 0);
    case 14: return mknodat(c, AT_FDCWD, a[0], static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2]));
    case 16: return fchownat(c, AT_FDCWD, a[0], id_from16(a[1]), id_from16(a[2]), AT_SYMLINK_NOFOLLOW);
    case 30: return utime(c, a[0], a[1]);
    case 36: return plain(SYS_sync);
    case 83: return symlinkat(c, a[0], AT_FDCWD, a[1]);
    case 92: return truncate(c, a[0], s32(a[1]));
    case 95: return fchown(c, fd, id_from16(a[1]), id_from16(a[2]));
    case 143: return flock(c, fd, static_cast<unsigned>(a[1]));
    case 182: return fchownat(c, AT_FDCWD, a[0], id_from16(a[1]), id_from16(a[2]), 0);
    case 187: return sendfile(c, fd, s32(a[1]), a[2], a[3], false);  // a 32-bit offset
    case 193: return truncate(c, a[0], pair64(a[1], a[2]));
    case 198: return fchownat(c, AT_FDCWD, a[0], static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2]), AT_SYMLINK_NOFOLLOW);
    case 207: return fchown(c, fd, static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2]));
    case 212: return fchownat(c, AT_FDCWD, a[0], static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2]), 0);
    case 271: return futimesat(c, AT_FDCWD, a[0], a[1]);
    case 297: return mknodat(c, fd, a[1], static_cast<uint32_t>(a[2]), static_cast<uint32_t>(a[3]));
    case 298: return fchownat(c, fd, a[1], static_cast<uint32_t>(a[2]), static_cast<uint32_t>(a[3]), s32(a[4]));
    case 299: return futimesat(c, fd, a[1], a[2]);
    case 303: return linkat(c, fd, a[1], s32(a[2]), a[3], s32(a[4]));
    case 304: return symlinkat(c, a[0], s32(a[1]), a[2]);
    case 313: return splice(c, fd, a[1], s32(a[2]), a[3], a[4], static_cast<unsigned>(a[5]));
    case 314: return sync_file_range(c, fd, pair64(a[1], a[2]), pair64(a[3], a[4]), static_cast<unsigned>(a[5]));
    case 315: return tee(c, fd, s32(a[1]), a[2], static_cast<unsigned>(a[3]));
    case 320: return utimensat(c, fd, a[1], a[2], s32(a[3]), false);
    case 412: return utimensat(c, fd, a[1], a[2], s32(a[3]), true);
    case 324: return fallocate(c, fd, s32(a[1]), pair64(a[2], a[3]), pair64(a[4], a[5]));
    case 333: return preadv(c, fd, a[1], a[2], pair64(a[3], a[4]), 0, false);
    case 334: return pwritev(c, fd, a[1], a[2], pair64(a[3], a[4]), 0, false);
    case 344: return fd_call(c, SYS_syncfs, fd);
    case 353: return renameat2(c, fd, a[1], s32(a[2]), a[3], static_cast<unsigned>(a[4]));
    case 377: return copy_file_range(c, fd, a[1], s32(a[2]), a[3], a[4], static_cast<unsigned>(a[5]));
    case 378: return preadv(c, fd, a[1], a[2], pair64(a[3], a[4]), s32(a[5]), true);
    case 379: return pwritev(c, fd, a[1], a[2], pair64(a[3], a[4]), s32(a[5]), true);
    case 23: return plain(SYS_setuid, id_from16(a[0]));
    case 46: return plain(SYS_setgid, id_from16(a[0]));
    case 70: return plain(SYS_setreuid, id_from16(a[0]), id_from16(a[1]));
    case 71: return plain(SYS_setregid, id_from16(a[0]), id_from16(a[1]));
    case 80: return getgroups(c, s32(a[0]), a[1], true);
    case 81: return setgroups(c, s32(a[0]), a[1], true);
    case 138: return plain(SYS_setfsuid, id_from16(a[0]));
    case 139: return plain(SYS_setfsgid, id_from16(a[0]));
    case 164: return plain(SYS_setresuid, id_from16(a[0]), id_from16(a[1]), id_from16(a[2]));
    case 165: return getresid(c, false, a[0], a[1], a[2], true);
    case 170: return plain(SYS_setresgid, id_from16(a[0]), id_from16(a[1]), id_from16(a[2]));
    case 171: return getresid(c, true, a[0], a[1], a[2], true);
    case 203: return plain(SYS_setreuid, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1]));
    case 204: return plain(SYS_setregid, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1]));
    case 205: return getgroups(c, s32(a[0]), a[1], false);
    case 206: return setgroups(c, s32(a[0]), a[1], false);
    case 208: return plain(SYS_setresuid, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2]));
    case 209: return getresid(c, false, a[0], a[1], a[2], false);
    case 210: return plain(SYS_setresgid, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2]));
    case 211: return getresid(c, true, a[0], a[1], a[2], false);
    case 213: return plain(SYS_setuid, static_cast<uint32_t>(a[0]));
    case 214: return plain(SYS_setgid, static_cast<uint32_t>(a[0]));
    case 215: return plain(SYS_setfsuid, static_cast<uint32_t>(a[0]));
    case 216: return plain(SYS_setfsgid, static_cast<uint32_t>(a[0]));
    case 184: return capget(c, a[0], a[1]);
    case 185: return capset(c, a[0], a[1]);
    case 96: return getpriority(c, s32(a[0]), s32(a[1]));
    case 97: return setpriority(c, s32(a[0]), s32(a[1]), s32(a[2]));
    case 136: return personality(c, static_cast<uint32_t>(a[0]));
    case 154: return sched_setscheduler(c, s32(a[0]), 0, a[1], true);
    case 155: return sched_getparam(c, s32(a[0]), a[1]);
    case 156: return sched_setscheduler(c, s32(a[0]), s32(a[1]), a[2], false);
    case 157: return sched_getscheduler(c, s32(a[0]));
    case 159: return plain(SYS_sched_get_priority_max, static_cast<uint32_t>(a[0]));
    case 160: return plain(SYS_sched_get_priority_min, static_cast<uint32_t>(a[0]));
    case 161: return sched_rr_get_interval(c, s32(a[0]), a[1], false);
    case 423: return sched_rr_get_interval(c, s32(a[0]), a[1], true);
    case 241: return sched_setaffinity(c, s32(a[0]), a[1], a[2]);
    case 318: return getcpu(c, a[0], a[1]);
    case 375: return membarrier(c, s32(a[0]), static_cast<unsigned>(a[1]), s32(a[2]));
    case 144: return msync(c, a[0], a[1], s32(a[2]));
    case 218: return mincore(c, a[0], a[1], a[2]);
    case 150: return mlock(c, a[0], a[1], 0, true);
    case 151: return mlock(c, a[0], a[1], 0, false);
    case 152: return mlockall(c, s32(a[0]));
    case 153: return 0;  // munlockall
    case 376: return mlock(c, a[0], a[1], static_cast<unsigned>(a[2]), true);
    case 43: return times(c, a[0]);
    default:
      *known = false;
      return -ENOSYS;
  }
}

}  // namespace emu::sys
