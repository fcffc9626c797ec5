/* swap_stress: data integrity under memory pressure. The working set is meant to be 2-4x the
 * guest memory emu is given, so between the moment a page is written and the moment it is
 * read back every other page has been written too and the page has been swapped out (and in
 * again); any page lost, mixed up with another, or left stale by the swap path shows up as
 * words that read back wrong.
 *
 *   swap_stress [-m MIB (default 48)] [-t THREADS (default 2)] [-p PASSES (default 4)] [-c]
 *
 * One private anonymous region of MIB MiB (N = MIB * 256 pages of 4 KiB) is shared by THREADS
 * worker threads. Pages are dealt out interleaved: on pass p, worker w owns the pages i with
 * (i + p) % THREADS == w, so neighbouring pages belong to different threads and the thread
 * that writes a page changes from one pass to the next. Each pass, every worker:
 *   writes every 8-byte word of each of its pages with value(page, pass, word);
 *   waits on a barrier (all pages of the pass are written);
 *   re-reads every word of its pages and counts the words != value(page, pass, word), which
 *     includes a word still holding the previous pass's value (value() differs in every word
 *     from one pass to the next) and a word reading zero (a page lost and zero-filled);
 *   waits on a barrier (nobody writes pass p+1 before all of pass p is checked).
 * Pages are written and checked in increasing order, so the first pages written are the
 * oldest, most likely swapped out, when the check begins.
 *
 * -c adds a churn thread running until the workers finish (at least one iteration): mmap a
 * separate 64-page region, write a pattern into two words of every page, mprotect it read-only,
 * check it, mprotect it read-write, check it again, munmap it. Its wrong words count as
 * mismatches too. How many iterations it does varies run to run, so that goes to stderr only.
 *
 * stdout (deterministic): one line "swap_stress: pages=N threads=T passes=P mismatches=M".
 * stderr: the first wrong word each worker saw on each pass (page, offset, value read, value
 *   expected, whether it is stale/zero/other), the churn iterations, the elapsed time.
 * Exit status: 0 no mismatch, 1 a mismatch, 2 usage or system-call error. */
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common.h"

static const char *prog = "swap_stress";

#define WORDS_PER_PAGE (GUEST_PAGE_SIZE / sizeof(uint64_t))
#define CHURN_PAGES 64u
#define WORD_STEP 0xD6E8FEB86659FD93ull /* odd: word k's term k * WORD_STEP differs for every k */

/* Splitmix64's finalizer over a unique (page, pass) key: a bijection, so every (page, pass)
 * gets its own seed, and in particular the seeds of two passes of one page always differ. */
