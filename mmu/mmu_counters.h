// What the address space and its locking scheme count (DESIGN.md: "Each scheme counts what
// it does"). Names are stable: they are the keys of --stats-json.
#pragma once

#include <string_view>

#include "mmu/per_vcpu_counters.h"

namespace mmu {

enum class MmuCounter : uint16_t {
  TranslateHit,         // walk found a usable entry, nothing changed
  AccessedDirtySet,     // walk set A or D atomically on an existing entry
  FaultZeroFill,        // minor fault: fresh zeroed frame
  FaultZeroPage,        // read of an untouched anonymous page: shared zero frame mapped
  FaultCopyOnWrite,     // first write to a page mapped to the zero frame
  FaultWriteUpgrade,    // write allowed by the VMA, entry made writable in place
  FaultFileFill,        // private file-backed page filled from its source
  FaultStackGrowth,     // grows-down stack extended
  FaultMajor,           // page read back from backing store
  FaultSegvMap,
  FaultSegvAccess,
  FaultOutOfMemory,
  FaultRetry,           // fault retried after losing a race or meeting an entry in transition
  LockAcquisitions,     // page-table locks taken (global/split spin locks, ptebit lock bits)
  LockContended,        // ... of which had to wait
  LockWaitNs,           // time spent waiting for them
  CmpxchgFailures,      // compare-and-swap on an entry that found it changed
  PopulateRacesLost,    // upper-level table allocated, but another vCPU populated first
  LeafRacesLost,        // leaf prepared, but another vCPU changed the entry first
  TablesAllocated,
  TablesFreed,
  TableCtorFailures,
  Shootdowns,
  ShootdownPages,
  MmapCalls,
  MunmapCalls,
  MprotectCalls,
  ReclaimScanned,       // frames the reclaimer looked at
  ReclaimAged,          // ... found accessed: bit cleared, page kept (second chance)
  Reclaimed,            // pages unmapped and their frames freed
  ReclaimCleanDropped,  // ... of which had an up-to-date swap copy and needed no write
  SwapOuts,             // pages written to swap
  SwapOutErrors,        // writes that failed (the page stays resident)
  SwapFull,             // pages kept because no swap slot was free
  SwapInErrors,         // reads that failed (the fault ends in SIGBUS)
  FaultMemoryWaits,     // faults that found no free frame and waited for the reclaimer
  CodeInvalidations,    // reclaim batches that unmapped executable pages
  // fork (seed 004)
  Forks,                // address spaces forked from this one
  ForkTablesShared,     // pte tables shared with a child instead of copied (--pt-share on)
  ForkTablesCopied,     // pte tables copied for a child (--pt-share off)
  UnsharesCopied,       // first change through a shared table: it was copied (count > 1)
  UnsharesExclusive,    // ... it was ours alone by then (count 1): made writable in place
  SharedTablesDropped,  // shared tables unmapped whole: our reference dropped, nothing copied
  FaultCowCopy,         // write to a page still shared with another process: copied
  FaultCowReuse,        // write to a copy-on-write page no one else maps any more: reused
  // shared memory and the page cache (MAP_SHARED)
  FaultSharedFill,      // page of a shared object first touched: zeroed or read from its file
  FaultSharedHit,       // page found in its object (mapped by another process or mapping)
  RmapWalks,            // ptes of shared pages looked up for the reclaimer (mmu/paged/shared_rmap.h)
  SharedUnmapped,       // ... and cleared, so that the page could leave memory
  // pages fork left counted in several spaces (mmu/cow_reclaim.h), in the owner's counters
  CowSwappedOut,        // sent to swap once, every pte of the family pointed at the slot
  CowKept,              // taken into transition, but a reference was not found: put back
  kCount
};

std::string_view counter_name(MmuCounter c);

using MmuCounters = PerVcpuCounters<MmuCounter>;

}  // namespace mmu
