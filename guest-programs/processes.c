/* Processes, checked from inside: fork with copy-on-write (parent and child write the same
 * pages and each must see only its own writes, three generations deep), pipes and dup2,
 * exit statuses and deaths by signal as wait4/waitpid/waitid report them, vfork, and
 * execve of this same program, and prctl (thread names, no_new_privs, dumpable, timer slack,
 * a child subreaper, the parent-death signal).
 *
 * usage: processes [MIB]      (MiB written before each fork; default 8)
 *        processes exec-child STATUS   (what the execve test runs)
 * Prints one line per check to stdout; exit status 0 when all passed, 1 if one failed. */
#define _GNU_SOURCE  /* pipe2 */
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

static int failures = 0;

static void check(int ok, const char* what) {
  printf("%s %s\n", ok ? "ok  " : "FAIL", what);
  if (!ok) ++failures;
}

static uint32_t value(size_t page, uint32_t who) { return (uint32_t)(page * 2654435761u) ^ (who * 0x9E3779B9u); }

/* Writes `who`'s value into the first word of every `step`-th page from `first`. */
static void write_pages(uint32_t* mem, size_t pages, size_t first, size_t step, uint32_t who) {
  for (size_t p = first; p < pages; p += step) mem[p * (GUEST_PAGE_SIZE / 4)] = value(p, who);
}

/* How many pages do not hold what `expect(page)` says. */
static size_t count_wrong(const uint32_t* mem, size_t pages, uint32_t (*expect)(size_t, size_t), size_t arg) {
  size_t wrong = 0;
  for (size_t p = 0; p < pages; ++p)
    if (mem[p * (GUEST_PAGE_SIZE / 4)] != expect(p, arg)) ++wrong;
  return wrong;
}

/* Generation g writes pages p % 4 == g (g = 1, 2, 3); page p holds the value of the youngest
 * generation up to `arg` that wrote it, else generation 0's. */
static uint32_t expect_generation(size_t p, size_t upto) {
  const size_t g = p % 4;
  return value(p, g != 0 && g <= upto ? (uint32_t)g : 0);
}

/* The parent after its own write of pages p % 4 == 0 (who = 9): the children's writes must
 * not show. */
static uint32_t expect_parent(size_t p, size_t unused) {
  (void)unused;
  return value(p, p % 4 == 0 ? 9 : 0);
}

static int wait_status(pid_t pid) {
  int status = -1;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return status;
}

/* Generations below the first: each writes its pages and forks the next, then overwrites
 * them with its parent's values (after the fork: the child must not see that), and checks
 * that it sees its ancestors' writes and nobody else's. */
static int generation(uint32_t* mem, size_t pages, size_t g) {
  write_pages(mem, pages, g, 4, (uint32_t)g);
  if (g < 3) {
    const pid_t child = fork();
    if (child < 0) return 2;
    if (child == 0) _exit(generation(mem, pages, g + 1));
    write_pages(mem, pages, g, 4, (uint32_t)g);  /* the same values again: copies, not reuse */
    const int status = wait_status(child);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
    return count_wrong(mem, pages, expect_generation, g) ? 1 : 0;
  }
  return count_wrong(mem, pages, expect_generation, 3) ? 1 : 0;
}

static void test_copy_on_write(size_t mib) {
  const size_t pages = mib * 256;
  uint32_t* mem = mmap(NULL, pages * GUEST_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    check(0, "mmap");
    return;
  }
  write_pages(mem, pages, 0, 1, 0);
  const pid_t child = fork();
  if (child == 0) {
    /* The first generation: forks two more below it, all writing after their fork. */
    write_pages(mem, pages, 1, 4, 1);
    const pid_t grandchild = fork();
    if (grandchild == 0) _exit(generation(mem, pages, 2));
    const int status = wait_status(grandchild);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) _exit(1);
    _exit(count_wrong(mem, pages, expect_generation, 1) ? 1 : 0);
  }
  write_pages(mem, pages, 0, 4, 9);
  const int status = wait_status(child);
  check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "fork: three generations each see only their own writes");
  check(count_wrong(mem, pages, expect_parent, 0) == 0, "fork: the parent sees none of its descendants' writes");
  munmap(mem, pages * GUEST_PAGE_SIZE);
}

