/* Signal handlers, run natively and under emu; stdout must match.
 *
 * Covers what shells and servers rely on: SIGCHLD handlers with their siginfo and sigsuspend
 * waiting for one, a blocking read interrupted (EINTR) or resumed (SA_RESTART), masks and
 * sigpending, SA_RESETHAND, SA_NODEFER nesting, the non-SA_SIGINFO frame (i386's sigreturn),
 * an alternate stack, siglongjmp out of a handler, registers and floating point intact across
 * a handler that clobbers its own, sigtimedwait, faults (SIGSEGV, SIGFPE, SIGILL)
 * caught by handlers, and a compute loop interrupted by thousands
 * of signals from a child whose result must come out exactly right.
 *
 * Usage: signals [rounds]   (rounds of the interrupted compute loop; default 2000)
 *        signals pingpong ROUNDS THREADS
 *   A child and this process (with THREADS computing threads, any of which may take the
 *   signal) pass SIGUSR1 and SIGUSR2 back and forth ROUNDS times, each side waiting in
 *   sigsuspend for the other's: a signal lost anywhere hangs it; the counts must be exact. */
#define _GNU_SOURCE
#include <sched.h>
#include <setjmp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

static const char *prog = "signals";

static volatile sig_atomic_t got_chld, chld_pid, chld_code, chld_status;
static volatile sig_atomic_t got_usr1, got_usr2, depth, max_depth, on_altstack;
static sigjmp_buf jump_back;
static stack_t alt;

static void on_chld(int sig, siginfo_t *si, void *uc) {
  (void)uc;
  if (sig != SIGCHLD) return;
  ++got_chld;
  chld_pid = si->si_pid;
  chld_code = si->si_code;
  chld_status = si->si_status;
}

static void on_usr1_plain(int sig) { got_usr1 += sig == SIGUSR1; }

static void on_usr2_nested(int sig) {
  (void)sig;
  ++got_usr2;
  ++depth;
  if (depth > max_depth) max_depth = depth;
  if (depth < 3) raise(SIGUSR2); /* SA_NODEFER: runs again at once, nested */
  --depth;
}

static void on_usr1_altstack(int sig) {
  char here;
  (void)sig;
  on_altstack = (char *)alt.ss_sp <= &here && &here < (char *)alt.ss_sp + alt.ss_size;
}

static void on_segv_jump(int sig) { siglongjmp(jump_back, sig); }

/* Clobbers what it can: the interrupted code must not notice. */
static volatile double handler_sink;
static void on_usr1_clobber(int sig) {
  double x = sig;
  for (int i = 0; i < 50; ++i) x = x * 1.0001 + 0.5;
  handler_sink = x;
  ++got_usr1;
}

static void install(int sig, void (*fn)(int), int flags) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = fn;
  sa.sa_flags = flags;
  sigemptyset(&sa.sa_mask);
  if (sigaction(sig, &sa, NULL) != 0) die_errno(prog, "sigaction", errno);
}

static void install_info(int sig, void (*fn)(int, siginfo_t *, void *), int flags) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = fn;
  sa.sa_flags = flags | SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  if (sigaction(sig, &sa, NULL) != 0) die_errno(prog, "sigaction", errno);
}

/* A child exits with `code` after `delay_ms`; returns its pid. */
static pid_t child_exiting(int code, int delay_ms) {
  pid_t pid = fork();
  if (pid < 0) die_errno(prog, "fork", errno);
  if (pid == 0) {
    struct timespec ts = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    _exit(code);
  }
  return pid;
}

static void sigchld_and_sigsuspend(void) {
  install_info(SIGCHLD, on_chld, SA_RESTART);
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGCHLD);
  sigprocmask(SIG_BLOCK, &block, &old);
  got_chld = 0;
  pid_t pid = child_exiting(7, 20);
  /* The shell's `wait`: everything blocked, sigsuspend with the old mask until the handler ran. */
  while (!got_chld) sigsuspend(&old);
  sigset_t now;
  sigprocmask(SIG_SETMASK, NULL, &now);
  printf("sigsuspend: handler ran %d time(s), child %s, code %s, status %d, SIGCHLD blocked again: %d\n",
         (int)got_chld, chld_pid == pid ? "matches" : "differs", chld_code == CLD_EXITED ? "CLD_EXITED" : "other",
         (int)chld_status, sigismember(&now, SIGCHLD));
  int status = 0;
  const int reaped = waitpid(pid, &status, 0) == pid;
  printf("waitpid after the handler: %s, exit %d\n", reaped ? "reaped" : "lost", WEXITSTATUS(status));
  sigprocmask(SIG_SETMASK, &old, NULL);

  /* A child killed by a signal: CLD_KILLED and the signal number. */
  got_chld = 0;
  pid = fork();
  if (pid == 0) {
    for (;;) pause();
  }
  kill(pid, SIGTERM);
  while (!got_chld) usleep(1000);
  printf("killed child: code %s, status %d\n", chld_code == CLD_KILLED ? "CLD_KILLED" : "other", (int)chld_status);
  waitpid(pid, NULL, 0);
}

