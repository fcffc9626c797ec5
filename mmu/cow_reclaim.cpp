#include "mmu/cow_reclaim.h"

#include <map>
#include <vector>

#include "mmu/address_space.h"

namespace mmu {

namespace {

struct Page {
  FrameNumber frame;
  VirtAddr va;
  AddressSpace* owner;
};

std::vector<AddressSpace*> family_of(std::span<AddressSpace* const> spaces, uint32_t family) {
  std::vector<AddressSpace*> out;
  for (AddressSpace* s : spaces)
    if (s->family() == family) out.push_back(s);
  return out;
}

// The slot the page goes to, holding one reference, or kNoSwapSlot (and why in `outcome`).
// A swap copy the frame kept since it was read back is reused if no pte wrote the page since.
SwapSlot write_once(FramePool& pool, SwapDevice& swap, FrameNumber f, bool dirty, uint64_t slot_limit,
                    AddressSpace& owner, VcpuId v, ReclaimOutcome& outcome) {
  auto& stats = owner.counters().slot(v);
  const uint32_t copy = pool.descriptor(f).swap_copy.exchange(0, std::memory_order_acq_rel);
  if (copy && !dirty) {
    stats.add(MmuCounter::ReclaimCleanDropped);
    return copy - 1;
  }
  if (copy) swap.free(copy - 1);
  const SwapSlot slot = swap.allocate(slot_limit);
  if (slot == kNoSwapSlot) {
    stats.add(MmuCounter::SwapFull);
    outcome.swap_full = true;
    return kNoSwapSlot;
  }
  if (!swap.write(slot, pool.frame_ptr(f))) {
    swap.free(slot);
    stats.add(MmuCounter::SwapOutErrors);
    outcome.io_error = true;
    return kNoSwapSlot;
  }
  stats.add(MmuCounter::SwapOuts);
  return slot;
}

// Steps 2 and 3 for the pages of one family. The members' mmap locks are taken in a loop and
// released at the end, which the thread-safety analysis cannot follow; every call that needs
// one (take_cow_ptes, settle_cow_pte) is made between the two loops, for a member whose lock
// was taken.
void reclaim_family(FramePool& pool, SwapDevice& swap, VcpuId v, const std::vector<AddressSpace*>& members,
                    const std::vector<Page>& pages, ReclaimOutcome& outcome) EMU_NO_THREAD_SAFETY_ANALYSIS {
  size_t locked = 0;
  while (locked < members.size() && members[locked]->try_lock_for_rmap(v)) ++locked;
  if (locked == members.size()) {
    std::vector<std::vector<AddressSpace::CowTarget>> targets(members.size());
    for (size_t m = 0; m < members.size(); ++m) {
      targets[m].reserve(pages.size());
      for (const Page& p : pages) targets[m].push_back({p.va, p.frame});
      members[m]->take_cow_ptes(v, targets[m]);
    }
    for (size_t i = 0; i < pages.size(); ++i) {
      const Page& p = pages[i];
      uint32_t taken = 0;
      bool dirty = false;
      for (size_t m = 0; m < members.size(); ++m) {
        if (!targets[m][i].taken) continue;
        ++taken;
        dirty |= targets[m][i].dirty;
      }
      if (taken == 0) continue;
      // Every pte is in transition now: the count can only fall (a space outside the family
      // letting go), never rise, so equal means no pte is left that we did not take.
      SwapSlot slot = kNoSwapSlot;
      if (taken == pool.refs(p.frame)) {
        slot = write_once(pool, swap, p.frame, dirty, members.front()->swap_slot_limit(), *p.owner, v, outcome);
      } else {
        p.owner->counters().slot(v).add(MmuCounter::CowKept);
      }
      bool first = true;
      for (size_t m = 0; m < members.size(); ++m) {
        const AddressSpace::CowTarget& t = targets[m][i];
        if (!t.taken) continue;
        if (slot != kNoSwapSlot && !first) swap.dup(slot);
        first = false;
        members[m]->settle_cow_pte(v, t, slot);
        if (slot != kNoSwapSlot && pool.drop_ref(p.frame)) pool.free(v, p.frame);
      }
      if (slot == kNoSwapSlot) continue;
      auto& stats = p.owner->counters().slot(v);
      stats.add(MmuCounter::CowSwappedOut);
      stats.add(MmuCounter::Reclaimed);
      ++outcome.freed;
    }
  }
  for (size_t m = 0; m < locked; ++m) members[m]->unlock_for_rmap(v);
}

}  // namespace

bool shared_by_fork(const FramePool& pool, FrameNumber f) {
  const FrameDescriptor& d = pool.descriptor(f);
  if (d.refs.load(std::memory_order_acquire) > 1) return true;
  const PhysAddr at = d.rmap_pte.load(std::memory_order_acquire);
  const FrameNumber table = static_cast<FrameNumber>(at >> kPageShift);
  if (at == 0 || table >= pool.frame_count()) return false;
  const FrameDescriptor& t = pool.descriptor(table);
  return t.state.load(std::memory_order_acquire) == FrameState::PageTable &&
         t.refs.load(std::memory_order_acquire) > 1;
}

ReclaimOutcome reclaim_cow_frames(FramePool& pool, SwapDevice& swap, VcpuId v, std::span<const FrameNumber> frames,
                                  std::span<AddressSpace* const> spaces) {
  ReclaimOutcome outcome;
  std::map<uint32_t, std::vector<Page>> by_family;
  for (const FrameNumber f : frames) {
    const FrameDescriptor& d = pool.descriptor(f);
    if (d.state.load(std::memory_order_acquire) != FrameState::Anon) continue;
    const uint32_t id = d.owner.load(std::memory_order_relaxed);
    AddressSpace* owner = nullptr;
    for (AddressSpace* s : spaces)
      if (s->id() == id) owner = s;
    if (!owner) continue;
    const VirtAddr va = d.vaddr.load(std::memory_order_relaxed);
    owner->counters().slot(v).add(MmuCounter::ReclaimScanned);
    // 1. Age. Every member's bit is cleared, whatever the others say.
    bool hot = false;
    for (AddressSpace* member : family_of(spaces, owner->family())) hot |= member->clear_accessed_if_maps(v, va, f);
    if (hot) continue;
    by_family[owner->family()].push_back({f, va, owner});
  }
  for (const auto& [family, pages] : by_family) reclaim_family(pool, swap, v, family_of(spaces, family), pages, outcome);
  return outcome;
}

}  // namespace mmu