static void test_pipes(void) {
  int to_child[2], from_child[2];
  if (pipe(to_child) != 0 || pipe2(from_child, O_CLOEXEC) != 0) {
    check(0, "pipe");
    return;
  }
  const pid_t child = fork();
  if (child == 0) {
    close(to_child[1]);
    close(from_child[0]);
    /* stdout into the pipe: what printf writes reaches the parent. */
    if (dup2(from_child[1], 1) != 1) _exit(2);
    uint64_t sum = 0;
    unsigned char buf[4096];
    ssize_t n;
    while ((n = read(to_child[0], buf, sizeof buf)) > 0)
      for (ssize_t i = 0; i < n; ++i) sum += buf[i];
    printf("sum %llu\n", (unsigned long long)sum);
    fflush(stdout);
    _exit(0);
  }
  close(to_child[0]);
  close(from_child[1]);
  unsigned char block[1000];
  uint64_t sum = 0;
  for (int i = 0; i < 300; ++i) {  /* 300 KB: more than a pipe holds, so both sides wait */
    for (size_t k = 0; k < sizeof block; ++k) block[k] = (unsigned char)(i + k);
    for (size_t k = 0; k < sizeof block; ++k) sum += block[k];
    if (write(to_child[1], block, sizeof block) != (ssize_t)sizeof block) break;
  }
  close(to_child[1]);  /* the child's read sees end-of-file */
  char reply[64] = {0};
  size_t got = 0;
  ssize_t n;
  while (got < sizeof reply - 1 && (n = read(from_child[0], reply + got, sizeof reply - 1 - got)) > 0) got += (size_t)n;
  char want[64];
  snprintf(want, sizeof want, "sum %llu\n", (unsigned long long)sum);
  check(strcmp(reply, want) == 0, "pipe and dup2: 300 KB through a pipe, the answer through the child's stdout");
  check(WIFEXITED(wait_status(child)), "pipe: the child exited");
  close(from_child[0]);
}

static void test_statuses(void) {
  pid_t child = fork();
  if (child == 0) _exit(42);
  int status = wait_status(child);
  check(WIFEXITED(status) && WEXITSTATUS(status) == 42, "exit status 42 through waitpid");

  child = fork();
  if (child == 0) {
    for (;;) pause();
  }
  siginfo_t info;
  memset(&info, 0xff, sizeof info);
  check(waitid(P_PID, child, &info, WEXITED | WNOHANG) == 0 && info.si_pid == 0, "waitid WNOHANG: still running");
  check(kill(child, SIGTERM) == 0, "kill SIGTERM to the child");
  memset(&info, 0, sizeof info);
  check(waitid(P_PID, child, &info, WEXITED) == 0 && info.si_pid == child && info.si_signo == SIGCHLD &&
            info.si_code == CLD_KILLED && info.si_status == SIGTERM,
        "waitid: killed by SIGTERM");

  int idle[2];
  if (pipe(idle) == 0) {
    child = fork();
    if (child == 0) {
      char c;
      (void)read(idle[0], &c, 1);  /* nobody writes: blocked until killed */
      _exit(3);
    }
    struct timespec nap = {0, 20 * 1000 * 1000};
    nanosleep(&nap, NULL);  /* most likely in its read by now; either way SIGKILL ends it */
    check(kill(child, SIGKILL) == 0, "kill SIGKILL to a child blocked reading a pipe");
    status = wait_status(child);
    check(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "waitpid: killed by SIGKILL");
    close(idle[0]);
    close(idle[1]);
  }

  child = fork();
  if (child == 0) {
    if (getppid() == 0) _exit(3);
    exit(7);
  }
  struct rusage ru;
  check(wait4(child, &status, 0, &ru) == child && WIFEXITED(status) && WEXITSTATUS(status) == 7, "wait4: exit 7");
  check(waitpid(-1, &status, WNOHANG) == -1 && errno == ECHILD, "no children left: ECHILD");
}

