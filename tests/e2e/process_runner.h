// Runs a program the way a shell would and collects what it printed and how it ended, for
// end-to-end tests that compare emu against a native (or qemu-user) run.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <chrono>
#include <csignal>
#include <cstring>
#include <string>
#include <vector>

extern char** environ;

namespace emu_test {

struct ProcessResult {
  std::string out;
  std::string err;
  int status = -1;  // exit code, or 128+signal like a shell
  bool timed_out = false;
};

// A program that has not ended by then is killed (SIGKILL) and the test sees what it printed
// so far, instead of ctest's timeout killing the whole test binary with nothing to show.
// Kept below ctest's per-test limit (600 s); EMU_TEST_RUN_TIMEOUT overrides it.
inline int run_timeout_seconds() {
  const char* v = std::getenv("EMU_TEST_RUN_TIMEOUT");
  return v && std::atoi(v) > 0 ? std::atoi(v) : 450;
}

// `input` is written to the program's stdin (then closed). `extra_env` entries are added to
// this process's environment.
inline ProcessResult run_process(const std::vector<std::string>& argv, const std::string& input = "",
                                 const std::vector<std::string>& extra_env = {}, int timeout_s = 0) {
  if (timeout_s <= 0) timeout_s = run_timeout_seconds();
  ProcessResult r;
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) return r;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_store;
  for (char** e = environ; *e; ++e) env_store.emplace_back(*e);
  for (const auto& e : extra_env) env_store.push_back(e);
  std::vector<char*> env;
  for (auto& e : env_store) env.push_back(e.data());
  env.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), env.data());
  posix_spawn_file_actions_destroy(&fa);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  if (rc != 0) {
    close(in[1]);
    close(out[0]);
    close(err[0]);
    r.err = std::string("spawn failed: ") + std::strerror(rc);
    r.status = 127;
    return r;
  }
  size_t written = 0;
  if (input.empty()) close(in[1]);
  bool in_open = !input.empty(), out_open = true, err_open = true;
  char buf[65536];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (out_open || err_open) {
    pollfd p[3] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}, {in_open ? in[1] : -1, POLLOUT, 0}};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      // Its children may still hold the pipes open: stop reading rather than wait for them.
      kill(pid, SIGKILL);
      r.timed_out = true;
      r.err += "\n[process_runner] killed after " + std::to_string(timeout_s) + " s\n";
      break;
    }
    if (poll(p, 3, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (!(i == 0 ? out_open : err_open) || !(p[i].revents & (POLLIN | POLLHUP))) continue;
      const ssize_t n = read(p[i].fd, buf, sizeof buf);
      if (n <= 0) {
        (i == 0 ? out_open : err_open) = false;
      } else {
        (i == 0 ? r.out : r.err).append(buf, n);
      }
    }
    if (in_open && (p[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      const ssize_t n = write(in[1], input.data() + written, input.size() - written);
      if (n > 0) written += n;
      if (n <= 0 || written == input.size()) {
        close(in[1]);
        in_open = false;
      }
    }
  }
  if (in_open) close(in[1]);
  close(out[0]);
  close(err[0]);
  int ws = 0;
  waitpid(pid, &ws, 0);
  r.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
  return r;
}

// stderr as emu wrote it: without the "Suppressions used" summary LeakSanitizer appends at
// exit in sanitizer builds (Unicorn's known per-engine leak is suppressed there).
inline std::string without_sanitizer_report(const std::string& err) {
  return err.substr(0, err.find("-----------------------------------------------------\nSuppressions used:"));
}

}  // namespace emu_test
