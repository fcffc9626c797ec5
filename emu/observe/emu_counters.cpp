#include "emu/observe/emu_counters.h"

namespace emu {

std::string_view counter_name(EmuCounter c) {
  switch (c) {
    case EmuCounter::Syscalls: return "syscalls";
    case EmuCounter::UnknownSyscalls: return "unknown_syscalls";
    case EmuCounter::VcpusStarted: return "vcpus_started";
    case EmuCounter::TlbFillCalls: return "tlb_fill_calls";
    case EmuCounter::TlbFlushesServed: return "tlb_flushes_served";
    case EmuCounter::ShootdownsRequested: return "shootdowns_requested";
    case EmuCounter::ShootdownWaitNs: return "shootdown_wait_ns";
    case EmuCounter::CodeFlushesServed: return "code_flushes_served";
    case EmuCounter::AtomicBlockScans: return "atomic_block_scans";
    case EmuCounter::ExclusiveSections: return "exclusive_sections";
    case EmuCounter::ExclusiveWaitNs: return "exclusive_wait_ns";
    case EmuCounter::ParkedNs: return "parked_ns";
    case EmuCounter::FutexWaits: return "futex_waits";
    case EmuCounter::FutexWakes: return "futex_wakes";
    case EmuCounter::SignalsDelivered: return "signals_delivered";
    case EmuCounter::SyscallsRestarted: return "syscalls_restarted";
    case EmuCounter::AtomicSitesHooked: return "atomic_sites_hooked";
    case EmuCounter::AtomicsHost: return "atomics_host";
    case EmuCounter::AtomicsRedirected: return "atomics_redirected";
    case EmuCounter::AtomicsGated: return "atomics_gated";
    case EmuCounter::AtomicSplitLocks: return "atomic_split_locks";
    case EmuCounter::AtomicPageCrossings: return "atomic_page_crossings";
    case EmuCounter::HookedForReclaim: return "hooked_for_reclaim";
    case EmuCounter::kCount: break;
  }
  return "?";
}

}  // namespace emu
