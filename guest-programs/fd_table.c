/* fd_table: a process's own descriptors and current directory. Redirects its stdout into a
 * pipe and reads it back, writes to a closed fd 1, checks lowest-free numbering, dup's shared
 * offset, close-on-exec flags, poll of a fd that is not open, then chdir/fchdir/getcwd with
 * relative opens in a temporary directory, and /proc/self/fd, /proc/self/cwd, /dev/stdout.
 * Last it closes its fds 0, 1 and 2 and exits 0: under emu, emu's own stderr must survive.
 *
 *   $ ./fd_table
 *   pipe on fd 1: read back 'through the pipe'
 *   ...
 *   all ok
 *
 * Everything on stdout is the same natively and under emu (no fd numbers or paths). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

static const char *prog = "fd_table";
static int failures = 0;

static void check(int ok, const char *what) {
  printf("%s: %s\n", what, ok ? "ok" : "FAILED");
  if (!ok) failures++;
}

/* Runs `write_it` with fd 1 on a pipe and returns what reached the pipe. */
static const char *through_pipe(void (*write_it)(void)) {
  static char got[128];
  int p[2];
  if (pipe(p) != 0) die_errno(prog, "pipe", errno);
  fflush(stdout);
  const int saved = dup(1);
  if (saved < 0 || dup2(p[1], 1) != 1) die_errno(prog, "dup2", errno);
  close(p[1]);
  write_it();
  /* fd 1 was the pipe's last write end: from here it reads EOF after the data. */
  if (dup2(saved, 1) != 1) die_errno(prog, "dup2 back", errno);
  close(saved);
  size_t n = 0;
  ssize_t r;
  while (n < sizeof got - 1 && (r = read(p[0], got + n, sizeof got - 1 - n)) > 0) n += (size_t)r;
  got[n] = '\0';
  close(p[0]);
  return got;
}

static void write_fd1(void) { (void)!write(1, "through the pipe", 16); }

static void write_dev_stdout(void) {
  const int fd = open("/dev/stdout", O_WRONLY);
  if (fd >= 0) {
    (void)!write(fd, "via /dev/stdout", 15);
    close(fd);
  }
}

static void descriptors(void) {
  const char *got = through_pipe(write_fd1);
  printf("pipe on fd 1: read back '%s'\n", got);
  check(strcmp(got, "through the pipe") == 0, "dup2 of a pipe onto fd 1");
  check(strcmp(through_pipe(write_dev_stdout), "via /dev/stdout") == 0, "/dev/stdout is the pipe on fd 1");

  fflush(stdout);
  const int saved = dup(1);
  close(1);
  errno = 0;
  const int w = (int)write(1, "x", 1);
  const int write_errno = errno;
  const int getfd = fcntl(1, F_GETFD);
  const int getfd_errno = errno;
  if (dup2(saved, 1) != 1) die_errno(prog, "dup2 back", errno);
  close(saved);
  check(w == -1 && write_errno == EBADF && getfd == -1 && getfd_errno == EBADF, "fd 1 closed: EBADF");

  const int held = dup(0);
  close(0);
  const int reopened = open("/dev/null", O_RDONLY);
  check(reopened == 0, "open after close(0) takes fd 0");
  if (held >= 0 && dup2(held, 0) == 0) close(held);

  const int ce = open("/dev/null", O_RDONLY | O_CLOEXEC);
  const int plain = dup(ce);
  check(fcntl(ce, F_GETFD) == FD_CLOEXEC && fcntl(plain, F_GETFD) == 0, "O_CLOEXEC is the fd's, dup clears it");
  check(fcntl(plain, F_SETFD, FD_CLOEXEC) == 0 && fcntl(plain, F_GETFD) == FD_CLOEXEC && fcntl(ce, F_GETFD) == FD_CLOEXEC,
        "F_SETFD");
  const int high = fcntl(ce, F_DUPFD_CLOEXEC, 20);
  check(high >= 20 && fcntl(high, F_GETFD) == FD_CLOEXEC, "F_DUPFD_CLOEXEC at or above its minimum");
  errno = 0;
  check(dup3(ce, ce, 0) == -1 && errno == EINVAL, "dup3 onto itself: EINVAL");
  check(dup2(ce, ce) == ce, "dup2 onto itself");
  close(high);
  close(plain);

  struct pollfd p[2] = {{ce, POLLIN, 0}, {-1, POLLIN, 0}};
  close(ce);  /* not open any more: POLLNVAL, counted as ready */
  check(poll(p, 2, -1) == 1 && p[0].revents == POLLNVAL && p[1].revents == 0, "poll of a closed fd: POLLNVAL");
}

