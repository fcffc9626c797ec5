/* mmap_churn: one thread changes the address space all the time while the others fault in
 * and check their own memory (TLB shootdowns, VMA splits and page-table teardown racing
 * with faults elsewhere in the same process).
 *
 *   mmap_churn [-t THREADS (default 3)] [-i ITERS (default 2000)]
 *
 * Thread 0, the churner, each of ITERS iterations, on a fresh region of n+2 pages
 * (n = 1 + iteration % 8):
 *   mmap it read-write, write a page-unique pattern into every page;
 *   mprotect it read-only and check every page;
 *   mprotect the middle n pages PROT_NONE, then read-write again, check nothing was lost;
 *   munmap page 1 (splits the mapping), check pages 0 and n+1;
 *   mmap MAP_FIXED a fresh page into the hole, check it reads zero, write and check it;
 *   munmap the whole region.
 * Threads 1..THREADS-1, the workers, each pass: mmap a private 1 MiB region, write a
 * page-unique pattern (thread, pass, page) at four places in every page, check the whole
 * region twice, munmap. A worker does at least 1 + ITERS/64 passes and keeps going until the
 * churner has finished.
 *
 * stdout (deterministic): the churner's operation counts, the workers' minimum passes, and
 *   "ok" or the number of mismatching words. stderr: time and the passes each worker did.
 * Exit status: 0 ok, 1 mismatch, 2 usage or system-call error. */
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common.h"

static const char *prog = "mmap_churn";

#define WORKER_PAGES 256u /* 1 MiB per worker region */
#define WORDS_PER_PAGE (GUEST_PAGE_SIZE / sizeof(uint32_t))

static unsigned long iters = 2000;
static unsigned long min_passes;
static pthread_barrier_t start;
static int churn_done;                  /* __atomic */
static unsigned long long mismatches;   /* __atomic */

/* The churner's operation counts (only thread 0 writes them). */
static struct {
  unsigned long long mmaps, munmaps, mprotects, pages_written, pages_checked;
} churn;

