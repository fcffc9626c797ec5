/* locked_ops: every locked read-modify-write instruction at every operand width, raced by
 * several threads, with exact expected results (guest atomics as host atomics in emu).
 *
 *   locked_ops [-t THREADS (default 4, at most 8)] [-n ITERS (default 20000)] [-m MIB] [-f]
 *
 * The threads start together and each runs ITERS rounds of, per width (8, 16, 32 and, on
 * x86_64, 64 bits) and per placement of the operands:
 *   arith      lock add 3, lock sub 1, lock inc, lock dec, lock xadd 5, stc+lock adc 2,
 *              stc+lock sbb 1 on one shared counter: +8 per round, exact modulo 2^width
 *   cancel     lock xor with the thread's own value and lock not, each twice, on one shared
 *              word, lock neg twice on another: both must end as they started (xor and not
 *              commute, neg with itself; a lost update leaves a residue)
 *   bits       thread t owns bit t of a shared word: lock or / lock and (and, from 16 bits,
 *              lock bts / btc / btc / btr, whose CF must be the bit's old value) set and clear
 *              it, and a plain read must always see the thread's own bit as it left it;
 *              everyone also flips bit 15 twice with lock btc $15 (it must end clear)
 *   xchglock   a spinlock taken with xchg, released with a plain store, around a plain
 *              increment
 *   cmpxchg    a counter incremented with a lock cmpxchg loop
 *   lostunlock a spinlock taken with lock cmpxchg (which keeps failing while another thread
 *              holds it) and released with a plain mov: a failed cmpxchg that wrote the old
 *              value back after the release would bring the lock back for ever (a lost
 *              unlock; this program then reports it instead of hanging)
 * and, for 64-bit values on both architectures, lock cmpxchg8b, and lock cmpxchg16b on x86_64;
 * then 32-bit arith, cmpxchg and xchglock on operands at absolute addresses (no register).
 * Placements: "aligned" and "odd" (misaligned inside a cache line) operands reached through
 * a pointer (a base register), "global" ones at fixed addresses (RIP-relative on x86_64,
 * PIC-relative on i386), "split" ones crossing a cache line and "page" ones crossing a page
 * (emu runs those two under its exclusive gate; ITERS/1000 rounds: natively they are split
 * locks, which the kernel may throttle).
 *
 * -m MIB: instead, a region of MIB MiB holding one 64-bit counter per page; each thread does
 *   ITERS rounds of lock xadd, lock add, lock cmpxchg and xchg-based updates on pages picked
 *   at random (run it under emu with --mem smaller than MIB and --swap: the counters are
 *   swapped out and in under the atomics); the total must be exact.
 * -f: instead, locked instructions that fault: on an unmapped page (SIGSEGV, SEGV_MAPERR)
 *   and on a read-only one (SEGV_ACCERR), each first run many times on a good address (so
 *   emu has given the instruction its host-atomic hook); the handler checks si_addr, and the
 *   read-only word must be unchanged.
 *
 * stdout: one deterministic line per check ("ok" or what went wrong); exit 0 when all pass,
 * 1 otherwise, 2 on usage errors. */
#define _GNU_SOURCE
#include <cpuid.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common.h"

static const char *prog = "locked_ops";
static unsigned nthreads = 4;
static unsigned long iters = 20000;
#if defined(__x86_64__)
static int use_cx16;
#endif
static pthread_barrier_t start_barrier;
static volatile unsigned long problems; /* counted by every thread with lock incq/incl */

static void problem(void) { __atomic_fetch_add(&problems, 1, __ATOMIC_SEQ_CST); }

/* ---- one width's operations on operands at *a (arith), *c (cancel), *b (bits), *l (lock),
 * *k (protected counter), *x (cmpxchg counter), *u (lost-unlock lock), *v (its counter) --- */

#define STR(x) #x
#define XSTR(x) STR(x)

