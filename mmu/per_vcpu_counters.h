// Counters kept per vCPU slot and summed on demand, so counting on the fault path never
// bounces a shared cache line between vCPUs (the same idea as seed 000's split RSS counters).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "mmu/types.h"

namespace mmu {

// Enum is a counter enum ending in kCount; counter_name(Enum) must be declared for it.
template <class Enum>
class PerVcpuCounters {
 public:
  static constexpr size_t kCount = static_cast<size_t>(Enum::kCount);
  using Snapshot = std::array<uint64_t, kCount>;

  // One slot is written by one thread at a time (its owner), so an increment is a plain
  // load+store; the atomics only make concurrent summing well defined.
  struct alignas(64) Slot {
    std::array<std::atomic<uint64_t>, kCount> value{};
    void add(Enum c, uint64_t n = 1) {
      auto& v = value[static_cast<size_t>(c)];
      v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
  };

  explicit PerVcpuCounters(uint32_t slots) : slots_(new Slot[slots]), count_(slots) {}

  Slot& slot(VcpuId v) { return slots_[v]; }
  uint32_t slot_count() const { return count_; }

  Snapshot sum() const {
    Snapshot s{};
    for (uint32_t i = 0; i < count_; ++i)
      for (size_t c = 0; c < kCount; ++c) s[c] += slots_[i].value[c].load(std::memory_order_relaxed);
    return s;
  }
  uint64_t total(Enum c) const { return sum()[static_cast<size_t>(c)]; }

 private:
  std::unique_ptr<Slot[]> slots_;
  uint32_t count_;
};

}  // namespace mmu
