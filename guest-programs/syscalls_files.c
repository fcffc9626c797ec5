/* Exercises file, lock, identity, scheduling, memory-hint and resource-usage syscalls with good
 * and bad arguments, and prints each result (a value or an errno name), so that a run under
 * emu can be compared line by line with a native one. Every call is made with syscall(2), so
 * the ABI under test is the kernel's, not glibc's (i386 has its 16-bit uid, time32 and split
 * 64-bit argument variants, each called by number).
 *
 * What legitimately differs between two runs (pids, times, inode numbers, CPU numbers) is
 * printed as a comparison ("child", ">= 150ms"), never as a value.
 *
 * Sections: usage (first: no child has run yet), files, vectors (preadv & co), locks,
 * identity, sched, memory. `syscalls_files SECTION...` runs only those. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/falloc.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/times.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

/* Pointers no call may read or write: NULL, the first page, and one far outside what the
 * process could map (non-canonical on x86_64; an address left unmapped on i386). */
#if defined(__x86_64__)
#define WILD ((void *)0xffffffff00000000ul)
#else
#define WILD ((void *)0xbadbad00ul)
#endif
#define ONE ((void *)1)
#ifndef MEMBARRIER_CMD_GET_REGISTRATIONS
#define MEMBARRIER_CMD_GET_REGISTRATIONS (1 << 9)
#endif
#define LW(p) ((long)(uintptr_t)(p))

static const char *err_name(int e) {
  const char *n = strerrorname_np(e);
  return n ? n : "E?";
}

/* Prints "what = value" or "what = -1 ENAME" for a raw syscall's result. */
static long show(const char *what, long r) {
  if (r == -1)
    printf("%s = -1 %s\n", what, err_name(errno));
  else
    printf("%s = %ld\n", what, r);
  fflush(stdout);
  return r;
}
#define T(expr) show(#expr, (long)(expr))

static char dir[64];

/* Burns CPU on the calling thread until it has used `ms` milliseconds of its own. */
static void burn_ms(int ms) {
  struct timespec ts;
  volatile uint64_t x = 1;
  for (;;) {
    for (int i = 0; i < 100000; ++i) x = x * 6364136223846793005ull + 1;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    if (ts.tv_sec * 1000 + ts.tv_nsec / 1000000 >= ms) break;
  }
}

/* The kernel's rusage, whatever the ABI: two timevals of longs, then 14 longs. */
struct krusage {
  long utime_sec, utime_usec, stime_sec, stime_usec;
  long rest[14];
};
static long usage_ms(int who) {
  struct krusage ru;
  if (syscall(SYS_getrusage, who, &ru) != 0) return -1;
  return ru.utime_sec * 1000 + ru.utime_usec / 1000 + ru.stime_sec * 1000 + ru.stime_usec / 1000;
}

static void print_at_least(const char *what, long value, long min) {
  printf("%s %s %ld\n", what, value >= min ? ">=" : "<", min);
}

/* ---------------------------------------------------------------- usage */

static volatile int burner_done;
static volatile int release_burner;
static void *burner(void *arg) {
  (void)arg;
  burn_ms(200);
  burner_done = 1;
  while (!release_burner) usleep(1000);
  return NULL;
}

static void section_usage(void) {
  printf("== usage\n");
  long tick = sysconf(_SC_CLK_TCK);
  print_at_least("children before any", -usage_ms(RUSAGE_CHILDREN), 0);
  burn_ms(200);
  print_at_least("RUSAGE_THREAD ms", usage_ms(RUSAGE_THREAD), 150);
  print_at_least("RUSAGE_SELF ms", usage_ms(RUSAGE_SELF), 150);
  /* Another thread burns while alive, then the process's total must hold both. */
  pthread_t t;
  pthread_create(&t, NULL, burner, NULL);
  while (!burner_done) usleep(1000);
  print_at_least("RUSAGE_SELF with a live thread ms", usage_ms(RUSAGE_SELF), 350);
  print_at_least("RUSAGE_THREAD still ms", 400 - usage_ms(RUSAGE_THREAD), 0);
  release_burner = 1;
  pthread_join(t, NULL);
  print_at_least("RUSAGE_SELF after the thread ended ms", usage_ms(RUSAGE_SELF), 350);
  struct tms tm;
  long r = syscall(SYS_times, &tm);
  printf("times = %s\n", r == -1 ? err_name(errno) : "ok");
  print_at_least("times utime+stime ticks", (long)(tm.tms_utime + tm.tms_stime), 35 * tick / 100);
  printf("times cutime+cstime = %ld\n", (long)(tm.tms_cutime + tm.tms_cstime));
  T(syscall(SYS_times, NULL) != -1);
  T(syscall(SYS_times, ONE));
  T(syscall(SYS_times, WILD));
  /* A child burns, ends, and counts for RUSAGE_CHILDREN only once it is reaped. */
  pid_t pid = fork();
  if (pid == 0) {
    burn_ms(200);
    _exit(0);
  }
  siginfo_t si;
  T(waitid(P_PID, pid, &si, WEXITED | WNOWAIT));
  printf("children before reaping = %ld\n", usage_ms(RUSAGE_CHILDREN));
  int status;
  T(waitpid(pid, &status, 0) == pid);
  print_at_least("children after reaping ms", usage_ms(RUSAGE_CHILDREN), 150);
  syscall(SYS_times, &tm);
  print_at_least("times cutime+cstime ticks", (long)(tm.tms_cutime + tm.tms_cstime), 15 * tick / 100);
  /* wait4's rusage is the reaped child's own. */
  pid = fork();
  if (pid == 0) {
    burn_ms(200);
    _exit(0);
  }
  struct krusage child;
  memset(&child, 0, sizeof child);
  T(syscall(SYS_wait4, pid, &status, 0, &child) == pid);
  print_at_least("wait4 rusage of the child ms",
                 child.utime_sec * 1000 + child.utime_usec / 1000 + child.stime_sec * 1000 + child.stime_usec / 1000, 150);
  struct krusage ru;
  T(syscall(SYS_getrusage, 5, &ru));
  T(syscall(SYS_getrusage, -2, &ru));
  T(syscall(SYS_getrusage, RUSAGE_SELF, NULL));
  T(syscall(SYS_getrusage, RUSAGE_SELF, ONE));
  T(syscall(SYS_getrusage, RUSAGE_CHILDREN, WILD));
  T(syscall(SYS_getrusage, RUSAGE_THREAD, ONE));
  T(syscall(SYS_getrusage, 5, NULL));
}

/* ---------------------------------------------------------------- files */

static void show_stat(const char *path, int nofollow) {
  struct stat st;
  if ((nofollow ? lstat(path, &st) : stat(path, &st)) != 0) {
    printf("  stat %s: %s\n", path, err_name(errno));
    return;
  }
  const char *type = S_ISREG(st.st_mode) ? "reg" : S_ISDIR(st.st_mode) ? "dir" : S_ISLNK(st.st_mode) ? "lnk"
                   : S_ISFIFO(st.st_mode) ? "fifo" : S_ISCHR(st.st_mode) ? "chr" : S_ISSOCK(st.st_mode) ? "sock" : "?";
  printf("  %s: %s mode %o nlink %ld uid %ld gid %ld size %lld rdev %u:%u\n", path, type, st.st_mode & 07777,
         (long)st.st_nlink, (long)st.st_uid, (long)st.st_gid, (long long)st.st_size, major(st.st_rdev), minor(st.st_rdev));
}

static void show_times(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) {
    printf("  times %s: %s\n", path, err_name(errno));
    return;
  }
  printf("  %s: atime %lld.%09ld mtime %lld.%09ld\n", path, (long long)st.st_atim.tv_sec, st.st_atim.tv_nsec,
         (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
}

static void write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) die_errno("syscalls_files", path, errno);
  if (write(fd, text, strlen(text)) < 0) die_errno("syscalls_files", "write", errno);
  close(fd);
}

static void show_file(const char *path) {
  char buf[128] = {0};
  int fd = open(path, O_RDONLY);
  if (fd < 0) {
    printf("  %s: %s\n", path, err_name(errno));
    return;
  }
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  printf("  %s: \"%.*s\"\n", path, (int)(n < 0 ? 0 : n), buf);
}

static void section_links(int dfd) {
  printf("== links\n");
  write_file("a", "alpha");
#ifdef SYS_link
  T(syscall(SYS_link, "a", "b"));
  T(syscall(SYS_link, "a", "b"));
  T(syscall(SYS_link, "nope", "c"));
  T(syscall(SYS_link, NULL, "c"));
  T(syscall(SYS_link, "a", NULL));
  T(syscall(SYS_link, ONE, "c"));
  T(syscall(SYS_link, "a", WILD));
  T(syscall(SYS_link, "a", "nodir/c"));
#endif
  show_stat("a", 0);
  T(syscall(SYS_linkat, AT_FDCWD, "a", dfd, "c", 0));
  T(syscall(SYS_linkat, dfd, "a", AT_FDCWD, "d", AT_SYMLINK_FOLLOW));
  T(syscall(SYS_linkat, AT_FDCWD, "a", AT_FDCWD, "e", 1));
  T(syscall(SYS_linkat, AT_FDCWD, NULL, AT_FDCWD, "e", 1));
  T(syscall(SYS_linkat, -5, "a", AT_FDCWD, "e", 0));
  T(syscall(SYS_linkat, AT_FDCWD, "a", 999, "e", 0));
  int fa = open("a", O_RDONLY);
  T(syscall(SYS_linkat, fa, "x", AT_FDCWD, "e", 0));
  T(syscall(SYS_linkat, fa, "", AT_FDCWD, "e", AT_EMPTY_PATH));
  close(fa);
  show_stat("a", 0);
  /* The target of a symlink is text: never looked up, never rewritten. */
#ifdef SYS_symlink
  T(syscall(SYS_symlink, "target-text", "s"));
  T(syscall(SYS_symlink, "/nonexistent/abs", "s-abs"));
  T(syscall(SYS_symlink, "x", "s"));
  T(syscall(SYS_symlink, "", "s-empty"));
  T(syscall(SYS_symlink, NULL, "s-null"));
  T(syscall(SYS_symlink, "x", NULL));
  T(syscall(SYS_symlink, WILD, "s-wild"));
#else
  T(syscall(SYS_symlinkat, "target-text", AT_FDCWD, "s"));
  T(syscall(SYS_symlinkat, "/nonexistent/abs", AT_FDCWD, "s-abs"));
#endif
  T(syscall(SYS_symlinkat, "a", dfd, "s2"));
  T(syscall(SYS_symlinkat, "a", -5, "s3"));
  T(syscall(SYS_symlinkat, "a", AT_FDCWD, ONE));
  T(syscall(SYS_symlinkat, "/proc/self/fd/0", AT_FDCWD, "s-proc"));
  char buf[64];
  const char *links[] = {"s", "s-abs", "s2", "s-proc"};
  for (int i = 0; i < 4; ++i) {
    ssize_t n = readlink(links[i], buf, sizeof buf);
    printf("  readlink %s: \"%.*s\"\n", links[i], (int)(n < 0 ? 0 : n), buf);
  }
  show_file("s2");
}

