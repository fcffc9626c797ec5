// The emu command line (CLI11), shared by the emulator and its tests.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <vector>

#include "emu/process/guest_process.h"

namespace emu {

struct CliOptions {
  std::string scheme = "split";
  std::string paging = "auto";
  std::string mem = "1G";
  std::string swap = "0";
  std::string swap_file;
  std::string inject_swap_errors;
  std::string trace;
  std::string trace_file;
  std::string trace_json;
  std::string trace_addr;
  std::string trace_vcpus;
  std::string rss = "per-vcpu";
  std::string pt_share = "on";
  std::string file_pages = "shared";
  uint32_t max_vcpus = 64;
  uint32_t max_processes = 256;
  bool stats = false;
  std::string stats_json;
  std::string log_level = "warn";
  std::string sysroot;  // -L; EMU_LD_PREFIX when not given
  bool no_aslr = false;
};

void add_cli_options(CLI::App& app, CliOptions& opt);
// Checks and converts; false and one line in *error for bad values.
bool resolve_cli_options(const CliOptions& opt, EmulatorConfig& config, std::string* error);
// "64M", "1G", "4096", "512K": bytes; nullopt when malformed.
std::optional<uint64_t> parse_size(const std::string& text);

}  // namespace emu
