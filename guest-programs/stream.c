/* stream: a streaming guest for a swap benchmark. It sweeps a region larger than the guest
 * memory emu is given, sequentially, over and over: every page is written, then every page is
 * read, so with less memory than MIB every pass swaps the whole region out and in again, in
 * the order most favourable to readahead and write clustering.
 *
 *   stream [-m MIB (default 128)] [-p PASSES (default 3)]
 *
 * One private anonymous region of MIB MiB. Each pass:
 *   writes every page in increasing order: one 8-byte word per 64-byte line, enough to dirty
 *     the page; the page's first word is ((pass + 1) << 32) | page, so it can be checked, and
 *     the word of line j is that first word + j * LINE_STEP;
 *   reads every page in increasing order: checks the first word and folds every written word
 *     into a 64-bit checksum.
 * The checksum depends only on MIB and PASSES (the same for i386 and x86_64).
 *
 * stdout (deterministic): one line "stream: mib=M passes=P checksum=HEX".
 * stderr: elapsed time and rate; the number of pages whose first word read back wrong.
 * Exit status: 0 ok, 1 a page's first word read back wrong, 2 usage or system-call error. */
#include <sys/mman.h>
#include <unistd.h>

#include "common.h"

static const char *prog = "stream";

#define LINE 64u
#define WORDS_PER_PAGE (GUEST_PAGE_SIZE / sizeof(uint64_t))
#define WORDS_PER_LINE (LINE / sizeof(uint64_t))
#define LINE_STEP 0x9E3779B97F4A7C15ull

int main(int argc, char **argv) {
  unsigned long mib = 128;
  uint32_t passes = 3;
  int opt;
  while ((opt = getopt(argc, argv, "m:p:")) != -1) {
    switch (opt) {
      case 'm': mib = parse_count(prog, 'm', optarg, sizeof(void *) == 8 ? 1ul << 20 : 2048); break;
      case 'p': passes = (uint32_t)parse_count(prog, 'p', optarg, 1000000); break;
      default: fprintf(stderr, "usage: %s [-m MIB] [-p PASSES]\n", prog); return 2;
    }
  }
  if (optind != argc) {
    fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
    return 2;
  }

  const size_t bytes = (size_t)mib << 20;
  const uint32_t pages = (uint32_t)(bytes / GUEST_PAGE_SIZE);
  uint64_t *region = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region == MAP_FAILED) die_errno(prog, "mmap", errno);

  uint64_t checksum = 0xCBF29CE484222325ull;
  unsigned long long bad = 0;
  const double t0 = now_seconds();
  for (uint32_t pass = 0; pass < passes; pass++) {
    for (uint32_t i = 0; i < pages; i++) {
      uint64_t *page = region + (size_t)i * WORDS_PER_PAGE;
      uint64_t v = ((uint64_t)(pass + 1) << 32) | i;
      for (uint32_t k = 0; k < WORDS_PER_PAGE; k += WORDS_PER_LINE, v += LINE_STEP) page[k] = v;
    }
    /* The writes above and the reads below go through the same pointer; keep the compiler
     * from forwarding the stored values to the loads so the reads really read memory. */
    __asm__ __volatile__("" ::: "memory");
    for (uint32_t i = 0; i < pages; i++) {
      const uint64_t *page = region + (size_t)i * WORDS_PER_PAGE;
      if (page[0] != (((uint64_t)(pass + 1) << 32) | i)) {
        if (bad == 0)
          fprintf(stderr, "%s: pass %lu: page %lu: first word 0x%016llx, want 0x%016llx\n", prog,
                  (unsigned long)pass, (unsigned long)i, (unsigned long long)page[0],
                  (unsigned long long)(((uint64_t)(pass + 1) << 32) | i));
        bad++;
      }
      for (uint32_t k = 0; k < WORDS_PER_PAGE; k += WORDS_PER_LINE)
        checksum = (checksum ^ page[k]) * 0x100000001B3ull;
    }
    __asm__ __volatile__("" ::: "memory");
  }
  const double elapsed = now_seconds() - t0;

  printf("stream: mib=%lu passes=%lu checksum=%016llx\n", mib, (unsigned long)passes,
         (unsigned long long)checksum);
  fprintf(stderr, "%s: %s, %.3f s, %.0f MiB/s written and read\n", prog, GUEST_ARCH, elapsed,
          elapsed > 0 ? 2.0 * (double)mib * passes / elapsed : 0.0);
  if (bad != 0) fprintf(stderr, "%s: %llu pages read back wrong\n", prog, bad);
  if (munmap(region, bytes) != 0) die_errno(prog, "munmap", errno);
  return bad == 0 ? 0 : 1;
}