static void section_owners(int dfd) {
  printf("== owners\n");
  uid_t u = getuid();
  gid_t g = getgid();
#ifdef SYS_chown32
  /* i386: chown, lchown and fchown take 16-bit ids (0xffff: unchanged); the *32 ones full. */
  T(syscall(SYS_chown, "a", 0xffff, 0xffff));
  T(syscall(SYS_chown, "a", 1234, 0xffff));
  show_stat("a", 0);
  T(syscall(SYS_chown32, "a", u, g));
  T(syscall(SYS_chown32, "a", -1, -1));
  T(syscall(SYS_chown32, "nope", -1, -1));
  T(syscall(SYS_chown32, NULL, -1, -1));
  T(syscall(SYS_lchown, "s", 4321, 0xffff));
  show_stat("s", 1);
  T(syscall(SYS_lchown32, "s", u, g));
  T(syscall(SYS_lchown32, ONE, u, g));
  int fd = open("a", O_RDONLY);
  T(syscall(SYS_fchown, fd, 77, 0xffff));
  show_stat("a", 0);
  T(syscall(SYS_fchown32, fd, u, g));
  T(syscall(SYS_fchown32, -1, u, g));
  T(syscall(SYS_fchown, 999, u, g));
  T(syscall(SYS_chown, "a", 70000, 0xffff));
  show_stat("a", 0);
  T(syscall(SYS_chown32, "a", 70000, -1));
  show_stat("a", 0);
  T(syscall(SYS_chown32, "a", u, g));
#else
  T(syscall(SYS_chown, "a", -1, -1));
  T(syscall(SYS_chown, "a", 1234, -1));
  show_stat("a", 0);
  T(syscall(SYS_chown, "a", u, g));
  T(syscall(SYS_chown, "nope", -1, -1));
  T(syscall(SYS_chown, NULL, -1, -1));
  T(syscall(SYS_chown, WILD, -1, -1));
  T(syscall(SYS_lchown, "s", 4321, -1));
  show_stat("s", 1);
  T(syscall(SYS_lchown, "s", u, g));
  T(syscall(SYS_lchown, ONE, u, g));
  int fd = open("a", O_RDONLY);
  T(syscall(SYS_fchown, fd, 77, -1));
  show_stat("a", 0);
  T(syscall(SYS_fchown, fd, u, g));
  T(syscall(SYS_fchown, -1, u, g));
  T(syscall(SYS_fchown, 999, u, g));
#endif
  T(syscall(SYS_fchownat, dfd, "a", 55, -1, 0));
  show_stat("a", 0);
  T(syscall(SYS_fchownat, AT_FDCWD, "s", 66, -1, AT_SYMLINK_NOFOLLOW));
  show_stat("s", 1);
  T(syscall(SYS_fchownat, fd, "", u, g, AT_EMPTY_PATH));
  T(syscall(SYS_fchownat, AT_FDCWD, "s", u, g, AT_SYMLINK_NOFOLLOW));
  T(syscall(SYS_fchownat, AT_FDCWD, "a", u, g, 0x4));
  T(syscall(SYS_fchownat, AT_FDCWD, NULL, u, g, 0x4));
  T(syscall(SYS_fchownat, AT_FDCWD, NULL, u, g, 0));
  T(syscall(SYS_fchownat, -7, "a", u, g, 0));
  T(syscall(SYS_fchownat, fd, "a", u, g, 0));
  close(fd);
  show_stat("a", 0);
}

static void section_times(int dfd) {
  printf("== times\n");
  int fd = open("a", O_RDWR);
#ifdef SYS_utime
  {
    long ub[2] = {1000, 2000}; /* struct utimbuf: two longs on both ABIs */
    T(syscall(SYS_utime, "a", ub));
    show_times("a");
    T(syscall(SYS_utime, "a", NULL));
    T(syscall(SYS_utime, "nope", ub));
    T(syscall(SYS_utime, NULL, ub));
    T(syscall(SYS_utime, "a", ONE));
    T(syscall(SYS_utime, "a", WILD));
  }
#endif
  {
    long tv[4] = {3000, 5, 4000, 6}; /* two timevals of longs */
    T(syscall(SYS_utimes, "a", tv));
    show_times("a");
    long bad[4] = {3000, 1000000, 4000, 6};
    T(syscall(SYS_utimes, "a", bad));
    T(syscall(SYS_utimes, NULL, bad));
    long neg[4] = {3000, 0, 4000, -1};
    T(syscall(SYS_utimes, "a", neg));
    T(syscall(SYS_utimes, "nope", NULL));
    T(syscall(SYS_utimes, "a", ONE));
    T(syscall(SYS_utimes, NULL, NULL));
    long tv2[4] = {6000, 7, 6500, 8};
    T(syscall(SYS_futimesat, dfd, "a", tv2));
    show_times("a");
    long tv3[4] = {7000, 0, 7500, 1};
    T(syscall(SYS_futimesat, fd, NULL, tv3));
    show_times("a");
    T(syscall(SYS_futimesat, -5, "a", tv3));
    T(syscall(SYS_futimesat, AT_FDCWD, NULL, tv3));
    T(syscall(SYS_futimesat, 999, NULL, tv3));
  }
  {
    /* utimensat: x86_64's and i386's time64 one take 64-bit timespecs, i386's 320 32-bit. */
#if defined(__i386__)
    const long nr64 = 412, nr32 = SYS_utimensat;
#else
    const long nr64 = SYS_utimensat, nr32 = -1;
#endif
    long long ts[4] = {8000, 9, 0, UTIME_OMIT};
    T(syscall(nr64, AT_FDCWD, "a", ts, 0));
    show_times("a");
    long long omit[4] = {0, UTIME_OMIT, 0, UTIME_OMIT};
    T(syscall(nr64, AT_FDCWD, NULL, omit, 0));
    T(syscall(nr64, -5, "nope", omit, 0x1234));
    long long ts2[4] = {9000, 1, 9100, 2};
    T(syscall(nr64, fd, NULL, ts2, 0));
    show_times("a");
    T(syscall(nr64, fd, NULL, ts2, AT_SYMLINK_NOFOLLOW));
    T(syscall(nr64, AT_FDCWD, NULL, ts2, 0));
    T(syscall(nr64, 999, NULL, ts2, 0));
    long long badns[4] = {9000, 1000000000, 9100, 2};
    T(syscall(nr64, AT_FDCWD, "a", badns, 0));
    T(syscall(nr64, AT_FDCWD, "nope", badns, 0));
    long long ts3[4] = {9200, 3, 9300, 4};
    T(syscall(nr64, AT_FDCWD, "s", ts3, AT_SYMLINK_NOFOLLOW));
    show_times("s");
    T(syscall(nr64, AT_FDCWD, "a", ts3, 0x4));
    T(syscall(nr64, AT_FDCWD, "a", ONE, 0));
    T(syscall(nr64, AT_FDCWD, "a", WILD, 0));
    T(syscall(nr64, AT_FDCWD, "a", NULL, 0));
    T(syscall(nr64, fd, "", ts3, AT_EMPTY_PATH));
    T(syscall(nr64, dfd, "a", ts3, 0));
    long long now[4] = {0, UTIME_NOW, 12345, 6};
    T(syscall(nr64, AT_FDCWD, "a", now, 0));
    if (nr32 >= 0) {
      int ts32[4] = {10000, 11, 10100, 12};
      T(syscall(nr32, AT_FDCWD, "a", ts32, 0));
      show_times("a");
      int omit32[4] = {0, UTIME_OMIT, 0, UTIME_OMIT};
      T(syscall(nr32, AT_FDCWD, NULL, omit32, 0));
      int bad32[4] = {0, -1, 0, 0};
      T(syscall(nr32, AT_FDCWD, "a", bad32, 0));
      T(syscall(nr32, fd, NULL, ts32, 0));
      T(syscall(nr32, AT_FDCWD, "a", ONE, 0));
    }
  }
  close(fd);
}

static void section_sizes(void) {
  printf("== sizes\n");
  mkdir("sub", 0755);
  mkfifo("pipe-node", 0644);
  T(syscall(SYS_truncate, "a", 100));
  show_stat("a", 0);
  T(syscall(SYS_truncate, "a", -1L));
  T(syscall(SYS_truncate, NULL, -1L));
  T(syscall(SYS_truncate, NULL, 1L));
  T(syscall(SYS_truncate, "sub", 0));
  T(syscall(SYS_truncate, "pipe-node", 0));
  T(syscall(SYS_truncate, "nope", 0));
  T(syscall(SYS_truncate, WILD, 0));
#if defined(__i386__)
  T(syscall(SYS_truncate64, "a", 0, 1)); /* 4 GiB: low word, high word */
  show_stat("a", 0);
  T(syscall(SYS_truncate64, "a", 0, 0x80000000u));
  T(syscall(SYS_truncate64, "a", 7, 0));
  show_stat("a", 0);
  T(syscall(SYS_truncate, "a", 0xffffffffu)); /* -1 as a 32-bit off_t */
  int fd0 = open("a", O_RDWR | O_LARGEFILE);
  T(syscall(SYS_ftruncate64, fd0, 0, 2));
  show_stat("a", 0);
  T(syscall(SYS_ftruncate64, fd0, 0, 0x80000000u));
  T(syscall(SYS_ftruncate64, 999, 0, 0));
  T(syscall(SYS_ftruncate, fd0, 0xffffffffu));
  T(syscall(SYS_ftruncate, fd0, 9));
  show_stat("a", 0);
  close(fd0);
#endif
  int fd = open("f", O_RDWR | O_CREAT | O_TRUNC, 0644);
  int ro = open("f", O_RDONLY);
#if defined(__i386__)
  T(syscall(SYS_fallocate, fd, 0, 0, 0, 8192, 0));
  show_stat("f", 0);
  T(syscall(SYS_fallocate, fd, FALLOC_FL_KEEP_SIZE, 8192, 0, 4096, 0));
  show_stat("f", 0);
  T(syscall(SYS_fallocate, fd, 0, 0xffffffffu, 0xffffffffu, 10, 0));
  T(syscall(SYS_fallocate, fd, 0, 0, 0, 0, 0));
  T(syscall(SYS_fallocate, -1, 0, 0, 0, 10, 0));
  T(syscall(SYS_fallocate, ro, 0, 0, 0, 10, 0));
  T(syscall(SYS_fallocate, fd, 0x100, 0, 0, 10, 0));
  T(syscall(SYS_fallocate, fd, FALLOC_FL_PUNCH_HOLE, 0, 0, 10, 0));
  T(syscall(SYS_fallocate, fd, 0, 0, 1, 10, 0));
  show_stat("f", 0);
#else
  T(syscall(SYS_fallocate, fd, 0, 0L, 8192L));
  show_stat("f", 0);
  T(syscall(SYS_fallocate, fd, FALLOC_FL_KEEP_SIZE, 8192L, 4096L));
  show_stat("f", 0);
  T(syscall(SYS_fallocate, fd, 0, -1L, 10L));
  T(syscall(SYS_fallocate, fd, 0, 0L, 0L));
  T(syscall(SYS_fallocate, -1, 0, 0, 10));
  T(syscall(SYS_fallocate, ro, 0, 0, 10));
  T(syscall(SYS_fallocate, fd, 0x100, 0, 10));
  T(syscall(SYS_fallocate, fd, FALLOC_FL_PUNCH_HOLE, 0, 10));
  T(syscall(SYS_fallocate, fd, 0, 1l << 32, 10));
  show_stat("f", 0);
#endif
  int p[2];
  pipe(p);
#if defined(__i386__)
  T(syscall(SYS_fallocate, p[1], 0, 0, 0, 10, 0));
#else
  T(syscall(SYS_fallocate, p[1], 0, 0, 10));
#endif
  close(p[0]);
  close(p[1]);
  close(fd);
  close(ro);
}

