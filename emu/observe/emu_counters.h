// What the emulator (as opposed to the MMU) counts. Names are stable: --stats-json keys.
#pragma once

#include <string_view>

#include "mmu/per_vcpu_counters.h"

namespace emu {

enum class EmuCounter : uint16_t {
  Syscalls,
  UnknownSyscalls,
  VcpusStarted,
  TlbFillCalls,
  TlbFlushesServed,      // mailbox flush requests served by this vCPU
  ShootdownsRequested,   // flushes this vCPU asked of the others
  ShootdownWaitNs,       // time it waited for their acknowledgements
  CodeFlushesServed,     // translated blocks dropped after executable memory changed
  AtomicBlockScans,      // blocks disassembled to look for LOCK-prefixed instructions
  ExclusiveSections,     // blocks with guest atomics run with the other vCPUs parked
  ExclusiveWaitNs,       // time spent getting the others parked
  ParkedNs,              // time parked while another vCPU ran exclusively
  FutexWaits,
  FutexWakes,
  SignalsDelivered,      // handler frames built by this vCPU
  SyscallsRestarted,     // blocking syscalls interrupted by a signal and run again
  AtomicSitesHooked,     // locked instructions given the host-atomic code hook
  AtomicsHost,           // locked instructions done as host atomics (no other vCPU stopped)
  AtomicsRedirected,     // ... of which Unicorn then ran on a scratch copy (no exit from translated code)
  AtomicsGated,          // locked instructions the hook left to the exclusive gate (below, or a fault)
  AtomicSplitLocks,      // ... because the operand crosses a cache line (a host split lock)
  AtomicPageCrossings,   // ... because the operand crosses a page
  HookedForReclaim,      // vCPUs that took the block hook because memory ran short (no swap)
  kCount
};

std::string_view counter_name(EmuCounter c);

using EmuCounters = mmu::PerVcpuCounters<EmuCounter>;

}  // namespace emu
