// Reclaim of shared-memory pages (MAP_SHARED, memfd, the page cache): the reclaimer's sweep
// hands frames in state FrameState::Shared here. A frame's descriptor names its object and
// page; the object's mapper list is the reverse map that finds every pte mapping it, in every
// address space, through tables fork shared too. For each batch:
//
//   1. age: a page its object handed to a fault, or whose pte in any mapper was accessed, since
//      the last sweep stays (the bits are cleared: a second chance, as for private pages);
//   2. the object marks each cold page busy: from now on a fault on it waits;
//   3. each address space involved clears its ptes of the batch and flushes its TLBs once
//      (one shootdown per space per batch, not per page);
//   4. a page whose frame no pte holds any more leaves: anonymous memory to swap (once, however
//      many processes mapped it), a dirty file page written back to its file, a clean one
//      dropped (read again on the next fault). A page some pte still holds (a mapper the list
//      did not name; a fork that copied the pte meanwhile) stays, counted as aborted.
//
// No lock is held across address spaces: the object's busy mark is what keeps faults from
// mapping the page again while its ptes go, as seed 000's transition entry does for a private
// page.
#pragma once

#include <span>

#include "mmu/reclaimer.h"
#include "mmu/shared_memory.h"

namespace mmu {

class AddressSpace;

// `spaces`: the address spaces attached to the reclaimer (mappers not among them are skipped;
// they stay alive for the call). Called by the reclaimer only, one round at a time.
ReclaimOutcome reclaim_shared_frames(SharedMemoryRegistry& registry, VcpuId v, std::span<const FrameNumber> frames,
                                     std::span<AddressSpace* const> spaces);

}  // namespace mmu