static void section_nodes(int dfd) {
  printf("== nodes\n");
#ifdef SYS_mknod
  T(syscall(SYS_mknod, "fifo", S_IFIFO | 0640, 0));
  show_stat("fifo", 0);
  T(syscall(SYS_mknod, "reg", S_IFREG | 0600, 0));
  show_stat("reg", 0);
  T(syscall(SYS_mknod, "plain", 0600, 0));
  show_stat("plain", 0);
  T(syscall(SYS_mknod, "fifo", S_IFIFO | 0640, 0));
  T(syscall(SYS_mknod, "dir", S_IFDIR | 0755, 0));
  T(syscall(SYS_mknod, "bad", 0170000 | 0644, 0));
  T(syscall(SYS_mknod, NULL, S_IFDIR | 0755, 0));
  T(syscall(SYS_mknod, NULL, S_IFIFO | 0755, 0));
  T(syscall(SYS_mknod, ONE, S_IFIFO | 0755, 0));
  T(syscall(SYS_mknod, "chr", S_IFCHR | 0600, makedev(1, 3)));
  show_stat("chr", 0);
  T(syscall(SYS_mknod, "sock", S_IFSOCK | 0600, 0));
  show_stat("sock", 0);
#endif
  T(syscall(SYS_mknodat, dfd, "fifo2", S_IFIFO | 0600, 0));
  show_stat("fifo2", 0);
  T(syscall(SYS_mknodat, -5, "fifo3", S_IFIFO | 0600, 0));
  T(syscall(SYS_mknodat, AT_FDCWD, "nodir/x", S_IFIFO | 0600, 0));
  T(syscall(SYS_mknodat, AT_FDCWD, "fifo4", S_IFDIR | 0600, 0));
  T(syscall(SYS_mknodat, AT_FDCWD, WILD, S_IFIFO | 0600, 0));
  T(syscall(SYS_mknodat, AT_FDCWD, "blk", S_IFBLK | 0600, makedev(7, 200)));
  show_stat("blk", 0);
}

static void section_renames(void) {
  printf("== renames\n");
  write_file("r1", "one");
  write_file("r2", "two");
#ifdef SYS_rename
  T(syscall(SYS_rename, "r1", "r3"));
  T(syscall(SYS_rename, "r3", "r1"));
  T(syscall(SYS_rename, "nope", "r1"));
  T(syscall(SYS_rename, NULL, "r1"));
#endif
  T(syscall(SYS_renameat2, AT_FDCWD, "r1", AT_FDCWD, "r2", RENAME_NOREPLACE));
  T(syscall(SYS_renameat2, AT_FDCWD, "r1", AT_FDCWD, "r2", RENAME_EXCHANGE));
  show_file("r1");
  show_file("r2");
  T(syscall(SYS_renameat2, AT_FDCWD, "r1", AT_FDCWD, "r9", RENAME_EXCHANGE));
  T(syscall(SYS_renameat2, AT_FDCWD, "r1", AT_FDCWD, "r9", RENAME_NOREPLACE));
  T(syscall(SYS_renameat2, AT_FDCWD, "r9", AT_FDCWD, "r1", 0));
  T(syscall(SYS_renameat2, AT_FDCWD, "r1", AT_FDCWD, "r2", 0x80));
  T(syscall(SYS_renameat2, AT_FDCWD, "r1", AT_FDCWD, "r2", RENAME_NOREPLACE | RENAME_EXCHANGE));
  T(syscall(SYS_renameat2, AT_FDCWD, NULL, AT_FDCWD, "r2", 0x80));
  T(syscall(SYS_renameat2, AT_FDCWD, NULL, AT_FDCWD, "r2", 0));
  T(syscall(SYS_renameat2, AT_FDCWD, "r1", AT_FDCWD, WILD, 0));
  T(syscall(SYS_renameat2, -4, "r1", AT_FDCWD, "r2", 0));
  T(syscall(SYS_renameat2, AT_FDCWD, "r1", -4, "r2", 0));
  show_file("r1");
  show_file("r2");
}

static void section_sync(void) {
  printf("== sync\n");
  int fd = open("a", O_RDWR);
  T(syscall(SYS_sync));
  T(syscall(SYS_syncfs, fd));
  T(syscall(SYS_syncfs, -1));
  T(syscall(SYS_syncfs, 999));
#if defined(__i386__)
  T(syscall(SYS_sync_file_range, fd, 0, 0, 0, 0, SYNC_FILE_RANGE_WRITE));
  T(syscall(SYS_sync_file_range, fd, 0, 0, 100, 0, SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE));
  T(syscall(SYS_sync_file_range, fd, 0, 0, 0, 0, 8));
  T(syscall(SYS_sync_file_range, fd, 0xffffffffu, 0xffffffffu, 0, 0, 0));
  T(syscall(SYS_sync_file_range, fd, 0, 0, 0xffffffffu, 0xffffffffu, 0));
  T(syscall(SYS_sync_file_range, -1, 0, 0, 0, 0, 0));
#else
  T(syscall(SYS_sync_file_range, fd, 0, 0, SYNC_FILE_RANGE_WRITE));
  T(syscall(SYS_sync_file_range, fd, 0, 100, SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE));
  T(syscall(SYS_sync_file_range, fd, 0, 0, 8));
  T(syscall(SYS_sync_file_range, fd, -1L, 0L, 0));
  T(syscall(SYS_sync_file_range, fd, 0L, -1L, 0));
  T(syscall(SYS_sync_file_range, -1, 0, 0, 0));
#endif
  int p[2];
  pipe(p);
#if defined(__i386__)
  T(syscall(SYS_sync_file_range, p[0], 0, 0, 0, 0, 0));
#else
  T(syscall(SYS_sync_file_range, p[0], 0, 0, 0));
#endif
  close(p[0]);
  close(p[1]);
  close(fd);
}

/* ---------------------------------------------------------------- vectors */

/* preadv and friends take the offset as two longs (low, high) on both ABIs; on x86_64 the
 * high one is ignored. */
#if defined(__i386__)
#define LOHI(off) (unsigned long)((unsigned long long)(off) & 0xffffffffu), (unsigned long)((unsigned long long)(off) >> 32)
#else
#define LOHI(off) (unsigned long)(off), 0ul
#endif

