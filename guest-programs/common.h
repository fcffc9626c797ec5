/* Helpers shared by the guest programs (header-only, each program is one translation unit).
 *
 * The programs are built as static i386 and x86_64 Linux binaries and run both natively and
 * under emu. Convention: everything deterministic goes to stdout, so a test can compare
 * stdout and the exit status of an emulated run with a native run; anything that depends on
 * timing (elapsed time, rates, how many extra passes a thread managed) goes to stderr only.
 * Exit status 2 means bad usage or a failed system call, 1 a wrong result, 0 success. */
#ifndef GUEST_COMMON_H
#define GUEST_COMMON_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GUEST_PAGE_SIZE 4096u

#if defined(__x86_64__)
#define GUEST_ARCH "x86_64"
#elif defined(__i386__)
#define GUEST_ARCH "i386"
#else
#error "guest programs are for i386 and x86_64 only"
#endif

/* Monotonic time in seconds. */
static inline double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Prints "prog: what: strerror" and exits 2: for failed system calls. */
static inline void die_errno(const char *prog, const char *what, int err) {
  fprintf(stderr, "%s: %s: %s\n", prog, what, strerror(err));
  fflush(stdout);
  exit(2);
}

/* Parses a positive decimal number no larger than max, or exits 2 with a message. */
static inline unsigned long parse_count(const char *prog, char opt, const char *text,
                                        unsigned long max) {
  char *end = NULL;
  errno = 0;
  unsigned long v = strtoul(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v == 0 || v > max || text[0] == '-') {
    fprintf(stderr, "%s: -%c wants a number from 1 to %lu, got '%s'\n", prog, opt, max, text);
    exit(2);
  }
  return v;
}

/* A page-unique 32-bit pattern: differs for every (a, b, c) triple a test uses and is never
 * zero, so a page that was lost (reads back as fresh zero memory) is always noticed. */
static inline uint32_t page_pattern(uint32_t a, uint32_t b, uint32_t c) {
  uint32_t x = a * 0x9E3779B1u ^ (b + 0x7F4A7C15u) * 0x85EBCA77u ^ (c + 1u) * 0xC2B2AE3Du;
  x ^= x >> 15;
  x *= 0x2C1B3C6Du;
  x ^= x >> 12;
  return x | 1u;
}

#endif
