// Exclusive execution for guest atomics (DESIGN.md decision 6), as QEMU does when it cannot
// generate parallel-safe code: the vCPU about to run a block holding a LOCK-prefixed
// instruction becomes the owner, asks every other vCPU to park at its next block boundary,
// waits until none is Running, runs the block, and lets them go at its next boundary.
//
// A vCPU in a syscall or wait is Outside and never blocks the owner; on its way back into
// guest code it marks itself Running and then checks for an owner (Dekker, seq_cst on both
// sides), so it parks instead of slipping in. Everyone who waits here serves TLB flushes,
// since the owner's block may fault and shoot down.
#pragma once

#include <atomic>
#include <functional>

#include "mmu/types.h"

namespace emu {

class Vcpu;

class ExclusiveGate {
 public:
  static constexpr int kNoOwner = -1;

  // `for_each_other(fn)` calls fn(Vcpu&) for every live vCPU but `self`.
  using ForEachOther = std::function<void(const std::function<void(Vcpu&)>&)>;

  // Returns the nanoseconds spent waiting.
  uint64_t begin(Vcpu& self, const ForEachOther& for_each_other);
  void end(Vcpu& self);
  // Parks `self` (at a block boundary or on re-entry) while another vCPU is owner; returns
  // the nanoseconds parked.
  uint64_t park_while_owned(Vcpu& self);
  bool owned_by_other(const Vcpu& self) const;

 private:
  std::atomic<int> owner_{kNoOwner};
};

}  // namespace emu
