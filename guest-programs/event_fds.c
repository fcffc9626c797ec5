/* The event-loop system calls, good and bad input: select, pselect6, ppoll, epoll, eventfd,
 * timerfd, signalfd, inotify, memfd_create, timers, queued real-time signals, process groups
 * clone3, madvise, sendmmsg/recvmmsg and the credentials a socket reports of its peer. Raw syscall() where glibc's wrapper would hide the kernel's answer. Each line
 * is "what: result" with errno names, so a run under emu is compared line by line with a
 * native one; nothing printed depends on pids or timing. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

static const char *err_name(int e) {
  switch (e) {
    case EFAULT: return "EFAULT";
    case EINVAL: return "EINVAL";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case EINTR: return "EINTR";
    case EEXIST: return "EEXIST";
    case ENOENT: return "ENOENT";
    case EPERM: return "EPERM";
    case ESRCH: return "ESRCH";
    case E2BIG: return "E2BIG";
    case ENOSYS: return "ENOSYS";
    case EACCES: return "EACCES";
    case ECHILD: return "ECHILD";
    case ENOMEM: return "ENOMEM";
    case ENOTSOCK: return "ENOTSOCK";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    case ENODATA: return "ENODATA";
    default: return "E?";
  }
}

static void show(const char *what, long r) {
  if (r < 0)
    printf("%s: -1 %s\n", what, err_name(errno));
  else
    printf("%s: %ld\n", what, r);
}

/* Arguments syscall() reads as longs are passed as longs: an int in a variadic call leaves
 * the upper half of its register undefined on x86_64. */

/* A page that is certainly not mapped: mapped, then unmapped. */
static void *hole;
#define BAD ((void *)1)

static volatile sig_atomic_t handled;
static void on_signal(int sig) { handled = sig; }

static void block(int sig, int how) {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, sig);
  sigprocmask(how, &s, NULL);
}

static int blocked(int sig) {
  sigset_t s;
  sigprocmask(SIG_SETMASK, NULL, &s);
  return sigismember(&s, sig);
}

#ifdef __i386__
#define SYS_SELECT SYS__newselect
#else
#define SYS_SELECT SYS_select
#endif

static void test_select(void) {
  int p[2];
  if (pipe(p) != 0) die_errno("event_fds", "pipe", errno);
  fd_set r;
  FD_ZERO(&r);
  FD_SET(p[0], &r);
  struct timeval tv = {0, 20000};
  show("select timeout", syscall(SYS_SELECT, p[0] + 1, &r, NULL, NULL, &tv));
  printf("select timeout left: %ld.%06ld, set %d\n", (long)tv.tv_sec, (long)tv.tv_usec, FD_ISSET(p[0], &r));
  if (write(p[1], "x", 1) != 1) die_errno("event_fds", "write", errno);
  FD_SET(p[0], &r);
  fd_set w;
  FD_ZERO(&w);
  FD_SET(p[1], &w);
  tv.tv_sec = 5;
  show("select ready", syscall(SYS_SELECT, p[1] + 1, &r, &w, NULL, &tv));
  printf("select sets: r %d w %d\n", FD_ISSET(p[0], &r), FD_ISSET(p[1], &w));
  show("select n<0", syscall(SYS_SELECT, -1, NULL, NULL, NULL, NULL));
  show("select bad set", syscall(SYS_SELECT, 3, BAD, NULL, NULL, NULL));
  show("select unmapped set", syscall(SYS_SELECT, 3, NULL, hole, NULL, NULL));
  tv.tv_sec = 0;
  tv.tv_usec = 1000000;
  show("select bad usec", syscall(SYS_SELECT, 1, NULL, NULL, NULL, &tv));
  show("select bad timeout", syscall(SYS_SELECT, 1, NULL, NULL, NULL, hole));
  /* A closed fd below 64: Linux ignores set bits beyond the size its fd table has grown to
   * (inherited across exec), so a high one would make select wait forever in a process
   * started with few fds. */
  int closed = dup(p[1]);
  close(closed);
  FD_ZERO(&r);
  FD_SET(closed, &r);
  show("select closed fd", syscall(SYS_SELECT, closed + 1, &r, NULL, NULL, NULL));
  close(p[0]);
  close(p[1]);
}

/* pselect6, ppoll and epoll_pwait with a mask that lets a pending blocked signal in: EINTR,
 * the handler runs, and the caller's mask (with the signal blocked) is back afterwards. */
