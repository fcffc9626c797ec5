// Which translated blocks contain guest atomics (DESIGN.md decision 6): LOCK-prefixed
// read-modify-write instructions and xchg with a memory operand, which Unicorn executes as
// plain loads and stores. A vCPU asks this at every block boundary while other vCPUs run;
// answers are cached per block address in a small direct-mapped table, dropped when
// executable memory changes (a generation number, so dropping is O(1)).
#pragma once

#include <capstone/capstone.h>

#include <cstdint>
#include <memory>
#include <span>

#include "emu/cpu/guest_arch.h"

namespace emu {

class AtomicBlockDetector {
 public:
  explicit AtomicBlockDetector(GuestArch arch);
  ~AtomicBlockDetector();
  AtomicBlockDetector(const AtomicBlockDetector&) = delete;
  AtomicBlockDetector& operator=(const AtomicBlockDetector&) = delete;

  // nullopt-like: cached answer for (address, size), or -1 when it must be scanned.
  int cached(uint64_t address, uint32_t size) const {
    const Entry& e = table_[index(address)];
    return (e.address == address && e.size == size && e.generation == generation_) ? e.atomic : -1;
  }
  // Disassembles the block's bytes and caches the answer.
  bool scan(uint64_t address, uint32_t size, std::span<const uint8_t> code);
  void invalidate() { ++generation_; }

  // True if the instruction bytes hold an atomic read-modify-write (also for tests).
  bool contains_atomic(std::span<const uint8_t> code, uint64_t address);

 private:
  struct Entry {
    uint64_t address = ~uint64_t{0};
    uint32_t size = 0;
    uint32_t generation = 0;
    bool atomic = false;
  };
  static constexpr size_t kEntries = 4096;
  static size_t index(uint64_t address) { return (address ^ (address >> 12)) & (kEntries - 1); }

  csh handle_ = 0;
  cs_insn* insn_ = nullptr;
  uint32_t generation_ = 1;
  std::unique_ptr<Entry[]> table_;
};

}  // namespace emu