static void section_vectors(void) {
  printf("== vectors\n");
  int fd = open("v", O_RDWR | O_CREAT | O_TRUNC, 0644);
  int ro = open("v", O_RDONLY);
  int wo = open("v", O_WRONLY);
  char a[] = "hello ", b[] = "vector world";
  struct iovec w[2] = {{a, 6}, {b, 12}};
  T(syscall(SYS_pwritev, fd, w, 2, LOHI(5)));
  char x[4], y[8], z[16];
  memset(x, 0, sizeof x), memset(y, 0, sizeof y), memset(z, 0, sizeof z);
  struct iovec r[3] = {{x, 4}, {y, 8}, {z, 16}};
  T(syscall(SYS_preadv, fd, r, 3, LOHI(0)));
  printf("  [%.4s|%.8s|%.16s]\n", x, y, z);
  T(syscall(SYS_preadv, fd, r, 3, LOHI(20)));
  T(syscall(SYS_preadv, fd, r, 0, LOHI(0)));
  T(syscall(SYS_preadv, fd, r, 3, LOHI(-1)));
  T(syscall(SYS_preadv, fd, r, 1025, LOHI(0)));
  T(syscall(SYS_preadv, fd, NULL, 1, LOHI(0)));
  T(syscall(SYS_preadv, fd, ONE, 2, LOHI(0)));
  T(syscall(SYS_preadv, fd, WILD, 2, LOHI(0)));
  T(syscall(SYS_preadv, -1, r, 3, LOHI(0)));
  T(syscall(SYS_preadv, -1, r, 3, LOHI(-1)));
  T(syscall(SYS_preadv, wo, r, 3, LOHI(0)));
  T(syscall(SYS_pwritev, ro, w, 2, LOHI(0)));
  struct iovec badbase[2] = {{x, 4}, {ONE, 8}};
  memset(x, 0, sizeof x);
  T(syscall(SYS_preadv, fd, badbase, 2, LOHI(5)));
  printf("  [%.4s]\n", x);
  struct iovec badfirst[2] = {{ONE, 4}, {x, 4}};
  T(syscall(SYS_preadv, fd, badfirst, 2, LOHI(0)));
  struct iovec wild[1] = {{WILD, 4}};
  T(syscall(SYS_preadv, fd, wild, 1, LOHI(0)));
  T(syscall(SYS_pwritev, fd, wild, 1, LOHI(0)));
  struct iovec wbad[2] = {{a, 6}, {ONE, 8}};
  T(syscall(SYS_pwritev, fd, wbad, 2, LOHI(40)));
  struct iovec neg[2] = {{x, 4}, {y, (size_t)-5}};
  T(syscall(SYS_preadv, fd, neg, 2, LOHI(0)));
  struct iovec empty[2] = {{NULL, 0}, {x, 4}};
  T(syscall(SYS_preadv, fd, empty, 2, LOHI(6)));
  printf("  [%.4s]\n", x);
  int p[2];
  pipe(p);
  T(syscall(SYS_preadv, p[0], r, 3, LOHI(0)));
  T(syscall(SYS_preadv, p[0], NULL, 3, LOHI(0)));
  T(syscall(SYS_pwritev, p[1], w, 2, LOHI(0)));
  /* preadv2/pwritev2: offset -1 is the file position; flags are RWF_*. */
  lseek(fd, 7, SEEK_SET);
  memset(x, 0, sizeof x);
  struct iovec one[1] = {{x, 4}};
  T(syscall(SYS_preadv2, fd, one, 1, LOHI(-1), 0));
  printf("  [%.4s] pos %ld\n", x, (long)lseek(fd, 0, SEEK_CUR));
  T(syscall(SYS_preadv2, fd, one, 1, LOHI(7), RWF_NOWAIT));
  printf("  [%.4s] pos %ld\n", x, (long)lseek(fd, 0, SEEK_CUR));
  T(syscall(SYS_preadv2, fd, one, 1, LOHI(0), 0x10000000));
  T(syscall(SYS_preadv2, fd, one, 1, LOHI(-2), 0));
  T(syscall(SYS_preadv2, -1, one, 1, LOHI(0), 0));
  T(syscall(SYS_preadv2, fd, NULL, 1, LOHI(-1), 0));
  T(syscall(SYS_pwritev2, fd, w, 1, LOHI(0), RWF_APPEND));
  T(syscall(SYS_pwritev2, fd, w, 1, LOHI(-1), 0));
  printf("  pos %ld\n", (long)lseek(fd, 0, SEEK_CUR));
  T(syscall(SYS_pwritev2, fd, w, 1, LOHI(0), 0x10000000));
  T(syscall(SYS_pwritev2, fd, w, 1, LOHI(0), RWF_DSYNC | RWF_SYNC));
  T(syscall(SYS_pwritev2, p[1], w, 2, LOHI(-1), 0));
  T(syscall(SYS_preadv2, p[0], one, 1, LOHI(-1), RWF_NOWAIT));
  T(syscall(SYS_preadv2, p[0], r, 3, LOHI(-1), 0));
  printf("  [%.4s|%.8s]\n", x, y);
  T(syscall(SYS_preadv2, p[0], r, 3, LOHI(-1), RWF_NOWAIT));
  struct stat st;
  fstat(fd, &st);
  printf("  v size %lld\n", (long long)st.st_size);

  printf("-- copy_file_range\n");
  int out = open("cfr", O_RDWR | O_CREAT | O_TRUNC, 0644);
  long long off_in = 6, off_out = 0;
  T(syscall(SYS_copy_file_range, fd, &off_in, out, NULL, 6, 0));
  printf("  off_in %lld\n", off_in);
  T(syscall(SYS_copy_file_range, fd, &off_in, out, &off_out, 3, 0));
  printf("  off_in %lld off_out %lld\n", off_in, off_out);
  show_file("cfr");
  T(syscall(SYS_copy_file_range, fd, &off_in, out, NULL, 3, 1));
  T(syscall(SYS_copy_file_range, -1, &off_in, out, NULL, 3, 0));
  T(syscall(SYS_copy_file_range, fd, &off_in, -1, NULL, 3, 0));
  T(syscall(SYS_copy_file_range, fd, ONE, out, NULL, 3, 0));
  T(syscall(SYS_copy_file_range, fd, NULL, out, WILD, 3, 0));
  T(syscall(SYS_copy_file_range, fd, NULL, ro, NULL, 3, 0));
  T(syscall(SYS_copy_file_range, p[0], NULL, out, NULL, 3, 0));
  long long o1 = 0, o2 = 2;
  T(syscall(SYS_copy_file_range, fd, &o1, fd, &o2, 5, 0));
  long long neg_off = -1;
  T(syscall(SYS_copy_file_range, fd, &neg_off, out, NULL, 3, 0));
  T(syscall(SYS_copy_file_range, fd, &off_in, out, NULL, 0, 0));

  printf("-- splice and tee\n");
  write(p[1], "abcdef", 6);
  long long soff = 2;
  T(syscall(SYS_splice, p[0], NULL, out, &soff, 3, 0));
  printf("  soff %lld\n", soff);
  show_file("cfr");
  soff = 0;
  T(syscall(SYS_splice, out, &soff, p[1], NULL, 4, 0));
  printf("  soff %lld\n", soff);
  T(syscall(SYS_splice, p[0], NULL, out, NULL, 0, 0));
  T(syscall(SYS_splice, -1, NULL, -1, NULL, 0, 0));
  T(syscall(SYS_splice, -1, NULL, -1, NULL, 1, 0x100));
  T(syscall(SYS_splice, -1, NULL, out, NULL, 1, 0));
  T(syscall(SYS_splice, fd, NULL, out, NULL, 1, 0));
  T(syscall(SYS_splice, p[0], &soff, out, NULL, 1, 0));
  T(syscall(SYS_splice, out, ONE, p[1], NULL, 1, 0));
  T(syscall(SYS_splice, out, WILD, p[1], NULL, 1, 0));
  T(syscall(SYS_splice, p[0], NULL, out, ONE, 1, 0));
  int q[2];
  pipe(q);
  T(syscall(SYS_tee, p[0], q[1], 100, 0));
  char tb[16] = {0};
  printf("  q has %ld\n", (long)read(q[0], tb, sizeof tb));
  printf("  [%.8s]\n", tb);
  T(syscall(SYS_tee, p[0], q[1], 0, 0));
  T(syscall(SYS_tee, p[0], q[1], 1, 0x100));
  T(syscall(SYS_tee, -1, q[1], 1, 0));
  T(syscall(SYS_tee, p[0], -1, 1, 0));
  T(syscall(SYS_tee, fd, q[1], 1, 0));
  T(syscall(SYS_tee, p[0], p[1], 1, 0));
  T(syscall(SYS_tee, q[0], p[1], 1, SPLICE_F_NONBLOCK));
  char pb[16] = {0};
  printf("  p has %ld\n", (long)read(p[0], pb, sizeof pb));
  T(syscall(SYS_splice, q[0], NULL, p[1], NULL, 1, SPLICE_F_NONBLOCK));
#if defined(__i386__)
  printf("-- sendfile (32-bit offset)\n");
  int soff32 = 1;
  T(syscall(SYS_sendfile, p[1], fd, &soff32, 5));
  printf("  soff32 %d\n", soff32);
  printf("  p has %ld\n", (long)read(p[0], pb, sizeof pb));
  T(syscall(SYS_sendfile, p[1], fd, ONE, 5));
  T(syscall(SYS_sendfile, -1, fd, ONE, 5));
  T(syscall(SYS_sendfile, -1, fd, NULL, 5));
  T(syscall(SYS_sendfile, p[1], fd, NULL, 5));
  printf("  p has %ld\n", (long)read(p[0], pb, sizeof pb));
#endif
  close(q[0]), close(q[1]), close(p[0]), close(p[1]);
  close(out), close(fd), close(ro), close(wo);
}

/* ---------------------------------------------------------------- locks */

/* struct flock as each command takes it: x86_64 has one (64-bit) layout; i386 has the 32-bit
 * struct flock for F_GETLK/F_SETLK/F_SETLKW and the packed 64-bit one for the *64 and OFD
 * commands. */
struct flock64_abi {
  short type, whence;
  long long start, len;
  int pid;
}
#if defined(__i386__)
__attribute__((packed, aligned(4)))
#endif
;
struct flock32_abi {
  short type, whence;
  int start, len, pid;
};

#if defined(__i386__)
#define NR_FCNTL64 SYS_fcntl64
#define CMD_GETLK64 12
#define CMD_SETLK64 13
#define CMD_SETLKW64 14
#else
#define NR_FCNTL64 SYS_fcntl
#define CMD_GETLK64 F_GETLK
#define CMD_SETLK64 F_SETLK
#define CMD_SETLKW64 F_SETLKW
#endif

static long lk(int fd, int cmd, short type, long long start, long long len) {
  struct flock64_abi fl = {type, SEEK_SET, start, len, 0};
  return syscall(NR_FCNTL64, fd, cmd, &fl);
}

static pid_t parent_pid;

/* F_GETLK as the 64-bit layout; prints the answer with the holder named, not numbered. */
static void getlk(const char *what, int fd, int cmd, short type, long long start, long long len) {
  struct flock64_abi fl = {type, SEEK_SET, start, len, 12345};
  if (cmd == F_OFD_GETLK) fl.pid = 0;
  long r = syscall(NR_FCNTL64, fd, cmd, &fl);
  if (r == -1) {
    printf("%s: -1 %s\n", what, err_name(errno));
    return;
  }
  const char *who = fl.pid == parent_pid ? "parent" : fl.pid == getpid() ? "self" : fl.pid == -1 ? "-1"
                  : fl.pid == 12345 ? "unchanged" : fl.pid == 0 ? "0" : "other";
  printf("%s: type %s whence %d start %lld len %lld pid %s\n", what,
         fl.type == F_RDLCK ? "RD" : fl.type == F_WRLCK ? "WR" : fl.type == F_UNLCK ? "UN" : "?", fl.whence, fl.start,
         fl.len, who);
}

static volatile int got_usr1;
static void on_usr1(int sig) {
  (void)sig;
  got_usr1 = 1;
}

/* Runs `fn` in a child and waits for it; its output comes before the parent's next line. */
static void in_child(void (*fn)(void)) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    fn();
    fflush(stdout);
    _exit(0);
  }
  int status;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) printf("child failed: status %#x\n", status);
}

static void child_sees_posix_locks(void) {
  int fd = open("lockfile", O_RDWR);
  T(lk(fd, CMD_SETLK64, F_WRLCK, 0, 1));
  T(lk(fd, CMD_SETLK64, F_RDLCK, 5, 1));
  T(lk(fd, CMD_SETLK64, F_WRLCK, 100, 10));
  T(lk(fd, CMD_SETLK64, F_RDLCK, 100, 10));
  T(lk(fd, CMD_SETLK64, F_RDLCK, 1000, 0));
  T(lk(fd, CMD_SETLK64, F_UNLCK, 0, 0));
  T(lk(fd, CMD_SETLK64, F_WRLCK, 30, 5));
  getlk("child getlk 5", fd, CMD_GETLK64, F_WRLCK, 5, 1);
  getlk("child getlk 15", fd, CMD_GETLK64, F_RDLCK, 15, 1);
  getlk("child getlk 25", fd, CMD_GETLK64, F_WRLCK, 25, 1);
  getlk("child getlk 100", fd, CMD_GETLK64, F_RDLCK, 100, 1);
  getlk("child getlk 100 wr", fd, CMD_GETLK64, F_WRLCK, 100, 1);
  getlk("child getlk 2000", fd, CMD_GETLK64, F_WRLCK, 2000, 1);
  getlk("child getlk 40", fd, CMD_GETLK64, F_WRLCK, 40, 5);
  getlk("child getlk ofd 5", fd, F_OFD_GETLK, F_WRLCK, 5, 1);
#if defined(__i386__)
  struct flock32_abi f32 = {F_WRLCK, SEEK_SET, 0, 0, 0};
  T(syscall(SYS_fcntl64, fd, F_GETLK, &f32));
  printf("  32-bit getlk: type %d start %d len %d pid %s\n", f32.type, f32.start, f32.len,
         f32.pid == parent_pid ? "parent" : "other");
  struct flock32_abi f32b = {F_WRLCK, SEEK_SET, 0x40000000, 0, 0};
  T(syscall(SYS_fcntl, fd, F_GETLK, &f32b));
  printf("  32-bit getlk: type %d start %d len %d\n", f32b.type, f32b.start, f32b.len);
  struct flock32_abi f32c = {F_WRLCK, SEEK_SET, 0, 0, 0};
  T(syscall(SYS_fcntl, fd, F_SETLK, &f32c));
  struct flock64_abi f64 = {F_WRLCK, SEEK_SET, 0, 1, 0};
  T(syscall(SYS_fcntl, fd, CMD_GETLK64, &f64)); /* plain fcntl: compat fcntl64 on x86_64 */
  T(syscall(SYS_fcntl, fd, F_OFD_GETLK, &f64));
#endif
  close(fd);
}