/* A read of an empty pipe, interrupted by SIGCHLD: EINTR without SA_RESTART, the data with it. */
static void interrupted_read(int restart) {
  install_info(SIGCHLD, on_chld, restart ? SA_RESTART : 0);
  int fds[2];
  if (pipe(fds) != 0) die_errno(prog, "pipe", errno);
  got_chld = 0;
  pid_t quick = child_exiting(0, 20); /* its SIGCHLD interrupts the read */
  pid_t writer = fork();
  if (writer == 0) {
    struct timespec ts = {0, 150 * 1000000L};
    nanosleep(&ts, NULL);
    if (write(fds[1], "late", 4) != 4) _exit(3);
    _exit(0);
  }
  char buf[8] = {0};
  ssize_t n = read(fds[0], buf, sizeof buf - 1);
  int err = n < 0 ? errno : 0;
  printf("read %s SA_RESTART: %s%s after %d SIGCHLD\n", restart ? "with" : "without",
         n < 0 ? (err == EINTR ? "EINTR" : strerror(err)) : "data ", n > 0 ? buf : "", got_chld >= 1);
  waitpid(quick, NULL, 0);
  waitpid(writer, NULL, 0);
  close(fds[0]);
  close(fds[1]);
}

static void masks_and_pending(void) {
  install(SIGUSR1, on_usr1_plain, 0);
  sigset_t block, pending;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigprocmask(SIG_BLOCK, &block, NULL);
  got_usr1 = 0;
  kill(getpid(), SIGUSR1);
  kill(getpid(), SIGUSR1); /* a standard signal pending twice is delivered once */
  sigpending(&pending);
  printf("blocked: handler ran %d, pending %d\n", (int)got_usr1, sigismember(&pending, SIGUSR1));
  sigprocmask(SIG_UNBLOCK, &block, NULL);
  printf("unblocked: handler ran %d\n", (int)got_usr1);

  /* Raise runs the handler before it returns. */
  raise(SIGUSR1);
  printf("raise: handler ran %d\n", (int)got_usr1);

  /* SA_RESETHAND: once, then the default. Ignored: nothing. */
  install(SIGUSR1, on_usr1_plain, SA_RESETHAND);
  raise(SIGUSR1);
  struct sigaction now;
  sigaction(SIGUSR1, NULL, &now);
  printf("SA_RESETHAND: handler ran %d, then %s\n", (int)got_usr1, now.sa_handler == SIG_DFL ? "SIG_DFL" : "still set");
  signal(SIGUSR1, SIG_IGN);
  raise(SIGUSR1);
  printf("ignored: still alive\n");
}

static void nesting_and_altstack(void) {
  install(SIGUSR2, on_usr2_nested, SA_NODEFER);
  raise(SIGUSR2);
  printf("SA_NODEFER: %d handler runs, %d deep\n", (int)got_usr2, (int)max_depth);

  alt.ss_size = 64 * 1024;
  alt.ss_sp = malloc(alt.ss_size);
  alt.ss_flags = 0;
  if (sigaltstack(&alt, NULL) != 0) die_errno(prog, "sigaltstack", errno);
  install(SIGUSR1, on_usr1_altstack, SA_ONSTACK);
  raise(SIGUSR1);
  printf("SA_ONSTACK: handler on the alternate stack: %d\n", (int)on_altstack);
  install(SIGUSR1, on_usr1_altstack, 0);
  raise(SIGUSR1);
  printf("without SA_ONSTACK: on the alternate stack: %d\n", (int)on_altstack);
}

static void longjmp_out(void) {
  install(SIGUSR1, on_segv_jump, 0);
  int r = sigsetjmp(jump_back, 1);
  if (r == 0) {
    raise(SIGUSR1);
    printf("siglongjmp: not taken\n");
  } else {
    sigset_t now;
    sigprocmask(SIG_SETMASK, NULL, &now);
    printf("siglongjmp out of the handler: got %d, SIGUSR1 unblocked again: %d\n", r, !sigismember(&now, SIGUSR1));
  }
}

