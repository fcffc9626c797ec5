/* atomics: locked read-modify-write instructions raced by several threads.
 *
 *   atomics [-t THREADS (default 2)] [-n ITERS (default 100000)] [-r ROUNDS (default 1)]
 *
 * ROUNDS repeats the whole check (fresh counters, fresh threads) so that a rare lost update
 * shows up in one run; the report lines are those of the last round, or of the first round
 * that was not exact.
 *
 * The threads start together (a barrier) and each does ITERS rounds of, one after another:
 *   lock_incl       `lock incl` on a 32-bit counter
 *   cmpxchg_loop    read, then `lock cmpxchg` old -> old+1 until it succeeds
 *   xchg_spinlock   a spinlock taken with `xchg` (implicitly locked), released with a plain
 *                   store, protecting a plain (non-atomic) increment
 *   lock_xadd       `lock xadd` of 1; the old values it returns, summed over all threads,
 *                   must be 0 + 1 + ... + (THREADS*ITERS - 1) (each value handed out once)
 *   cmpxchg8b       (i386) a 64-bit counter incremented with `lock cmpxchg8b`, started just
 *                   below 2^32 so the carry into the high half is raced as well
 *   cmpxchg64       (x86_64) the same with a 64-bit `lock cmpxchg`
 *   cmpxchg16b      (x86_64) a 128-bit counter with `lock cmpxchg16b`, started just below 2^64
 *                   (only if CPUID has CX16; otherwise a "skipped" line, which then differs
 *                   from a native run on a CPU that has it)
 *   mutex           a pthread mutex protecting a plain increment (futex system calls)
 * Each line of stdout gives the total counted, the expected THREADS*ITERS and ok/WRONG.
 * stderr: the elapsed time. Exit status: 0 all exact, 1 any wrong, 2 usage error. */
#include <cpuid.h>
#include <pthread.h>
#include <unistd.h>

#include "common.h"

static const char *prog = "atomics";

/* ---- the instructions ---------------------------------------------------------------- */

static inline void lock_incl(volatile uint32_t *p) {
  __asm__ volatile("lock incl %0" : "+m"(*p) : : "memory", "cc");
}

/* Increments *p with a `lock cmpxchg` loop: eax holds the expected old value and receives
 * the current one when the exchange fails. */
static inline void cmpxchg_increment(volatile uint32_t *p) {
  uint32_t old = *p;
  for (;;) {
    uint32_t seen;
    __asm__ volatile("lock cmpxchgl %2, %1" : "=a"(seen), "+m"(*p) : "r"(old + 1), "0"(old) : "memory", "cc");
    if (seen == old) return;
    old = seen;
  }
}

/* xchg with a memory operand is locked without a prefix. */
static inline uint32_t xchg32(volatile uint32_t *p, uint32_t v) {
  __asm__ volatile("xchgl %0, %1" : "+r"(v), "+m"(*p) : : "memory");
  return v;
}

static inline void spin_lock(volatile uint32_t *lock) {
  while (xchg32(lock, 1) != 0)
    while (*lock != 0) __asm__ volatile("pause" ::: "memory");
}

static inline void spin_unlock(volatile uint32_t *lock) {
  __asm__ volatile("" ::: "memory"); /* x86 stores are release stores: a compiler barrier suffices */
  *lock = 0;
}

static inline uint32_t xadd32(volatile uint32_t *p, uint32_t v) {
  __asm__ volatile("lock xaddl %0, %1" : "+r"(v), "+m"(*p) : : "memory", "cc");
  return v; /* the old value */
}

#if defined(__i386__)
/* 64-bit increment on i386: `lock cmpxchg8b` compares edx:eax with the memory operand and
 * stores ecx:ebx if equal, else loads the current value into edx:eax. ZF tells which. */
static inline void cmpxchg8b_increment(volatile uint64_t *p) {
  uint32_t lo = (uint32_t)*p, hi = (uint32_t)(*p >> 32); /* may tear; the cmpxchg8b corrects it */
  for (;;) {
    uint64_t next = (((uint64_t)hi << 32) | lo) + 1;
    int ok;
    __asm__ volatile("lock cmpxchg8b %1"
                     : "=@ccz"(ok), "+m"(*p), "+a"(lo), "+d"(hi)
                     : "b"((uint32_t)next), "c"((uint32_t)(next >> 32))
                     : "memory");
    if (ok) return;
  }
}
#else
static inline void cmpxchg64_increment(volatile uint64_t *p) {
  uint64_t old = *p;
  for (;;) {
    uint64_t seen;
    __asm__ volatile("lock cmpxchgq %2, %1" : "=a"(seen), "+m"(*p) : "r"(old + 1), "0"(old) : "memory", "cc");
    if (seen == old) return;
    old = seen;
  }
}

