// The handlers the per-architecture tables call. Each returns the syscall's result: a value,
// or -errno. Where the two ABIs lay a structure out differently the handler takes the call's
// `i386` flag into account.
#pragma once

#include <poll.h>
#include <time.h>

#include <chrono>
#include <optional>
#include <vector>

#include "emu/process/fd_table.h"
#include "emu/syscalls/syscalls.h"

namespace emu::sys {

// Files (sys_files.cpp). Guest fds and dirfds are the process's (FdTable), relative paths are
// looked up from its current directory.
int64_t read(Call& c, int fd, uint64_t buf, uint64_t n);
int64_t write(Call& c, int fd, uint64_t buf, uint64_t n);
int64_t pread(Call& c, int fd, uint64_t buf, uint64_t n, int64_t off);
int64_t pwrite(Call& c, int fd, uint64_t buf, uint64_t n, int64_t off);
int64_t readv(Call& c, int fd, uint64_t iov, uint64_t count);
int64_t writev(Call& c, int fd, uint64_t iov, uint64_t count);
int64_t openat(Call& c, int dirfd, uint64_t path, int flags, int mode);
int64_t lseek(Call& c, int fd, int64_t off, int whence);
int64_t llseek(Call& c, int fd, uint64_t hi, uint64_t lo, uint64_t result, int whence);
// `kind`: the guest's stat layout (x86_64 stat, i386 stat64).
int64_t fstatat(Call& c, int dirfd, uint64_t path, uint64_t buf, int flags);
int64_t fstat(Call& c, int fd, uint64_t buf);
int64_t statx(Call& c, int dirfd, uint64_t path, int flags, unsigned mask, uint64_t buf);
int64_t getdents64(Call& c, int fd, uint64_t buf, uint64_t n);
int64_t ioctl(Call& c, int fd, uint64_t request, uint64_t arg);
int64_t faccessat(Call& c, int dirfd, uint64_t path, int mode, int flags);
int64_t readlinkat(Call& c, int dirfd, uint64_t path, uint64_t buf, uint64_t n);
// The *at calls that take one path and plain numbers (mkdirat, unlinkat, fchmodat); the old
// calls (mkdir, unlink, ...) come here as their *at forms with AT_FDCWD.
int64_t path_at_call(Call& c, long host_nr, int dirfd, uint64_t path, uint64_t arg1, uint64_t arg2);
int64_t two_path_at_call(Call& c, long host_nr, int dirfd1, uint64_t path1, int dirfd2, uint64_t path2, uint64_t arg);
int64_t plain(long host_nr, uint64_t a0 = 0, uint64_t a1 = 0, uint64_t a2 = 0);  // no pointers, no fds: pass through
// A call on one fd and plain numbers (fsync, ftruncate, fchmod): the fd is the host's of the guest's.
int64_t fd_call(Call& c, long host_nr, int fd, uint64_t a1 = 0, uint64_t a2 = 0);
int64_t sendfile(Call& c, int out_fd, int in_fd, uint64_t offset_ptr, uint64_t count, bool offset_64);

// Waiting on many fds (sys_poll.cpp). A guest signal mask for the wait (ppoll, pselect6,
// epoll_pwait) is installed by install_wait_mask (0, -EINVAL for a size other than 8, -EFAULT)
// and put back by finish_wait_mask(result), which returns `result`: at once, or once a handler's
// frame holds it when the wait was interrupted, as Linux does.
int64_t poll(Call& c, uint64_t fds, uint64_t n, int timeout_ms);
int64_t ppoll(Call& c, uint64_t fds, uint64_t n, uint64_t timeout, uint64_t sigmask, uint64_t sigsetsize, bool time64);
int64_t select(Call& c, int n, uint64_t inp, uint64_t outp, uint64_t exp, uint64_t tvp);
int64_t old_select(Call& c, uint64_t args);  // i386's select(2) #82: a pointer to the five arguments
int64_t pselect6(Call& c, int n, uint64_t inp, uint64_t outp, uint64_t exp, uint64_t tsp, uint64_t sig, bool time64);
int64_t install_wait_mask(Call& c, uint64_t set, uint64_t size);
int64_t finish_wait_mask(Call& c, int64_t result);
// Waits like ppoll for host `fds` (revents filled in), and also ends when the process is ending
// (-EINTR) or a signal comes for this thread (-ERESTARTNOHAND). `timeout` null: no limit.
int64_t wait_host_fds(Call& c, std::vector<pollfd>& fds, const timespec* timeout);

// epoll (sys_epoll.cpp): host epoll instances behind the guest's fd table.
int64_t epoll_create(Call& c, int size);
int64_t epoll_create1(Call& c, int flags);
int64_t epoll_ctl(Call& c, int epfd, int op, int fd, uint64_t event);
int64_t epoll_wait(Call& c, int epfd, uint64_t events, int maxevents, int timeout_ms);
int64_t epoll_pwait(Call& c, int epfd, uint64_t events, int maxevents, int timeout_ms, uint64_t sigmask, uint64_t size);
int64_t epoll_pwait2(Call& c, int epfd, uint64_t events, int maxevents, uint64_t timeout, uint64_t sigmask, uint64_t size);

// Event descriptors (sys_event_fds.cpp). `time64`: i386's *_time64 calls.
int64_t eventfd2(Call& c, unsigned count, int flags);
int64_t timerfd_create(Call& c, int clock, int flags);
int64_t timerfd_settime(Call& c, int fd, int flags, uint64_t fresh, uint64_t old, bool time64);
int64_t timerfd_gettime(Call& c, int fd, uint64_t cur, bool time64);
int64_t inotify_init1(Call& c, int flags);
int64_t inotify_add_watch(Call& c, int fd, uint64_t path, uint32_t mask);
int64_t inotify_rm_watch(Call& c, int fd, int wd);
int64_t memfd_create(Call& c, uint64_t name, unsigned flags);
int64_t signalfd4(Call& c, int fd, uint64_t mask, uint64_t size, int flags);
// read() of a signalfd; nullopt for any other file.
std::optional<int64_t> signalfd_read(Call& c, const HostFile& f, uint64_t buf, uint64_t n);

// Interval timers (sys_timers.cpp): ITIMER_REAL and POSIX timers on the machine's TimerService.
int64_t alarm(Call& c, unsigned seconds);
int64_t setitimer(Call& c, int which, uint64_t fresh, uint64_t old);
int64_t getitimer(Call& c, int which, uint64_t cur);
int64_t timer_create(Call& c, int clock, uint64_t sevp, uint64_t id_out);
int64_t timer_settime(Call& c, int id, int flags, uint64_t fresh, uint64_t old, bool time64);
int64_t timer_gettime(Call& c, int id, uint64_t cur, bool time64);
int64_t timer_getoverrun(Call& c, int id);
int64_t timer_delete(Call& c, int id);
// The guest's struct itimerspec (two timespecs; i386's 32-bit ones unless `time64`).
bool read_itimerspec(Call& c, uint64_t addr, bool time64, itimerspec& out);
bool write_itimerspec(Call& c, uint64_t addr, bool time64, const itimerspec& v);

// Process groups and sessions (sys_groups.cpp).
int64_t setpgid(Call& c, int pid, int pgid);
int64_t getpgid(Call& c, int pid);
int64_t setsid(Call& c);
int64_t getsid(Call& c, int pid);
// TIOCGPGRP, TIOCSPGRP, TIOCGSID: the foreground group guests see (Machine::foreground_pgrp).
int64_t terminal_pgrp_ioctl(Call& c, int fd, uint64_t request, uint64_t arg);

// Before a blocking read, write, accept or receive on a pipe, socket or terminal: waits until
// `events` are ready, the process ends (-EINTR) or a signal comes for this thread
// (-ERESTARTSYS). 0 at once for a non-blocking descriptor (sys_files.cpp).
int64_t wait_ready(Call& c, const HostFile& f, short events);

// Sockets (sys_sockets.cpp): host sockets behind the guest's fd table. Addresses are copied
// as they are (sockaddr has one layout for both ABIs); `i386`-dependent layouts (msghdr,
// cmsghdr, iovec, timeval options) are converted.
int64_t socket(Call& c, int domain, int type, int protocol);
int64_t socketpair(Call& c, int domain, int type, int protocol, uint64_t sv);
int64_t bind(Call& c, int fd, uint64_t addr, uint64_t len);
int64_t connect(Call& c, int fd, uint64_t addr, uint64_t len);
int64_t listen(Call& c, int fd, int backlog);
int64_t accept4(Call& c, int fd, uint64_t addr, uint64_t lenp, int flags);
// getsockname (`peer` false) and getpeername.
int64_t sockname(Call& c, int fd, uint64_t addr, uint64_t lenp, bool peer);
int64_t sendto(Call& c, int fd, uint64_t buf, uint64_t len, int flags, uint64_t addr, uint64_t alen);
int64_t recvfrom(Call& c, int fd, uint64_t buf, uint64_t len, int flags, uint64_t addr, uint64_t lenp);
int64_t sendmsg(Call& c, int fd, uint64_t msg, int flags);
int64_t recvmsg(Call& c, int fd, uint64_t msg, int flags);
// The multiple-message forms: one sendmsg/recvmsg per struct mmsghdr, the count returned.
int64_t sendmmsg(Call& c, int fd, uint64_t vec, uint64_t vlen, int flags);
int64_t recvmmsg(Call& c, int fd, uint64_t vec, uint64_t vlen, int flags, uint64_t timeout, bool time64);
int64_t shutdown(Call& c, int fd, int how);
int64_t setsockopt(Call& c, int fd, int level, int name, uint64_t val, uint64_t len);
int64_t getsockopt(Call& c, int fd, int level, int name, uint64_t val, uint64_t lenp);
// i386's socketcall(2) multiplexer: `call` and a pointer to its arguments (32-bit words).
int64_t socketcall(Call& c, int call, uint64_t args);

// File-system queries and hints (sys_fs_info.cpp). `follow`: the l* forms do not follow a
// final symlink; set/remove act on `path` when `fd` is AT_FDCWD, else on `fd`. `wide`:
// i386's statfs64 layout.
int64_t getxattr(Call& c, uint64_t path, uint64_t name, uint64_t value, uint64_t size, bool follow);
int64_t fgetxattr(Call& c, int fd, uint64_t name, uint64_t value, uint64_t size);
int64_t listxattr(Call& c, uint64_t path, uint64_t list, uint64_t size, bool follow);
int64_t flistxattr(Call& c, int fd, uint64_t list, uint64_t size);
int64_t setxattr(Call& c, uint64_t path, int fd, uint64_t name, uint64_t value, uint64_t size, int flags, bool follow);
int64_t removexattr(Call& c, uint64_t path, int fd, uint64_t name, bool follow);
int64_t statfs(Call& c, uint64_t path, uint64_t buf, bool wide);
int64_t fstatfs(Call& c, int fd, uint64_t buf, bool wide);
int64_t fadvise(Call& c, int fd, int64_t offset, int64_t len, int advice);
int64_t close_range(Call& c, unsigned first, unsigned last, unsigned flags);

// The descriptor table and the current directory (sys_fds.cpp)
int64_t close(Call& c, int fd);
int64_t dup(Call& c, int fd);
int64_t dup3(Call& c, int fd, int fd2, int flags, bool dup2_semantics);
// `fcntl64`: i386's fcntl64 (its plain fcntl is Linux's compat fcntl64 too: the same commands).
int64_t fcntl(Call& c, int fd, int cmd, uint64_t arg, bool fcntl64);
int64_t pipe2(Call& c, uint64_t fds, int flags);
int64_t chdir(Call& c, uint64_t path);
int64_t fchdir(Call& c, int fd);
int64_t getcwd(Call& c, uint64_t buf, uint64_t n);

// Memory (sys_memory.cpp)
int64_t mmap(Call& c, uint64_t addr, uint64_t len, int prot, int flags, int fd, uint64_t offset);
int64_t munmap(Call& c, uint64_t addr, uint64_t len);
int64_t mprotect(Call& c, uint64_t addr, uint64_t len, int prot);
int64_t brk(Call& c, uint64_t end);
int64_t madvise(Call& c, uint64_t addr, uint64_t len, int advice);
int64_t mremap(Call& c, uint64_t old_addr, uint64_t old_len, uint64_t new_len, int flags, uint64_t new_addr);

// Processes (sys_process.cpp). fork takes clone's flags (clone3's 64-bit ones included).
inline constexpr uint64_t kCloneClearSighand = 0x100000000ULL, kCloneIntoCgroup = 0x200000000ULL;
int64_t fork(Call& c, uint64_t flags, uint64_t stack, uint64_t parent_tid, uint64_t child_tid);
int64_t execve(Call& c, int dirfd, uint64_t path, uint64_t argv, uint64_t envp, int flags);
int64_t wait4(Call& c, int pid, uint64_t status, int options, uint64_t rusage);
int64_t waitid(Call& c, int idtype, int id, uint64_t infop, int options, uint64_t rusage);

// Threads and the process (sys_threads.cpp)
// The registers a clone or fork child starts with: the caller's, after the syscall, result 0.
VcpuStart child_start(Call& c, uint64_t stack);
int64_t clone(Call& c, uint64_t flags, uint64_t stack, uint64_t parent_tid, uint64_t child_tid, uint64_t tls);
int64_t exit_thread(Call& c, int code);
int64_t exit_group(Call& c, int code);
int64_t set_tid_address(Call& c, uint64_t addr);
int64_t futex(Call& c, uint64_t addr, int op, uint32_t val, uint64_t timeout, uint64_t addr2, uint32_t val3, bool time64);
int64_t arch_prctl(Call& c, int code, uint64_t addr);
int64_t set_thread_area(Call& c, uint64_t u_info);
int64_t sched_getaffinity(Call& c, int pid, uint64_t size, uint64_t mask);
int64_t kill(Call& c, int pid, int sig);
int64_t rt_sigqueueinfo(Call& c, int pid, int sig, uint64_t uinfo);
int64_t rt_tgsigqueueinfo(Call& c, int tgid, int tid, int sig, uint64_t uinfo);
// clone3: struct clone_args of `size` bytes.
int64_t clone3(Call& c, uint64_t args, uint64_t size);
int64_t pause(Call& c);
// pidfds: a guest pid behind an eventfd that turns readable when the process ends.
int64_t pidfd_open(Call& c, int pid, unsigned flags);
int64_t pidfd_send_signal(Call& c, int pidfd, int sig, uint64_t uinfo, unsigned flags);
int64_t tgkill(Call& c, int tgid, int tid, int sig);
int64_t rt_sigaction(Call& c, int sig, uint64_t act, uint64_t oldact, uint64_t size);
int64_t rt_sigprocmask(Call& c, int how, uint64_t set, uint64_t oldset, uint64_t size);
int64_t rt_sigsuspend(Call& c, uint64_t set, uint64_t size);
int64_t rt_sigpending(Call& c, uint64_t set, uint64_t size);
int64_t rt_sigtimedwait(Call& c, uint64_t set, uint64_t info, uint64_t timeout, uint64_t size, bool time64);
// rt_sigreturn (`rt`), or i386's sigreturn for handlers without SA_SIGINFO.
int64_t sigreturn(Call& c, bool rt);
int64_t sigaltstack(Call& c, uint64_t ss, uint64_t old_ss);

// Time (sys_time.cpp); `time64`: the guest's timespec has 64-bit fields.
int64_t clock_gettime(Call& c, int clock, uint64_t ts, bool time64);
// clock_settime: checked as Linux does, then EPERM (the guest may not set the host's clock).
int64_t clock_settime(Call& c, int clock, uint64_t ts, bool time64);
int64_t clock_getres(Call& c, int clock, uint64_t ts, bool time64);
int64_t gettimeofday(Call& c, uint64_t tv, uint64_t tz);
int64_t time(Call& c, uint64_t t);
int64_t nanosleep(Call& c, uint64_t req, uint64_t rem, bool time64);
int64_t clock_nanosleep(Call& c, int clock, int flags, uint64_t req, uint64_t rem, bool time64);
// Reads a guest timespec; false on EFAULT.
bool read_timespec(Call& c, uint64_t addr, bool time64, int64_t& sec, int64_t& nsec);
bool write_timespec(Call& c, uint64_t addr, const timespec& ts, bool time64);
// A guest timeval: two longs of the guest's size.
bool read_timeval(Call& c, uint64_t addr, int64_t& sec, int64_t& usec);
bool write_timeval(Call& c, uint64_t addr, int64_t sec, int64_t usec);
// What Linux accepts as a timeout (timespec64_valid): else EINVAL.
bool valid_timespec(int64_t sec, int64_t nsec);
// When a wait for a valid timespec ends: nullopt for never. A timeout too far for
// steady_clock (`sleep infinity`, a futex wait until the year 2^62) saturates to never
// instead of overflowing into the past.
using Deadline = std::optional<std::chrono::steady_clock::time_point>;
Deadline deadline_after(int64_t sec, int64_t nsec);
// For an absolute time on host clock `clock`; one in the past is now.
Deadline deadline_at(clockid_t clock, int64_t sec, int64_t nsec);

// Identity and limits (sys_info.cpp)
int64_t uname(Call& c, uint64_t buf);
int64_t prlimit64(Call& c, int pid, int resource, uint64_t new_limit, uint64_t old_limit);
// setrlimit (x86_64 160, i386 75): the guest's own limits (GuestProcess::limit).
int64_t setrlimit(Call& c, int resource, uint64_t limit);
int64_t getrlimit(Call& c, int resource, uint64_t limit);  // ABI-sized rlimit
int64_t getrandom(Call& c, uint64_t buf, uint64_t n, unsigned flags);
int64_t prctl(Call& c, int option, uint64_t arg2, uint64_t arg3, uint64_t arg4, uint64_t arg5);
int64_t sysinfo(Call& c, uint64_t buf);

// ---------------------------------------------------------------------------------------
// Files by name and descriptor, locks, identity, scheduling, memory hints, resource usage.
// Offsets and ids arrive as the ABI passed them; the tables join i386's split 64-bit
// numbers and widen its 16-bit ids (id_from16) first.

// Links, owners, times, sizes, nodes, renames, syncs (sys_file_ops.cpp). The old calls (link,
// chown, mknod, ...) come here as their *at forms with AT_FDCWD.
int64_t linkat(Call& c, int olddirfd, uint64_t oldpath, int newdirfd, uint64_t newpath, int flags);
int64_t symlinkat(Call& c, uint64_t target, int newdirfd, uint64_t linkpath);
int64_t fchownat(Call& c, int dirfd, uint64_t path, uint32_t uid, uint32_t gid, int flags);
int64_t fchown(Call& c, int fd, uint32_t uid, uint32_t gid);
int64_t utime(Call& c, uint64_t path, uint64_t times);  // struct utimbuf of guest longs
// utimes and futimesat: two timevals of guest longs.
int64_t futimesat(Call& c, int dirfd, uint64_t path, uint64_t times);
// `time64`: i386's utimensat_time64 (x86_64's timespecs are 64-bit anyway).
int64_t utimensat(Call& c, int dirfd, uint64_t path, uint64_t times, int flags, bool time64);
int64_t truncate(Call& c, uint64_t path, int64_t length);
int64_t fallocate(Call& c, int fd, int mode, int64_t offset, int64_t len);
int64_t mknodat(Call& c, int dirfd, uint64_t path, uint32_t mode, uint32_t dev);
int64_t renameat2(Call& c, int olddirfd, uint64_t oldpath, int newdirfd, uint64_t newpath, unsigned flags);
int64_t sync_file_range(Call& c, int fd, int64_t offset, int64_t nbytes, unsigned flags);

// Vector and zero-copy I/O (sys_file_io.cpp). `v2`: preadv2/pwritev2, whose offset -1 means
// the file position.
int64_t preadv(Call& c, int fd, uint64_t iov, uint64_t count, int64_t pos, int flags, bool v2);
int64_t pwritev(Call& c, int fd, uint64_t iov, uint64_t count, int64_t pos, int flags, bool v2);
int64_t copy_file_range(Call& c, int fd_in, uint64_t off_in, int fd_out, uint64_t off_out, uint64_t len, unsigned flags);
int64_t splice(Call& c, int fd_in, uint64_t off_in, int fd_out, uint64_t off_out, uint64_t len, unsigned flags);
int64_t tee(Call& c, int fd_in, int fd_out, uint64_t len, unsigned flags);

// Record locks and flock (sys_locks.cpp, over emu/process/file_locks.h): fcntl's lock
// commands in the guest's struct flock layouts, and flock(2).
int64_t record_lock(Call& c, const std::shared_ptr<HostFile>& f, int cmd, uint64_t arg);
int64_t flock(Call& c, int fd, unsigned cmd);

// Credentials (sys_identity.cpp), the calling thread's, on the host. `narrow`: i386's 16-bit
// id forms.
uint32_t id_from16(uint64_t id);    // 0xffff: -1
int64_t get_id16(long host_nr);     // getuid & co. in 16 bits (65534 for an id that does not fit)
int64_t getresid(Call& c, bool group, uint64_t r, uint64_t e, uint64_t s, bool narrow);
int64_t getgroups(Call& c, int size, uint64_t list, bool narrow);
int64_t setgroups(Call& c, int size, uint64_t list, bool narrow);
int64_t capget(Call& c, uint64_t header, uint64_t data);
int64_t capset(Call& c, uint64_t header, uint64_t data);

// Scheduling (sys_sched.cpp): on the host thread of the guest thread `pid` names.
int64_t sched_setaffinity(Call& c, int pid, uint64_t len, uint64_t mask);
int64_t sched_getparam(Call& c, int pid, uint64_t param);
// sched_setscheduler, or with `keep_policy` sched_setparam.
int64_t sched_setscheduler(Call& c, int pid, int policy, uint64_t param, bool keep_policy);
int64_t sched_getscheduler(Call& c, int pid);
int64_t sched_rr_get_interval(Call& c, int pid, uint64_t interval, bool time64);
int64_t getpriority(Call& c, int which, int who);
int64_t setpriority(Call& c, int which, int who, int nice);
int64_t getcpu(Call& c, uint64_t cpu, uint64_t node);
int64_t membarrier(Call& c, int cmd, unsigned flags, int cpu_id);
int64_t personality(Call& c, uint32_t persona);

// Memory hints (sys_memory_hints.cpp). `lock`: mlock/mlock2, else munlock.
int64_t mincore(Call& c, uint64_t start, uint64_t len, uint64_t vec);
int64_t msync(Call& c, uint64_t start, uint64_t len, int flags);
int64_t mlock(Call& c, uint64_t start, uint64_t len, unsigned flags, bool lock);
int64_t mlockall(Call& c, int flags);

// Resource usage (sys_usage.cpp): the guest process's threads and reaped children.
// struct rusage in the guest's layout (two timevals, fourteen longs); 0 or -EFAULT.
int64_t put_rusage(Call& c, uint64_t buf, const ResourceUsage& u);
int64_t getrusage(Call& c, int who, uint64_t buf);
int64_t times(Call& c, uint64_t buf);

}  // namespace emu::sys
