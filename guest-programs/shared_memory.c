/* MAP_SHARED end to end: anonymous shared memory across fork (atomics, a process-shared
 * mutex and semaphore), file mappings shared between processes and coherent with read() and
 * write(), stores surviving munmap, private mappings staying private, memfd, SIGBUS past the
 * end of the file (also for pages mapped before the file shrank), Linux's errors for bad requests, and shared mappings larger than a small
 * --mem (the reclaimer must take shared pages out and bring them back intact).
 *
 * Usage: shared_memory DIR [CHILDREN [ITERATIONS]]  (DIR: where its scratch file goes)
 * Prints one "ok"/"FAIL" line per check; exit 0 when all passed. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

static int failures;
static void check(int ok, const char *what) {
  printf("%s %s\n", ok ? "ok  " : "FAIL", what);
  if (!ok) failures++;
}

static void wait_all(int n) {
  for (int i = 0; i < n; i++) {
    int status;
    if (wait(&status) < 0) die_errno("shared_memory", "wait", errno);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      printf("FAIL a child ended with status %d\n", status);
      failures++;
    }
  }
}

struct shared {
  long atomic_counter;
  long locked_counter;
  pthread_mutex_t mutex;
  sem_t sem;
  long handoff;
};

static void anonymous(int children, long iterations) {
  struct shared *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (s == MAP_FAILED) die_errno("shared_memory", "mmap shared anonymous", errno);
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutex_init(&s->mutex, &attr);
  sem_init(&s->sem, 1, 0);
  for (int c = 0; c < children; c++) {
    pid_t pid = fork();
    if (pid < 0) die_errno("shared_memory", "fork", errno);
    if (pid == 0) {
      for (long i = 0; i < iterations; i++) {
        __atomic_fetch_add(&s->atomic_counter, 1, __ATOMIC_SEQ_CST);
        pthread_mutex_lock(&s->mutex);
        s->locked_counter++; /* a plain increment: only the mutex keeps it exact */
        pthread_mutex_unlock(&s->mutex);
      }
      sem_post(&s->sem);
      _exit(0);
    }
  }
  /* Each child posts once when done: the parent sleeps in sem_wait on shared memory. */
  for (int c = 0; c < children; c++) sem_wait(&s->sem);
  wait_all(children);
  check(s->atomic_counter == children * iterations, "anonymous shared: atomic adds from every child add up");
  check(s->locked_counter == children * iterations, "anonymous shared: process-shared mutex keeps a plain counter exact");

  /* A child's plain store is the parent's to read; a private mapping's is not. */
  long *priv = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  *priv = 1;
  pid_t pid = fork();
  if (pid == 0) {
    s->handoff = 4242;
    *priv = 2;
    _exit(0);
  }
  wait_all(1);
  check(s->handoff == 4242, "anonymous shared: the child's store is seen by the parent");
  check(*priv == 1, "anonymous private: the child's store stays the child's");

  /* mprotect acts on this process's mapping only, and unmapping in the child leaves ours. */
  pid = fork();
  if (pid == 0) {
    munmap(s, sizeof *s);
    _exit(0);
  }
  wait_all(1);
  s->handoff++;
  check(s->handoff == 4243, "anonymous shared: still ours after the child unmapped it");
  munmap(priv, 4096);
  munmap(s, sizeof *s);
}

static sigjmp_buf bus_jump;
static void on_bus(int sig) { siglongjmp(bus_jump, sig); }

