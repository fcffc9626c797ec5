// What --stats and --stats-json print at exit: every MMU, frame-pool and emulator counter.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdio>

#include "emu/process/guest_process.h"

namespace emu {

struct RunSummary {
  std::string program;
  int exit_status = 0;
  double wall_seconds = 0;
};

class Machine;
// Counters summed over every guest process of the run; the header line describes the first.
nlohmann::json stats_json(Machine& machine, const RunSummary& run);
void print_stats(std::FILE* out, Machine& machine, const RunSummary& run);

}  // namespace emu