static void timed_wait(void) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR2);
  sigprocmask(SIG_BLOCK, &set, NULL);
  kill(getpid(), SIGUSR2);
  siginfo_t si;
  struct timespec ts = {1, 0};
  int sig = sigtimedwait(&set, &si, &ts);
  printf("sigtimedwait: %d (SIGUSR2 %d), from this pid: %d\n", sig, SIGUSR2, si.si_pid == getpid());
  ts.tv_sec = 0;
  ts.tv_nsec = 20 * 1000000L;
  sig = sigtimedwait(&set, &si, &ts);
  printf("sigtimedwait with nothing pending: %d %s\n", sig, sig < 0 && errno == EAGAIN ? "EAGAIN" : "?");
  sigprocmask(SIG_UNBLOCK, &set, NULL);
}

/* Faults with handlers: the handler runs at the faulting instruction with si_addr and si_code;
 * one that fixes the cause (mprotect) lets the instruction run again, the others jump away. */
static volatile char *fault_page;
static volatile void *fault_addr;
static volatile sig_atomic_t fault_code, fault_count;
static void on_segv_fix(int sig, siginfo_t *si, void *uc) {
  (void)sig;
  (void)uc;
  fault_addr = si->si_addr;
  fault_code = si->si_code;
  ++fault_count;
  mprotect((void *)fault_page, 4096, PROT_READ | PROT_WRITE);
}
static void on_fault_jump(int sig, siginfo_t *si, void *uc) {
  (void)uc;
  fault_addr = si->si_addr;
  fault_code = si->si_code;
  siglongjmp(jump_back, sig);
}
static volatile int divisor = 0;
static volatile uintptr_t null_ptr = 0;

static void faults_with_handlers(void) {
  fault_page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (fault_page == MAP_FAILED) die_errno(prog, "mmap", errno);
  install_info(SIGSEGV, on_segv_fix, 0);
  fault_page[100] = 42; /* SIGSEGV; the handler makes it writable; the store runs again */
  printf("SIGSEGV fixed by the handler: %d fault(s), si_addr %s, %s, value %d\n", (int)fault_count,
         fault_addr == fault_page + 100 ? "exact" : "wrong", fault_code == SEGV_ACCERR ? "SEGV_ACCERR" : "other",
         fault_page[100]);

  install_info(SIGSEGV, on_fault_jump, 0);
  int r = sigsetjmp(jump_back, 1);
  if (r == 0) printf("unreachable %d\n", *(volatile int *)(null_ptr + 16));
  printf("SIGSEGV on a null read: caught %d, si_addr %s, %s\n", r, fault_addr == (void *)16 ? "16" : "wrong",
         fault_code == SEGV_MAPERR ? "SEGV_MAPERR" : "other");

  install_info(SIGFPE, on_fault_jump, 0);
  r = sigsetjmp(jump_back, 1);
  if (r == 0) printf("unreachable %d\n", 7 / divisor);
  printf("SIGFPE on a division by zero: caught %d, %s\n", r, fault_code == FPE_INTDIV ? "FPE_INTDIV" : "other");

  install_info(SIGILL, on_fault_jump, 0);
  r = sigsetjmp(jump_back, 1);
  if (r == 0) __asm__ volatile("ud2");
  printf("SIGILL on ud2: caught %d\n", r);
  signal(SIGSEGV, SIG_DFL);
  signal(SIGFPE, SIG_DFL);
  signal(SIGILL, SIG_DFL);
  munmap((void *)fault_page, 4096);
}

/* A fixed piece of integer and floating-point work. */
static void work(uint64_t *hash, double *f) {
  uint64_t h = 1469598103934665603ull;
  double x = 0;
  for (uint32_t i = 0; i < 50000; ++i) {
    h = (h ^ i) * 1099511628211ull;
    x = x * 0.5 + (double)(i & 1023);
  }
  *hash = h;
  *f = x;
}

/* A child sends SIGUSR1 as fast as it can while this process repeats the work; every handler
 * run clobbers floating point and registers, and every pass must still match the reference. */