static void test_wait_masks(void) {
  signal(SIGUSR1, on_signal);
  sigset_t empty;
  sigemptyset(&empty);
  struct {
    const void *ss;
    size_t len;
  } sig = {&empty, 8};
  struct timespec ts = {2, 0};

  block(SIGUSR1, SIG_BLOCK);
  handled = 0;
  raise(SIGUSR1);
  show("pselect6 mask", syscall(SYS_pselect6, 0, NULL, NULL, NULL, &ts, &sig));
  printf("pselect6 handled %d, blocked after %d\n", handled == SIGUSR1, blocked(SIGUSR1));
  sig.len = 4;
  show("pselect6 bad size", syscall(SYS_pselect6, 0, NULL, NULL, NULL, &ts, &sig));
  show("pselect6 bad sig", syscall(SYS_pselect6, 0, NULL, NULL, NULL, &ts, BAD));
  sig.ss = hole;
  sig.len = 8;
  show("pselect6 bad mask", syscall(SYS_pselect6, 0, NULL, NULL, NULL, &ts, &sig));

  handled = 0;
  raise(SIGUSR1);
  show("ppoll mask", syscall(SYS_ppoll, NULL, 0, &ts, &empty, (long)8));
  printf("ppoll handled %d, blocked after %d\n", handled == SIGUSR1, blocked(SIGUSR1));
  show("ppoll bad size", syscall(SYS_ppoll, NULL, 0, &ts, &empty, (long)16));
  show("ppoll bad fds", syscall(SYS_ppoll, hole, 1, &ts, NULL, (long)8));
  show("ppoll bad timeout", syscall(SYS_ppoll, NULL, 0, hole, NULL, (long)8));
  /* Nothing pending, a mask that changes nothing: it times out and the mask is the caller's. */
  struct timespec short_ts = {0, 10000000};
  sigset_t cur;
  sigprocmask(SIG_SETMASK, NULL, &cur);
  show("ppoll same mask", syscall(SYS_ppoll, NULL, 0, &short_ts, &cur, (long)8));

  int ep = epoll_create1(0);
  handled = 0;
  raise(SIGUSR1);
  struct epoll_event ev;
  show("epoll_pwait mask", syscall(SYS_epoll_pwait, ep, &ev, 1, 2000, &empty, (long)8));
  printf("epoll_pwait handled %d, blocked after %d\n", handled == SIGUSR1, blocked(SIGUSR1));
  show("epoll_pwait bad size", syscall(SYS_epoll_pwait, ep, &ev, 1, 0, &empty, (long)4));
  close(ep);
  block(SIGUSR1, SIG_UNBLOCK);
}

static void test_epoll(void) {
  show("epoll_create 0", syscall(SYS_epoll_create, 0));
  show("epoll_create1 bad flags", syscall(SYS_epoll_create1, 1));
  int ep = (int)syscall(SYS_epoll_create1, EPOLL_CLOEXEC);
  printf("epoll cloexec: %d\n", (fcntl(ep, F_GETFD) & FD_CLOEXEC) != 0);
  int p[2];
  if (pipe(p) != 0) die_errno("event_fds", "pipe", errno);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x1122334455667788ull};
  show("epoll_ctl add", syscall(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, p[0], &ev));
  show("epoll_ctl add again", syscall(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, p[0], &ev));
  show("epoll_ctl mod absent", syscall(SYS_epoll_ctl, ep, EPOLL_CTL_MOD, p[1], &ev));
  show("epoll_ctl bad event", syscall(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, p[1], hole));
  show("epoll_ctl bad fd", syscall(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, 250, &ev));
  show("epoll_ctl bad epfd", syscall(SYS_epoll_ctl, 250, EPOLL_CTL_ADD, p[0], &ev));
  show("epoll_ctl not epoll", syscall(SYS_epoll_ctl, p[1], EPOLL_CTL_ADD, p[0], &ev));
  show("epoll_ctl self", syscall(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, ep, &ev));
  show("epoll_ctl bad op", syscall(SYS_epoll_ctl, ep, 99, p[0], &ev));
  struct epoll_event out[4];
  show("epoll_wait idle", syscall(SYS_epoll_wait, ep, out, 4, 0));
  show("epoll_wait timeout", syscall(SYS_epoll_wait, ep, out, 4, 20));
  if (write(p[1], "x", 1) != 1) die_errno("event_fds", "write", errno);
  memset(out, 0, sizeof out);
  show("epoll_wait ready", syscall(SYS_epoll_wait, ep, out, 4, -1));
  printf("epoll event: %#x %#llx\n", out[0].events, (unsigned long long)out[0].data.u64);
  show("epoll_wait maxevents 0", syscall(SYS_epoll_wait, ep, out, 0, 0));
  show("epoll_wait bad epfd", syscall(SYS_epoll_wait, 250, out, 4, 0));
  show("epoll_wait not epoll", syscall(SYS_epoll_wait, p[0], out, 4, 0));
  show("epoll_wait bad events", syscall(SYS_epoll_wait, ep, hole, 4, 0));
  show("epoll_ctl del", syscall(SYS_epoll_ctl, ep, EPOLL_CTL_DEL, p[0], NULL));
  show("epoll_wait after del", syscall(SYS_epoll_wait, ep, out, 4, 0));
  /* Edge-triggered: one event per change. */
  ev.events = EPOLLIN | EPOLLET;
  show("epoll_ctl add et", syscall(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, p[0], &ev));
  show("epoll_wait et first", syscall(SYS_epoll_wait, ep, out, 4, 0));
  show("epoll_wait et again", syscall(SYS_epoll_wait, ep, out, 4, 0));
  close(p[0]);
  close(p[1]);
  close(ep);
}