static void test_vfork_and_exec(const char* self) {
  pid_t child = vfork();
  if (child == 0) _exit(5);
  int status = wait_status(child);
  check(WIFEXITED(status) && WEXITSTATUS(status) == 5, "vfork then _exit");

  int out[2];
  if (pipe(out) != 0) return;
  child = fork();
  if (child == 0) {
    dup2(out[1], 1);
    close(out[0]);
    close(out[1]);
    char* argv[] = {(char*)self, "exec-child", "11", NULL};
    char* envp[] = {"PROCESSES_TEST=exec", NULL};
    execve(self, argv, envp);
    _exit(99);
  }
  close(out[1]);
  char line[128] = {0};
  size_t got = 0;
  ssize_t n;
  while (got < sizeof line - 1 && (n = read(out[0], line + got, sizeof line - 1 - got)) > 0) got += (size_t)n;
  close(out[0]);
  status = wait_status(child);
  check(WIFEXITED(status) && WEXITSTATUS(status) == 11, "execve: the new image's exit status");
  check(strcmp(line, "exec-child has-parent env=exec\n") == 0, "execve: new argv and environment, same parent");
  char* bad[] = {"/nonexistent/program", NULL};
  check(execve(bad[0], bad, bad + 1) == -1 && errno == ENOENT, "execve of a missing file: ENOENT");
}

/* prctl: the settings a process keeps for itself (thread name, no_new_privs, dumpable,
 * timer slack), what a fork child inherits, and the two that act on the process tree: a
 * child subreaper gets its orphaned grandchildren (getppid names it, wait4 reaps them), and a
 * parent-death signal reaches a child when its parent ends. */
static int prctl_get_int(int option) {
  int v = -1;
  return prctl(option, &v, 0, 0, 0) == 0 ? v : -2;
}