static void files(const char *dir) {
  char path[512];
  snprintf(path, sizeof path, "%s/shared_memory.%d", dir, (int)getpid());
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) die_errno("shared_memory", "open", errno);
  if (ftruncate(fd, 3 * 4096) != 0) die_errno("shared_memory", "ftruncate", errno);
  char *map = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) die_errno("shared_memory", "mmap file shared", errno);

  /* A child stores through its (inherited) mapping; the parent reads the file with read(). */
  pid_t pid = fork();
  if (pid == 0) {
    memcpy(map + 4096 + 10, "from the child", 14);
    _exit(0);
  }
  wait_all(1);
  char buf[32] = {0};
  check(pread(fd, buf, 14, 4096 + 10) == 14 && memcmp(buf, "from the child", 14) == 0,
        "file shared: a child's store through the mapping is read() by the parent");

  /* write() is seen in the mapping, in this process and in a child's fresh mapping. */
  if (pwrite(fd, "written", 7, 100) != 7) die_errno("shared_memory", "pwrite", errno);
  check(memcmp(map + 100, "written", 7) == 0, "file shared: pwrite() is seen in the mapping");
  pid = fork();
  if (pid == 0) {
    int fd2 = open(path, O_RDONLY);
    char *m2 = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd2, 0);
    _exit(m2 != MAP_FAILED && memcmp(m2 + 100, "written", 7) == 0 ? 0 : 1);
  }
  wait_all(1);
  check(failures == 0, "file shared: a second mapping through another fd sees the same page");

  /* A store, then munmap: the data is in the file. */
  memcpy(map + 2 * 4096, "kept after munmap", 17);
  munmap(map, 3 * 4096);
  memset(buf, 0, sizeof buf);
  check(pread(fd, buf, 17, 2 * 4096) == 17 && memcmp(buf, "kept after munmap", 17) == 0,
        "file shared: a store survives munmap");

  /* msync of a live mapping, then the file through a fresh descriptor. */
  map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  memcpy(map + 200, "synced", 6);
  check(msync(map, 4096, MS_SYNC) == 0, "msync MS_SYNC of a shared file mapping");
  int fd3 = open(path, O_RDONLY);
  memset(buf, 0, sizeof buf);
  check(pread(fd3, buf, 6, 200) == 6 && memcmp(buf, "synced", 6) == 0, "file shared: after msync the file has it");
  close(fd3);

  /* A private mapping of the same file: its stores stay private, the file's change shows
   * until the page is copied. */
  char *priv = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  check(memcmp(priv + 200, "synced", 6) == 0, "file private: reads what the shared mapping wrote");
  priv[200] = 'S';
  check(map[200] == 's', "file private: its store is not seen by the shared mapping");
  memset(buf, 0, sizeof buf);
  check(pread(fd, buf, 1, 200) == 1 && buf[0] == 's', "file private: its store does not reach the file");
  munmap(priv, 4096);
  munmap(map, 4096);

  /* A write() into a page a mapping stored into (not yet written back) keeps that store. */
  map = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  memcpy(map + 300, "mapped", 6);
  if (pwrite(fd, "by fd", 5, 320) != 5) die_errno("shared_memory", "pwrite", errno);
  check(memcmp(map + 300, "mapped", 6) == 0 && memcmp(map + 320, "by fd", 5) == 0,
        "file shared: a write() to a page keeps the mapping's store beside it");
  memset(buf, 0, sizeof buf);
  check(pread(fd, buf, 25, 300) == 25 && memcmp(buf, "mapped", 6) == 0 && memcmp(buf + 20, "by fd", 5) == 0,
        "file shared: ... and the file has both");

  /* Cut the file and let it grow again: the bytes cut off are zeros in the mapping made
   * before, by ftruncate, by truncate and by open(O_TRUNC). */
  memcpy(map + 4096 + 50, "cut off", 7);
  if (ftruncate(fd, 4096 + 52) != 0 || ftruncate(fd, 3 * 4096) != 0) die_errno("shared_memory", "ftruncate", errno);
  check(memcmp(map + 4096 + 50, "cu\0\0\0\0\0", 7) == 0, "file shared: ftruncate's cut reads as zeros in the mapping");
  memset(buf, 1, sizeof buf);
  check(pread(fd, buf, 7, 4096 + 50) == 7 && memcmp(buf, "cu\0\0\0\0\0", 7) == 0,
        "file shared: ... and in the file");
  memcpy(map + 2 * 4096 + 8, "truncated", 9);
  if (truncate(path, 2 * 4096) != 0 || truncate(path, 3 * 4096) != 0) die_errno("shared_memory", "truncate", errno);
  check(memcmp(map + 2 * 4096 + 8, "\0\0\0\0\0\0\0\0\0", 9) == 0, "file shared: truncate's cut reads as zeros");
  int tfd = open(path, O_RDWR | O_TRUNC);
  if (tfd < 0 || ftruncate(tfd, 3 * 4096) != 0) die_errno("shared_memory", "open O_TRUNC", errno);
  check(map[300] == 0 && map[4096 + 50] == 0, "file shared: open(O_TRUNC)'s cut reads as zeros");
  close(tfd);
  if (pwrite(fd, "written", 7, 100) != 7 || pwrite(fd, "synced", 6, 200) != 6) die_errno("shared_memory", "pwrite", errno);
  munmap(map, 3 * 4096);

  /* Past the end of the file: SIGBUS, as on Linux. */
  map = mmap(NULL, 5 * 4096, PROT_READ, MAP_SHARED, fd, 0);
  signal(SIGBUS, on_bus);
  volatile char sink = 0;
  int got = sigsetjmp(bus_jump, 1);
  if (got == 0) sink = map[4 * 4096];
  check(got == SIGBUS, "file shared: a read past the end of the file is SIGBUS");
  (void)sink;
  signal(SIGBUS, SIG_DFL);
  munmap(map, 5 * 4096);

  /* Bad requests, with Linux's errors. */
  int wfd = open(path, O_WRONLY);
  errno = 0;
  check(mmap(NULL, 4096, PROT_READ, MAP_SHARED, wfd, 0) == MAP_FAILED && errno == EACCES,
        "mmap of a write-only fd: EACCES");
  close(wfd);
  int rfd = open(path, O_RDONLY);
  errno = 0;
  check(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, rfd, 0) == MAP_FAILED && errno == EACCES,
        "MAP_SHARED|PROT_WRITE of a read-only fd: EACCES");
  map = mmap(NULL, 4096, PROT_READ, MAP_SHARED, rfd, 0);
  check(map != MAP_FAILED && map[100] == 'w', "MAP_SHARED|PROT_READ of a read-only fd works");
  munmap(map, 4096);
  close(rfd);
  char *hole = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  munmap(hole, 4096);
  errno = 0;
  check(msync(hole, 4096, MS_SYNC) == -1 && errno == ENOMEM, "msync of an unmapped range: ENOMEM");
  close(fd);
  unlink(path);
}