static void test_eventfd(void) {
  show("eventfd2 bad flags", syscall(SYS_eventfd2, 0, 0x10));
  int fd = (int)syscall(SYS_eventfd2, 5, EFD_NONBLOCK);
  uint64_t v = 0;
  show("eventfd read short", read(fd, &v, 4));
  show("eventfd read", read(fd, &v, 8));
  printf("eventfd value: %llu\n", (unsigned long long)v);
  show("eventfd read empty", read(fd, &v, 8));
  v = 3;
  show("eventfd write", write(fd, &v, 8));
  v = ~0ull;
  show("eventfd write max", write(fd, &v, 8));
  show("eventfd read bad buf", read(fd, hole, 8));
  close(fd);
  fd = (int)syscall(SYS_eventfd2, 2, EFD_SEMAPHORE | EFD_NONBLOCK);
  show("eventfd sem read", read(fd, &v, 8));
  printf("eventfd sem value: %llu\n", (unsigned long long)v);
  close(fd);
}

static void test_timerfd(void) {
  show("timerfd_create bad clock", syscall(SYS_timerfd_create, 77, 0));
  show("timerfd_create bad flags", syscall(SYS_timerfd_create, CLOCK_MONOTONIC, 1));
  int fd = (int)syscall(SYS_timerfd_create, CLOCK_MONOTONIC, TFD_CLOEXEC);
  struct itimerspec its = {{0, 0}, {0, 10000000}}, old;
  show("timerfd_settime bad new", syscall(SYS_timerfd_settime, fd, 0, hole, NULL));
  show("timerfd_settime bad fd", syscall(SYS_timerfd_settime, 250, 0, &its, NULL));
  its.it_value.tv_nsec = 1000000000;
  show("timerfd_settime bad nsec", syscall(SYS_timerfd_settime, fd, 0, &its, NULL));
  its.it_value.tv_nsec = 10000000;
  show("timerfd_settime", syscall(SYS_timerfd_settime, fd, 0, &its, &old));
  printf("timerfd old: %ld %ld\n", (long)old.it_value.tv_sec, old.it_value.tv_nsec);
  uint64_t n = 0;
  show("timerfd read", read(fd, &n, 8));
  printf("timerfd expirations >= 1: %d\n", n >= 1);
  show("timerfd_gettime", syscall(SYS_timerfd_gettime, fd, &old));
  printf("timerfd disarmed: %d\n", old.it_value.tv_sec == 0 && old.it_value.tv_nsec == 0);
  show("timerfd_gettime bad", syscall(SYS_timerfd_gettime, fd, hole));
  int p[2];
  if (pipe(p) != 0) die_errno("event_fds", "pipe", errno);
  show("timerfd_gettime not timerfd", syscall(SYS_timerfd_gettime, p[0], &old));
  close(p[0]);
  close(p[1]);
  close(fd);
}

static void test_signalfd(void) {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR2);
  show("signalfd4 bad size", syscall(SYS_signalfd4, -1, &s, (long)4, 0));
  show("signalfd4 bad mask", syscall(SYS_signalfd4, -1, hole, (long)8, 0));
  show("signalfd4 bad flags", syscall(SYS_signalfd4, -1, &s, (long)8, 1));
  show("signalfd4 not signalfd", syscall(SYS_signalfd4, 0, &s, (long)8, 0));
  show("signalfd4 bad fd", syscall(SYS_signalfd4, 250, &s, (long)8, 0));
  block(SIGUSR2, SIG_BLOCK);
  int fd = (int)syscall(SYS_signalfd4, -1, &s, (long)8, SFD_NONBLOCK | SFD_CLOEXEC);
  struct signalfd_siginfo si;
  show("signalfd read empty", read(fd, &si, sizeof si));
  struct pollfd pfd = {fd, POLLIN, 0};
  show("signalfd poll idle", poll(&pfd, 1, 0));
  raise(SIGUSR2);
  show("signalfd poll ready", poll(&pfd, 1, 0));
  show("signalfd read short", read(fd, &si, 64));
  show("signalfd read", read(fd, &si, sizeof si));
  printf("signalfd signo %u code %d\n", si.ssi_signo, si.ssi_code);
  show("signalfd poll drained", poll(&pfd, 1, 0));
  /* A new mask for the same fd: SIGUSR2 no longer read. */
  sigset_t other;
  sigemptyset(&other);
  sigaddset(&other, SIGURG);
  show("signalfd4 new mask", syscall(SYS_signalfd4, fd, &other, (long)8, 0) == fd);
  raise(SIGUSR2);
  show("signalfd read other mask", read(fd, &si, sizeof si));
  struct timespec zero = {0, 0};
  show("sigtimedwait leftover", sigtimedwait(&s, NULL, &zero));
  close(fd);
  block(SIGUSR2, SIG_UNBLOCK);
}