static void interrupted_compute(int rounds) {
  uint64_t ref_hash;
  double ref_f;
  work(&ref_hash, &ref_f);
  install(SIGUSR1, on_usr1_clobber, SA_RESTART);
  got_usr1 = 0;
  pid_t parent = getpid();
  pid_t sender = fork();
  if (sender < 0) die_errno(prog, "fork", errno);
  if (sender == 0) {
    for (int i = 0; i < rounds; ++i) {
      kill(parent, SIGUSR1);
      if (i % 16 == 0) sched_yield();
    }
    _exit(0);
  }
  int passes = 0, wrong = 0, status;
  for (;;) {
    uint64_t h;
    double f;
    work(&h, &f);
    ++passes;
    wrong += h != ref_hash || f != ref_f;
    if (waitpid(sender, &status, WNOHANG) == sender) break;
  }
  printf("compute under signals: %s\n", wrong ? "WRONG" : "every pass exact");
  fprintf(stderr, "%s: %d passes, %d SIGUSR1 handled (%d sent)\n", prog, passes, (int)got_usr1, rounds);
  install(SIGUSR1, SIG_DFL, 0);
}

static atomic_int pongs_seen, stop_threads;
static pid_t pingpong_child;
static void on_ping(int sig) {
  (void)sig;
  atomic_fetch_add(&pongs_seen, 1);
  kill(pingpong_child, SIGUSR2); /* answer from whichever thread took it */
}
static void on_pong(int sig) { (void)sig; }

static void *spin(void *arg) {
  volatile uint64_t *sink = arg;
  while (!atomic_load(&stop_threads)) *sink += 1;
  return NULL;
}

static int pingpong(int rounds, int threads) {
  sigset_t usr, old;
  sigemptyset(&usr);
  sigaddset(&usr, SIGUSR1);
  sigaddset(&usr, SIGUSR2);
  sigprocmask(SIG_BLOCK, &usr, &old); /* nothing arrives before the handlers are in place */
  install(SIGUSR1, on_ping, SA_RESTART);
  install(SIGUSR2, on_pong, SA_RESTART);
  pid_t parent = getpid();
  pingpong_child = fork();
  if (pingpong_child < 0) die_errno(prog, "fork", errno);
  if (pingpong_child == 0) {
    /* SIGUSR2 stays blocked except inside sigsuspend: no answer can slip past. */
    for (int i = 0; i < rounds; ++i) {
      kill(parent, SIGUSR1);
      sigsuspend(&old);
    }
    _exit(0);
  }
  pthread_t t[64];
  uint64_t sinks[64];
  if (threads > 64) threads = 64;
  sigprocmask(SIG_SETMASK, &old, NULL); /* the threads inherit SIGUSR1 unblocked */
  for (int i = 0; i < threads; ++i) pthread_create(&t[i], NULL, spin, &sinks[i]);
  /* With computing threads, the main one steps aside: the signals go to threads in guest code. */
  if (threads > 0) sigprocmask(SIG_BLOCK, &usr, NULL);
  int status = 0;
  while (waitpid(pingpong_child, &status, 0) < 0 && errno == EINTR) {
  }
  atomic_store(&stop_threads, 1);
  for (int i = 0; i < threads; ++i) pthread_join(t[i], NULL);
  printf("pingpong: child %s, %d pings answered of %d\n", WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "done" : "failed",
         atomic_load(&pongs_seen), rounds);
  return atomic_load(&pongs_seen) == rounds ? 0 : 1;
}

/* What exec passed on: which signals are blocked and which ignored at start (Linux keeps
 * both across execve; only handlers are reset). */
static int inherited(void) {
  sigset_t mask;
  sigprocmask(SIG_SETMASK, NULL, &mask);
  printf("blocked:");
  for (int sig = 1; sig < 32; ++sig)
    if (sigismember(&mask, sig)) printf(" %d", sig);
  printf("\nignored:");
  for (int sig = 1; sig < 32; ++sig) {
    struct sigaction old;
    if (sigaction(sig, NULL, &old) == 0 && old.sa_handler == SIG_IGN) printf(" %d", sig);
  }
  printf("\n");
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "pingpong") == 0) return pingpong(atoi(argv[2]), atoi(argv[3]));
  if (argc == 2 && strcmp(argv[1], "inherited") == 0) return inherited();
  int rounds = argc > 1 ? atoi(argv[1]) : 2000;
  setvbuf(stdout, NULL, _IONBF, 0);
  printf("%s signals\n", GUEST_ARCH);
  sigchld_and_sigsuspend();
  interrupted_read(0);
  interrupted_read(1);
  masks_and_pending();
  nesting_and_altstack();
  longjmp_out();
  timed_wait();
  faults_with_handlers();
  interrupted_compute(rounds);
  /* Death by a signal with no handler, after all that: the exit status says which. */
  signal(SIGTERM, SIG_DFL);
  raise(SIGTERM);
  printf("not reached\n");
  return 1;
}