/* A 16-byte aligned 128-bit counter for `lock cmpxchg16b` (rdx:rax vs memory, rcx:rbx new). */
struct u128 {
  _Alignas(16) uint64_t lo;
  uint64_t hi;
};

static inline void cmpxchg16b_increment(volatile struct u128 *p) {
  uint64_t lo = p->lo, hi = p->hi; /* may tear; the cmpxchg16b corrects it */
  for (;;) {
    uint64_t nlo = lo + 1, nhi = hi + (nlo == 0);
    int ok;
    __asm__ volatile("lock cmpxchg16b %1"
                     : "=@ccz"(ok), "+m"(*p), "+a"(lo), "+d"(hi)
                     : "b"(nlo), "c"(nhi)
                     : "memory");
    if (ok) return;
  }
}

static int cpu_has_cx16(void) {
  unsigned a, b, c, d;
  return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_CMPXCHG16B) != 0;
}
#endif

/* ---- the shared counters ------------------------------------------------------------- */

/* 64-bit counters start here, so their count crosses 2^32 (and the 128-bit one 2^64). */
#define START64 (0xFFFFFFFFull - 1000u)

static struct {
  _Alignas(64) volatile uint32_t incl;
  _Alignas(64) volatile uint32_t cmpxchg;
  _Alignas(64) volatile uint32_t spinlock;
  uint32_t spin_protected; /* plain; guarded by spinlock */
  _Alignas(64) volatile uint32_t xadd;
  _Alignas(64) volatile uint64_t wide; /* cmpxchg8b (i386) or cmpxchg64 (x86_64) */
#if defined(__x86_64__)
  _Alignas(64) volatile struct u128 c16;
#endif
  _Alignas(64) pthread_mutex_t mutex;
  unsigned long long mutex_protected; /* plain; guarded by mutex */
} counters = {.wide = START64, .mutex = PTHREAD_MUTEX_INITIALIZER};

struct worker {
  pthread_t thread;
  unsigned long iters;
  int use_cx16;
  pthread_barrier_t *start;
  unsigned long long xadd_sum; /* sum of the old values this thread's xadds returned */
};

static void *run_worker(void *arg) {
  struct worker *w = arg;
  pthread_barrier_wait(w->start);
  for (unsigned long i = 0; i < w->iters; i++) {
    lock_incl(&counters.incl);
    cmpxchg_increment(&counters.cmpxchg);
    spin_lock(&counters.spinlock);
    counters.spin_protected++;
    spin_unlock(&counters.spinlock);
    w->xadd_sum += xadd32(&counters.xadd, 1);
#if defined(__i386__)
    cmpxchg8b_increment(&counters.wide);
#else
    cmpxchg64_increment(&counters.wide);
    if (w->use_cx16) cmpxchg16b_increment(&counters.c16);
#endif
    pthread_mutex_lock(&counters.mutex);
    counters.mutex_protected++;
    pthread_mutex_unlock(&counters.mutex);
  }
  return NULL;
}

static int report(const char *name, unsigned long long total, unsigned long long expected) {
  int ok = total == expected;
  printf("%-14s total=%llu expected=%llu %s\n", name, total, expected, ok ? "ok" : "WRONG");
  return ok;
}

/* One round: fresh counters, THREADS new threads, ITERS each; prints the report when asked
 * (or when a total is wrong) and returns whether every total was exact. */