static void child_sees_flocks(void) {
  int own = open("lockfile", O_RDWR);
  T(flock(own, LOCK_EX | LOCK_NB));
  T(flock(own, LOCK_SH | LOCK_NB));
  T(flock(3, LOCK_SH | LOCK_NB)); /* unused */
  close(own);
}

static int inherited_fd;
static void child_shares_flock(void) {
  /* The same open file description: its flock is the parent's own. */
  T(flock(inherited_fd, LOCK_EX | LOCK_NB));
  int own = open("lockfile", O_RDONLY);
  T(flock(own, LOCK_SH | LOCK_NB));
  close(own);
}

static int waits_ready = -1;
static void child_waits(void) {
  int fd = open("lockfile", O_RDWR);
  T(lk(fd, CMD_SETLK64, F_WRLCK, 0, 1));
  write(waits_ready, "r", 1);
  T(lk(fd, CMD_SETLKW64, F_WRLCK, 0, 1)); /* the parent lets go after a while */
  getlk("child after wait", fd, CMD_GETLK64, F_WRLCK, 0, 1);
  close(fd);
}

static void child_shares_ofd(void) {
  T(lk(inherited_fd, F_OFD_SETLK, F_WRLCK, 0, 2)); /* the parent's own description */
  T(lk(inherited_fd, CMD_SETLK64, F_RDLCK, 0, 1)); /* but this process is another owner */
  getlk("child getlk of the shared ofd lock", inherited_fd, CMD_GETLK64, F_RDLCK, 0, 1);
}

static void *thread_locks(void *arg) {
  (void)arg;
  int fd = open("lockfile", O_RDWR);
  T(lk(fd, CMD_SETLK64, F_WRLCK, 50, 1)); /* the process's own lock */
  getlk("thread getlk", fd, CMD_GETLK64, F_WRLCK, 50, 1);
  /* Closing this fd lets go of the process's locks on the file, the main thread's too. */
  close(fd);
  return NULL;
}

#if defined(__i386__)
static void child_sees_big_locks(void) {
  int fd = open("lockfile", O_RDWR);
  struct flock32_abi a = {F_WRLCK, SEEK_SET, 0, 0, 0};
  T(syscall(SYS_fcntl64, fd, F_GETLK, &a));
  printf("  32-bit getlk: type %d start %d len %d\n", a.type, a.start, a.len);
  struct flock32_abi b = {F_RDLCK, SEEK_SET, 0x7ffffff0, 0, 0};
  T(syscall(SYS_fcntl64, fd, F_GETLK, &b));
  printf("  32-bit getlk: type %d start %d len %d\n", b.type, b.start, b.len);
  getlk("64-bit getlk", fd, CMD_GETLK64, F_WRLCK, 0, 0);
  close(fd);
}
#endif

static void section_locks(void) {
  printf("== locks\n");
  parent_pid = getpid();
  int fd = open("lockfile", O_RDWR | O_CREAT | O_TRUNC, 0644);
  int ro = open("lockfile", O_RDONLY);
  int wo = open("lockfile", O_WRONLY);
  write(fd, "0123456789", 10);
  /* Argument checks. */
  T(lk(-1, CMD_SETLK64, F_WRLCK, 0, 1));
  T(lk(999, CMD_GETLK64, F_WRLCK, 0, 1));
  T(lk(fd, CMD_SETLK64, 7, 0, 1));
  T(lk(fd, CMD_GETLK64, F_UNLCK, 0, 1));
  T(lk(fd, CMD_SETLK64, F_WRLCK, -5, 1));
  T(lk(fd, CMD_SETLK64, F_WRLCK, 5, -10));
  T(lk(fd, CMD_SETLK64, F_WRLCK, 0x7fffffffffffffffll, 2));
  T(lk(ro, CMD_SETLK64, F_WRLCK, 0, 1));
  T(lk(wo, CMD_SETLK64, F_RDLCK, 0, 1));
  T(lk(ro, CMD_SETLK64, F_UNLCK, 0, 1));
  T(syscall(NR_FCNTL64, fd, CMD_SETLK64, NULL));
  T(syscall(NR_FCNTL64, fd, CMD_GETLK64, ONE));
  T(syscall(NR_FCNTL64, fd, CMD_SETLKW64, WILD));
  T(syscall(NR_FCNTL64, fd, F_OFD_SETLK, NULL));
  {
    struct flock64_abi fl = {F_WRLCK, 3, 0, 1, 0};
    T(syscall(NR_FCNTL64, fd, CMD_SETLK64, &fl));
    struct flock64_abi ofd = {F_WRLCK, SEEK_SET, 0, 1, 5};
    T(syscall(NR_FCNTL64, fd, F_OFD_SETLK, &ofd));
    T(syscall(NR_FCNTL64, fd, F_OFD_GETLK, &ofd));
    struct flock64_abi cur = {F_WRLCK, SEEK_CUR, -2, 1, 0};
    T(syscall(NR_FCNTL64, fd, CMD_SETLK64, &cur)); /* byte 8 (the offset is 10) */
    struct flock64_abi end = {F_RDLCK, SEEK_END, 5, 0, 0};
    T(syscall(NR_FCNTL64, fd, CMD_SETLK64, &end)); /* 15 to the end of the file */
    struct flock64_abi endneg = {F_RDLCK, SEEK_END, -20, 0, 0};
    T(syscall(NR_FCNTL64, fd, CMD_SETLK64, &endneg));
  }
  getlk("own getlk", fd, CMD_GETLK64, F_WRLCK, 0, 0);
  /* POSIX locks: the child is another owner. Ranges of one owner merge and split. */
  T(lk(fd, CMD_SETLK64, F_WRLCK, 0, 10));
  T(lk(fd, CMD_SETLK64, F_WRLCK, 10, 10)); /* merges with 0..9 */
  T(lk(fd, CMD_SETLK64, F_RDLCK, 100, 50));
  T(lk(fd, CMD_SETLK64, F_UNLCK, 120, 10)); /* splits 100..149 */
  T(lk(fd, CMD_SETLK64, F_WRLCK, 1000, 0)); /* to the end of any file */
  in_child(child_sees_posix_locks);
  /* Closing any fd of the file lets go of all of this process's locks on it. */
  int other = open("lockfile", O_RDONLY);
  close(other);
  in_child(child_sees_posix_locks);
  T(lk(fd, CMD_SETLK64, F_UNLCK, 0, 0));
  /* OFD locks belong to the open file description: two descriptions conflict even within
   * one process, and with POSIX locks. */
  T(lk(fd, F_OFD_SETLK, F_WRLCK, 0, 5));
  T(lk(wo, F_OFD_SETLK, F_WRLCK, 3, 5));
  T(lk(fd, F_OFD_SETLK, F_RDLCK, 0, 5));
  T(lk(ro, F_OFD_SETLK, F_RDLCK, 4, 2));
  T(lk(ro, F_OFD_SETLK, F_RDLCK, 0, 2));
  getlk("ofd getlk from another description", wo, F_OFD_GETLK, F_WRLCK, 0, 10);
  getlk("posix getlk of an ofd lock", wo, CMD_GETLK64, F_WRLCK, 0, 10);
  T(lk(wo, CMD_SETLK64, F_WRLCK, 0, 1));
  /* F_OFD_GETLK with F_UNLCK: a lock of this very description, if any. */
  getlk("ofd getlk unlck own", fd, F_OFD_GETLK, F_UNLCK, 0, 10);
  getlk("ofd getlk unlck other", wo, F_OFD_GETLK, F_UNLCK, 0, 10);
  /* A forked child shares the descriptions, hence their OFD locks, but is another POSIX
   * owner. */
  inherited_fd = fd;
  in_child(child_shares_ofd);
  T(lk(fd, F_OFD_SETLK, F_UNLCK, 0, 0));
  T(lk(ro, F_OFD_SETLK, F_UNLCK, 0, 0));
  /* Threads share their process's POSIX locks. */
  T(lk(fd, CMD_SETLK64, F_WRLCK, 50, 1));
  {
    pthread_t t;
    pthread_create(&t, NULL, thread_locks, NULL);
    pthread_join(t, NULL);
  }
  T(lk(fd, CMD_SETLK64, F_UNLCK, 0, 0));
  /* O_PATH descriptors take no locks; pipes do. */
  {
    int path_fd = open("lockfile", O_PATH);
    T(lk(path_fd, CMD_SETLK64, F_RDLCK, 0, 1));
    T(lk(path_fd, CMD_GETLK64, F_RDLCK, 0, 1));
    T(flock(path_fd, LOCK_SH));
    close(path_fd);
    int pp[2];
    pipe(pp);
    T(lk(pp[0], CMD_SETLK64, F_RDLCK, 0, 1));
    T(lk(pp[1], CMD_SETLK64, F_WRLCK, 0, 1));
    getlk("pipe getlk", pp[1], CMD_GETLK64, F_WRLCK, 0, 0);
    T(flock(pp[1], LOCK_EX | LOCK_NB));
    close(pp[0]), close(pp[1]);
  }
#if defined(__i386__)
  /* The 32-bit struct flock cannot hold a start past 2 GiB (EOVERFLOW); a length past it is
   * cut to fit. */
  T(lk(fd, CMD_SETLK64, F_WRLCK, 0x100000000ll, 5));
  T(lk(fd, CMD_SETLK64, F_RDLCK, 10, 0x90000000ll));
  in_child(child_sees_big_locks);
  T(lk(fd, CMD_SETLK64, F_UNLCK, 0, 0));
#endif
  T(lk(wo, CMD_SETLK64, F_WRLCK, 0, 1));
  T(lk(wo, CMD_SETLK64, F_UNLCK, 0, 0));
  /* flock: per open file description; conversions are not atomic. */
  printf("-- flock\n");
  T(flock(fd, 99)); /* LOCK_MAND (32) is set: ignored, whatever the fd */
  T(flock(fd, 0));
  T(flock(-1, 0));
  T(flock(fd, LOCK_UN | LOCK_EX));
  T(flock(-1, LOCK_EX));
  T(flock(-1, 99));
  T(flock(999, LOCK_SH));
  T(flock(fd, LOCK_SH | LOCK_EX));
  T(flock(fd, LOCK_NB));
  T(flock(fd, LOCK_EX));
  T(flock(fd, LOCK_EX | LOCK_NB));
  T(flock(ro, LOCK_SH | LOCK_NB));
  in_child(child_sees_flocks);
  inherited_fd = fd;
  in_child(child_shares_flock);
  T(flock(fd, LOCK_SH));
  T(flock(ro, LOCK_SH | LOCK_NB));
  T(flock(wo, LOCK_EX | LOCK_NB));
  T(flock(fd, LOCK_UN));
  T(flock(ro, LOCK_UN));
  T(flock(wo, LOCK_EX | LOCK_NB));
  T(flock(fd, LOCK_SH | LOCK_NB));
  int dupped = dup(wo);
  close(wo); /* the description lives on in `dupped`, and its lock with it */
  T(flock(fd, LOCK_SH | LOCK_NB));
  close(dupped); /* now it goes */
  T(flock(fd, LOCK_SH | LOCK_NB));
  T(flock(fd, LOCK_UN));
  T(flock(fd, LOCK_UN));
  wo = open("lockfile", O_WRONLY);

  /* F_SETLKW waits for the other process to let go. */
  printf("-- waiting\n");
  int ready[2], done[2];
  pipe(ready);
  pipe(done);
  char ch;
  waits_ready = ready[1];
  T(lk(fd, CMD_SETLK64, F_WRLCK, 0, 1));
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    child_waits();
    fflush(stdout);
    _exit(0);
  }
  read(ready[0], &ch, 1);
  usleep(300000);
  /* Nothing printed from here until the child is done: its lines and ours would race. */
  printf("parent lets go\n");
  fflush(stdout);
  if (lk(fd, CMD_SETLK64, F_UNLCK, 0, 1) != 0) printf("unlock failed: %s\n", err_name(errno));
  int status;
  waitpid(pid, &status, 0);
  printf("child status %d\n", WEXITSTATUS(status));

  /* A signal interrupts F_SETLKW (EINTR without SA_RESTART); SIGKILL ends the waiter. */
  T(lk(fd, CMD_SETLK64, F_WRLCK, 0, 1));
  fflush(stdout);
  pid = fork();
  if (pid == 0) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    int cfd = open("lockfile", O_RDWR);
    write(ready[1], "r", 1);
    long r = lk(cfd, CMD_SETLKW64, F_WRLCK, 0, 1);
    printf("child setlkw = %ld %s (handler ran: %d)\n", r, r == -1 ? err_name(errno) : "", got_usr1);
    fflush(stdout);
    write(done[1], "d", 1);
    _exit(0);
  }
  read(ready[0], &ch, 1);
  for (;;) {
    usleep(100000);
    kill(pid, SIGUSR1);
    struct timespec t = {0, 0};
    (void)t;
    fd_set set;
    FD_ZERO(&set);
    FD_SET(done[0], &set);
    struct timeval tv = {0, 100000};
    if (select(done[0] + 1, &set, NULL, NULL, &tv) > 0) break;
  }
  waitpid(pid, &status, 0);
  printf("child status %d\n", WEXITSTATUS(status));
  fflush(stdout);
  pid = fork();
  if (pid == 0) {
    int cfd = open("lockfile", O_RDWR);
    write(ready[1], "r", 1);
    lk(cfd, CMD_SETLKW64, F_WRLCK, 0, 1);
    printf("child: never here\n");
    _exit(1);
  }
  read(ready[0], &ch, 1);
  usleep(200000);
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  printf("killed waiter: signaled %d sig %d\n", WIFSIGNALED(status), WTERMSIG(status));
  /* flock(LOCK_EX) waits too, and the waiter can be killed. */
  T(flock(fd, LOCK_EX));
  fflush(stdout);
  pid = fork();
  if (pid == 0) {
    int cfd = open("lockfile", O_RDWR);
    write(ready[1], "r", 1);
    long r = flock(cfd, LOCK_EX);
    printf("child flock = %ld\n", r);
    fflush(stdout);
    _exit(0);
  }
  read(ready[0], &ch, 1);
  usleep(200000);
  printf("parent unlocks\n");
  fflush(stdout);
  if (flock(fd, LOCK_UN) != 0) printf("unlock failed: %s\n", err_name(errno));
  waitpid(pid, &status, 0);
  printf("child status %d\n", WEXITSTATUS(status));

  /* Deadlock: each holds a byte the other waits for; one of the two is told EDEADLK. */
  T(lk(fd, CMD_SETLK64, F_UNLCK, 0, 0));
  T(lk(fd, CMD_SETLK64, F_WRLCK, 0, 1));
  fflush(stdout);
  pid = fork();
  if (pid == 0) {
    int cfd = open("lockfile", O_RDWR);
    lk(cfd, CMD_SETLK64, F_WRLCK, 1, 1);
    write(ready[1], "r", 1);
    long r = lk(cfd, CMD_SETLKW64, F_WRLCK, 0, 1);
    _exit(r == -1 && errno == EDEADLK ? 7 : r == 0 ? 0 : 1);
  }
  read(ready[0], &ch, 1);
  usleep(200000);
  long pr = lk(fd, CMD_SETLKW64, F_WRLCK, 1, 1);
  int perr = errno;
  if (pr == -1) lk(fd, CMD_SETLK64, F_UNLCK, 0, 1);  /* let the child have it */
  waitpid(pid, &status, 0);
  int deadlocks = (pr == -1 && perr == EDEADLK) + (WEXITSTATUS(status) == 7);
  printf("deadlock reported %d time(s), other side got its lock: %d\n", deadlocks,
         (pr == 0) + (WEXITSTATUS(status) == 0));
  T(lk(fd, CMD_SETLK64, F_UNLCK, 0, 0));
  close(ready[0]), close(ready[1]), close(done[0]), close(done[1]);
  close(fd), close(ro), close(wo);
}

