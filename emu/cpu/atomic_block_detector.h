// Which translated blocks contain guest atomics (DESIGN.md decision 6): LOCK-prefixed
// read-modify-write instructions and xchg with a memory operand, which Unicorn executes as
// plain loads and stores. A vCPU asks this at every block boundary while other vCPUs run;
// answers are cached per block address in a small direct-mapped table, dropped when
// executable memory changes (a generation number, so dropping is O(1)). What a block needs:
// nothing, the exclusive gate (an atomic that cannot be done as a host atomic), or nothing
// more because each of its atomics has the vCPU's code hook (find_sites decodes them).
#pragma once

#include <capstone/capstone.h>

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "emu/cpu/guest_arch.h"
#include "emu/cpu/guest_atomics.h"

namespace emu {

class AtomicBlockDetector {
 public:
  explicit AtomicBlockDetector(GuestArch arch);
  ~AtomicBlockDetector();
  AtomicBlockDetector(const AtomicBlockDetector&) = delete;
  AtomicBlockDetector& operator=(const AtomicBlockDetector&) = delete;

  // What a block needs (the cached states).
  static constexpr int kNoAtomics = 0;
  static constexpr int kNeedsGate = 1;  // an atomic without a host-atomic hook
  static constexpr int kHooked = 2;     // every atomic in it has the code hook
  static constexpr int kWarming = 3;    // atomics that can be hooked, once the block is warm

  // The cached state for (address, size), or -1 when it must be scanned.
  int cached(uint64_t address, uint32_t size) const {
    const Entry& e = table_[index(address)];
    return (e.address == address && e.size == size && e.generation == generation_) ? e.state : -1;
  }
  void remember(uint64_t address, uint32_t size, int state) {
    table_[index(address)] = {address, size, generation_, static_cast<uint8_t>(state), 0};
  }
  // Counts one more run of a cached block; returns the count.
  unsigned count_run(uint64_t address) {
    Entry& e = table_[index(address)];
    if (e.runs < 255) ++e.runs;
    return e.runs;
  }
  // Disassembles the block's bytes and caches kNeedsGate or kNoAtomics.
  bool scan(uint64_t address, uint32_t size, std::span<const uint8_t> code);
  void invalidate() { ++generation_; }

  // True if the instruction bytes hold an atomic read-modify-write (also for tests).
  bool contains_atomic(std::span<const uint8_t> code, uint64_t address);
  // The atomics in the instruction bytes: those decode_atomic_site can describe go to
  // `sites`, and *undecoded is set when there is another (it keeps the gate). True if any.
  bool find_sites(std::span<const uint8_t> code, uint64_t address, std::vector<AtomicSite>& sites, bool* undecoded);

 private:
  struct Entry {
    uint64_t address = ~uint64_t{0};
    uint32_t size = 0;
    uint32_t generation = 0;
    uint8_t state = kNoAtomics;
    uint8_t runs = 0;
  };
  static constexpr size_t kEntries = 16384;  // python3 alone runs more distinct blocks than 4096
  static size_t index(uint64_t address) { return (address ^ (address >> 12)) & (kEntries - 1); }

  GuestArch arch_;
  csh handle_ = 0;
  cs_insn* insn_ = nullptr;
  uint32_t generation_ = 1;
  std::unique_ptr<Entry[]> table_;
};

}  // namespace emu