static void test_prctl(void) {
  char name[16] = {0};
  check(prctl(PR_GET_NAME, name, 0, 0, 0) == 0 && strcmp(name, "processes") == 0,
        "prctl PR_GET_NAME: the program's file name");
  check(prctl(PR_SET_NAME, "a-name-longer-than-fifteen", 0, 0, 0) == 0 && prctl(PR_GET_NAME, name, 0, 0, 0) == 0 &&
            strcmp(name, "a-name-longer-t") == 0,
        "prctl PR_SET_NAME: cut to 15 bytes");
  char comm[32] = {0};
  int fd = open("/proc/self/comm", O_RDONLY);
  check(fd >= 0 && read(fd, comm, sizeof comm - 1) > 0 && strcmp(comm, "a-name-longer-t\n") == 0,
        "prctl PR_SET_NAME: /proc/self/comm shows it");
  if (fd >= 0) close(fd);
  errno = 0;
  check(prctl(PR_SET_NAME, (char*)8, 0, 0, 0) == -1 && errno == EFAULT, "prctl PR_SET_NAME of a bad pointer: EFAULT");

  check(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 0, "prctl no_new_privs: off at first");
  errno = 0;
  check(prctl(PR_SET_NO_NEW_PRIVS, 2, 0, 0, 0) == -1 && errno == EINVAL, "prctl PR_SET_NO_NEW_PRIVS 2: EINVAL");
  check(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1,
        "prctl no_new_privs: set");
  check(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 1, "prctl dumpable: on at first");
  errno = 0;
  check(prctl(PR_SET_DUMPABLE, 2, 0, 0, 0) == -1 && errno == EINVAL, "prctl PR_SET_DUMPABLE 2: EINVAL");
  check(prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0 && prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0 &&
            prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) == 0,
        "prctl dumpable: off and on again");
  const int slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
  check(prctl(PR_SET_TIMERSLACK, 123456, 0, 0, 0) == 0 && prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0) == 123456 &&
            prctl(PR_SET_TIMERSLACK, 0, 0, 0, 0) == 0 && prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0) == slack,
        "prctl timer slack: set, and 0 brings back the one the process started with");
  errno = 0;
  check(prctl(PR_SET_PDEATHSIG, 65, 0, 0, 0) == -1 && errno == EINVAL, "prctl PR_SET_PDEATHSIG 65: EINVAL");
  check(prctl(PR_SET_PDEATHSIG, SIGUSR2, 0, 0, 0) == 0 && prctl_get_int(PR_GET_PDEATHSIG) == SIGUSR2,
        "prctl parent-death signal: set");
  errno = 0;
  check(prctl(0x7fff, 0, 0, 0, 0) == -1 && errno == EINVAL, "prctl of an unknown option: EINVAL");

  /* A fork child: the name and no_new_privs carry over, the parent-death signal does not. */
  int pipefd[2];
  if (pipe(pipefd) != 0) return;
  pid_t child = fork();
  if (child == 0) {
    char n[16] = {0};
    const int ok = prctl(PR_GET_NAME, n, 0, 0, 0) == 0 && strcmp(n, "a-name-longer-t") == 0 &&
                   prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1 && prctl_get_int(PR_GET_PDEATHSIG) == 0 &&
                   prctl_get_int(PR_GET_CHILD_SUBREAPER) == 0;
    _exit(ok ? 0 : 1);
  }
  int status = wait_status(child);
  check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "prctl: a fork child keeps the name and no_new_privs, not the rest");
  (void)prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);

  /* A subreaper: the grandchild of a child that ended is ours to see and to reap. The
   * grandchild also asked for SIGTERM when its parent ends. */
  check(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 && prctl_get_int(PR_GET_CHILD_SUBREAPER) == 1,
        "prctl child subreaper: set");
  const pid_t me = getpid();
  child = fork();
  if (child == 0) {
    pid_t grandchild = fork();
    if (grandchild == 0) {
      /* The first grandchild waits to be reparented, then says who its parent is now. */
      for (int i = 0; i < 30000 && getppid() != me; i++) usleep(1000);
      const char ok = getppid() == me ? 'y' : 'n';
      (void)write(pipefd[1], &ok, 1);
      _exit(7);
    }
    grandchild = fork();
    if (grandchild == 0) {
      /* The second one asks for SIGTERM when its parent ends, then waits for it. */
      if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) != 0) _exit(2);
      (void)write(pipefd[1], "r", 1);
      for (;;) pause();
    }
    char r;
    (void)read(pipefd[0], &r, 1);  /* the second grandchild is ready */
    _exit(0);
  }
  status = wait_status(child);
  check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "subreaper: the child ended");
  char seen = 0;
  check(read(pipefd[0], &seen, 1) == 1 && seen == 'y', "subreaper: an orphaned grandchild's getppid names the subreaper");
  int reaped = 0, exited7 = 0, termed = 0;
  pid_t who;
  while ((who = waitpid(-1, &status, 0)) > 0) {
    reaped++;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 7) exited7++;
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) termed++;
  }
  check(reaped == 2 && exited7 == 1, "subreaper: waitpid reaps the orphaned grandchildren");
  check(termed == 1, "prctl PR_SET_PDEATHSIG: the grandchild got SIGTERM when its parent ended");
  (void)prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
  close(pipefd[0]);
  close(pipefd[1]);
}

int main(int argc, char** argv) {
  if (argc == 3 && strcmp(argv[1], "exec-child") == 0) {
    const char* env = getenv("PROCESSES_TEST");
    printf("exec-child %s env=%s\n", getppid() > 0 ? "has-parent" : "no-parent", env ? env : "(none)");
    return atoi(argv[2]);
  }
  const size_t mib = argc > 1 ? (size_t)atoi(argv[1]) : 8;
  setvbuf(stdout, NULL, _IONBF, 0);  /* no buffered line may be copied into a child */
  test_copy_on_write(mib ? mib : 8);
  test_pipes();
  test_statuses();
  test_vfork_and_exec(argv[0]);
  test_prctl();
  printf("%s\n", failures ? "FAILED" : "all passed");
  return failures ? 1 : 0;
}
