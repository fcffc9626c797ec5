/* checksum: compute-bound work on memory faulted in once: fills a buffer of MIB MiB with a
 * pseudo-random pattern (one zero-fill fault per page, then no more faults) and checksums it
 * ROUNDS times, each round seeded with the previous result. Same arithmetic on both
 * architectures (64-bit words), so i386 and x86_64 print the same checksum.
 *
 *   checksum [-m MIB (default 16)] [-r ROUNDS (default 50)]
 *
 * stdout (deterministic): the parameters and the checksum. stderr: fill and checksum time.
 * Exit status: 0, or 2 on usage or allocation error. */
#include <unistd.h>

#include "common.h"

static const char *prog = "checksum";

/* One round: a multiply-rotate hash over every 64-bit word, chained from `seed`. */
static uint64_t checksum_round(const uint64_t *words, size_t count, uint64_t seed) {
  uint64_t h = seed ^ 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i < count; i++) {
    h ^= words[i];
    h *= 0xFF51AFD7ED558CCDull;
    h = (h << 29) | (h >> 35);
  }
  return h ^ (h >> 31);
}

int main(int argc, char **argv) {
  unsigned long mib = 16, rounds = 50;
  int opt;
  while ((opt = getopt(argc, argv, "m:r:")) != -1) {
    switch (opt) {
      case 'm': mib = parse_count(prog, 'm', optarg, sizeof(void *) == 8 ? 1ul << 16 : 1024); break;
      case 'r': rounds = parse_count(prog, 'r', optarg, 1000000); break;
      default: fprintf(stderr, "usage: %s [-m MIB] [-r ROUNDS]\n", prog); return 2;
    }
  }
  if (optind != argc) {
    fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
    return 2;
  }
  const size_t count = ((size_t)mib << 20) / sizeof(uint64_t);
  uint64_t *words = malloc(count * sizeof *words);
  if (words == NULL) die_errno(prog, "malloc", errno);

  double t0 = now_seconds();
  uint64_t x = 0x243F6A8885A308D3ull; /* xorshift64 */
  for (size_t i = 0; i < count; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    words[i] = x;
  }
  double t1 = now_seconds();
  uint64_t sum = 0;
  for (unsigned long r = 0; r < rounds; r++) sum = checksum_round(words, count, sum + r);
  double t2 = now_seconds();

  printf("checksum mib=%lu rounds=%lu value=0x%016llx\n", mib, rounds, (unsigned long long)sum);
  fprintf(stderr, "checksum: %s, fill %.3f s, %lu rounds %.3f s (%.1f MiB/s)\n", GUEST_ARCH, t1 - t0,
          rounds, t2 - t1, t2 > t1 ? (double)mib * rounds / (t2 - t1) : 0.0);
  free(words);
  return 0;
}