/* ---------------------------------------------------------------- identity */

static void child_drops_ids(void) {
  T(syscall(SYS_setresgid, 4000, 4000, 4000) == 0 || errno == EPERM);
  T(syscall(SYS_setresuid, 3000, 3001, 3002) == 0 || errno == EPERM);
  uid_t r = 1, e = 1, s = 1;
  T(syscall(SYS_getresuid, &r, &e, &s));
  printf("  res uid %u %u %u\n", r, e, s);
  T(syscall(SYS_setuid, 0));
  T(syscall(SYS_setreuid, 3002, -1));
  T(syscall(SYS_getresuid, &r, &e, &s));
  printf("  res uid %u %u %u\n", r, e, s);
  T(syscall(SYS_setfsuid, 3000));
  T(syscall(SYS_setfsuid, -1));
  /* The fs uid decides access: a root-only file is out of reach now. */
  T(open("secret", O_RDONLY) >= 0);
#if defined(__i386__)
  unsigned short r16, e16, s16;
  T(syscall(SYS_getresuid, &r16, &e16, &s16));
  printf("  res uid16 %u %u %u\n", r16, e16, s16);
  T(syscall(SYS_getuid) == (long)getuid());
#endif
}

static void section_identity(void) {
  printf("== identity\n");
  uid_t r, e, s;
  gid_t gr, ge, gs;
#if defined(__i386__)
  /* i386: the plain numbers are the 16-bit calls, the *32 ones take full ids. */
  T(syscall(SYS_getresuid32, &r, &e, &s));
  printf("  res uid %u %u %u\n", r, e, s);
  T(syscall(SYS_getresgid32, &gr, &ge, &gs));
  printf("  res gid %u %u %u\n", gr, ge, gs);
  T(syscall(SYS_getresuid32, NULL, &e, &s));
  T(syscall(SYS_getresuid32, &r, ONE, &s));
  T(syscall(SYS_getresgid32, &gr, &ge, WILD));
  unsigned short r16 = 9, e16 = 9, s16 = 9;
  T(syscall(SYS_getresuid, &r16, &e16, &s16));
  printf("  res uid16 %u %u %u\n", r16, e16, s16);
  T(syscall(SYS_getresgid, &r16, &e16, &s16));
  printf("  res gid16 %u %u %u\n", r16, e16, s16);
  T(syscall(SYS_getresgid, &r16, ONE, &s16));
  T(syscall(SYS_getuid) == (long)getuid());
  T(syscall(SYS_getuid32) == (long)getuid());
  T(syscall(SYS_geteuid) == (long)geteuid());
  T(syscall(SYS_getgid) == (long)getgid());
  T(syscall(SYS_getegid) == (long)getegid());
  T(syscall(SYS_setuid32, getuid()));
  T(syscall(SYS_setgid32, getgid()));
  T(syscall(SYS_setuid, 0xffff));
  T(syscall(SYS_setgid, getgid()));
  T(syscall(SYS_setreuid, 0xffff, 0xffff));
  T(syscall(SYS_setregid, 0xffff, 0xffff));
  T(syscall(SYS_setreuid32, -1, -1));
  T(syscall(SYS_setregid32, -1, -1));
  T(syscall(SYS_setresuid, 0xffff, 0xffff, 0xffff));
  T(syscall(SYS_setresgid, 0xffff, 0xffff, 0xffff));
  T(syscall(SYS_setresuid32, -1, -1, -1));
  T(syscall(SYS_setresgid32, -1, -1, -1));
  T(syscall(SYS_setfsuid, 0xffff) == (long)geteuid());
  T(syscall(SYS_setfsgid, 0xffff) == (long)getegid());
  T(syscall(SYS_setfsuid32, -1) == (long)geteuid());
  T(syscall(SYS_setfsgid32, -1) == (long)getegid());
  gid_t groups[64];
  long n = T(syscall(SYS_getgroups32, 64, groups));
  T(syscall(SYS_getgroups32, 0, NULL) == n);
  T(syscall(SYS_getgroups32, -1, groups));
  T(syscall(SYS_getgroups32, 64, ONE) == (n ? -1 : 0));
  if (n > 0) T(syscall(SYS_getgroups32, n - 1, groups) == -1 && errno == EINVAL);
  unsigned short g16[64];
  T(syscall(SYS_getgroups, 64, g16) == n);
  T(n == 0 || g16[0] == (groups[0] > 0xffff ? 65534 : groups[0]));
  T(syscall(SYS_setgroups32, n, groups));
  T(syscall(SYS_setgroups32, 65537, groups));
  T(syscall(SYS_setgroups32, -1, groups));
  T(syscall(SYS_setgroups32, 1, ONE));
  T(syscall(SYS_setgroups, n, g16));
  T(syscall(SYS_setgroups, 1, NULL));
  T(syscall(SYS_getgroups32, 64, groups) == n);
#else
  T(syscall(SYS_getresuid, &r, &e, &s));
  printf("  res uid %u %u %u\n", r, e, s);
  T(syscall(SYS_getresgid, &gr, &ge, &gs));
  printf("  res gid %u %u %u\n", gr, ge, gs);
  T(syscall(SYS_getresuid, NULL, &e, &s));
  T(syscall(SYS_getresuid, &r, ONE, &s));
  T(syscall(SYS_getresgid, &gr, &ge, WILD));
  T(syscall(SYS_setuid, getuid()));
  T(syscall(SYS_setgid, getgid()));
  T(syscall(SYS_setreuid, -1, -1));
  T(syscall(SYS_setregid, -1, -1));
  T(syscall(SYS_setresuid, -1, -1, -1));
  T(syscall(SYS_setresgid, -1, -1, -1));
  T(syscall(SYS_setfsuid, -1) == (long)geteuid());
  T(syscall(SYS_setfsgid, -1) == (long)getegid());
  gid_t groups[64];
  long n = T(syscall(SYS_getgroups, 64, groups));
  T(syscall(SYS_getgroups, 0, NULL) == n);
  T(syscall(SYS_getgroups, -1, groups));
  T(syscall(SYS_getgroups, 64, ONE) == (n ? -1 : 0));
  if (n > 0) T(syscall(SYS_getgroups, n - 1, groups) == -1 && errno == EINVAL);
  T(syscall(SYS_setgroups, n, groups));
  T(syscall(SYS_setgroups, 65537, groups));
  T(syscall(SYS_setgroups, -1, groups));
  T(syscall(SYS_setgroups, 1, ONE));
  T(syscall(SYS_setgroups, 1, WILD));
  T(syscall(SYS_getgroups, 64, groups) == n);
#endif
  write_file("secret", "s");
  chmod("secret", 0600);
  in_child(child_drops_ids);
  T(open("secret", O_RDONLY) >= 0);
  /* Capabilities: the version handshake, this thread's sets, other pids. */
  struct __user_cap_header_struct h = {0, 0};
  struct __user_cap_data_struct d[2];
  T(syscall(SYS_capget, &h, NULL));
  printf("  preferred version %#x\n", h.version);
  h.version = 0x12345678;
  T(syscall(SYS_capget, &h, d));
  printf("  preferred version %#x\n", h.version);
  h.version = _LINUX_CAPABILITY_VERSION_3;
  h.pid = 0;
  T(syscall(SYS_capget, &h, d));
  struct __user_cap_data_struct mine[2];
  memcpy(mine, d, sizeof d);
  h.pid = getpid();
  T(syscall(SYS_capget, &h, d));
  T(memcmp(mine, d, sizeof d) == 0);
  h.pid = -1;
  T(syscall(SYS_capget, &h, d));
  h.pid = 999999;
  T(syscall(SYS_capget, &h, d));
  h.pid = 1; /* init: anyone may read its sets (stress-ng's cap stressor does) */
  T(syscall(SYS_capget, &h, d));
  h.pid = 0;
  T(syscall(SYS_capget, NULL, d));
  T(syscall(SYS_capget, &h, ONE));
  T(syscall(SYS_capget, &h, NULL));
  T(syscall(SYS_capget, ONE, NULL));
  h.version = _LINUX_CAPABILITY_VERSION_1;
  T(syscall(SYS_capget, &h, d));
  h.version = _LINUX_CAPABILITY_VERSION_3;
  T(syscall(SYS_capset, &h, mine));
  h.pid = getpid();
  T(syscall(SYS_capset, &h, mine));
  h.pid = 999999;
  T(syscall(SYS_capset, &h, mine));
  h.pid = 0;
  T(syscall(SYS_capset, &h, ONE));
  T(syscall(SYS_capset, &h, NULL));
  T(syscall(SYS_capset, NULL, mine));
  h.version = 0x1;
  T(syscall(SYS_capset, &h, mine));
  printf("  preferred version %#x\n", h.version);
}