static int run_round(unsigned threads, unsigned long iters, int use_cx16, int print_always, double *elapsed) {
  counters.incl = counters.cmpxchg = counters.spinlock = counters.spin_protected = counters.xadd = 0;
  counters.wide = START64;
  counters.mutex_protected = 0;
#if defined(__x86_64__)
  counters.c16.lo = 0xFFFFFFFFFFFFFFFFull - 1000u;
  counters.c16.hi = 0;
#endif
  struct worker *w = calloc(threads, sizeof *w);
  if (w == NULL) die_errno(prog, "calloc", errno);
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, threads + 1);
  for (unsigned t = 0; t < threads; t++) {
    w[t] = (struct worker){.iters = iters, .use_cx16 = use_cx16, .start = &start};
    int err = pthread_create(&w[t].thread, NULL, run_worker, &w[t]);
    if (err != 0) die_errno(prog, "pthread_create", err);
  }
  pthread_barrier_wait(&start);
  double t0 = now_seconds();
  unsigned long long xadd_sum = 0;
  for (unsigned t = 0; t < threads; t++) {
    pthread_join(w[t].thread, NULL);
    xadd_sum += w[t].xadd_sum;
  }
  *elapsed += now_seconds() - t0;
  pthread_barrier_destroy(&start);
  free(w);

  const unsigned long long n = (unsigned long long)threads * iters;
#if defined(__x86_64__)
  const unsigned __int128 c16 = ((unsigned __int128)counters.c16.hi << 64) | counters.c16.lo;
#endif
  int ok = counters.incl == n && counters.cmpxchg == n && counters.spin_protected == n && counters.xadd == n &&
           xadd_sum == n * (n - 1) / 2 && counters.wide - START64 == n && counters.mutex_protected == n;
#if defined(__x86_64__)
  if (use_cx16) ok = ok && (unsigned long long)(c16 - (0xFFFFFFFFFFFFFFFFull - 1000u)) == n;
#endif
  if (!ok || print_always) {
    report("lock_incl", counters.incl, n);
    report("cmpxchg_loop", counters.cmpxchg, n);
    report("xchg_spinlock", counters.spin_protected, n);
    report("lock_xadd", counters.xadd, n);
    report("xadd_old_sum", xadd_sum, n * (n - 1) / 2);
#if defined(__i386__)
    report("cmpxchg8b", counters.wide - START64, n);
#else
    report("cmpxchg64", counters.wide - START64, n);
    if (use_cx16) {
      report("cmpxchg16b", (unsigned long long)(c16 - (0xFFFFFFFFFFFFFFFFull - 1000u)), n);
      /* The carry must have reached the high half exactly once. */
      report("cmpxchg16b_hi", counters.c16.hi, n > 1000 ? 1 : 0);
    } else {
      printf("cmpxchg16b     skipped (CPUID reports no CX16)\n");
    }
#endif
    report("mutex", counters.mutex_protected, n);
  }
  return ok;
}

int main(int argc, char **argv) {
  unsigned threads = 2;
  unsigned long iters = 100000, rounds = 1;
  int opt;
  while ((opt = getopt(argc, argv, "t:n:r:")) != -1) {
    switch (opt) {
      case 't': threads = (unsigned)parse_count(prog, 't', optarg, 1024); break;
      case 'n': iters = parse_count(prog, 'n', optarg, 4000000); break;
      case 'r': rounds = parse_count(prog, 'r', optarg, 1000000); break;
      default: fprintf(stderr, "usage: %s [-t THREADS] [-n ITERS] [-r ROUNDS]\n", prog); return 2;
    }
  }
  if (optind != argc) {
    fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
    return 2;
  }
  /* The 32-bit counters must not wrap, nor the 64-bit sum of the xadd old values. */
  if ((unsigned long long)threads * iters > 0x7FFFFFFFull) {
    fprintf(stderr, "%s: THREADS * ITERS must stay below 2^31\n", prog);
    return 2;
  }
  int use_cx16 = 0;
#if defined(__x86_64__)
  use_cx16 = cpu_has_cx16();
#endif
  printf("atomics %s threads=%u iters=%lu rounds=%lu\n", GUEST_ARCH, threads, iters, rounds);
  double elapsed = 0;
  unsigned long exact = 0;
  for (unsigned long r = 0; r < rounds; r++) {
    if (!run_round(threads, iters, use_cx16, r + 1 == rounds, &elapsed)) {
      printf("round %lu of %lu NOT EXACT\n", r + 1, rounds);
      break;
    }
    exact++;
  }
  const int ok = exact == rounds;
  printf("%s (%lu of %lu rounds)\n", ok ? "all exact" : "NOT EXACT", exact, rounds);
  fprintf(stderr, "atomics: %s, %.3f s\n", GUEST_ARCH, elapsed);
  return ok ? 0 : 1;
}
