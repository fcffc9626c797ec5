/* segv: dies of a signal on purpose, after printing (and flushing) one line, so a test sees
 * that the output before the fault is kept and the exit status reports the signal
 * (a shell shows 128 + signal number: 139 for SIGSEGV, 132 for SIGILL).
 *
 *   segv          write to a page mapped PROT_READ        -> SIGSEGV (protection fault)
 *   segv null     read from address 0                     -> SIGSEGV (not-present fault)
 *   segv ill      execute ud2                             -> SIGILL
 * Anything else: usage message, exit status 2. Should the access not fault: exit status 3. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

/* Read at run time, so the compiler cannot see the null dereference and turn it into a trap
 * instruction of its own (gcc's -fisolate-erroneous-paths would make it a ud2 / SIGILL). */
static volatile uintptr_t null_address = 0;

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "ro";
  if (argc > 2 || (strcmp(mode, "ro") != 0 && strcmp(mode, "null") != 0 && strcmp(mode, "ill") != 0)) {
    fprintf(stderr, "usage: segv [ro|null|ill]\n");
    return 2;
  }
  if (strcmp(mode, "ro") == 0) {
    volatile char *page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) {
      perror("segv: mmap");
      return 2;
    }
    printf("segv: reading a read-only page: %d\n", page[0]); /* fine: reads zero */
    printf("segv: writing to it now\n");
    fflush(stdout);
    page[0] = 1; /* SIGSEGV */
  } else if (strcmp(mode, "null") == 0) {
    printf("segv: reading address 0 now\n");
    fflush(stdout);
    volatile int *p = (volatile int *)null_address;
    printf("segv: read %d\n", *p); /* SIGSEGV */
  } else {
    printf("segv: executing ud2 now\n");
    fflush(stdout);
    __asm__ volatile("ud2"); /* SIGILL */
  }
  printf("segv: still alive, the access did not fault\n");
  return 3;
}
