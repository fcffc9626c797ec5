// Capstone 4 initialises some tables lazily, on first use and without synchronisation (it
// qsorts a static register table the first time one is needed: ThreadSanitizer caught two
// vCPUs doing it at once). Every Capstone call that decodes holds this lock; decoding happens
// once per new translated block and per traced fault, so it is never hot.
#pragma once

#include <mutex>

namespace emu {

inline std::mutex& capstone_lock() {
  static std::mutex m;
  return m;
}

}  // namespace emu