static void *map_pages(void *at, size_t pages, int prot, int flags) {
  void *p = mmap(at, pages * GUEST_PAGE_SIZE, prot, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
  if (p == MAP_FAILED) die_errno(prog, "mmap", errno);
  churn.mmaps++;
  return p;
}

static void unmap_pages(void *p, size_t pages) {
  if (munmap(p, pages * GUEST_PAGE_SIZE) != 0) die_errno(prog, "munmap", errno);
  churn.munmaps++;
}

static void protect_pages(void *p, size_t pages, int prot) {
  if (mprotect(p, pages * GUEST_PAGE_SIZE, prot) != 0) die_errno(prog, "mprotect", errno);
  churn.mprotects++;
}

/* The churner's page contents: the first and last word of the page, and one in the middle. */
static void churn_write(uint32_t *page, uint32_t it, uint32_t index, uint32_t generation) {
  page[0] = page_pattern(it, index, generation);
  page[WORDS_PER_PAGE / 2] = page_pattern(it, index, generation + 100);
  page[WORDS_PER_PAGE - 1] = page_pattern(it, index, generation + 200);
  churn.pages_written++;
}

static void churn_check(const uint32_t *page, uint32_t it, uint32_t index, uint32_t generation) {
  unsigned bad = (page[0] != page_pattern(it, index, generation)) +
                 (page[WORDS_PER_PAGE / 2] != page_pattern(it, index, generation + 100)) +
                 (page[WORDS_PER_PAGE - 1] != page_pattern(it, index, generation + 200)) +
                 (page[1] != 0); /* never written */
  if (bad != 0) __atomic_add_fetch(&mismatches, bad, __ATOMIC_RELAXED);
  churn.pages_checked++;
}

#define PAGE(base, i) ((uint32_t *)((char *)(base) + (size_t)(i) * GUEST_PAGE_SIZE))

static void churner(void) {
  for (unsigned long i = 0; i < iters; i++) {
    const uint32_t it = (uint32_t)i;
    const size_t n = 1 + i % 8, pages = n + 2;
    char *r = map_pages(NULL, pages, PROT_READ | PROT_WRITE, 0);
    for (size_t p = 0; p < pages; p++) churn_write(PAGE(r, p), it, (uint32_t)p, 0);

    protect_pages(r, pages, PROT_READ);
    for (size_t p = 0; p < pages; p++) churn_check(PAGE(r, p), it, (uint32_t)p, 0);

    protect_pages(r + GUEST_PAGE_SIZE, n, PROT_NONE);
    protect_pages(r, pages, PROT_READ | PROT_WRITE);
    for (size_t p = 0; p < pages; p++) churn_check(PAGE(r, p), it, (uint32_t)p, 0);

    unmap_pages(r + GUEST_PAGE_SIZE, 1);
    churn_check(PAGE(r, 0), it, 0, 0);
    churn_check(PAGE(r, n + 1), it, (uint32_t)(n + 1), 0);

    uint32_t *hole = map_pages(r + GUEST_PAGE_SIZE, 1, PROT_READ | PROT_WRITE, MAP_FIXED);
    if ((char *)hole != r + GUEST_PAGE_SIZE) die_errno(prog, "mmap MAP_FIXED moved", EINVAL);
    if (hole[0] != 0 || hole[WORDS_PER_PAGE / 2] != 0 || hole[WORDS_PER_PAGE - 1] != 0)
      __atomic_add_fetch(&mismatches, 1, __ATOMIC_RELAXED);
    churn_write(hole, it, 1, 1);
    churn_check(hole, it, 1, 1);
    unmap_pages(r, pages);
  }
}

static void *run_thread(void *arg) {
  const unsigned id = (unsigned)(uintptr_t)arg;
  pthread_barrier_wait(&start);
  if (id == 0) {
    churner();
    __atomic_store_n(&churn_done, 1, __ATOMIC_RELEASE);
    return NULL;
  }
  unsigned long pass = 0;
  unsigned long long bad = 0;
  while (pass < min_passes || !__atomic_load_n(&churn_done, __ATOMIC_ACQUIRE)) {
    uint32_t *r = mmap(NULL, WORKER_PAGES * GUEST_PAGE_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (r == MAP_FAILED) die_errno(prog, "mmap", errno);
    for (uint32_t p = 0; p < WORKER_PAGES; p++)
      for (uint32_t k = 0; k < 4; k++)
        r[p * WORDS_PER_PAGE + k * (WORDS_PER_PAGE / 4)] = page_pattern(id, (uint32_t)pass, p * 4 + k);
    for (int round = 0; round < 2; round++)
      for (uint32_t p = 0; p < WORKER_PAGES; p++) {
        for (uint32_t k = 0; k < 4; k++)
          bad += r[p * WORDS_PER_PAGE + k * (WORDS_PER_PAGE / 4)] != page_pattern(id, (uint32_t)pass, p * 4 + k);
        bad += r[p * WORDS_PER_PAGE + 1] != 0; /* never written */
      }
    if (munmap(r, WORKER_PAGES * GUEST_PAGE_SIZE) != 0) die_errno(prog, "munmap", errno);
    pass++;
  }
  if (bad != 0) __atomic_add_fetch(&mismatches, bad, __ATOMIC_RELAXED);
  return (void *)(uintptr_t)pass;
}

int main(int argc, char **argv) {
  unsigned threads = 3;
  int opt;
  while ((opt = getopt(argc, argv, "t:i:")) != -1) {
    switch (opt) {
      case 't': threads = (unsigned)parse_count(prog, 't', optarg, 1024); break;
      case 'i': iters = parse_count(prog, 'i', optarg, 100000000); break;
      default: fprintf(stderr, "usage: %s [-t THREADS] [-i ITERS]\n", prog); return 2;
    }
  }
  if (optind != argc) {
    fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
    return 2;
  }
  min_passes = 1 + iters / 64;

  pthread_t *tids = calloc(threads, sizeof *tids);
  if (tids == NULL) die_errno(prog, "calloc", errno);
  pthread_barrier_init(&start, NULL, threads + 1);
  for (unsigned t = 0; t < threads; t++) {
    int err = pthread_create(&tids[t], NULL, run_thread, (void *)(uintptr_t)t);
    if (err != 0) die_errno(prog, "pthread_create", err);
  }
  pthread_barrier_wait(&start);
  double t0 = now_seconds();
  for (unsigned t = 0; t < threads; t++) {
    void *ret;
    pthread_join(tids[t], &ret);
    if (t > 0) fprintf(stderr, "mmap_churn: worker %u did %lu passes\n", t, (unsigned long)(uintptr_t)ret);
  }
  double elapsed = now_seconds() - t0;

  printf("mmap_churn threads=%u iters=%lu\n", threads, iters);
  printf("churner mmaps=%llu munmaps=%llu mprotects=%llu pages_written=%llu pages_checked=%llu\n",
         churn.mmaps, churn.munmaps, churn.mprotects, churn.pages_written, churn.pages_checked);
  printf("workers=%u region_pages=%u min_passes=%lu\n", threads - 1, WORKER_PAGES, min_passes);
  if (mismatches == 0)
    printf("ok\n");
  else
    printf("mismatches=%llu FAILED\n", mismatches);
  fprintf(stderr, "mmap_churn: %s, %.3f s\n", GUEST_ARCH, elapsed);
  pthread_barrier_destroy(&start);
  free(tids);
  return mismatches == 0 ? 0 : 1;
}
