// Fault events for the tracer. The MMU already counts everything it does per vCPU slot, and
// only the vCPU's own thread writes that slot, so the difference of the slot's counters across
// one translation is exactly the path that fault took: tables populated, locks taken and
// waited for, compare-and-swap retries, zero page or new frame or swap-in, waits for memory.
// No hook inside the MMU, and nothing at all when tracing is off.
#pragma once

#include "emu/observe/tracer.h"
#include "mmu/types.h"

namespace emu {

class Vcpu;

// Translates like AddressSpace::translate and records a fault event (and a lock event when a
// page-table lock was contended) on the vCPU's track.
mmu::Translation traced_translate(Vcpu& vcpu, Tracer& tracer, uint64_t vaddr, mmu::Access access);

}  // namespace emu
