/* Fork latency and the child's first-write cost for a parent with MIB MiB touched: the
 * benchmark behind bench/fork_bench.py, run natively and under emu (--pt-share on|off).
 *
 * usage: fork_bench MIB [REPS]
 * Prints one line: "fork_bench mib=M pages=P fork_us=F first_write_us=W" with the medians
 * over REPS forks (default 5). fork_us: the parent's fork() call. first_write_us: the child
 * writing one word into every page (each write a copy-on-write fault). */
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

static int compare(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: fork_bench MIB [REPS]\n");
    return 2;
  }
  const size_t mib = (size_t)atol(argv[1]);
  const int reps = argc > 2 ? atoi(argv[2]) : 5;
  if (mib == 0 || reps < 1 || reps > 100) return 2;
  const size_t pages = mib * 256;
  volatile uint32_t* mem = mmap(NULL, pages * GUEST_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return 2;
  for (size_t p = 0; p < pages; ++p) mem[p * (GUEST_PAGE_SIZE / 4)] = (uint32_t)p;
  double fork_us[100], write_us[100];
  for (int r = 0; r < reps; ++r) {
    int report[2];
    if (pipe(report) != 0) return 2;
    const double t0 = now_seconds();
    const pid_t child = fork();
    if (child < 0) return 2;
    if (child == 0) {
      const double w0 = now_seconds();
      for (size_t p = 0; p < pages; ++p) mem[p * (GUEST_PAGE_SIZE / 4)] = (uint32_t)(p + 1);
      const double us = (now_seconds() - w0) * 1e6;
      if (write(report[1], &us, sizeof us) != sizeof us) _exit(2);
      _exit(0);
    }
    fork_us[r] = (now_seconds() - t0) * 1e6;
    close(report[1]);
    if (read(report[0], &write_us[r], sizeof write_us[r]) != sizeof write_us[r]) return 2;
    close(report[0]);
    int status;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
    for (size_t p = 0; p < pages; p += 97)
      if (mem[p * (GUEST_PAGE_SIZE / 4)] != (uint32_t)p) return 1;  /* the child's writes stayed its own */
  }
  qsort(fork_us, (size_t)reps, sizeof(double), compare);
  qsort(write_us, (size_t)reps, sizeof(double), compare);
  printf("fork_bench mib=%zu pages=%zu fork_us=%.1f first_write_us=%.1f\n", mib, pages, fork_us[reps / 2],
         write_us[reps / 2]);
  return 0;
}
