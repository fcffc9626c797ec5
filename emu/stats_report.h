// What --stats and --stats-json print at exit: every MMU, frame-pool and emulator counter.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdio>

#include "emu/guest_process.h"

namespace emu {

struct RunSummary {
  std::string program;
  int exit_status = 0;
  double wall_seconds = 0;
};

nlohmann::json stats_json(GuestProcess& process, const RunSummary& run);
void print_stats(std::FILE* out, GuestProcess& process, const RunSummary& run);

}  // namespace emu