static void test_inotify(void) {
  show("inotify_init1 bad flags", syscall(SYS_inotify_init1, 1));
  int fd = (int)syscall(SYS_inotify_init1, IN_NONBLOCK);
  char dir[] = "/tmp/emu-inotify-XXXXXX";
  if (!mkdtemp(dir)) die_errno("event_fds", "mkdtemp", errno);
  show("inotify_add_watch bad path", syscall(SYS_inotify_add_watch, fd, hole, IN_CREATE));
  show("inotify_add_watch missing", syscall(SYS_inotify_add_watch, fd, "/nonexistent/x", IN_CREATE));
  show("inotify_add_watch bad fd", syscall(SYS_inotify_add_watch, 250, dir, IN_CREATE));
  int wd = (int)syscall(SYS_inotify_add_watch, fd, dir, IN_CREATE | IN_DELETE);
  printf("inotify wd > 0: %d\n", wd > 0);
  char path[64];
  snprintf(path, sizeof path, "%s/file", dir);
  close(open(path, O_CREAT | O_WRONLY, 0600));
  unlink(path);
  char buf[512];
  long n = read(fd, buf, sizeof buf);
  for (long off = 0; off < n;) {
    struct inotify_event *e = (struct inotify_event *)(buf + off);
    printf("inotify event: %s %s\n", (e->mask & IN_CREATE) ? "create" : (e->mask & IN_DELETE) ? "delete" : "other",
           e->len ? e->name : "");
    off += sizeof *e + e->len;
  }
  show("inotify read empty", read(fd, buf, sizeof buf));
  show("inotify_rm_watch", syscall(SYS_inotify_rm_watch, fd, wd));
  show("inotify_rm_watch again", syscall(SYS_inotify_rm_watch, fd, wd));
  rmdir(dir);
  close(fd);
}

static void test_memfd(void) {
  show("memfd_create bad name", syscall(SYS_memfd_create, hole, 0));
  char longname[300];
  memset(longname, 'a', sizeof longname - 1);
  longname[sizeof longname - 1] = 0;
  show("memfd_create long name", syscall(SYS_memfd_create, longname, 0));
  show("memfd_create bad flags", syscall(SYS_memfd_create, "x", 0x100));
  int fd = (int)syscall(SYS_memfd_create, "guest", MFD_CLOEXEC);
  show("memfd write", write(fd, "hello memfd", 11));
  struct stat st;
  fstat(fd, &st);
  printf("memfd size %ld regular %d\n", (long)st.st_size, S_ISREG(st.st_mode));
  char buf[16] = {0};
  show("memfd pread", pread(fd, buf, sizeof buf, 6));
  printf("memfd data: %s\n", buf);
  close(fd);
}

static void test_timers(void) {
  timer_t id;
  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_SIGNAL;
  sev.sigev_signo = SIGRTMIN + 1;
  sev.sigev_value.sival_int = 4242;
  int kid = -1;
  show("timer_create bad clock", syscall(SYS_timer_create, 77, &sev, &kid));
  show("timer_create bad sevp", syscall(SYS_timer_create, CLOCK_MONOTONIC, hole, &kid));
  show("timer_create bad id ptr", syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, hole));
  sev.sigev_notify = 77;
  show("timer_create bad notify", syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &kid));
  sev.sigev_notify = SIGEV_SIGNAL;
  sev.sigev_signo = 0;
  show("timer_create bad signo", syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &kid));
  sev.sigev_signo = SIGRTMIN + 1;
  show("timer_create", syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &kid));
  struct itimerspec its = {{0, 0}, {0, 5000000}}, cur;
  show("timer_settime bad id", syscall(SYS_timer_settime, 999, 0, &its, NULL));
  show("timer_settime bad ptr", syscall(SYS_timer_settime, kid, 0, hole, NULL));
  its.it_interval.tv_nsec = -1;
  show("timer_settime bad nsec", syscall(SYS_timer_settime, kid, 0, &its, NULL));
  its.it_interval.tv_nsec = 0;
  block(SIGRTMIN + 1, SIG_BLOCK);
  show("timer_settime", syscall(SYS_timer_settime, kid, 0, &its, NULL));
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGRTMIN + 1);
  siginfo_t si;
  show("timer sigwaitinfo", sigwaitinfo(&s, &si) == SIGRTMIN + 1);
  printf("timer siginfo: code %d value %d overrun %d\n", si.si_code, si.si_value.sival_int, si.si_overrun);
  show("timer_gettime", syscall(SYS_timer_gettime, kid, &cur));
  printf("timer disarmed: %d\n", cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0);
  show("timer_gettime bad", syscall(SYS_timer_gettime, kid, hole));
  show("timer_getoverrun", syscall(SYS_timer_getoverrun, kid));
  show("timer_delete", syscall(SYS_timer_delete, kid));
  show("timer_delete again", syscall(SYS_timer_delete, kid));
  /* Without a sigevent: SIGALRM with the timer's id as value. */
  (void)id;
  block(SIGALRM, SIG_BLOCK);
  show("timer_create default", syscall(SYS_timer_create, CLOCK_REALTIME, NULL, &kid));
  show("timer_settime default", syscall(SYS_timer_settime, kid, 0, &its, NULL));
  sigemptyset(&s);
  sigaddset(&s, SIGALRM);
  show("timer default sigwaitinfo", sigwaitinfo(&s, &si) == SIGALRM);
  printf("default timer value is its id: %d code %d\n", si.si_value.sival_int == kid, si.si_code);
  syscall(SYS_timer_delete, kid);
  /* setitimer and alarm. */
  struct itimerval itv = {{0, 0}, {0, 5000}};
  show("setitimer bad which", syscall(SYS_setitimer, 7, &itv, NULL));
  show("setitimer bad ptr", syscall(SYS_setitimer, ITIMER_REAL, hole, NULL));
  itv.it_value.tv_usec = 1000000;
  show("setitimer bad usec", syscall(SYS_setitimer, ITIMER_REAL, &itv, NULL));
  itv.it_value.tv_usec = 5000;
  show("setitimer", syscall(SYS_setitimer, ITIMER_REAL, &itv, NULL));
  show("itimer sigwaitinfo", sigwaitinfo(&s, &si) == SIGALRM);
  printf("itimer code %d\n", si.si_code);
  show("getitimer bad", syscall(SYS_getitimer, ITIMER_REAL, hole));
  show("alarm", syscall(SYS_alarm, 100));
  show("alarm again", syscall(SYS_alarm, 0));
  block(SIGALRM, SIG_UNBLOCK);
  block(SIGRTMIN + 1, SIG_UNBLOCK);
}