/* Whether reading `p` is SIGBUS (1), or what it reads plus 2. */
static int read_or_bus(const volatile char *p) {
  signal(SIGBUS, on_bus);
  int got = sigsetjmp(bus_jump, 1);
  int result = got == SIGBUS ? 1 : 2 + (got == 0 ? (unsigned char)*p : 0);
  signal(SIGBUS, SIG_DFL);
  return result;
}

/* Shrinking a file takes its pages past the new end out of every mapping that had them
 * mapped already, private copies included (Linux's truncate_pagecache): the next touch is
 * SIGBUS, and once the file grows again the page reads the file's zeros. stress-ng's memfd
 * stressor checks the private case. */
static void truncated(const char *dir) {
  char path[512];
  snprintf(path, sizeof path, "%s/shared_memory_cut.%d", dir, (int)getpid());
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || ftruncate(fd, 3 * 4096) != 0) die_errno("shared_memory", "open cut file", errno);
  char *map = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  char *priv = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  if (map == MAP_FAILED || priv == MAP_FAILED) die_errno("shared_memory", "mmap cut file", errno);
  for (int i = 0; i < 3; i++) map[i * 4096 + 7] = (char)('a' + i);
  map[4096 + 200] = 'z';  /* past the new end, within its last page: zeroed by the cut */
  for (int i = 0; i < 3; i++) priv[i * 4096 + 9] = (char)('A' + i);  /* private copies */

  /* A child with the pages mapped (inherited, and touched) sees the cut too. */
  int to_child[2], to_parent[2];
  if (pipe(to_child) != 0 || pipe(to_parent) != 0) die_errno("shared_memory", "pipe", errno);
  pid_t pid = fork();
  if (pid == 0) {
    char c = map[2 * 4096 + 7];
    if (write(to_parent[1], &c, 1) != 1 || read(to_child[0], &c, 1) != 1) _exit(3);
    _exit(read_or_bus(map + 2 * 4096 + 7) == 1 ? 0 : 1);
  }
  char c = 0;
  if (read(to_parent[0], &c, 1) != 1) die_errno("shared_memory", "read pipe", errno);
  check(c == 'c', "cut file: the child reads the page before the cut");
  if (ftruncate(fd, 4096 + 100) != 0) die_errno("shared_memory", "ftruncate cut file", errno);
  if (write(to_child[1], &c, 1) != 1) die_errno("shared_memory", "write pipe", errno);
  wait_all(1);
  check(failures == 0, "cut file: a page the child had mapped is SIGBUS in the child after the cut");
  check(read_or_bus(map + 2 * 4096 + 7) == 1, "cut file: a shared page mapped before the cut is SIGBUS");
  check(read_or_bus(priv + 2 * 4096 + 9) == 1, "cut file: a private copy past the new end is SIGBUS");
  check(read_or_bus(map + 4096 + 7) == 2 + 'b', "cut file: the partial last page keeps its bytes");
  check(read_or_bus(map + 4096 + 200) == 2, "cut file: ... and reads zeros past the end within it");
  check(read_or_bus(priv + 9) == 2 + 'A' && read_or_bus(priv + 4096 + 9) == 2 + 'B',
        "cut file: private copies before the new end stay");

  /* Grown again: the cut page reads zeros through both mappings. */
  if (ftruncate(fd, 3 * 4096) != 0) die_errno("shared_memory", "ftruncate cut file", errno);
  check(read_or_bus(map + 2 * 4096 + 7) == 2, "cut file: grown again, the shared page reads zeros");
  check(read_or_bus(priv + 2 * 4096 + 9) == 2, "cut file: grown again, the private page reads the file's zeros");
  munmap(map, 3 * 4096);
  munmap(priv, 3 * 4096);
  close(to_child[0]);
  close(to_child[1]);
  close(to_parent[0]);
  close(to_parent[1]);
  close(fd);
  unlink(path);
}

