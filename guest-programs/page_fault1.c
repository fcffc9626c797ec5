/* page_fault1: will-it-scale's page_fault1, as a guest program.
 *
 *   page_fault1 [-t THREADS (default 1)] [-m MIB_PER_THREAD (default 128)] [-i ITERATIONS (default 4)]
 *
 * Every thread, ITERATIONS times: mmap MIB_PER_THREAD MiB private anonymous memory, write one
 * byte in each 4 KiB page (one zero-fill write fault per page), check the pages, munmap. The
 * threads are released together by a barrier. The check reads back the byte written to every
 * page and a byte nobody wrote (which must still be zero); the reads fault nothing new.
 *
 * stdout (deterministic): the configuration, the number of pages faulted and "ok", or the
 *   number of bad pages. stderr: elapsed time, faults/s in total and for each thread.
 * Exit status: 0 ok, 1 a page read back wrong, 2 usage or system-call error. */
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common.h"

static const char *prog = "page_fault1";

struct worker {
  pthread_t thread;
  unsigned id;
  size_t bytes;             /* the region each iteration maps */
  unsigned iterations;
  pthread_barrier_t *start; /* all workers and main */
  unsigned long long bad;   /* pages that read back wrong */
  double started, finished; /* this thread's clock after the barrier and after its last munmap */
};

static void *run_worker(void *arg) {
  struct worker *w = arg;
  const size_t pages = w->bytes / GUEST_PAGE_SIZE;
  pthread_barrier_wait(w->start);
  w->started = now_seconds();
  for (unsigned it = 0; it < w->iterations; it++) {
    unsigned char *p = mmap(NULL, w->bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) die_errno(prog, "mmap", errno);
    /* The value written depends on thread, iteration and page, so a page mapped to the wrong
     * frame (another thread's, or a stale one) reads back wrong. */
    const unsigned char tag = (unsigned char)(1u + w->id * 7u + it * 3u);
    for (size_t i = 0; i < pages; i++) p[i * GUEST_PAGE_SIZE] = (unsigned char)(tag + i);
    for (size_t i = 0; i < pages; i++) {
      if (p[i * GUEST_PAGE_SIZE] != (unsigned char)(tag + i) || p[i * GUEST_PAGE_SIZE + 2048] != 0)
        w->bad++;
    }
    if (munmap(p, w->bytes) != 0) die_errno(prog, "munmap", errno);
  }
  w->finished = now_seconds();
  return NULL;
}

int main(int argc, char **argv) {
  unsigned threads = 1, iterations = 4;
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

  struct worker *w = calloc(threads, sizeof *w);
  if (w == NULL) die_errno(prog, "calloc", errno);
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, threads + 1);
  for (unsigned t = 0; t < threads; t++) {
    w[t] = (struct worker){.id = t, .bytes = (size_t)mib << 20, .iterations = iterations, .start = &start};
    int err = pthread_create(&w[t].thread, NULL, run_worker, &w[t]);
    if (err != 0) die_errno(prog, "pthread_create", err);
  }
  pthread_barrier_wait(&start);
  unsigned long long bad = 0;
  double first_start = 0, last_finish = 0;
  for (unsigned t = 0; t < threads; t++) {
    pthread_join(w[t].thread, NULL);
    bad += w[t].bad;
    if (t == 0 || w[t].started < first_start) first_start = w[t].started;
    if (w[t].finished > last_finish) last_finish = w[t].finished;
  }
  /* From the first worker's start to the last one's end, as the workers saw it: main's own
   * clock after the barrier starts late whenever main is scheduled after the workers (always
   * likely with as many workers as cores), which overstated the rate. */
  double elapsed = last_finish - first_start;

  const unsigned long long pages_per_thread = (unsigned long long)mib * (1u << 20) / GUEST_PAGE_SIZE;
  const unsigned long long faults = pages_per_thread * threads * iterations;
  printf("page_fault1 threads=%u mib_per_thread=%lu iterations=%u pages_per_iteration=%llu faults=%llu ",
         threads, mib, iterations, pages_per_thread * threads, faults);
  if (bad == 0)
    printf("ok\n");
  else
    printf("bad_pages=%llu FAILED\n", bad);

  fprintf(stderr, "page_fault1: %s, %.3f s, %.0f faults/s total\n", GUEST_ARCH, elapsed,
          elapsed > 0 ? (double)faults / elapsed : 0.0);
  for (unsigned t = 0; t < threads; t++)
    fprintf(stderr, "page_fault1: thread %u: %.3f s, %.0f faults/s\n", t, w[t].finished - w[t].started,
            w[t].finished > w[t].started ? (double)(pages_per_thread * iterations) / (w[t].finished - w[t].started) : 0.0);
  pthread_barrier_destroy(&start);
  free(w);
  return bad == 0 ? 0 : 1;
}
