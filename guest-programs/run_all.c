/* run_all: several guest processes at once under one emu, for the soak (tools/soak.py) and
 * anything else that wants a family of different programs in one run.
 *
 *   run_all PROG [ARGS...] [-- PROG [ARGS...]]...
 *
 * Forks one child per "--"-separated command, each execv's its PROG (a path), and waits for
 * all. stdout, in command order once all have ended: "run_all: K PROG: exit S" or
 * "run_all: K PROG: signal N". Exit status: 0 when every child exited 0, else the first
 * failing child's (its exit status, or 128 + its signal, as a shell reports it); 2 when a
 * fork failed or there was nothing to run. A child whose execv fails exits 127. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#define MAX_CHILDREN 64

int main(int argc, char **argv) {
  char **starts[MAX_CHILDREN];
  pid_t pids[MAX_CHILDREN];
  int statuses[MAX_CHILDREN];
  int n = 0;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--") == 0) {
      argv[i] = NULL;  /* ends the previous command's arguments */
      continue;
    }
    if (i == 1 || argv[i - 1] == NULL) {
      if (n == MAX_CHILDREN) {
        fprintf(stderr, "run_all: more than %d commands\n", MAX_CHILDREN);
        return 2;
      }
      starts[n++] = &argv[i];
    }
  }
  if (n == 0) {
    fprintf(stderr, "usage: run_all PROG [ARGS...] [-- PROG [ARGS...]]...\n");
    return 2;
  }
  for (int k = 0; k < n; ++k) {
    pids[k] = fork();
    if (pids[k] < 0) {
      perror("run_all: fork");
      return 2;
    }
    if (pids[k] == 0) {
      execv(starts[k][0], starts[k]);
      perror(starts[k][0]);
      _exit(127);
    }
  }
  int result = 0;
  for (int k = 0; k < n; ++k) {
    while (waitpid(pids[k], &statuses[k], 0) < 0)
      if (errno != EINTR) {
        perror("run_all: waitpid");
        return 2;
      }
  }
  for (int k = 0; k < n; ++k) {
    const int st = statuses[k];
    if (WIFEXITED(st))
      printf("run_all: %d %s: exit %d\n", k, starts[k][0], WEXITSTATUS(st));
    else
      printf("run_all: %d %s: signal %d\n", k, starts[k][0], WTERMSIG(st));
    const int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (code && !result) result = code;
  }
  return result;
}