static void memfd(void) {
  int fd = (int)syscall(SYS_memfd_create, "emu-test", 0);
  if (fd < 0) die_errno("shared_memory", "memfd_create", errno);
  if (ftruncate(fd, 4096) != 0) die_errno("shared_memory", "ftruncate memfd", errno);
  long *a = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  long *b = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  pid_t pid = fork();
  if (pid == 0) {
    for (int i = 0; i < 1000; i++) __atomic_fetch_add(&a[1], 1, __ATOMIC_SEQ_CST);
    _exit(0);
  }
  for (int i = 0; i < 1000; i++) __atomic_fetch_add(&b[1], 1, __ATOMIC_SEQ_CST);
  wait_all(1);
  check(a != b && a[1] == 2000, "memfd: two mappings and a child share one page");
  long v = 0;
  check(pread(fd, &v, sizeof v, sizeof v) == (ssize_t)sizeof v && v == 2000, "memfd: read() sees the mapping's value");
  munmap(a, 4096);
  munmap(b, 4096);
  close(fd);
}

/* Larger than emu's --mem 24M in the swap variant: two children fill a shared anonymous region
 * and a shared file mapping with page-unique words; the parent checks every page, the file's
 * through pread. */
static void large(const char *dir) {
  const long pages = (40L << 20) / 4096, file_pages = (24L << 20) / 4096;
  long long *a = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (a == MAP_FAILED) die_errno("shared_memory", "mmap large", errno);
  char path[512];
  snprintf(path, sizeof path, "%s/shared_memory_large.%d", dir, (int)getpid());
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || ftruncate(fd, file_pages * 4096) != 0) die_errno("shared_memory", "large file", errno);
  long long *f = mmap(NULL, file_pages * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (f == MAP_FAILED) die_errno("shared_memory", "mmap large file", errno);
  for (int c = 0; c < 2; c++) {
    pid_t pid = fork();
    if (pid < 0) die_errno("shared_memory", "fork", errno);
    if (pid == 0) {
      for (long p = c; p < pages; p += 2) a[p * 512 + p % 512] = p * 7LL + 1;
      for (long p = c; p < file_pages; p += 2) f[p * 512 + (p * 3) % 512] = p * 11 + 5;
      _exit(0);
    }
  }
  wait_all(2);
  long bad = 0;
  for (long p = 0; p < pages; p++) bad += a[p * 512 + p % 512] != p * 7 + 1;
  check(bad == 0, "40 MiB shared: every page the children wrote reads back");
  munmap(f, file_pages * 4096);
  bad = 0;
  for (long p = 0; p < file_pages; p++) {
    long long v = 0;
    if (pread(fd, &v, sizeof v, p * 4096 + ((p * 3) % 512) * 8) != (ssize_t)sizeof v || v != p * 11 + 5) bad++;
  }
  check(bad == 0, "24 MiB shared file: every page the children stored reaches the file");
  munmap(a, pages * 4096);
  close(fd);
  unlink(path);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: shared_memory DIR [CHILDREN [ITERATIONS]]\n");
    return 2;
  }
  int children = argc > 2 ? atoi(argv[2]) : 3;
  long iterations = argc > 3 ? atol(argv[3]) : 20000;
  setvbuf(stdout, NULL, _IONBF, 0);
  anonymous(children, iterations);
  files(argv[1]);
  truncated(argv[1]);
  memfd();
  large(argv[1]);
  printf("%s\n", failures ? "FAILED" : "all ok");
  return failures ? 1 : 0;
}
