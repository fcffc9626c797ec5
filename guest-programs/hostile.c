/* hostile: a guest that tries to take more than it should (emu must stay up and answer as
 * Linux would at its limits).
 *
 *   hostile forkbomb      fork children (each waits) until fork fails; prints how many and
 *                         the errno, then kills and reaps them all
 *   hostile threadbomb    start threads (each waits) until pthread_create fails; prints how
 *                         many and the error, then lets them end and joins them
 *   hostile stack         recurses without end: dies of SIGSEGV (status 139)
 *   hostile hog           maps 2^46 bytes (i386: 2 GiB) and writes every page: under emu with a
 *                         small --mem and no swap it must be killed (status 137)
 *   hostile nested DEPTH  a SA_NODEFER handler that raises its own signal again, DEPTH deep;
 *                         prints the deepest level reached and that every level returned
 *   hostile unmap         munmap and MAP_FIXED mmap of ranges reaching past the top of user
 *                         space (munmap(NULL, ~0UL) as stress-ng calls it): each fails, with
 *                         Linux's errno, and the program's own memory is still there
 *
 * Counts stop at 4096 so that run natively it ends too. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#define MOST 4096

static const char *errno_name(int e) {
  switch (e) {
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EINVAL: return "EINVAL";
    default: return "other";
  }
}

static int forkbomb(void) {
  static pid_t kids[MOST];
  int n = 0, err = 0;
  while (n < MOST) {
    pid_t p = fork();
    if (p == 0) {
      pause();
      _exit(0);
    }
    if (p < 0) {
      err = errno;
      break;
    }
    kids[n++] = p;
  }
  printf("fork failed after %d children: %s\n", n, err ? errno_name(err) : "never");
  for (int i = 0; i < n; ++i) kill(kids[i], SIGKILL);
  int reaped = 0, status;
  while (waitpid(-1, &status, 0) > 0) reaped += WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  printf("reaped %d\n", reaped);
  return 0;
}

static int release[2];

static void *waiter(void *arg) {
  (void)arg;
  char c;
  while (read(release[0], &c, 1) < 0 && errno == EINTR) {
  }
  return NULL;
}

static int threadbomb(void) {
  static pthread_t t[MOST];
  if (pipe(release) != 0) die_errno("hostile", "pipe", errno);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  int n = 0, err = 0;
  while (n < MOST) {
    err = pthread_create(&t[n], &attr, waiter, NULL);
    if (err) break;
    ++n;
  }
  printf("pthread_create failed after %d threads: %s\n", n, err ? errno_name(err) : "never");
  close(release[1]);  /* every waiter's read now ends */
  int joined = 0;
  for (int i = 0; i < n; ++i) joined += pthread_join(t[i], NULL) == 0;
  printf("joined %d\n", joined);
  return 0;
}

static volatile int sink;
#pragma GCC diagnostic ignored "-Winfinite-recursion"
static int recurse(int depth) {
  volatile char pad[256];
  pad[0] = (char)depth;
  sink = pad[0];
  return recurse(depth + 1) + pad[0];
}

static volatile int level, deepest, returned, target;
static void on_usr1(int sig) {
  int mine = ++level;
  if (mine > deepest) deepest = mine;
  if (mine < target) raise(sig);
  --level;
  ++returned;
}

static int nested(int depth) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sa.sa_flags = SA_NODEFER;
  sigaction(SIGUSR1, &sa, NULL);
  target = depth;
  raise(SIGUSR1);
  printf("nested handlers: deepest %d, returned %d, level now %d\n", deepest, returned, level);
  return 0;
}

static int hog(void) {
  const size_t size = sizeof(void *) == 8 ? (size_t)1 << 46 : (size_t)2 << 30;
  char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) die_errno("hostile", "mmap", errno);
  for (size_t off = 0; off < size; off += 4096) p[off] = 1;
  printf("wrote every page\n");
  return 0;
}

static void report(const char *what, long result) {
  printf("%s: %ld %s\n", what, result, result < 0 ? errno_name(errno) : "");
  errno = 0;
}

static int unmap(void) {
  const unsigned long pg = 4096;
  static volatile char mine[4096] = {1};
  report("munmap(NULL, ~0UL)", munmap(NULL, ~0UL));
  report("munmap(top page, 4096)", munmap((void *)-pg, pg));
  report("munmap(4096, -4096)", munmap((void *)pg, -pg));
  report("mmap(MAP_FIXED, 2 pages below the top)",
         mmap((void *)(-2 * pg), pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED ? -1 : 0);
  mine[100] = 2;
  printf("still running: %d %d\n", mine[0], mine[100]);
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc == 2 && strcmp(argv[1], "forkbomb") == 0) return forkbomb();
  if (argc == 2 && strcmp(argv[1], "threadbomb") == 0) return threadbomb();
  if (argc == 2 && strcmp(argv[1], "stack") == 0) return recurse(0);
  if (argc == 2 && strcmp(argv[1], "hog") == 0) return hog();
  if (argc == 3 && strcmp(argv[1], "nested") == 0) return nested(atoi(argv[2]));
  if (argc == 2 && strcmp(argv[1], "unmap") == 0) return unmap();
  fprintf(stderr, "usage: hostile forkbomb|threadbomb|stack|hog|nested DEPTH\n");
  return 2;
}