/* ---------------------------------------------------------------- sched */

static void section_sched(void) {
  printf("== sched\n");
  unsigned long mask[16];
  memset(mask, 0, sizeof mask);
  long len = T(syscall(SYS_sched_getaffinity, 0, sizeof mask, mask) > 0);
  (void)len;
  syscall(SYS_sched_getaffinity, 0, sizeof mask, mask);
  T(syscall(SYS_sched_setaffinity, 0, sizeof mask, mask));
  T(syscall(SYS_sched_setaffinity, getpid(), sizeof mask, mask));
  unsigned long none[16];
  memset(none, 0, sizeof none);
  T(syscall(SYS_sched_setaffinity, 0, sizeof none, none));
  T(syscall(SYS_sched_setaffinity, 0, sizeof mask, NULL));
  T(syscall(SYS_sched_setaffinity, 0, sizeof mask, ONE));
  T(syscall(SYS_sched_setaffinity, 999999, sizeof mask, mask));
  T(syscall(SYS_sched_setaffinity, -1, sizeof mask, mask));
  T(syscall(SYS_sched_setaffinity, 0, 0, mask));
  T(syscall(SYS_sched_setaffinity, 0, 4, mask));
  T(syscall(SYS_sched_getaffinity, 0, sizeof mask, mask) > 0);

  struct sched_param sp = {7};
  T(syscall(SYS_sched_getparam, 0, &sp));
  printf("  priority %d\n", sp.sched_priority);
  T(syscall(SYS_sched_getparam, 0, NULL));
  T(syscall(SYS_sched_getparam, -1, &sp));
  T(syscall(SYS_sched_getparam, 999999, &sp));
  T(syscall(SYS_sched_getparam, 0, ONE));
  T(syscall(SYS_sched_getparam, getpid(), &sp));
  T(syscall(SYS_sched_getscheduler, 0));
  T(syscall(SYS_sched_getscheduler, -1));
  T(syscall(SYS_sched_getscheduler, 999999));
  sp.sched_priority = 0;
  T(syscall(SYS_sched_setscheduler, 0, SCHED_BATCH, &sp));
  T(syscall(SYS_sched_getscheduler, 0));
  T(syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, &sp));
  T(syscall(SYS_sched_setscheduler, 0, 99, &sp));
  sp.sched_priority = 1;
  T(syscall(SYS_sched_setscheduler, 0, SCHED_BATCH, &sp));
  sp.sched_priority = 0;
  T(syscall(SYS_sched_setscheduler, 0, SCHED_FIFO, &sp));
  T(syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, NULL));
  T(syscall(SYS_sched_setscheduler, -1, SCHED_OTHER, &sp));
  T(syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, ONE));
  T(syscall(SYS_sched_setscheduler, 999999, SCHED_OTHER, &sp));
  T(syscall(SYS_sched_setscheduler, 999999, 99, ONE));
  T(syscall(SYS_sched_setparam, 0, &sp));
  sp.sched_priority = 5;
  T(syscall(SYS_sched_setparam, 0, &sp));
  T(syscall(SYS_sched_setparam, 0, NULL));
  T(syscall(SYS_sched_setparam, 0, WILD));
  T(syscall(SYS_sched_get_priority_max, SCHED_FIFO));
  T(syscall(SYS_sched_get_priority_min, SCHED_FIFO));
  T(syscall(SYS_sched_get_priority_max, SCHED_RR));
  T(syscall(SYS_sched_get_priority_max, SCHED_OTHER));
  T(syscall(SYS_sched_get_priority_min, SCHED_BATCH));
  T(syscall(SYS_sched_get_priority_max, 42));
  T(syscall(SYS_sched_get_priority_min, -1));
  {
    long long ts[2] = {-1, -1};
#if defined(__i386__)
    T(syscall(423, 0, ts));
    T(ts[0] >= 0 && ts[1] >= 0 && ts[1] < 1000000000);
    T(syscall(423, 0, NULL));
    T(syscall(423, -1, ts));
    T(syscall(423, 999999, ts));
    int ts32[2] = {-1, -1};
    T(syscall(SYS_sched_rr_get_interval, 0, ts32));
    T(ts32[0] >= 0 && ts32[1] >= 0);
    T(syscall(SYS_sched_rr_get_interval, 0, ONE));
#else
    T(syscall(SYS_sched_rr_get_interval, 0, ts));
    T(ts[0] >= 0 && ts[1] >= 0 && ts[1] < 1000000000);
    T(syscall(SYS_sched_rr_get_interval, 0, NULL));
    T(syscall(SYS_sched_rr_get_interval, -1, ts));
    T(syscall(SYS_sched_rr_get_interval, 999999, ts));
    T(syscall(SYS_sched_rr_get_interval, 0, WILD));
#endif
  }
  /* getpriority's raw result is 20 - nice. */
  T(syscall(SYS_getpriority, PRIO_PROCESS, 0));
  T(syscall(SYS_setpriority, PRIO_PROCESS, 0, 3));
  T(syscall(SYS_getpriority, PRIO_PROCESS, 0));
  T(syscall(SYS_getpriority, PRIO_PROCESS, getpid()));
  T(syscall(SYS_setpriority, PRIO_PROCESS, 0, 0) == 0 || errno == EACCES);
  T(syscall(SYS_getpriority, 3, 0));
  T(syscall(SYS_setpriority, -1, 0, 0));
  T(syscall(SYS_getpriority, PRIO_PROCESS, 999999));
  T(syscall(SYS_setpriority, PRIO_PROCESS, 999999, 1));
  T(syscall(SYS_getpriority, PRIO_PGRP, 999999));
  T(syscall(SYS_getpriority, PRIO_USER, getuid()) > 0);

  unsigned cpu = 12345, node = 12345;
  T(syscall(SYS_getcpu, &cpu, &node, NULL));
  T(cpu < (unsigned)sysconf(_SC_NPROCESSORS_CONF));
  printf("  node %u\n", node);
  T(syscall(SYS_getcpu, NULL, NULL, NULL));
  T(syscall(SYS_getcpu, ONE, &node, NULL));
  T(syscall(SYS_getcpu, &cpu, WILD, NULL));
  T(syscall(SYS_getcpu, &cpu, &node, ONE));

  long q = T(syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0));
  T(syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 1, 0));
  T(syscall(SYS_membarrier, 1 << 20, 0, 0));
  T(syscall(SYS_membarrier, 3, 0, 0));
  T(syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0));
  T(syscall(SYS_membarrier, MEMBARRIER_CMD_GET_REGISTRATIONS, 0, 0));
  T(syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0));
  T(syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0));
  T(syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, MEMBARRIER_CMD_FLAG_CPU, 0));
  T(syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0));
  T(syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0));
  T(syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0));
  T(syscall(SYS_membarrier, MEMBARRIER_CMD_GET_REGISTRATIONS, 0, 0));
  if (q & MEMBARRIER_CMD_GLOBAL) T(syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0));
  T(syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0));
  T(syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0));
  T(syscall(SYS_membarrier, MEMBARRIER_CMD_GET_REGISTRATIONS, 0, 0));
  T(syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, 0, 0));
  T(syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, 2, 0));

  T(syscall(SYS_personality, 0xffffffff));
  T(syscall(SYS_personality, PER_LINUX | ADDR_NO_RANDOMIZE));
  T(syscall(SYS_personality, 0xffffffff));
  T(syscall(SYS_personality, PER_LINUX));
  T(syscall(SYS_personality, 0xffffffff));
}

