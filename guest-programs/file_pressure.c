/* A file larger than emu's --mem, read and written through mappings, with no swap: the
 * reclaimer must drop clean file pages and write dirty ones back to the file (as Linux
 * reclaims its page cache without swap), and every page must read back what was stored.
 *
 * usage: file_pressure DIR MIB
 *
 *   1. private read: the file mapped PROT_READ, MAP_PRIVATE, every page checked twice in a
 *      loop that makes no system call (a lone vCPU without the block hook under emu: its
 *      first fault that finds no frame must add the hook and fault again, not end the guest);
 *   2. shared write: every page stored through a MAP_SHARED mapping, read back with pread()
 *      (the dirty pages the reclaimer wrote back, and those still mapped), and through a new
 *      mapping after munmap;
 *   3. private copies: a few pages of a MAP_PRIVATE mapping written (anonymous copies, which
 *      cannot leave without swap) while the rest of the file is read through the same
 *      mapping; the copies keep their values and the file never sees them;
 *   4. children: two forked children read every page through a mapping made before fork
 *      (pages mapped by three address spaces, dropped through the reverse map).
 *
 * Prints one line per part (deterministic: compared with a native run). Exit 0 when every
 * check held, 1 otherwise, 2 on a failed system call. */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#define PROG "file_pressure"
#define WORDS_PER_PAGE (GUEST_PAGE_SIZE / 4)
#define PRIVATE_COPIES 32

static long pages;

/* The word each part checks in page p: the first holds the file's own pattern, the second what
 * part 2 stored. Different words for different pages, so a page read from the wrong offset or
 * lost (zeros) is noticed. */
static uint32_t file_word(long p) { return page_pattern(1, (uint32_t)p, 0); }
static uint32_t stored_word(long p) { return page_pattern(2, (uint32_t)p, 7); }
static uint32_t private_word(long p) { return page_pattern(3, (uint32_t)p, 9); }

static void *map(int fd, int prot, int flags) {
  void *m = mmap(NULL, (size_t)pages * GUEST_PAGE_SIZE, prot, flags, fd, 0);
  if (m == MAP_FAILED) die_errno(PROG, "mmap", errno);
  return m;
}

static void create_file(int fd) {
  static uint32_t chunk[16 * WORDS_PER_PAGE];
  for (long p = 0; p < pages; p += 16) {
    memset(chunk, 0, sizeof chunk);
    for (long i = 0; i < 16; i++) chunk[i * WORDS_PER_PAGE] = file_word(p + i);
    if (write(fd, chunk, sizeof chunk) != (ssize_t)sizeof chunk) die_errno(PROG, "write", errno);
  }
}

/* No system call in here: under emu the loop runs without a sync point until memory is short. */
static long check_file_words(const volatile uint32_t *m, int passes) {
  long wrong = 0;
  for (int pass = 0; pass < passes; pass++)
    for (long p = 0; p < pages; p++) wrong += m[p * WORDS_PER_PAGE] != file_word(p);
  return wrong;
}

static long private_read(int fd) {
  uint32_t *m = map(fd, PROT_READ, MAP_PRIVATE);
  const long wrong = check_file_words(m, 2);
  munmap(m, (size_t)pages * GUEST_PAGE_SIZE);
  printf("private read: %ld pages, 2 passes, %ld wrong\n", pages, wrong);
  return wrong;
}

static long shared_write(int fd) {
  uint32_t *m = map(fd, PROT_READ | PROT_WRITE, MAP_SHARED);
  for (long p = 0; p < pages; p++) m[p * WORDS_PER_PAGE + 1] = stored_word(p);
  long by_pread = 0;
  for (long p = 0; p < pages; p++) {
    uint32_t w[2];
    if (pread(fd, w, sizeof w, (off_t)p * GUEST_PAGE_SIZE) != (ssize_t)sizeof w) die_errno(PROG, "pread", errno);
    by_pread += w[0] != file_word(p) || w[1] != stored_word(p);
  }
  munmap(m, (size_t)pages * GUEST_PAGE_SIZE);
  const volatile uint32_t *again = map(fd, PROT_READ, MAP_SHARED);
  long by_mapping = 0;
  for (long p = 0; p < pages; p++)
    by_mapping += again[p * WORDS_PER_PAGE] != file_word(p) || again[p * WORDS_PER_PAGE + 1] != stored_word(p);
  munmap((void *)again, (size_t)pages * GUEST_PAGE_SIZE);
  printf("shared write: %ld pages stored, %ld wrong by pread, %ld wrong by a new mapping\n", pages, by_pread,
         by_mapping);
  return by_pread + by_mapping;
}

static long private_copies(int fd) {
  uint32_t *m = map(fd, PROT_READ | PROT_WRITE, MAP_PRIVATE);
  const long step = pages / PRIVATE_COPIES;
  for (long i = 0; i < PRIVATE_COPIES; i++) m[i * step * WORDS_PER_PAGE + 2] = private_word(i * step);
  const long file_wrong = check_file_words(m, 1);
  long copies_wrong = 0, leaked = 0;
  for (long i = 0; i < PRIVATE_COPIES; i++) {
    const long p = i * step;
    copies_wrong += m[p * WORDS_PER_PAGE + 2] != private_word(p);
    uint32_t w[3];
    if (pread(fd, w, sizeof w, (off_t)p * GUEST_PAGE_SIZE) != (ssize_t)sizeof w) die_errno(PROG, "pread", errno);
    leaked += w[2] != 0;
  }
  munmap(m, (size_t)pages * GUEST_PAGE_SIZE);
  printf("private copies: %d pages copied, %ld file pages wrong, %ld copies wrong, %ld seen in the file\n",
         PRIVATE_COPIES, file_wrong, copies_wrong, leaked);
  return file_wrong + copies_wrong + leaked;
}

static long children(int fd) {
  const volatile uint32_t *m = map(fd, PROT_READ, MAP_SHARED);
  pid_t pid[2];
  for (int c = 0; c < 2; c++) {
    pid[c] = fork();
    if (pid[c] < 0) die_errno(PROG, "fork", errno);
    if (pid[c] == 0) {
      long wrong = 0;
      for (long p = c; p < pages + c; p++) {  /* the two walk in step, one page apart */
        const long q = p % pages;
        wrong += m[q * WORDS_PER_PAGE] != file_word(q) || m[q * WORDS_PER_PAGE + 1] != stored_word(q);
      }
      _exit(wrong > 100 ? 100 : (int)wrong);
    }
  }
  long wrong = check_file_words(m, 1);
  for (int c = 0; c < 2; c++) {
    int status = 0;
    if (waitpid(pid[c], &status, 0) != pid[c]) die_errno(PROG, "waitpid", errno);
    wrong += WIFEXITED(status) ? WEXITSTATUS(status) : 1000;
  }
  munmap((void *)m, (size_t)pages * GUEST_PAGE_SIZE);
  printf("children: 2 children and the parent read %ld pages each, %ld wrong\n", pages, wrong);
  return wrong;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: " PROG " DIR MIB\n");
    return 2;
  }
  pages = (long)parse_count(PROG, 'm', argv[2], 1024) * (1 << 20) / GUEST_PAGE_SIZE;
  char path[4096];
  snprintf(path, sizeof path, "%s/" PROG ".%d", argv[1], (int)getpid());
  const int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) die_errno(PROG, path, errno);
  unlink(path);
  create_file(fd);
  long wrong = private_read(fd);
  wrong += shared_write(fd);
  wrong += private_copies(fd);
  wrong += children(fd);
  close(fd);
  printf("%s\n", wrong ? "FAILED" : "ok");
  return wrong ? 1 : 0;
}