#define DEFINE_WIDTH(T, SUF, RC)                                                                  \
  static inline __attribute__((always_inline)) void arith_##SUF(volatile T *a) {                 \
    T five = 5;                                                                                   \
    __asm__ volatile("lock add" #SUF " $3, %0\n\t"                                               \
                     "lock sub" #SUF " $1, %0\n\t"                                               \
                     "lock inc" #SUF " %0\n\t"                                                    \
                     "lock dec" #SUF " %0\n\t"                                                    \
                     "lock xadd" #SUF " %1, %0\n\t"                                              \
                     "stc\n\t"                                                                    \
                     "lock adc" #SUF " $2, %0\n\t"                                               \
                     "stc\n\t"                                                                    \
                     "lock sbb" #SUF " $1, %0"                                                   \
                     : "+m"(*a), "+" RC(five)                                                     \
                     :                                                                            \
                     : "cc", "memory");                                                           \
  }                                                                                               \
  /* xor and not are both xors (they commute across threads); neg only with neg. */          \
  static inline __attribute__((always_inline)) void cancel_##SUF(volatile T *c, volatile T *g, T mine) { \
    __asm__ volatile("lock xor" #SUF " %2, %0\n\t"                                               \
                     "lock not" #SUF " %0\n\t"                                                    \
                     "lock neg" #SUF " %1\n\t"                                                    \
                     "lock xor" #SUF " %2, %0\n\t"                                               \
                     "lock neg" #SUF " %1\n\t"                                                    \
                     "lock not" #SUF " %0"                                                        \
                     : "+m"(*c), "+m"(*g)                                                         \
                     : RC(mine)                                                                   \
                     : "cc", "memory");                                                           \
  }                                                                                               \
  static inline __attribute__((always_inline)) void bits_or_and_##SUF(volatile T *b, unsigned t) { \
    T bit = (T)(1u << t), mask = (T)~bit;                                                         \
    __asm__ volatile("lock or" #SUF " %1, %0" : "+m"(*b) : RC(bit) : "cc", "memory");            \
    if (!((*b >> t) & 1)) problem();                                                              \
    __asm__ volatile("lock and" #SUF " %1, %0" : "+m"(*b) : RC(mask) : "cc", "memory");          \
    if ((*b >> t) & 1) problem();                                                                 \
  }                                                                                               \
  static inline __attribute__((always_inline)) T xchg_##SUF(volatile T *l, T v) {                \
    __asm__ volatile("xchg" #SUF " %1, %0" : "+m"(*l), "+" RC(v) : : "memory");                  \
    return v;                                                                                     \
  }                                                                                               \
  static inline __attribute__((always_inline)) void xchglock_##SUF(volatile T *l, volatile T *k) { \
    while (xchg_##SUF(l, 1) != 0)                                                                 \
      while (*l != 0) __asm__ volatile("pause" ::: "memory");                                     \
    *k = (T)(*k + 1);                                                                             \
    __asm__ volatile("" ::: "memory");                                                            \
    *l = 0; /* a plain store releases */                                                          \
  }                                                                                               \
  static inline __attribute__((always_inline)) int cas_##SUF(volatile T *p, T *expected, T desired) { \
    T seen = *expected;                                                                           \
    int ok;                                                                                       \
    __asm__ volatile("lock cmpxchg" #SUF " %3, %1"                                               \
                     : "=@ccz"(ok), "+m"(*p), "+a"(seen)                                          \
                     : RC(desired)                                                                \
                     : "memory");                                                                 \
    *expected = seen;                                                                             \
    return ok;                                                                                    \
  }                                                                                               \
  static inline __attribute__((always_inline)) void cmpxchg_inc_##SUF(volatile T *x) {           \
    T old = *x;                                                                                   \
    while (!cas_##SUF(x, &old, (T)(old + 1))) {                                                   \
    }                                                                                             \
  }                                                                                               \
  static inline __attribute__((always_inline)) void lostunlock_##SUF(volatile T *u, volatile T *v) { \
    unsigned long spins = 0;                                                                      \
    for (;;) {                                                                                    \
      T expected = 0;                                                                             \
      if (cas_##SUF(u, &expected, 1)) break;                                                      \
      if (++spins > (1ul << 27)) { /* seconds of failing: the release was lost */                \
        printf("lostunlock " #SUF ": LOST UNLOCK (lock still %lu)\n", (unsigned long)*u);         \
        fflush(stdout);                                                                           \
        _exit(1);                                                                                 \
      }                                                                                           \
    }                                                                                             \
    *v = (T)(*v + 1);                                                                             \
    __asm__ volatile("" ::: "memory");                                                            \
    *u = 0; /* a plain mov releases, racing the others' failing lock cmpxchg */                   \
  }

/* 8-bit register operands need "q" on i386 (al, bl, cl, dl). */
DEFINE_WIDTH(uint8_t, b, "q")
DEFINE_WIDTH(uint16_t, w, "r")
DEFINE_WIDTH(uint32_t, l, "r")
#if defined(__x86_64__)
DEFINE_WIDTH(uint64_t, q, "r")
#endif

/* bts/btc/btc/btr of bit t: CF must be the bit's value before each (0, 1, 0, 1). */
#define DEFINE_BITS(T, SUF)                                                                       \
  static inline __attribute__((always_inline)) void bits_bt_##SUF(volatile T *b, unsigned t) {    \
    T idx = (T)t;                                                                                 \
    int cf;                                                                                       \
    __asm__ volatile("lock bts" #SUF " %2, %1" : "=@ccc"(cf), "+m"(*b) : "r"(idx) : "memory");   \
    if (cf != 0) problem();                                                                       \
    __asm__ volatile("lock btc" #SUF " %2, %1" : "=@ccc"(cf), "+m"(*b) : "r"(idx) : "memory");   \
    if (cf != 1) problem();                                                                       \
    /* the immediate form, on bit 15 (nobody's): twice by everyone, it ends clear */             \
    __asm__ volatile("lock btc" #SUF " $15, %0" : "+m"(*b) : : "cc", "memory");                   \
    __asm__ volatile("lock btc" #SUF " $15, %0" : "+m"(*b) : : "cc", "memory");                   \
    __asm__ volatile("lock btc" #SUF " %2, %1" : "=@ccc"(cf), "+m"(*b) : "r"(idx) : "memory");   \
    if (cf != 0) problem();                                                                       \
    __asm__ volatile("lock btr" #SUF " %2, %1" : "=@ccc"(cf), "+m"(*b) : "r"(idx) : "memory");   \
    if (cf != 1) problem();                                                                       \
  }
DEFINE_BITS(uint16_t, w)
DEFINE_BITS(uint32_t, l)
#if defined(__x86_64__)
DEFINE_BITS(uint64_t, q)
#endif

/* 64-bit values with cmpxchg8b (both arches) and 128-bit ones with cmpxchg16b. */
static inline __attribute__((always_inline)) void cmpxchg8b_inc(volatile uint64_t *p) {
  uint32_t lo = (uint32_t)*p, hi = (uint32_t)(*p >> 32);
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
#if defined(__x86_64__)
struct u128 {
  _Alignas(16) uint64_t lo;
  uint64_t hi;
};
static inline __attribute__((always_inline)) void cmpxchg16b_inc(volatile struct u128 *p) {
  uint64_t lo = p->lo, hi = p->hi;
  for (;;) {
    uint64_t nlo = lo + 1, nhi = hi + (nlo == 0);
    int ok;
    __asm__ volatile("lock cmpxchg16b %1" : "=@ccz"(ok), "+m"(*p), "+a"(lo), "+d"(hi) : "b"(nlo), "c"(nhi) : "memory");
    if (ok) return;
  }
}
#endif

/* ---- the operands of one width, and where they are ------------------------------------ */

#define SLOTS 9 /* arith cancel bits lock lockcount cmpxchg ulock ucount neg */
struct set {
  volatile void *slot[SLOTS];
};
enum { S_ARITH, S_CANCEL, S_BITS, S_LOCK, S_KOUNT, S_CMPXCHG, S_ULOCK, S_UCOUNT, S_NEG };

/* Globals at fixed addresses, one cache line each (the "global" placement). */
struct globals8 { _Alignas(64) uint8_t v[SLOTS][64]; };
static struct globals8 g8, g16, g32, g64;
static volatile uint64_t g_wide;
#if defined(__x86_64__)
static volatile struct u128 g_c16;
#endif

#define CANCEL_START 0x5au

/* Every operation of one width on one set, ITERS times (the caller picks the placement). The
 * "global" placement passes the globals' own addresses, so with the body inlined the
 * compiler addresses them RIP-relative (x86_64) or absolute (i386). */
#define RUN_WIDTH(T, SUF, BITS_BT, SET, tid, n)                                                  \
  do {                                                                                            \
    volatile T *a_ = (volatile T *)(SET)[S_ARITH], *c_ = (volatile T *)(SET)[S_CANCEL];          \
    volatile T *b_ = (volatile T *)(SET)[S_BITS], *l_ = (volatile T *)(SET)[S_LOCK];             \
    volatile T *k_ = (volatile T *)(SET)[S_KOUNT], *x_ = (volatile T *)(SET)[S_CMPXCHG];         \
    volatile T *u_ = (volatile T *)(SET)[S_ULOCK], *v_ = (volatile T *)(SET)[S_UCOUNT];          \
    volatile T *n_ = (volatile T *)(SET)[S_NEG];                                                 \
    const T mine_ = (T)(0x9E3779B97F4A7C15ull >> (tid * 7));                                     \
    for (unsigned long i_ = 0; i_ < (n); i_++) {                                                  \
      arith_##SUF(a_);                                                                            \
      cancel_##SUF(c_, n_, mine_);                                                                \
      bits_or_and_##SUF(b_, tid);                                                                 \
      BITS_BT                                                                                     \
      xchglock_##SUF(l_, k_);                                                                     \
      cmpxchg_inc_##SUF(x_);                                                                      \
      lostunlock_##SUF(u_, v_);                                                                   \
    }                                                                                             \
  } while (0)

struct placement {
  const char *name;
  int reduced;                 /* split and page placements run fewer rounds */
  volatile void *set[4][SLOTS]; /* per width: 8, 16, 32, 64 */
  volatile uint64_t *wide;     /* cmpxchg8b counter */
#if defined(__x86_64__)
  volatile struct u128 *c16;
#endif
};

#define NPLACEMENTS 5
static struct placement places[NPLACEMENTS];
static uint8_t *region; /* for the pointer placements */

static unsigned long rounds_for(const struct placement *p) {
  /* natively, split locks are slow (the kernel may even throttle them): a few rounds */
  unsigned long n = p->reduced ? iters / 1000 : iters;
  return n ? n : 1;
}

/* Pointer placements get their work from functions that are not inlined at the globals,
 * so their operands go through a base register. */
static __attribute__((noinline)) void run_pointer_set(const struct placement *p, unsigned tid) {
  const unsigned long n = rounds_for(p);
  RUN_WIDTH(uint8_t, b, , p->set[0], tid, n);
  RUN_WIDTH(uint16_t, w, bits_bt_w(b_, tid);, p->set[1], tid, n);
  RUN_WIDTH(uint32_t, l, bits_bt_l(b_, tid);, p->set[2], tid, n);
#if defined(__x86_64__)
  RUN_WIDTH(uint64_t, q, bits_bt_q(b_, tid);, p->set[3], tid, n);
#endif
  for (unsigned long i = 0; i < n; i++) {
    cmpxchg8b_inc(p->wide);
#if defined(__x86_64__)
    if (use_cx16 && p->c16) cmpxchg16b_inc(p->c16);
#endif
  }
}

static __attribute__((noinline)) void run_global_set(unsigned tid) {
  const unsigned long n = iters;
  /* Each width's operands in its own globals struct; the slot addresses are link-time
   * constants once RUN_WIDTH is expanded with them. */
#define GSET(G) {(G).v[0], (G).v[1], (G).v[2], (G).v[3], (G).v[4], (G).v[5], (G).v[6], (G).v[7], (G).v[8]}
  volatile void *s8[SLOTS] = GSET(g8), *s16[SLOTS] = GSET(g16), *s32[SLOTS] = GSET(g32);
  RUN_WIDTH(uint8_t, b, , s8, tid, n);
  RUN_WIDTH(uint16_t, w, bits_bt_w(b_, tid);, s16, tid, n);
  RUN_WIDTH(uint32_t, l, bits_bt_l(b_, tid);, s32, tid, n);
#if defined(__x86_64__)
  volatile void *s64[SLOTS] = GSET(g64);
  RUN_WIDTH(uint64_t, q, bits_bt_q(b_, tid);, s64, tid, n);
#endif
  for (unsigned long i = 0; i < n; i++) {
    cmpxchg8b_inc(&g_wide);
#if defined(__x86_64__)
    if (use_cx16) cmpxchg16b_inc(&g_c16);
#endif
  }
}

/* Absolute addresses, written out in the assembly (no base or index register: the form
 * i386 code compiled without PIC uses for globals; on x86_64 a SIB form without base). */
uint32_t locked_ops_abs_arith, locked_ops_abs_cas, locked_ops_abs_lock, locked_ops_abs_count;

static __attribute__((noinline)) void run_absolute(void) {
  for (unsigned long i = 0; i < iters; i++) {
    uint32_t five = 5;
    __asm__ volatile("lock addl $3, locked_ops_abs_arith\n\t"
                     "lock subl $1, locked_ops_abs_arith\n\t"
                     "lock incl locked_ops_abs_arith\n\t"
                     "lock decl locked_ops_abs_arith\n\t"
                     "lock xaddl %0, locked_ops_abs_arith\n\t"
                     "stc\n\t"
                     "lock adcl $2, locked_ops_abs_arith\n\t"
                     "stc\n\t"
                     "lock sbbl $1, locked_ops_abs_arith"
                     : "+r"(five) : : "cc", "memory");
    uint32_t old = __atomic_load_n(&locked_ops_abs_cas, __ATOMIC_RELAXED);
    int ok;
    do {
      uint32_t seen = old;
      __asm__ volatile("lock cmpxchgl %2, locked_ops_abs_cas" : "=@ccz"(ok), "+a"(seen) : "r"(old + 1) : "memory");
      old = seen;
    } while (!ok);
    for (;;) {
      uint32_t v = 1;
      __asm__ volatile("xchgl %0, locked_ops_abs_lock" : "+r"(v) : : "memory");
      if (v == 0) break;
      while (__atomic_load_n(&locked_ops_abs_lock, __ATOMIC_RELAXED)) __asm__ volatile("pause");
    }
    locked_ops_abs_count++;
    __asm__ volatile("" ::: "memory");
    __atomic_store_n(&locked_ops_abs_lock, 0, __ATOMIC_RELAXED);
  }
}

static void *worker(void *arg) {
  const unsigned tid = (unsigned)(uintptr_t)arg;
  pthread_barrier_wait(&start_barrier);
  for (int p = 0; p < NPLACEMENTS; p++) {
    if (places[p].set[0][0] == NULL)
      run_global_set(tid);
    else
      run_pointer_set(&places[p], tid);
  }
  run_absolute();
  return NULL;
}

/* Lays out a placement's operands in `region` from byte offset `base`: each slot of each
 * width in its own 64-byte line, at `skew` bytes into it (0 aligned, 1..7 odd; a skew that
 * makes the operand cross the line is a split lock). The "page" placement puts them across
 * page boundaries instead. */
static void lay_out(struct placement *p, size_t base, unsigned skew, int page_cross) {
  static const unsigned widths[4] = {1, 2, 4, 8};
  size_t line = base;
  for (int w = 0; w < 4; w++) {
    for (int s = 0; s < SLOTS; s++) {
      if (page_cross) {
        /* the last byte(s) of one page and the first of the next: each slot its own page */
        line = base + (size_t)(w * SLOTS + s + 1) * GUEST_PAGE_SIZE - (widths[w] > 1 ? widths[w] / 2 : 0);
        p->set[w][s] = region + line;
      } else {
        p->set[w][s] = region + line + (widths[w] > 1 ? skew : 0);
        line += 64;
      }
    }
  }
  size_t tail = page_cross ? base + 40 * GUEST_PAGE_SIZE : line;
  p->wide = (volatile uint64_t *)(region + tail + (page_cross ? GUEST_PAGE_SIZE - 4 : skew));
#if defined(__x86_64__)
  p->c16 = page_cross || skew ? NULL : (volatile struct u128 *)(region + tail + 64); /* needs 16-byte alignment */
#endif
}

static void init_values(void) {
  for (int p = 0; p < NPLACEMENTS; p++) {
    for (int w = 0; w < 4; w++) {
      for (int s = 0; s < SLOTS; s++) {
        volatile uint8_t *q = places[p].set[w][s];
        if (q == NULL) continue;
        const unsigned width = 1u << w;
        for (unsigned i = 0; i < width; i++) q[i] = ((s == S_CANCEL || s == S_NEG) && i == 0) ? CANCEL_START : 0;
      }
    }
  }
}

static uint64_t load(volatile void *p, unsigned width) {
  uint64_t v = 0;
  memcpy(&v, (const void *)p, width);
  return v;
}

static int check_width(const char *place, unsigned long n, volatile void *const *set, unsigned width) {
  const uint64_t mask = width == 8 ? ~0ull : (1ull << (width * 8)) - 1;
  const uint64_t total = (uint64_t)n * nthreads;
  const struct {
    const char *what;
    int slot;
    uint64_t want;
  } checks[] = {
      {"arith", S_ARITH, (8 * total) & mask},          {"cancel", S_CANCEL, CANCEL_START},
      {"bits", S_BITS, 0},                             {"xchglock", S_KOUNT, total & mask},
      {"xchglock_free", S_LOCK, 0},                    {"cmpxchg", S_CMPXCHG, total & mask},
      {"lostunlock", S_UCOUNT, total & mask},          {"lostunlock_free", S_ULOCK, 0},
      {"neg", S_NEG, CANCEL_START},
  };
  int ok = 1;
  char label[64];
  for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
    const uint64_t got = load(set[checks[i].slot], width);
    snprintf(label, sizeof label, "%s %s %u", place, checks[i].what, width * 8);
    if (got != checks[i].want) {
      printf("%-28s WRONG: %llu, want %llu\n", label, (unsigned long long)got, (unsigned long long)checks[i].want);
      ok = 0;
    }
  }
  return ok;
}

static int run_all(void) {
  region = mmap(NULL, 64 * GUEST_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region == MAP_FAILED) die_errno(prog, "mmap", errno);
  places[0].name = "aligned";
  lay_out(&places[0], 0, 0, 0);
  places[1].name = "odd";
  lay_out(&places[1], 4 * GUEST_PAGE_SIZE, 1, 0);
  places[2].name = "global"; /* set[0][0] == NULL marks it */
  places[3].name = "split";
  places[3].reduced = 1;
  lay_out(&places[3], 8 * GUEST_PAGE_SIZE, 61, 0);
  places[4].name = "page";
  places[4].reduced = 1;
  lay_out(&places[4], 16 * GUEST_PAGE_SIZE, 0, 1);
  init_values();
  for (int i = 0; i < SLOTS; i++)
    g8.v[i][0] = g16.v[i][0] = g32.v[i][0] = g64.v[i][0] = (i == S_CANCEL || i == S_NEG) ? CANCEL_START : 0;
  const uint64_t wide_start = 0xFFFFFFFFull - 500; /* the count crosses 2^32 */
  g_wide = wide_start;
  for (int p = 0; p < NPLACEMENTS; p++)
    if (places[p].wide) *places[p].wide = wide_start;
#if defined(__x86_64__)
  use_cx16 = ({
    unsigned a, b, c, d;
    __get_cpuid(1, &a, &b, &c, &d) && (c & bit_CMPXCHG16B);
  });
  g_c16.lo = ~0ull - 500;
  g_c16.hi = 7;
  for (int p = 0; p < NPLACEMENTS; p++)
    if (places[p].c16) places[p].c16->lo = ~0ull - 500, places[p].c16->hi = 7;
#endif

  pthread_t th[8];
  pthread_barrier_init(&start_barrier, NULL, nthreads);
  for (unsigned t = 1; t < nthreads; t++)
    if (pthread_create(&th[t], NULL, worker, (void *)(uintptr_t)t) != 0) die_errno(prog, "pthread_create", EAGAIN);
  worker((void *)0);
  for (unsigned t = 1; t < nthreads; t++) pthread_join(th[t], NULL);

  int ok = 1;
  for (int p = 0; p < NPLACEMENTS; p++) {
    const unsigned long n = p == 2 ? iters : rounds_for(&places[p]);
    int place_ok = 1;
    for (int w = 0; w < 4; w++) {
#if !defined(__x86_64__)
      if (w == 3) break;
#endif
      if (p == 2) {
        struct globals8 *g = w == 0 ? &g8 : w == 1 ? &g16 : w == 2 ? &g32 : &g64;
        volatile void *s[SLOTS];
        for (int i = 0; i < SLOTS; i++) s[i] = g->v[i];
        place_ok &= check_width(places[p].name, n, s, 1u << w);
      } else {
        place_ok &= check_width(places[p].name, n, places[p].set[w], 1u << w);
      }
    }
    const uint64_t total = (uint64_t)n * nthreads;
    volatile uint64_t *wide = p == 2 ? &g_wide : places[p].wide;
    if (*wide != wide_start + total) {
      printf("%-28s WRONG: %llu, want %llu\n", "cmpxchg8b", (unsigned long long)*wide,
             (unsigned long long)(wide_start + total));
      place_ok = 0;
    }
#if defined(__x86_64__)
    volatile struct u128 *c16 = p == 2 ? &g_c16 : places[p].c16;
    if (use_cx16 && c16) {
      const unsigned __int128 got = ((unsigned __int128)c16->hi << 64) | c16->lo;
      const unsigned __int128 want = (((unsigned __int128)7 << 64) | (~0ull - 500)) + total;
      if (got != want) {
        printf("%-28s WRONG (128-bit counter off by %lld)\n", "cmpxchg16b", (long long)(got - want));
        place_ok = 0;
      }
    }
#endif
    printf("%-8s every instruction, every width: %s\n", places[p].name, place_ok ? "ok" : "WRONG");
    ok &= place_ok;
  }
  const uint32_t abs_total = (uint32_t)(iters * nthreads);
  const int abs_ok = locked_ops_abs_arith == 8 * abs_total && locked_ops_abs_cas == abs_total &&
                     locked_ops_abs_count == abs_total && locked_ops_abs_lock == 0;
  printf("absolute addresses: %s\n", abs_ok ? "ok" : "WRONG");
  if (!abs_ok)
    printf("  arith %u cmpxchg %u xchglock %u (want %u, %u, %u)\n", locked_ops_abs_arith, locked_ops_abs_cas,
           locked_ops_abs_count, 8 * abs_total, abs_total, abs_total);
  ok &= abs_ok;
  printf("own-bit checks (bits, bt* CF): %s\n", problems == 0 ? "ok" : "WRONG");
  if (problems) printf("  %lu wrong\n", (unsigned long)problems);
  return ok && problems == 0;
}

/* ---- -m: atomics on pages the reclaimer swaps ------------------------------------------ */

static uint8_t *swap_region;
static size_t swap_pages;

#if defined(__x86_64__)
#define LSUF "q"
#else
#define LSUF "l"
#endif

static void *swap_worker(void *arg) {
  const unsigned tid = (unsigned)(uintptr_t)arg;
  uint64_t x = 0x9E3779B97F4A7C15ull * (tid + 1);
  pthread_barrier_wait(&start_barrier);
  for (unsigned long i = 0; i < iters; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    volatile unsigned long *c =
        (volatile unsigned long *)(swap_region + (x % swap_pages) * GUEST_PAGE_SIZE + (x >> 58) * sizeof(long));
    switch (i % 4) {
      case 0: {
        unsigned long one = 1;
        __asm__ volatile("lock xadd %1, %0" : "+m"(*c), "+r"(one) : : "cc", "memory");
        break;
      }
      case 1: __asm__ volatile("lock add" LSUF " $1, %0" : "+m"(*c) : : "cc", "memory"); break;
      case 2: {
        unsigned long old = *c;
        int ok;
        do {
          unsigned long seen = old;
          __asm__ volatile("lock cmpxchg %3, %1" : "=@ccz"(ok), "+m"(*c), "+a"(seen) : "r"(old + 1) : "memory");
          old = seen;
        } while (!ok);
        break;
      }
      default: __asm__ volatile("lock inc" LSUF " %0" : "+m"(*c) : : "cc", "memory"); break;
    }
  }
  return NULL;
}

static int run_swap(unsigned long mib) {
  swap_pages = (size_t)mib * 256;
  swap_region = mmap(NULL, swap_pages * GUEST_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (swap_region == MAP_FAILED) die_errno(prog, "mmap", errno);
  for (size_t p = 0; p < swap_pages; p++) swap_region[p * GUEST_PAGE_SIZE + 4000] = (uint8_t)p; /* touch every page */
  pthread_t th[8];
  pthread_barrier_init(&start_barrier, NULL, nthreads);
  for (unsigned t = 1; t < nthreads; t++)
    if (pthread_create(&th[t], NULL, swap_worker, (void *)(uintptr_t)t) != 0) die_errno(prog, "pthread_create", EAGAIN);
  swap_worker((void *)0);
  for (unsigned t = 1; t < nthreads; t++) pthread_join(th[t], NULL);
  uint64_t sum = 0;
  unsigned long damaged = 0;
  for (size_t p = 0; p < swap_pages; p++) {
    for (int k = 0; k < 64; k++) sum += ((volatile unsigned long *)(swap_region + p * GUEST_PAGE_SIZE))[k];
    if (swap_region[p * GUEST_PAGE_SIZE + 4000] != (uint8_t)p) damaged++;
  }
  const uint64_t want = (uint64_t)iters * nthreads;
  printf("swap %lu MiB: total %s, pages intact %s\n", mib, sum == want ? "ok" : "WRONG", damaged ? "WRONG" : "ok");
  if (sum != want) printf("  total %llu, want %llu\n", (unsigned long long)sum, (unsigned long long)want);
  return sum == want && !damaged;
}

/* ---- -f: locked instructions that fault ---------------------------------------------- */

static sigjmp_buf fault_jmp;
static volatile void *fault_addr;
static volatile int fault_code;

static void on_segv(int sig, siginfo_t *si, void *ctx) {
  (void)sig, (void)ctx;
  fault_addr = si->si_addr;
  fault_code = si->si_code;
  siglongjmp(fault_jmp, 1);
}

typedef void (*locked_fn)(volatile void *p);
static __attribute__((noinline)) void f_add(volatile void *p) {
  __asm__ volatile("lock addl $1, %0" : "+m"(*(volatile uint32_t *)p) : : "cc", "memory");
}
static __attribute__((noinline)) void f_xchg(volatile void *p) {
  uint32_t v = 7;
  __asm__ volatile("xchgl %1, %0" : "+m"(*(volatile uint32_t *)p), "+r"(v) : : "memory");
}
static __attribute__((noinline)) void f_cmpxchg_fail(volatile void *p) {
  uint32_t seen = 0xdeadbeef; /* never equal: the compare fails, the write cycle still faults */
  __asm__ volatile("lock cmpxchgl %2, %0" : "+m"(*(volatile uint32_t *)p), "+a"(seen) : "r"(1u) : "cc", "memory");
}
static __attribute__((noinline)) void f_xadd(volatile void *p) {
  uint64_t v = 1;
#if defined(__x86_64__)
  __asm__ volatile("lock xaddq %1, %0" : "+m"(*(volatile uint64_t *)p), "+r"(v) : : "cc", "memory");
#else
  uint32_t w = (uint32_t)v;
  __asm__ volatile("lock xaddl %1, %0" : "+m"(*(volatile uint32_t *)p), "+r"(w) : : "cc", "memory");
#endif
}
static __attribute__((noinline)) void f_bts(volatile void *p) {
  __asm__ volatile("lock btsl $3, %0" : "+m"(*(volatile uint32_t *)p) : : "cc", "memory");
}
static __attribute__((noinline)) void f_cmpxchg8b(volatile void *p) {
  uint32_t lo = 0, hi = 0;
  __asm__ volatile("lock cmpxchg8b %0" : "+m"(*(volatile uint64_t *)p), "+a"(lo), "+d"(hi) : "b"(1u), "c"(0u) : "cc", "memory");
}

static int fault_checks_done;
static void *idle_thread(void *arg) {
  (void)arg;
  while (!__atomic_load_n(&fault_checks_done, __ATOMIC_ACQUIRE)) usleep(1000);
  return NULL;
}

static int run_faults(void) {
  /* A second thread, so that emu runs with several vCPUs (and hooks the atomics). */
  pthread_t idle;
  if (pthread_create(&idle, NULL, idle_thread, NULL) != 0) die_errno(prog, "pthread_create", EAGAIN);
  struct sigaction sa = {0};
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGSEGV, &sa, NULL);
  uint8_t *good = mmap(NULL, GUEST_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  uint8_t *gone = mmap(NULL, GUEST_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  uint8_t *ro = mmap(NULL, GUEST_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (good == MAP_FAILED || gone == MAP_FAILED || ro == MAP_FAILED) die_errno(prog, "mmap", errno);
  munmap(gone, GUEST_PAGE_SIZE);
  memset(ro, 0x5a, GUEST_PAGE_SIZE);
  mprotect(ro, GUEST_PAGE_SIZE, PROT_READ);
  const struct {
    const char *name;
    locked_fn fn;
  } fns[] = {{"lock add", f_add},  {"xchg", f_xchg}, {"lock cmpxchg", f_cmpxchg_fail},
             {"lock xadd", f_xadd}, {"lock bts", f_bts}, {"lock cmpxchg8b", f_cmpxchg8b}};
  int ok = 1;
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    for (int k = 0; k < 64; k++) fns[i].fn(good + 64); /* warm: emu hooks it */
    for (int target = 0; target < 2; target++) {
      volatile uint8_t *volatile p = (target == 0 ? gone : ro) + 128;
      fault_addr = NULL;
      fault_code = 0;
      volatile int faulted = 0;
      if (sigsetjmp(fault_jmp, 1) == 0)
        fns[i].fn(p);
      else
        faulted = 1;
      const int want_code = target == 0 ? SEGV_MAPERR : SEGV_ACCERR;
      int good_fault = faulted && fault_addr == (void *)p && fault_code == want_code;
      int unchanged = 1;
      if (target == 1)
        for (int b = 0; b < 16; b++) unchanged &= ro[128 + b] == 0x5a;
      printf("fault %-14s on a%s page: %s\n", fns[i].name, target == 0 ? "n unmapped" : " read-only",
             good_fault && unchanged ? "ok" : "WRONG");
      if (!(good_fault && unchanged))
        printf("  faulted=%d si_addr=%s si_code=%d (want %d) memory %s\n", faulted,
               fault_addr == (void *)p ? "exact" : "wrong", fault_code, want_code, unchanged ? "unchanged" : "CHANGED");
      ok &= good_fault && unchanged;
    }
  }
  __atomic_store_n(&fault_checks_done, 1, __ATOMIC_RELEASE);
  pthread_join(idle, NULL);
  return ok;
}

int main(int argc, char **argv) {
  unsigned long mib = 0;
  int faults = 0, opt;
  while ((opt = getopt(argc, argv, "t:n:m:f")) != -1) {
    switch (opt) {
      case 't': nthreads = (unsigned)parse_count(prog, 't', optarg, 8); break;
      case 'n': iters = parse_count(prog, 'n', optarg, 100000000); break;
      case 'm': mib = parse_count(prog, 'm', optarg, 4096); break;
      case 'f': faults = 1; break;
      default: fprintf(stderr, "usage: %s [-t THREADS] [-n ITERS] [-m MIB] [-f]\n", prog); return 2;
    }
  }
  printf("locked_ops %s threads=%u iters=%lu%s\n", GUEST_ARCH, nthreads, iters, faults ? " faults" : "");
  double t0 = now_seconds();
  int ok = faults ? run_faults() : mib ? run_swap(mib) : run_all();
  fprintf(stderr, "locked_ops: %.3f s\n", now_seconds() - t0);
  printf("%s\n", ok ? "all ok" : "SOME WRONG");
  return ok ? 0 : 1;
}
