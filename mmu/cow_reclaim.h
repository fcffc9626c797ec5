// Reclaim of private pages that fork left counted in several address spaces (copy-on-write
// until one side writes). Their owner's reclaim_frames cannot take them: its reverse map
// names one pte, and the other ptes, and other spaces' TLBs, are not its to change. Without
// this, a fork made every resident page unreclaimable at once, and a guest that forked under
// memory pressure ran out of memory with swap to spare (issue 18's flake).
//
// Linux finds such a page's ptes through the anon_vma chain that fork links. Here spaces
// forked from one another share a family id (AddressSpace::family), and fork keeps a page at
// its address, so each member is asked for the pte at the page's address. For each batch:
//
//   1. age: the page stays if any member's pte for it was accessed (the bits are cleared);
//   2. per family, the reclaimer takes every member's mmap lock for read (only tries: it
//      holds several) and each member takes its pte for the page into transition (seed
//      000), unsharing a table fork shared first, and flushes its TLBs once for the batch;
//   3. only if the ptes taken account for every reference the frame has (a space outside
//      the family, or not attached, or a fault copying the page meanwhile leaves one
//      unaccounted) does the page go: written to one swap slot, duplicated for each pte
//      (fork's swap_duplicate), every pte pointing at it; otherwise every pte gets back
//      what it held.
//
// The mmap locks held from transition to swap entry keep fork, munmap and mprotect, which
// must never meet an entry in transition, out of every member until the page is settled.
#pragma once

#include <span>

#include "mmu/frame_pool.h"
#include "mmu/reclaimer.h"
#include "mmu/swap_device.h"

namespace mmu {

class AddressSpace;

// Whether anonymous frame `f` is out of its owner's own reach: counted in more than one pte
// table (fork copied the tables), or mapped through a table fork shares.
bool shared_by_fork(const FramePool& pool, FrameNumber f);

// `spaces`: the address spaces attached to the reclaimer (they stay alive for the call).
// Called by the reclaimer only, one round at a time, from its slot `v`.
ReclaimOutcome reclaim_cow_frames(FramePool& pool, SwapDevice& swap, VcpuId v, std::span<const FrameNumber> frames,
                                  std::span<AddressSpace* const> spaces);

}  // namespace mmu