static void test_sigqueue(void) {
  int rt = SIGRTMIN + 2;
  block(rt, SIG_BLOCK);
  block(SIGUSR1, SIG_BLOCK);
  for (int i = 1; i <= 3; ++i) {
    union sigval v = {.sival_int = 100 + i};
    show("sigqueue", sigqueue(getpid(), rt, v));
  }
  union sigval v = {.sival_int = 7};
  sigqueue(getpid(), SIGUSR1, v);
  sigqueue(getpid(), SIGUSR1, v);
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, rt);
  sigaddset(&s, SIGUSR1);
  struct timespec zero = {0, 0};
  siginfo_t si;
  int got;
  while ((got = sigtimedwait(&s, &si, &zero)) > 0)
    printf("dequeued %s value %d code %d\n", got == rt ? "rt" : "usr1", si.si_value.sival_int, si.si_code);
  siginfo_t forged;
  memset(&forged, 0, sizeof forged);
  forged.si_code = SI_USER;
  show("rt_sigqueueinfo forged to other", syscall(SYS_rt_sigqueueinfo, getppid(), SIGUSR1, &forged));
  show("rt_sigqueueinfo bad ptr", syscall(SYS_rt_sigqueueinfo, getpid(), rt, hole));
  forged.si_code = SI_QUEUE;
  forged.si_value.sival_int = 55;
  show("rt_sigqueueinfo self", syscall(SYS_rt_sigqueueinfo, getpid(), rt, &forged));
  show("rt_tgsigqueueinfo self", syscall(SYS_rt_tgsigqueueinfo, getpid(), (int)syscall(SYS_gettid), rt, &forged));
  show("rt_tgsigqueueinfo bad tid", syscall(SYS_rt_tgsigqueueinfo, getpid(), 0, rt, &forged));
  while ((got = sigtimedwait(&s, &si, &zero)) > 0) printf("dequeued value %d code %d\n", si.si_value.sival_int, si.si_code);
  block(rt, SIG_UNBLOCK);
  block(SIGUSR1, SIG_UNBLOCK);
}

static void test_groups(void) {
  show("setpgid bad", syscall(SYS_setpgid, -1, 0));
  show("setpgid not child", syscall(SYS_setpgid, 1, 0));
  show("getpgid bad", syscall(SYS_getpgid, -1));
  show("kill no group", kill(-999999, 0));
  pid_t a = fork();
  if (a == 0) {
    pause();
    _exit(0);
  }
  show("setpgid child", setpgid(a, a));
  printf("child leads its group: %d\n", getpgid(a) == a);
  pid_t b = fork();
  if (b == 0) {
    printf("setsid in a leader: %s\n", setsid() < 0 ? err_name(errno) : "ok");
    fflush(stdout);
    _exit(0);
  }
  int st;
  waitpid(b, &st, 0);
  /* A second child joins the first's group; a kill to the group ends both. */
  pid_t c = fork();
  if (c == 0) {
    pause();
    _exit(0);
  }
  show("setpgid join", setpgid(c, a));
  printf("same group: %d\n", getpgid(c) == a);
  show("wait group none yet", waitpid(-a, &st, WNOHANG));
  show("kill group", kill(-a, SIGTERM));
  int reaped = 0;
  while (waitpid(-a, &st, 0) > 0) reaped += WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM;
  printf("reaped by group: %d\n", reaped);
  show("wait group empty", waitpid(-a, &st, 0));
  pid_t d = fork();
  if (d == 0) {
    pid_t s = setsid();
    printf("new session: %d %d %d\n", s == getpid(), getsid(0) == getpid(), getpgrp() == getpid());
    printf("setpgid in own session leader: %s\n", setpgid(0, 0) < 0 ? err_name(errno) : "ok");
    fflush(stdout);
    _exit(0);
  }
  waitpid(d, &st, 0);
  show("setpgid other session", setpgid(d, d));
}