static inline uint64_t page_seed(uint32_t page, uint32_t pass) {
  uint64_t z = (((uint64_t)page << 32) | pass) + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* The value of word k of a page whose seed is s: seed ^ k * WORD_STEP. Two passes of a page
 * have different seeds, hence a different value in every word. The loops below step the
 * k * WORD_STEP term by addition instead of multiplying, so a word costs an add and a xor. */

static uint64_t *region;
static uint32_t npages, nthreads, npasses;
static pthread_barrier_t start;   /* the workers, the churn thread and main, once */
static pthread_barrier_t barrier; /* the workers, between phases */
static int workers_done;          /* __atomic: the churn thread stops when set */

struct worker {
  pthread_t thread;
  uint32_t id;
  unsigned long long mismatches;
  double t_start, t_end; /* after the start barrier, after the last pass */
};

/* Prints a first wrong word to stderr, saying whether it reads zero, stale or other. */
static void report(const char *who, uint32_t page, uint32_t k, uint64_t got, uint64_t want,
                   uint64_t stale) {
  const char *kind = got == 0 ? "zero" : got == stale ? "stale (previous pass)" : "other";
  fprintf(stderr,
          "%s: %s: first bad word: page %lu offset 0x%lx: read 0x%016llx, want 0x%016llx (%s)\n",
          prog, who, (unsigned long)page, (unsigned long)(k * sizeof(uint64_t)),
          (unsigned long long)got, (unsigned long long)want, kind);
}

static void *run_worker(void *arg) {
  struct worker *w = arg;
  char who[48];
  pthread_barrier_wait(&start);
  w->t_start = now_seconds();
  for (uint32_t pass = 0; pass < npasses; pass++) {
    /* The first page this worker owns on this pass: (first + pass) % nthreads == id. */
    const uint32_t first = (w->id + nthreads - pass % nthreads) % nthreads;

    for (uint32_t i = first; i < npages; i += nthreads) {
      uint64_t *page = region + (size_t)i * WORDS_PER_PAGE;
      const uint64_t seed = page_seed(i, pass);
      uint64_t term = 0;
      for (uint32_t k = 0; k < WORDS_PER_PAGE; k++, term += WORD_STEP) page[k] = seed ^ term;
    }

    pthread_barrier_wait(&barrier);

    int reported = 0;
    for (uint32_t i = first; i < npages; i += nthreads) {
      const uint64_t *page = region + (size_t)i * WORDS_PER_PAGE;
      const uint64_t seed = page_seed(i, pass);
      uint64_t term = 0;
      for (uint32_t k = 0; k < WORDS_PER_PAGE; k++, term += WORD_STEP) {
        const uint64_t got = page[k];
        if (got == (seed ^ term)) continue;
        w->mismatches++;
        if (!reported) {
          reported = 1;
          const uint64_t stale = pass > 0 ? page_seed(i, pass - 1) ^ term : 0;
          snprintf(who, sizeof who, "worker %lu pass %lu", (unsigned long)w->id, (unsigned long)pass);
          report(who, i, k, got, seed ^ term, stale);
        }
      }
    }

    pthread_barrier_wait(&barrier);
  }
  w->t_end = now_seconds();
  return NULL;
}

/* The churn thread's pattern: two words per page (the first and the last), from page_seed
 * with the high bit of the page index set so it is a different key from the workers'. */
static void *run_churn(void *arg) {
  unsigned long long *mismatches = arg;
  const size_t bytes = (size_t)CHURN_PAGES * GUEST_PAGE_SIZE;
  unsigned long iterations = 0;
  int reported = 0;
  pthread_barrier_wait(&start);
  do {
    const uint32_t it = (uint32_t)iterations;
    uint64_t *r = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (r == MAP_FAILED) die_errno(prog, "churn: mmap", errno);
    for (uint32_t i = 0; i < CHURN_PAGES; i++) {
      const uint64_t seed = page_seed(0x80000000u | i, it);
      r[(size_t)i * WORDS_PER_PAGE] = seed;
      r[(size_t)i * WORDS_PER_PAGE + WORDS_PER_PAGE - 1] = ~seed;
    }
    for (int round = 0; round < 2; round++) {
      if (mprotect(r, bytes, round == 0 ? PROT_READ : PROT_READ | PROT_WRITE) != 0)
        die_errno(prog, "churn: mprotect", errno);
      for (uint32_t i = 0; i < CHURN_PAGES; i++) {
        const uint64_t seed = page_seed(0x80000000u | i, it);
        const uint64_t *page = r + (size_t)i * WORDS_PER_PAGE;
        const uint32_t ks[3] = {0, (uint32_t)WORDS_PER_PAGE - 1, 1};
        const uint64_t want[3] = {seed, ~seed, 0}; /* word 1 was never written */
        for (int j = 0; j < 3; j++) {
          if (page[ks[j]] == want[j]) continue;
          ++*mismatches;
          if (!reported) {
            reported = 1;
            report("churn", i, ks[j], page[ks[j]], want[j], 0);
          }
        }
      }
    }
    if (munmap(r, bytes) != 0) die_errno(prog, "churn: munmap", errno);
    iterations++;
  } while (!__atomic_load_n(&workers_done, __ATOMIC_ACQUIRE));
  fprintf(stderr, "%s: churn: %lu iterations\n", prog, iterations);
  return NULL;
}

int main(int argc, char **argv) {
  unsigned long mib = 48;
  int churn = 0, opt;
  nthreads = 2;
  npasses = 4;
  while ((opt = getopt(argc, argv, "m:t:p:c")) != -1) {
    switch (opt) {
      case 'm': mib = parse_count(prog, 'm', optarg, sizeof(void *) == 8 ? 1ul << 20 : 2048); break;
      case 't': nthreads = (uint32_t)parse_count(prog, 't', optarg, 1024); break;
      case 'p': npasses = (uint32_t)parse_count(prog, 'p', optarg, 1000000); break;
      case 'c': churn = 1; break;
      default:
        fprintf(stderr, "usage: %s [-m MIB] [-t THREADS] [-p PASSES] [-c]\n", prog);
        return 2;
    }
  }
  if (optind != argc) {
    fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
    return 2;
  }

  const size_t bytes = (size_t)mib << 20;
  npages = (uint32_t)(bytes / GUEST_PAGE_SIZE);
  region = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region == MAP_FAILED) die_errno(prog, "mmap", errno);

  struct worker *w = calloc(nthreads, sizeof *w);
  if (w == NULL) die_errno(prog, "calloc", errno);
  pthread_barrier_init(&start, NULL, nthreads + 1 + (unsigned)churn);
  pthread_barrier_init(&barrier, NULL, nthreads);
  for (uint32_t t = 0; t < nthreads; t++) {
    w[t].id = t;
    int err = pthread_create(&w[t].thread, NULL, run_worker, &w[t]);
    if (err != 0) die_errno(prog, "pthread_create", err);
  }
  unsigned long long churn_mismatches = 0;
  pthread_t churn_thread;
  if (churn) {
    int err = pthread_create(&churn_thread, NULL, run_churn, &churn_mismatches);
    if (err != 0) die_errno(prog, "pthread_create", err);
  }

  pthread_barrier_wait(&start);
  unsigned long long mismatches = 0;
  double t0 = 0, t1 = 0;
  for (uint32_t t = 0; t < nthreads; t++) {
    pthread_join(w[t].thread, NULL);
    mismatches += w[t].mismatches;
    if (t == 0 || w[t].t_start < t0) t0 = w[t].t_start;
    if (t == 0 || w[t].t_end > t1) t1 = w[t].t_end;
  }
  const double elapsed = t1 - t0;
  __atomic_store_n(&workers_done, 1, __ATOMIC_RELEASE);
  if (churn) {
    pthread_join(churn_thread, NULL);
    mismatches += churn_mismatches;
  }

  printf("swap_stress: pages=%lu threads=%lu passes=%lu mismatches=%llu\n", (unsigned long)npages,
         (unsigned long)nthreads, (unsigned long)npasses, mismatches);
  fprintf(stderr, "%s: %s, %.3f s, %.0f MiB/s written and checked\n", prog, GUEST_ARCH, elapsed,
          elapsed > 0 ? 2.0 * (double)mib * npasses / elapsed : 0.0);
  if (munmap(region, bytes) != 0) die_errno(prog, "munmap", errno);
  pthread_barrier_destroy(&barrier);
  pthread_barrier_destroy(&start);
  free(w);
  return mismatches == 0 ? 0 : 1;
}