static int ends_with(const char *s, const char *tail) {
  const size_t n = strlen(s), m = strlen(tail);
  return n >= m && strcmp(s + n - m, tail) == 0;
}

static void directories(void) {
  char dir[] = "/tmp/emu_fd_table_XXXXXX";
  if (!mkdtemp(dir)) die_errno(prog, "mkdtemp", errno);
  char real[PATH_MAX], cwd[PATH_MAX], link[PATH_MAX];
  if (!realpath(dir, real)) die_errno(prog, "realpath", errno);
  if (chdir(dir) != 0) die_errno(prog, "chdir", errno);
  check(getcwd(cwd, sizeof cwd) && strcmp(cwd, real) == 0, "getcwd after chdir");
  errno = 0;
  check(getcwd(cwd, 3) == NULL && errno == ERANGE, "getcwd into a small buffer: ERANGE");
  ssize_t n = readlink("/proc/self/cwd", link, sizeof link - 1);
  link[n > 0 ? n : 0] = '\0';
  check(strcmp(link, real) == 0, "/proc/self/cwd is the current directory");

  if (mkdir("sub", 0700) != 0 || chdir("sub") != 0) die_errno(prog, "mkdir/chdir sub", errno);
  const int fd = open("f", O_CREAT | O_RDWR | O_TRUNC, 0600);
  if (fd < 0) die_errno(prog, "open f", errno);
  if (write(fd, "0123456789", 10) != 10) die_errno(prog, "write f", errno);
  const int d = dup(fd);
  lseek(fd, 2, SEEK_SET);
  check(lseek(d, 0, SEEK_CUR) == 2, "dup shares the file offset");
  char proc_fd[64];
  snprintf(proc_fd, sizeof proc_fd, "/proc/self/fd/%d", d);
  n = readlink(proc_fd, link, sizeof link - 1);
  link[n > 0 ? n : 0] = '\0';
  check(ends_with(link, "/sub/f"), "/proc/self/fd/N names the guest's file");
  close(fd);
  close(d);

  if (chdir("..") != 0) die_errno(prog, "chdir ..", errno);
  char buf[16] = {0};
  const int rf = open("sub/f", O_RDONLY);
  check(rf >= 0 && read(rf, buf, sizeof buf - 1) == 10 && strcmp(buf, "0123456789") == 0, "relative open after chdir ..");
  close(rf);

  const int sub = open("sub", O_RDONLY | O_DIRECTORY);
  check(sub >= 0 && fchdir(sub) == 0 && getcwd(cwd, sizeof cwd) && ends_with(cwd, "/sub") && access("f", F_OK) == 0,
        "fchdir");
  close(sub);
  struct stat st;
  check(unlink("f") == 0 && chdir("..") == 0 && rmdir("sub") == 0 && stat("sub", &st) == -1 && chdir("/") == 0 &&
            rmdir(dir) == 0,
        "unlink, rmdir relative to the current directory");
}

int main(void) {
  descriptors();
  directories();
  if (failures)
    printf("%d FAILED\n", failures);
  else
    printf("all ok\n");
  fflush(stdout);
  /* emu's own stdout and stderr are not these: its --stats must still reach its stderr. */
  close(0);
  close(1);
  close(2);
  return failures ? 1 : 0;
}