/* ---------------------------------------------------------------- memory */

static void section_memory(void) {
  printf("== memory\n");
  const long pg = 4096;
  char *m = mmap(NULL, 6 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  munmap(m + 4 * pg, pg); /* a hole at page 4, page 5 mapped again */
  m[0] = 1;
  m[2 * pg] = 1;
  unsigned char vec[8];
  memset(vec, 7, sizeof vec);
  T(syscall(SYS_mincore, m, 4 * pg, vec));
  printf("  %d %d %d %d %d\n", vec[0], vec[1], vec[2], vec[3], vec[4]);
  T(syscall(SYS_mincore, m, 2 * pg + 1, vec));
  T(syscall(SYS_mincore, m + 1, pg, vec));
  T(syscall(SYS_mincore, m, 5 * pg, vec));
  T(syscall(SYS_mincore, m + 4 * pg, pg, vec));
  T(syscall(SYS_mincore, m, 0, vec));
  T(syscall(SYS_mincore, m, pg, NULL));
  T(syscall(SYS_mincore, m, pg, ONE));
  T(syscall(SYS_mincore, m + 4 * pg, pg, NULL));
  T(syscall(SYS_mincore, WILD, pg, vec));
  T(syscall(SYS_mincore, (void *)0, pg, vec));

  T(syscall(SYS_msync, m, 4 * pg, MS_SYNC));
  T(syscall(SYS_msync, m, 4 * pg, MS_ASYNC));
  T(syscall(SYS_msync, m, 4 * pg, 0));
  T(syscall(SYS_msync, m, 4 * pg, MS_INVALIDATE));
  T(syscall(SYS_msync, m, 4 * pg, MS_SYNC | MS_ASYNC));
  T(syscall(SYS_msync, m, 4 * pg, 8));
  T(syscall(SYS_msync, m + 1, pg, MS_SYNC));
  T(syscall(SYS_msync, m, 6 * pg, MS_SYNC));
  T(syscall(SYS_msync, m, 6 * pg, MS_ASYNC));
  T(syscall(SYS_msync, m + 4 * pg, pg, MS_ASYNC));
  T(syscall(SYS_msync, m + 4 * pg, pg, MS_SYNC));
  T(syscall(SYS_msync, m, 0, MS_SYNC));
  T(syscall(SYS_msync, m, 10, MS_SYNC));
  T(syscall(SYS_msync, WILD, pg, MS_SYNC));
  T(syscall(SYS_msync, m, -pg, MS_SYNC));

  T(syscall(SYS_mlock, m, 2 * pg));
  T(syscall(SYS_mincore, m, 4 * pg, vec));
  printf("  %d %d %d %d\n", vec[0], vec[1], vec[2], vec[3]);
  T(syscall(SYS_mlock, m + 10, 100));
  T(syscall(SYS_mlock, m, 6 * pg));
  T(syscall(SYS_mlock, ONE, 10));
  T(syscall(SYS_mlock, WILD, 10));
  T(syscall(SYS_mlock, m, 0));
  T(syscall(SYS_munlock, m, 2 * pg));
  T(syscall(SYS_munlock, m, 6 * pg));
  T(syscall(SYS_munlock, m + 4 * pg, pg));
  T(syscall(SYS_munlock, m + 1, 1));
  T(syscall(SYS_mlock2, m, pg, 0));
  T(syscall(SYS_mlock2, m + 3 * pg, pg, MLOCK_ONFAULT));
  T(syscall(SYS_mlock2, m, pg, 2));
  T(syscall(SYS_mlock2, m + 4 * pg, pg, 0));
  T(syscall(SYS_munlock, m, 4 * pg));
  T(syscall(SYS_mlockall, 0));
  T(syscall(SYS_mlockall, MCL_ONFAULT));
  T(syscall(SYS_mlockall, 8));
  T(syscall(SYS_mlockall, MCL_FUTURE));
  T(syscall(SYS_munlockall));
  T(syscall(SYS_mlockall, MCL_FUTURE | MCL_ONFAULT));
  T(syscall(SYS_munlockall));
  /* Lengths and addresses past the top of user space (TASK_SIZE): nothing there is unmapped
   * (stress-ng's mmap stressor calls munmap(NULL, ~0UL); on i386 emu used to unmap it all). */
  T(syscall(SYS_munmap, 0, ~0UL));
  T(syscall(SYS_munmap, 0, 0));
  T(syscall(SYS_munmap, -pg, pg));
  T(syscall(SYS_munmap, m, -pg));
  T(mmap((void *)(-2 * pg), pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED);
  T(mmap((void *)(16 * pg), ~0UL - pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) == MAP_FAILED);
  m[0] = 2;
  T(m[0]);

  /* mremap to a fixed place (stress-ng's pagemove): the pages move, what was there goes; with
   * MREMAP_DONTUNMAP the old range stays mapped and reads zeros. */
  char *to = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  to[0] = 'x';
  m[pg] = 'm';
  T(mremap(m, 2 * pg, 2 * pg, MREMAP_MAYMOVE | MREMAP_FIXED, to) == to);
  T(to[pg]);
  T(to[0]);
  T(mremap(to, pg, pg, MREMAP_FIXED, m) == MAP_FAILED);
  T(mremap(to, pg, pg, MREMAP_MAYMOVE | MREMAP_FIXED, to + pg / 2) == MAP_FAILED);
  T(mremap(to, 2 * pg, 2 * pg, MREMAP_MAYMOVE | MREMAP_FIXED, to + pg) == MAP_FAILED);
  T(mremap(to, 2 * pg, pg, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL) == MAP_FAILED);
  T(mremap(to, pg, ~0UL, MREMAP_MAYMOVE) == MAP_FAILED);
  char *kept = mremap(to, 2 * pg, 2 * pg, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);
  T(kept != MAP_FAILED && kept != to);
  T(kept != MAP_FAILED ? kept[pg] : -1);
  T(to[pg]);
  if (kept != MAP_FAILED) munmap(kept, 2 * pg);
  munmap(to, 4 * pg);

  /* MADV_WIPEONFORK: a fork child finds the range zeroed; KEEPONFORK undoes it. */
  char *w = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  w[0] = 'a';
  w[pg] = 'b';
  T(madvise(w, pg, MADV_WIPEONFORK));
  T(madvise(m + 2 * pg, pg, MADV_WIPEONFORK));
  pid_t child = fork();
  if (child == 0) _exit(w[0] == 0 && w[pg] == 'b' ? 0 : 1);
  int status = 0;
  waitpid(child, &status, 0);
  T(status);
  T(w[0]);
  T(madvise(w, pg, MADV_KEEPONFORK));
  child = fork();
  if (child == 0) _exit(w[0] == 'a' ? 0 : 1);
  waitpid(child, &status, 0);
  T(status);
  munmap(w, 2 * pg);
  int mfd = open("/proc/self/exe", O_RDONLY);
  char *file = mmap(NULL, pg, PROT_READ, MAP_PRIVATE, mfd, 0);
  T(madvise(file, pg, MADV_WIPEONFORK));
  munmap(file, pg);
  close(mfd);

  /* A path of PATH_MAX bytes with no room for its zero: ENAMETOOLONG, not EFAULT. */
  char *long_path = malloc(PATH_MAX + 1);
  memset(long_path, 'a', PATH_MAX);
  long_path[PATH_MAX] = 0;
  T(mkdir(long_path, 0700));
  T(open(long_path, O_RDONLY));
  long_path[PATH_MAX - 1] = 0;
  T(mkdir(long_path, 0700));
  free(long_path);
  munmap(m, 6 * pg);
}

/* ---------------------------------------------------------------- main */

static int wanted(int argc, char **argv, const char *name) {
  if (argc < 2) return 1;
  for (int i = 1; i < argc; ++i)
    if (strcmp(argv[i], name) == 0) return 1;
  return 0;
}

/* For a test process outside emu: `probe PATH` tries the locks another process may hold on
 * PATH; `hold PATH` takes them, says "held", and keeps them until stdin ends. */
static int probe_or_hold(const char *mode, const char *path) {
  int fd = open(path, O_RDWR);
  if (fd < 0) die_errno("syscalls_files", path, errno);
  if (strcmp(mode, "probe") == 0) {
    parent_pid = -2;
    T(lk(fd, CMD_SETLK64, F_WRLCK, 0, 1));
    getlk("getlk", fd, CMD_GETLK64, F_WRLCK, 0, 1);
    T(flock(fd, LOCK_EX | LOCK_NB));
    return 0;
  }
  T(lk(fd, CMD_SETLK64, F_WRLCK, 0, 1));
  T(flock(fd, LOCK_EX | LOCK_NB));
  printf("held\n");
  fflush(stdout);
  char buf[64];
  while (read(0, buf, sizeof buf) > 0) {
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && (strcmp(argv[1], "probe") == 0 || strcmp(argv[1], "hold") == 0)) return probe_or_hold(argv[1], argv[2]);
  setvbuf(stdout, NULL, _IOFBF, 1 << 16);
  printf("syscalls_files on %s\n", GUEST_ARCH);
  if (wanted(argc, argv, "usage")) section_usage();
  strcpy(dir, "/tmp/emu-sysfiles-XXXXXX");
  if (!mkdtemp(dir)) die_errno("syscalls_files", "mkdtemp", errno);
  if (chdir(dir) != 0) die_errno("syscalls_files", "chdir", errno);
  int dfd = open(dir, O_RDONLY | O_DIRECTORY);
  if (wanted(argc, argv, "files")) {
    section_links(dfd);
    section_owners(dfd);
    section_times(dfd);
    section_sizes();
    section_nodes(dfd);
    section_renames();
    section_sync();
  }
  if (wanted(argc, argv, "vectors")) section_vectors();
  if (wanted(argc, argv, "locks")) section_locks();
  if (wanted(argc, argv, "identity")) section_identity();
  if (wanted(argc, argv, "sched")) section_sched();
  if (wanted(argc, argv, "memory")) section_memory();
  close(dfd);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  chdir("/");
  /* No shell under every test: remove what we made by hand, one level deep. */
  {
    int d = open(dir, O_RDONLY | O_DIRECTORY);
    if (d >= 0) {
      char buf[4096];
      long n;
      while ((n = syscall(SYS_getdents64, d, buf, sizeof buf)) > 0) {
        for (long at = 0; at < n;) {
          unsigned short reclen = *(unsigned short *)(buf + at + 16);
          const char *name = buf + at + 19;
          if (strcmp(name, ".") && strcmp(name, "..")) {
            if (unlinkat(d, name, 0) != 0) unlinkat(d, name, AT_REMOVEDIR);
          }
          at += reclen;
        }
      }
      close(d);
    }
    rmdir(dir);
  }
  (void)cmd;
  printf("done\n");
  return 0;
}
