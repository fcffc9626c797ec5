/* shared_region: all threads fault in one mapping, interleaved page by page.
 *
 *   shared_region [-t THREADS (default 2)] [-m MIB_PER_THREAD (default 128)] [-i ITERATIONS (default 4)]
 *
 * Each iteration the main thread maps one private anonymous region of THREADS * MIB MiB
 * (shared by the threads of this process, so they fault in the same page tables), then:
 *   write phase:  thread t writes pages t, t+T, t+2T, ... (every page faulted by exactly one
 *                 thread, neighbouring pages by different threads: maximum page-table sharing);
 *   verify phase: thread t reads the t-th contiguous slice of the region and checks that each
 *                 page holds the value its writer stored (mostly pages other threads wrote) and
 *                 that a word nobody wrote is still zero;
 * then the main thread unmaps it. Barriers separate the phases.
 *
 * stdout (deterministic): configuration, faults, "ok" or the mismatch count.
 * stderr: time and faults/s of the write phases, in total and per thread.
 * Exit status: 0 ok, 1 mismatch, 2 usage or system-call error. */
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common.h"

static const char *prog = "shared_region";

struct shared {
  unsigned threads, iterations;
  size_t pages;              /* pages in the region */
  uint32_t *region;          /* set by main before each write phase (the barrier orders it) */
  pthread_barrier_t phase;   /* threads + main */
};

struct worker {
  pthread_t thread;
  unsigned id;
  struct shared *s;
  unsigned long long mismatches;
  double write_seconds; /* summed over the iterations */
  double phase_start, phase_end; /* this iteration's write phase, on this thread's clock */
};

#define WORDS_PER_PAGE (GUEST_PAGE_SIZE / sizeof(uint32_t))

/* The value thread `writer` stores at the start of page `page` in iteration `it`. */
static uint32_t expected(unsigned writer, size_t page, unsigned it) {
  return page_pattern(writer, (uint32_t)page, it);
}

static void *run_worker(void *arg) {
  struct worker *w = arg;
  struct shared *s = w->s;
  const size_t T = s->threads;
  const size_t slice = (s->pages + T - 1) / T;
  for (unsigned it = 0; it < s->iterations; it++) {
    pthread_barrier_wait(&s->phase); /* region mapped */
    uint32_t *region = s->region;
    w->phase_start = now_seconds();
    for (size_t p = w->id; p < s->pages; p += T) region[p * WORDS_PER_PAGE] = expected(w->id, p, it);
    w->phase_end = now_seconds();
    w->write_seconds += w->phase_end - w->phase_start;
    pthread_barrier_wait(&s->phase); /* every page written */
    size_t first = w->id * slice, last = first + slice < s->pages ? first + slice : s->pages;
    for (size_t p = first; p < last; p++) {
      uint32_t *page = region + p * WORDS_PER_PAGE;
      if (page[0] != expected((unsigned)(p % T), p, it) || page[WORDS_PER_PAGE / 2] != 0) w->mismatches++;
    }
    pthread_barrier_wait(&s->phase); /* verified; main unmaps */
  }
  return NULL;
}

int main(int argc, char **argv) {
  unsigned threads = 2, iterations = 4;
  unsigned long mib = 128;
  int opt;
  while ((opt = getopt(argc, argv, "t:m:i:")) != -1) {
    switch (opt) {
      case 't': threads = (unsigned)parse_count(prog, 't', optarg, 1024); break;
      case 'm': mib = parse_count(prog, 'm', optarg, sizeof(void *) == 8 ? 1ul << 20 : 2048); break;
      case 'i': iterations = (unsigned)parse_count(prog, 'i', optarg, 1000000); break;
      default:
        fprintf(stderr, "usage: %s [-t THREADS] [-m MIB_PER_THREAD] [-i ITERATIONS]\n", prog);
        return 2;
    }
  }
  if (optind != argc) {
    fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
    return 2;
  }
  const unsigned long long total_mib = (unsigned long long)mib * threads;
  if (total_mib > (sizeof(void *) == 8 ? 1ull << 22 : 2048ull)) {
    fprintf(stderr, "%s: THREADS * MIB = %llu MiB is too large for %s\n", prog, total_mib, GUEST_ARCH);
    return 2;
  }
  const size_t bytes = (size_t)total_mib << 20;

  struct shared s = {.threads = threads, .iterations = iterations, .pages = bytes / GUEST_PAGE_SIZE};
  pthread_barrier_init(&s.phase, NULL, threads + 1);
  struct worker *w = calloc(threads, sizeof *w);
  if (w == NULL) die_errno(prog, "calloc", errno);
  for (unsigned t = 0; t < threads; t++) {
    w[t] = (struct worker){.id = t, .s = &s};
    int err = pthread_create(&w[t].thread, NULL, run_worker, &w[t]);
    if (err != 0) die_errno(prog, "pthread_create", err);
  }

  double write_elapsed = 0;
  for (unsigned it = 0; it < iterations; it++) {
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) die_errno(prog, "mmap", errno);
    s.region = p;
    pthread_barrier_wait(&s.phase); /* go: write */
    pthread_barrier_wait(&s.phase); /* all written */
    /* The phase as the workers timed it (first start to last end): main's clock after a
     * barrier is late whenever main is scheduled after the workers. The barrier orders their
     * stores before these reads; they are not rewritten before the next iteration. */
    double first = w[0].phase_start, last = w[0].phase_end;
    for (unsigned t = 1; t < threads; t++) {
      if (w[t].phase_start < first) first = w[t].phase_start;
      if (w[t].phase_end > last) last = w[t].phase_end;
    }
    write_elapsed += last - first;
    pthread_barrier_wait(&s.phase); /* all verified */
    if (munmap(p, bytes) != 0) die_errno(prog, "munmap", errno);
  }
  unsigned long long mismatches = 0;
  for (unsigned t = 0; t < threads; t++) {
    pthread_join(w[t].thread, NULL);
    mismatches += w[t].mismatches;
  }

  const unsigned long long faults = (unsigned long long)s.pages * iterations;
  printf("shared_region threads=%u mib_per_thread=%lu iterations=%u pages=%llu faults=%llu ", threads,
         mib, iterations, (unsigned long long)s.pages, faults);
  if (mismatches == 0)
    printf("ok\n");
  else
    printf("mismatches=%llu FAILED\n", mismatches);

  fprintf(stderr, "shared_region: %s, write phases %.3f s, %.0f faults/s total\n", GUEST_ARCH,
          write_elapsed, write_elapsed > 0 ? (double)faults / write_elapsed : 0.0);
  for (unsigned t = 0; t < threads; t++) {
    unsigned long long mine = (s.pages / threads + (t < s.pages % threads)) * iterations;
    fprintf(stderr, "shared_region: thread %u: %.3f s, %.0f faults/s\n", t, w[t].write_seconds,
            w[t].write_seconds > 0 ? (double)mine / w[t].write_seconds : 0.0);
  }
  pthread_barrier_destroy(&s.phase);
  free(w);
  return mismatches == 0 ? 0 : 1;
}
