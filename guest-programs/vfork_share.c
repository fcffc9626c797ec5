/* vfork and posix_spawn share the parent's memory until the child execs or exits (Linux's
 * CLONE_VM | CLONE_VFORK), checked while another thread churns mappings (shootdowns in the
 * shared space) and, under emu with a small --mem and swap, the reclaimer pages it out:
 *  - a vfork child's stores (a word, and a pattern over pages the parent wrote before) are
 *    what the parent reads once vfork returns;
 *  - posix_spawn of a missing program fails with ENOENT in the parent (glibc's child writes
 *    the error into the parent's memory), and of this program succeeds with its status.
 *
 * usage: vfork_share [ROUNDS] [MIB]      (defaults 40 rounds, 16 MiB of pages)
 *        vfork_share child STATUS        (what posix_spawn runs)
 * stdout: "vfork_share rounds=N mismatches=M spawn_errors=E"; exit 0 when M == 0. */
#define _GNU_SOURCE
#include <pthread.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

extern char** environ;

static volatile uint32_t shared_word;
static uint32_t* mem;  /* global: the vfork child shares the parent's stack frame */
static size_t pages;
static volatile int churn_stop;

static void* churn(void* arg) {
  (void)arg;
  unsigned n = 0;
  while (!churn_stop) {
    size_t len = (size_t)(1 + n % 8) * 64 * GUEST_PAGE_SIZE;
    uint8_t* p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) die_errno("vfork_share", "mmap", errno);
    for (size_t off = 0; off < len; off += GUEST_PAGE_SIZE) p[off] = (uint8_t)(off >> 12);
    mprotect(p, len / 2, PROT_READ);
    munmap(p, len);
    ++n;
  }
  return NULL;
}

static uint32_t pattern(size_t page, unsigned round) { return (uint32_t)(page * 2654435761u) ^ (round * 0x9E3779B9u); }

int main(int argc, char** argv) {
  if (argc == 3 && strcmp(argv[1], "child") == 0) return atoi(argv[2]);
  const unsigned rounds = argc > 1 ? (unsigned)atoi(argv[1]) : 40;
  pages = (argc > 2 ? (size_t)atoi(argv[2]) : 16) * 256;
  mem = mmap(NULL, pages * GUEST_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) die_errno("vfork_share", "mmap", errno);
  for (size_t p = 0; p < pages; ++p) mem[p * (GUEST_PAGE_SIZE / 4)] = pattern(p, 0);
  pthread_t t;
  if (pthread_create(&t, NULL, churn, NULL) != 0) die_errno("vfork_share", "pthread_create", errno);
  unsigned mismatches = 0, spawn_errors = 0;
  for (unsigned r = 1; r <= rounds; ++r) {
    pid_t pid = vfork();
    if (pid == 0) {
      /* The child: only stores and _exit, as vfork allows. Every 7th page gets this round. */
      shared_word = r;
      for (size_t p = r % 7; p < pages; p += 7) mem[p * (GUEST_PAGE_SIZE / 4)] = pattern(p, r);
      _exit((int)(r & 0x7f));
    }
    if (pid < 0) die_errno("vfork_share", "vfork", errno);
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != (int)(r & 0x7f)) ++mismatches;
    if (shared_word != r) ++mismatches;
    for (size_t p = r % 7; p < pages; p += 7)
      if (mem[p * (GUEST_PAGE_SIZE / 4)] != pattern(p, r)) ++mismatches;

    char* missing[] = {"/no/such/program", NULL};
    pid_t sp;
    const int err = posix_spawn(&sp, missing[0], NULL, NULL, missing, environ);
    if (err != ENOENT) {
      ++spawn_errors;
      fprintf(stderr, "round %u: posix_spawn of a missing program gave %d (%s)\n", r, err, strerror(err));
    }
    if (err == 0) waitpid(sp, NULL, 0);
    char status_arg[8];
    snprintf(status_arg, sizeof status_arg, "%u", r % 5);
    char* self[] = {argv[0], "child", status_arg, NULL};
    const int serr = posix_spawn(&sp, "/proc/self/exe", NULL, NULL, self, environ);
    const pid_t waited = serr == 0 ? waitpid(sp, &status, 0) : -1;
    if (serr != 0 || waited != sp || !WIFEXITED(status) || WEXITSTATUS(status) != (int)(r % 5)) {
      ++spawn_errors;
      fprintf(stderr, "round %u: posix_spawn of itself gave %d, waitpid %d, status %#x (want exit %u)\n", r, serr,
              (int)waited, status, r % 5);
    }
  }
  churn_stop = 1;
  pthread_join(t, NULL);
  printf("vfork_share rounds=%u mismatches=%u spawn_errors=%u\n", rounds, mismatches, spawn_errors);
  return mismatches || spawn_errors ? 1 : 0;
}
