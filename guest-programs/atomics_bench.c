/* atomics_bench: what locking guests do, timed per operation (a benchmark guest, not a test).
 *
 *   atomics_bench -w WORKLOAD [-t THREADS (default 1)] [-n OPS_PER_THREAD (default 200000)]
 *
 * Workloads (every thread does OPS operations; the threads start together at a barrier; with
 * one thread the main thread does them, so the process stays single-threaded):
 *   add_private   `lock addq $1` (i386: `lock addl`) on a counter of its own (own cache line)
 *   add_shared    the same on one counter shared by every thread
 *   mutex         pthread_mutex_lock, a plain increment, pthread_mutex_unlock on one mutex
 *   malloc        malloc and free: 64 live blocks of 16..1040 bytes per thread, the oldest
 *                 freed and a new one allocated each operation
 *   condvar       a token passed round a ring of the threads through one mutex and one
 *                 condition variable (pthread_cond_wait / pthread_cond_broadcast): one
 *                 operation is one hand-over (with one thread, it hands to itself)
 *   all           each of the above in turn
 *
 * stdout, one line per workload:
 *   atomics_bench WORKLOAD threads=T ops=N ns_per_op=X cpu_ns_per_op=Y check=ok|WRONG
 * where ns_per_op is the wall time of the timed phase (first thread's start to last thread's
 * end, each read on the thread itself) divided by the operations one thread
 * did (so with perfect scaling it stays flat as threads are added), and check says whether
 * the shared totals are exact. cpu_ns_per_op is the CPU time the threads spent in the timed
 * phase (CLOCK_THREAD_CPUTIME_ID, summed) per operation of all threads: on a loaded host it
 * says what the work costs when the wall time mostly says how often the threads ran.
 * Exit status: 0 all exact, 1 a total wrong, 2 usage error. */
#include <pthread.h>
#include <unistd.h>

#include "common.h"

static const char *prog = "atomics_bench";

#define MAX_THREADS 64

static struct {
  _Alignas(64) volatile unsigned long shared;
  _Alignas(64) pthread_mutex_t mutex;
  unsigned long mutex_protected;
  _Alignas(64) pthread_mutex_t ring_mutex;
  pthread_cond_t ring_cond;
  unsigned long turn;      /* hand-overs so far; the thread turn % T holds the token */
  unsigned long handed;    /* counted by whoever holds the token */
} g = {.mutex = PTHREAD_MUTEX_INITIALIZER, .ring_mutex = PTHREAD_MUTEX_INITIALIZER, .ring_cond = PTHREAD_COND_INITIALIZER};

struct worker {
  _Alignas(64) volatile unsigned long counter;  /* add_private */
  pthread_t thread;
  unsigned id, threads;
  unsigned long ops;
  int workload;
  pthread_barrier_t *start;
  double t_start, t_end; /* this thread's timed phase */
  double cpu;            /* CPU time this thread spent in it */
};

enum { W_ADD_PRIVATE, W_ADD_SHARED, W_MUTEX, W_MALLOC, W_CONDVAR, W_COUNT };
static const char *names[W_COUNT] = {"add_private", "add_shared", "mutex", "malloc", "condvar"};

static inline void lock_add(volatile unsigned long *p) {
#if defined(__x86_64__)
  __asm__ volatile("lock addq $1, %0" : "+m"(*p) : : "memory", "cc");
#else
  __asm__ volatile("lock addl $1, %0" : "+m"(*p) : : "memory", "cc");
#endif
}

static unsigned long checksum_sink;

static double thread_cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *run_worker(void *arg) {
  struct worker *w = arg;
  pthread_barrier_wait(w->start);
  w->t_start = now_seconds();
  const double cpu0 = thread_cpu_seconds();
  switch (w->workload) {
    case W_ADD_PRIVATE:
      for (unsigned long i = 0; i < w->ops; i++) lock_add(&w->counter);
      break;
    case W_ADD_SHARED:
      for (unsigned long i = 0; i < w->ops; i++) lock_add(&g.shared);
      break;
    case W_MUTEX:
      for (unsigned long i = 0; i < w->ops; i++) {
        pthread_mutex_lock(&g.mutex);
        g.mutex_protected++;
        pthread_mutex_unlock(&g.mutex);
      }
      break;
    case W_MALLOC: {
      enum { LIVE = 64 };
      void *live[LIVE] = {0};
      unsigned long sum = 0;
      for (unsigned long i = 0; i < w->ops; i++) {
        const unsigned slot = i % LIVE;
        free(live[slot]);
        const size_t size = 16 + ((i * 2654435761u) >> 7) % 1025;
        unsigned char *p = malloc(size);
        if (p == NULL) die_errno(prog, "malloc", ENOMEM);
        p[0] = (unsigned char)i;
        sum += p[0];
        live[slot] = p;
      }
      for (unsigned s = 0; s < LIVE; s++) free(live[s]);
      __atomic_fetch_add(&checksum_sink, sum, __ATOMIC_RELAXED);
      break;
    }
    case W_CONDVAR: {
      const unsigned long total = w->ops * w->threads;
      pthread_mutex_lock(&g.ring_mutex);
      for (;;) {
        while (g.turn < total && g.turn % w->threads != w->id) pthread_cond_wait(&g.ring_cond, &g.ring_mutex);
        if (g.turn >= total) break;
        g.handed++;
        g.turn++;
        pthread_cond_broadcast(&g.ring_cond);
      }
      pthread_mutex_unlock(&g.ring_mutex);
      break;
    }
  }
  w->t_end = now_seconds();
  w->cpu = thread_cpu_seconds() - cpu0;
  return NULL;
}