static void test_clone3(void) {
  uint64_t args[11];
  memset(args, 0, sizeof args);
  args[4] = SIGCHLD;
  show("clone3 small", syscall(SYS_clone3, args, (long)32));
  show("clone3 huge", syscall(SYS_clone3, args, (long)8192));
  show("clone3 bad ptr", syscall(SYS_clone3, hole, (long)88));
  uint64_t big[16];
  memset(big, 0, sizeof big);
  big[4] = SIGCHLD;
  big[12] = 1;
  show("clone3 nonzero tail", syscall(SYS_clone3, big, sizeof big));
  args[5] = 0x1000;
  show("clone3 stack no size", syscall(SYS_clone3, args, (long)88));
  args[5] = 0;
  args[4] = 99;
  show("clone3 bad exit signal", syscall(SYS_clone3, args, (long)88));
  args[4] = SIGCHLD;
  long pid = syscall(SYS_clone3, args, (long)88);
  if (pid == 0) _exit(7);
  int st = 0;
  printf("clone3 fork: %d\n", pid > 0 && waitpid((pid_t)pid, &st, 0) == pid && WEXITSTATUS(st) == 7);
}

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

/* pidfds: a signal through one, poll seeing the exit, Linux's errors. */
static void test_pidfd(void) {
  show("pidfd_open bad pid", syscall(SYS_pidfd_open, -1, (long)0));
  show("pidfd_open bad flags", syscall(SYS_pidfd_open, getpid(), (long)1));
  int self = (int)syscall(SYS_pidfd_open, getpid(), (long)0);
  printf("pidfd self cloexec: %d\n", self >= 0 && (fcntl(self, F_GETFD) & FD_CLOEXEC) != 0);
  show("pidfd_send_signal self 0", syscall(SYS_pidfd_send_signal, self, (long)0, NULL, (long)0));
  show("pidfd_send_signal bad flags", syscall(SYS_pidfd_send_signal, self, (long)0, NULL, (long)8));
  show("pidfd_send_signal bad sig", syscall(SYS_pidfd_send_signal, self, (long)99, NULL, (long)0));
  show("pidfd_send_signal bad fd", syscall(SYS_pidfd_send_signal, 250, (long)0, NULL, (long)0));
  show("pidfd_send_signal not pidfd", syscall(SYS_pidfd_send_signal, 1, (long)0, NULL, (long)0));
  close(self);
  pid_t child = fork();
  if (child == 0) {
    pause();
    _exit(0);
  }
  int fd = (int)syscall(SYS_pidfd_open, child, (long)0);
  struct pollfd p = {fd, POLLIN, 0};
  show("pidfd poll running", poll(&p, 1, 0));
  show("pidfd_send_signal kill", syscall(SYS_pidfd_send_signal, fd, (long)SIGKILL, NULL, (long)0));
  show("pidfd poll ended", poll(&p, 1, 5000));
  printf("pidfd readable: %d\n", (p.revents & POLLIN) != 0);
  int st = 0;
  waitpid(child, &st, 0);
  printf("killed through the pidfd: %d\n", WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  show("pidfd_send_signal reaped", syscall(SYS_pidfd_send_signal, fd, (long)SIGTERM, NULL, (long)0));
  show("pidfd_open reaped", syscall(SYS_pidfd_open, child, (long)0));
  close(fd);
}

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

/* "right" when a socket's SO_PEERCRED names `expect` and our own ids (the pid as a word, so
 * that the output does not depend on pids). */
static void format_peer(char *out, size_t size, const char *what, int fd, pid_t expect) {
  struct ucred c;
  socklen_t len = sizeof c;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &len) != 0)
    snprintf(out, size, "%s: -1 %s\n", what, err_name(errno));
  else
    snprintf(out, size, "%s: pid %s (%d for %d), ids %s\n", what, c.pid == expect ? "right" : "WRONG",
             c.pid == expect ? 0 : (int)c.pid, c.pid == expect ? 0 : (int)expect,
             c.uid == getuid() && c.gid == getgid() ? "right" : "WRONG");
}

static void show_peer(const char *what, int fd, pid_t expect) {
  char line[160];
  format_peer(line, sizeof line, what, fd, expect);
  fputs(line, stdout);
}

/* One byte, with SCM_CREDENTIALS naming `pid` when pid > 0. */
static long send_byte(int fd, char byte, pid_t pid) {
  char cbuf[CMSG_SPACE(sizeof(struct ucred))];
  struct iovec one = {&byte, 1};
  struct msghdr m;
  memset(&m, 0, sizeof m);
  memset(cbuf, 0, sizeof cbuf);
  m.msg_iov = &one;
  m.msg_iovlen = 1;
  if (pid > 0) {
    m.msg_control = cbuf;
    m.msg_controllen = sizeof cbuf;
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_CREDENTIALS;
    h->cmsg_len = CMSG_LEN(sizeof(struct ucred));
    struct ucred cred = {pid, getuid(), getgid()};
    memcpy(CMSG_DATA(h), &cred, sizeof cred);
  }
  return sendmsg(fd, &m, 0);
}

