// emu [OPTIONS] PROGRAM [ARGS...]: runs an i386 or x86_64 Linux program (static or dynamic) on parallel
// vCPUs through the software MMU, and exits with the guest's status.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>

#include "emu/cli_options.h"
#include "emu/loader/program.h"
#include "emu/process/guest_process.h"
#include "emu/process/machine.h"
#include "emu/observe/stats_report.h"

extern char** environ;

namespace {

// The signal state emu was started with, read before emu changes any of it (SIGPIPE below):
// the guest inherits it as a program exec'd in emu's place would.
void read_inherited_signals(emu::EmulatorConfig& config) {
  sigset_t mask;
  if (sigprocmask(SIG_SETMASK, nullptr, &mask) == 0) {
    for (int sig = 1; sig <= emu::kMaxSignal; ++sig)
      if (sigismember(&mask, sig) == 1) config.inherited_signal_mask |= emu::signal_bit(sig);
  }
  for (int sig = 1; sig <= emu::kMaxSignal; ++sig) {
    struct sigaction old {};
    if (sigaction(sig, nullptr, &old) == 0 && !(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_IGN)
      config.inherited_ignored_signals |= emu::signal_bit(sig);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"emu: run i386/x86_64 Linux programs on parallel vCPUs through a software MMU"};
  app.name("emu");
  app.footer("Usage: emu [OPTIONS] PROGRAM [ARGS...]  (exit status: the guest's, 128+signal if it died of one)");
  emu::CliOptions opt;
  emu::add_cli_options(app, opt);
  app.prefix_command();  // everything from PROGRAM on belongs to the guest
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "emu: %s (try --help)\n", e.what());
    return 2;
  }
  std::vector<std::string> guest_argv = app.remaining();
  if (guest_argv.empty()) {
    std::fprintf(stderr, "emu: no PROGRAM given (usage: emu [OPTIONS] PROGRAM [ARGS...])\n");
    return 2;
  }
  if (guest_argv[0].size() > 1 && guest_argv[0][0] == '-') {
    // prefix_command() hands over the first word it does not know: an option here is a typo.
    std::fprintf(stderr, "emu: unknown option %s (try --help)\n", guest_argv[0].c_str());
    return 2;
  }
  emu::EmulatorConfig config;
  std::string error;
  if (!emu::resolve_cli_options(opt, config, &error)) {
    std::fprintf(stderr, "emu: %s\n", error.c_str());
    return 2;
  }
  read_inherited_signals(config);
  spdlog::set_default_logger(spdlog::stderr_color_mt("emu"));
  spdlog::set_level(spdlog::level::from_str(opt.log_level));

  emu::ElfError elf_error;
  const auto program = emu::open_program(guest_argv[0], guest_argv, config.sysroot, &elf_error);
  if (!program) {
    std::fprintf(stderr, "emu: %s\n", elf_error.message.c_str());
    return elf_error.exit_status;
  }
  // A guest that writes to a pipe nobody reads gets EPIPE (and its own SIGPIPE), not emu.
  std::signal(SIGPIPE, SIG_IGN);
  auto machine = emu::Machine::create(config, &error);
  if (!machine) {
    std::fprintf(stderr, "emu: %s\n", error.c_str());
    return 2;
  }
  std::vector<std::string> envp;
  for (char** e = environ; *e; ++e) envp.emplace_back(*e);

  const auto start = std::chrono::steady_clock::now();
  const int status = machine->run(*program, envp, &error);
  if (status < 0) {
    std::fprintf(stderr, "emu: %s\n", error.c_str());
    return status == -2 ? 2 : 126;
  }
  std::fflush(stdout);
  if (emu::Tracer* tracer = machine->tracer(); tracer && !tracer->finish(&error))
    std::fprintf(stderr, "emu: %s\n", error.c_str());
  emu::RunSummary summary{guest_argv[0], status,
                          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()};
  if (opt.stats) emu::print_stats(stderr, *machine, summary);
  if (!opt.stats_json.empty()) {
    std::ofstream out(opt.stats_json);
    if (!out) {
      std::fprintf(stderr, "emu: cannot write %s\n", opt.stats_json.c_str());
    } else {
      out << emu::stats_json(*machine, summary).dump(2) << "\n";
    }
  }
  if (!machine->clean_exit()) {
    // A guest thread is still blocked in a host call: leave without tearing down under it.
    std::fflush(nullptr);
    _exit(status);
  }
  return status;
}