/* One workload with THREADS threads; prints its line, returns whether the totals are exact. */
static int run_workload(int workload, unsigned threads, unsigned long ops) {
  static struct worker w[MAX_THREADS];
  pthread_barrier_t start;
  g.shared = 0;
  g.mutex_protected = 0;
  g.turn = g.handed = 0;
  /* One thread: the main thread does the work (a single-threaded process, one vCPU). */
  const unsigned spawned = threads > 1 ? threads : 0;
  pthread_barrier_init(&start, NULL, spawned + 1);
  for (unsigned t = 0; t < threads; t++) {
    w[t].counter = 0;
    w[t].id = t;
    w[t].threads = threads;
    w[t].ops = ops;
    w[t].workload = workload;
    w[t].start = &start;
    if (spawned == 0) continue;
    int err = pthread_create(&w[t].thread, NULL, run_worker, &w[t]);
    if (err != 0) die_errno(prog, "pthread_create", err);
  }
  if (spawned == 0) run_worker(&w[0]); /* its barrier wait is the only one */
  else pthread_barrier_wait(&start);
  double first = 0, last = 0, cpu = 0;
  for (unsigned t = 0; t < threads; t++) {
    cpu += w[t].cpu;
    if (spawned) pthread_join(w[t].thread, NULL);
    if (t == 0 || w[t].t_start < first) first = w[t].t_start;
    if (t == 0 || w[t].t_end > last) last = w[t].t_end;
  }
  const double elapsed = last - first; /* from the first thread's start to the last one's end */
  pthread_barrier_destroy(&start);

  const unsigned long n = ops * threads;
  int ok = 1;
  switch (workload) {
    case W_ADD_PRIVATE:
      for (unsigned t = 0; t < threads; t++) ok = ok && w[t].counter == ops;
      break;
    case W_ADD_SHARED: ok = g.shared == n; break;
    case W_MUTEX: ok = g.mutex_protected == n; break;
    case W_CONDVAR: ok = g.handed == n && g.turn == n; break;
    default: break;
  }
  printf("%s %s threads=%u ops=%lu ns_per_op=%.1f cpu_ns_per_op=%.1f check=%s\n", prog, names[workload], threads, ops,
         elapsed * 1e9 / (double)ops, cpu * 1e9 / ((double)ops * threads), ok ? "ok" : "WRONG");
  fflush(stdout);
  return ok;
}

int main(int argc, char **argv) {
  unsigned threads = 1;
  unsigned long ops = 200000;
  int workload = -1, all = 0;
  int opt;
  while ((opt = getopt(argc, argv, "w:t:n:")) != -1) {
    switch (opt) {
      case 'w':
        if (strcmp(optarg, "all") == 0) {
          all = 1;
          break;
        }
        for (int i = 0; i < W_COUNT; i++)
          if (strcmp(optarg, names[i]) == 0) workload = i;
        if (workload < 0) {
          fprintf(stderr, "%s: unknown workload '%s'\n", prog, optarg);
          return 2;
        }
        break;
      case 't': threads = (unsigned)parse_count(prog, 't', optarg, MAX_THREADS); break;
      case 'n': ops = parse_count(prog, 'n', optarg, 1000000000); break;
      default:
        fprintf(stderr, "usage: %s -w add_private|add_shared|mutex|malloc|condvar|all [-t THREADS] [-n OPS]\n", prog);
        return 2;
    }
  }
  if (workload < 0 && !all) {
    fprintf(stderr, "usage: %s -w add_private|add_shared|mutex|malloc|condvar|all [-t THREADS] [-n OPS]\n", prog);
    return 2;
  }
  int ok = 1;
  for (int i = 0; i < W_COUNT; i++)
    if (all || i == workload) ok = run_workload(i, threads, ops) && ok;
  return ok ? 0 : 1;
}