/* Receives one byte and the pid of its SCM_CREDENTIALS (0: none came). */
static pid_t receive_sender(int fd) {
  char byte, cbuf[CMSG_SPACE(sizeof(struct ucred))];
  struct iovec one = {&byte, 1};
  struct msghdr m;
  memset(&m, 0, sizeof m);
  m.msg_iov = &one;
  m.msg_iovlen = 1;
  m.msg_control = cbuf;
  m.msg_controllen = sizeof cbuf;
  if (recvmsg(fd, &m, 0) != 1) return -1;
  for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h))
    if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_CREDENTIALS) {
      struct ucred cred;
      memcpy(&cred, CMSG_DATA(h), sizeof cred);
      return cred.pid;
    }
  return 0;
}

/* sendmmsg and recvmmsg on a datagram socketpair. */
static void test_mmsg(void) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) != 0) die_errno("event_fds", "socketpair", errno);
  char bufs[3][16] = {"one", "two!", "three"};
  struct iovec iov[3];
  struct mmsghdr msgs[3];
  memset(msgs, 0, sizeof msgs);
  for (int i = 0; i < 3; ++i) {
    iov[i].iov_base = bufs[i];
    iov[i].iov_len = strlen(bufs[i]);
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  show("sendmmsg", syscall(SYS_sendmmsg, sv[0], msgs, (long)3, (long)0));
  printf("sendmmsg lens: %u %u %u\n", msgs[0].msg_len, msgs[1].msg_len, msgs[2].msg_len);
  char in[4][16];
  struct iovec riov[4];
  struct mmsghdr r[4];
  memset(r, 0, sizeof r);
  memset(in, 0, sizeof in);
  for (int i = 0; i < 4; ++i) {
    riov[i].iov_base = in[i];
    riov[i].iov_len = sizeof in[i];
    r[i].msg_hdr.msg_iov = &riov[i];
    r[i].msg_hdr.msg_iovlen = 1;
  }
  show("recvmmsg waitforone", syscall(SYS_recvmmsg, sv[1], r, (long)4, (long)MSG_WAITFORONE, NULL));
  printf("recvmmsg got: %s/%u %s/%u %s/%u\n", in[0], r[0].msg_len, in[1], r[1].msg_len, in[2], r[2].msg_len);
  show("recvmmsg empty nonblocking", syscall(SYS_recvmmsg, sv[1], r, (long)4, (long)MSG_DONTWAIT, NULL));
  show("sendmmsg bad vec", syscall(SYS_sendmmsg, sv[0], hole, (long)2, (long)0));
  show("recvmmsg bad timeout", syscall(SYS_recvmmsg, sv[1], r, (long)1, (long)0, hole));
  show("sendmmsg bad fd", syscall(SYS_sendmmsg, 250, msgs, (long)1, (long)0));
  show("sendmmsg not socket", syscall(SYS_sendmmsg, 1, msgs, (long)1, (long)0));
  show("sendmmsg none", syscall(SYS_sendmmsg, sv[0], msgs, (long)0, (long)0));
  /* SCM_CREDENTIALS from a child, with its own pid (Linux checks it), and with another. */
  pid_t child = fork();
  if (child == 0) {
    long r = send_byte(sv[0], 'c', getpid());
    printf("child sendmsg SCM_CREDENTIALS with its pid: %ld\n", r);
    fflush(stdout);
    _exit(0);
  }
  int st = 0;
  waitpid(child, &st, 0);
  char got[4];
  show("recv the child's message", recv(sv[1], got, sizeof got, MSG_DONTWAIT));
  close(sv[0]);
  close(sv[1]);
}

/* SO_PEERCRED, SO_PEERPIDFD and SCM_CREDENTIALS name the guest process at the other end, as
 * Linux takes them: a socketpair's creator; for an accepted socket the connector; for the
 * connector the listener, before the accept and after; for a message its sender. The child
 * prints as it goes; the parent keeps its lines until the child has ended. */
