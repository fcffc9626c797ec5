#include "emu/cpu/exclusive_gate.h"

#include <sched.h>

#include <chrono>

#include "emu/cpu/vcpu.h"

namespace emu {

namespace {
uint64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
// Spins a little, then yields: on an oversubscribed host the vCPU we wait for needs our core.
void relax(unsigned& spins) {
  if (++spins < 64) {
    __builtin_ia32_pause();
  } else {
    sched_yield();
  }
}
}  // namespace

bool ExclusiveGate::owned_by_other(const Vcpu& self) const {
  const int owner = owner_.load(std::memory_order_seq_cst);
  return owner != kNoOwner && owner != static_cast<int>(self.slot());
}

uint64_t ExclusiveGate::park_while_owned(Vcpu& self) {
  if (!owned_by_other(self)) return 0;
  const uint64_t start = now_ns();
  // Running -> Parked -> Running, re-checking after each return to Running (Dekker).
  do {
    self.set_where(VcpuWhere::Parked);
    unsigned spins = 0;
    while (owned_by_other(self)) {
      self.serve_flushes();
      relax(spins);
    }
    self.set_where(VcpuWhere::Running);
  } while (owned_by_other(self));
  return now_ns() - start;
}

uint64_t ExclusiveGate::begin(Vcpu& self, const ForEachOther& for_each_other) {
  const uint64_t start = now_ns();
  const int me = static_cast<int>(self.slot());
  for (;;) {
    int expected = kNoOwner;
    if (owner_.compare_exchange_strong(expected, me, std::memory_order_seq_cst)) break;
    park_while_owned(self);  // another vCPU's block first; we are at a boundary too
  }
  for_each_other([](Vcpu& other) { other.post(kAttnExclusive); });
  for_each_other([&](Vcpu& other) {
    unsigned spins = 0;
    while (other.where() == VcpuWhere::Running) {
      self.serve_flushes();
      relax(spins);
    }
  });
  return now_ns() - start;
}

void ExclusiveGate::end(Vcpu& self) {
  int expected = static_cast<int>(self.slot());
  owner_.compare_exchange_strong(expected, kNoOwner, std::memory_order_seq_cst);
}

}  // namespace emu