static void test_peer_credentials(void) {
  const pid_t me = getpid();
  int sv[2];
  socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  show_peer("socketpair peer", sv[0], me);
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  snprintf(addr.sun_path + 1, sizeof addr.sun_path - 1, "emu-peer-credentials-%d", (int)me);
  const socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(addr.sun_path + 1));
  int listener = socket(AF_UNIX, SOCK_STREAM, 0);
  show("bind abstract", bind(listener, (struct sockaddr *)&addr, alen));
  show("listen", listen(listener, 4));
  int go[2];
  if (pipe(go) != 0) return;
  pid_t child = fork();
  if (child == 0) {
    show_peer("child: socketpair made by its parent", sv[1], me);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    show("child: connect", connect(s, (struct sockaddr *)&addr, alen));
    show_peer("child: listener seen before the accept", s, me);
    show("child: send with its pid", send_byte(s, 'a', getpid()));
    /* One message at a time: emu names the last guest process that sent on a socket, which
     * is the right one unless a reader is behind messages of two senders. */
    char b;
    if (read(go[0], &b, 1) != 1) _exit(1);
    /* Allowed with CAP_SYS_ADMIN only; without, the child's own pid goes instead. */
    if (send_byte(s, 'x', me) != 1) send_byte(s, 'x', getpid());
    if (read(go[0], &b, 1) != 1) _exit(1);
    show_peer("child: listener seen after the accept", s, me);
    show("child: send plain", send_byte(s, 'b', 0));
    _exit(0);
  }
  char lines[7][160];
  int conn = accept(listener, NULL, NULL);
  format_peer(lines[0], sizeof lines[0], "accepted socket's peer is the connector", conn, child);
  int one = 1;
  setsockopt(conn, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
  pid_t first = receive_sender(conn);
  snprintf(lines[1], sizeof lines[1], "credentials sent with the child's pid: %s\n", first == child ? "right" : "WRONG");
  if (write(go[1], "g", 1) != 1) return;
  pid_t named = receive_sender(conn);
  snprintf(lines[5], sizeof lines[5], "credentials sent with the parent's pid (root) or the child's: %s\n",
           named == (geteuid() == 0 ? me : child) ? "right" : "WRONG");
  if (write(go[1], "g", 1) != 1) return;
  pid_t second = receive_sender(conn);
  snprintf(lines[2], sizeof lines[2], "credentials the kernel attached: %s\n", second == child ? "right" : "WRONG");
  int pidfd = -1;
  socklen_t len = sizeof pidfd;
  long r = getsockopt(conn, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len);
  if (r != 0)
    snprintf(lines[3], sizeof lines[3], "SO_PEERPIDFD: -1 %s\n", err_name(errno));
  else
    snprintf(lines[3], sizeof lines[3], "SO_PEERPIDFD: a pidfd %d\n", pidfd >= 0 && len == sizeof pidfd);
  int st = 0;
  waitpid(child, &st, 0);
  snprintf(lines[4], sizeof lines[4], "child exit: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
  lines[6][0] = 0;
  if (r == 0) {
    struct pollfd p = {pidfd, POLLIN, 0};
    snprintf(lines[6], sizeof lines[6], "peer pidfd readable once the child ended: %d\n",
             poll(&p, 1, 5000) == 1 && (p.revents & POLLIN) != 0);
    close(pidfd);
  }
  for (int i = 0; i < 7; ++i) fputs(lines[i], stdout);
  close(conn);
  close(listener);
  close(go[0]);
  close(go[1]);
  close(sv[0]);
  close(sv[1]);
}

/* madvise: DONTNEED zeroes private anonymous pages, hints are accepted, Linux's errors. */
static void test_madvise(void) {
  char *p = mmap(NULL, 4 * GUEST_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  memset(p, 0x5a, 4 * GUEST_PAGE_SIZE);
  show("madvise dontneed", madvise(p, GUEST_PAGE_SIZE, MADV_DONTNEED));
  printf("after dontneed: %d %d\n", p[0], p[GUEST_PAGE_SIZE]);
  show("madvise free", madvise(p + GUEST_PAGE_SIZE, GUEST_PAGE_SIZE, MADV_FREE));
  show("madvise willneed", madvise(p, 4 * GUEST_PAGE_SIZE, MADV_WILLNEED));
  show("madvise unaligned", madvise(p + 1, GUEST_PAGE_SIZE, MADV_NORMAL));
  show("madvise bad advice", madvise(p, GUEST_PAGE_SIZE, 77));
  show("madvise zero length", madvise(p, 0, MADV_DONTNEED));
  show("madvise wraps", syscall(SYS_madvise, p, -(long)GUEST_PAGE_SIZE, (long)MADV_NORMAL));
  munmap(p + 2 * GUEST_PAGE_SIZE, GUEST_PAGE_SIZE);
  p[3 * GUEST_PAGE_SIZE] = 1;
  show("madvise over a hole", madvise(p + GUEST_PAGE_SIZE, 3 * GUEST_PAGE_SIZE, MADV_DONTNEED));
  printf("applied past the hole: %d\n", p[3 * GUEST_PAGE_SIZE]);
  show("madvise hole only", madvise(p + 2 * GUEST_PAGE_SIZE, GUEST_PAGE_SIZE, MADV_WILLNEED));
  munmap(p, 4 * GUEST_PAGE_SIZE);
}

/* Whatever started us may have blocked or ignored signals (both are inherited across exec),
 * and a child waiting in pause() for a SIGTERM that is ignored never ends: start from
 * Linux's defaults so the output does not depend on the caller. */
static void default_signals(void) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  for (int sig = 1; sig < NSIG; ++sig)
    if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  default_signals();
  hole = mmap(NULL, GUEST_PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  munmap(hole, GUEST_PAGE_SIZE);
  test_select();
  test_wait_masks();
  test_epoll();
  test_eventfd();
  test_timerfd();
  test_signalfd();
  test_inotify();
  test_memfd();
  test_timers();
  test_sigqueue();
  test_groups();
  test_clone3();
  test_madvise();
  test_mmsg();
  test_pidfd();
  test_peer_credentials();
  return 0;
}
