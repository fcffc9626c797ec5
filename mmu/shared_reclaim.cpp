#include "mmu/shared_reclaim.h"

#include <map>
#include <memory>
#include <vector>

#include "mmu/address_space.h"

namespace mmu {

namespace {

struct Candidate {
  std::shared_ptr<SharedMemory> object;  // alive until the page is settled
  SharedEviction eviction;
};

AddressSpace* attached(std::span<AddressSpace* const> spaces, uint32_t id) {
  for (AddressSpace* s : spaces)
    if (s->id() == id) return s;
  return nullptr;
}

VirtAddr page_address(const SharedMemory::Mapper& m, uint64_t index) { return m.base + index * kPageSize; }

}  // namespace

ReclaimOutcome reclaim_shared_frames(SharedMemoryRegistry& registry, VcpuId v, std::span<const FrameNumber> frames,
                                     std::span<AddressSpace* const> spaces) {
  ReclaimOutcome outcome;
  FramePool& pool = registry.pool();
  SharedMemoryStats& stats = registry.stats();
  std::vector<Candidate> candidates;
  // Per address space, the ptes to clear, and which candidate each belongs to.
  std::map<AddressSpace*, std::vector<AddressSpace::RmapTarget>> targets;
  std::map<AddressSpace*, std::vector<size_t>> owners;

  // 1. Age, every page of the batch before any is made busy: aging waits for each space's
  // mmap lock, and nothing may wait for one while a page is busy (below).
  struct Cold {
    FrameNumber frame;
    uint64_t index;
    std::shared_ptr<SharedMemory> object;
    std::vector<SharedMemory::Mapper> mappers;
  };
  std::vector<Cold> cold;
  for (const FrameNumber f : frames) {
    const FrameDescriptor& d = pool.descriptor(f);
    if (d.state.load(std::memory_order_acquire) != FrameState::Shared) continue;
    const uint32_t id = d.owner.load(std::memory_order_acquire);
    const uint64_t index = d.vaddr.load(std::memory_order_relaxed);
    auto object = id ? registry.by_id(id) : nullptr;
    if (!object) continue;
    auto mappers = object->mappers();
    // Every mapper's bit is cleared, whatever the others say.
    bool hot = object->test_and_clear_referenced(index);
    for (const auto& m : mappers) {
      AddressSpace* space = attached(spaces, m.space);
      if (!space) continue;
      stats.rmap_walks.fetch_add(1, std::memory_order_relaxed);
      hot |= space->clear_accessed_if_maps(v, page_address(m, index), f);
    }
    if (!hot) cold.push_back({f, index, std::move(object), std::move(mappers)});
  }

  for (Cold& c : cold) {
    const FrameNumber f = c.frame;
    const uint64_t index = c.index;
    const auto& mappers = c.mappers;
    auto& object = c.object;
    // 2. Busy from here on (false: the page moved or went meanwhile).
    SharedEviction eviction;
    if (!object->begin_evict(index, f, &eviction)) continue;
    const size_t at = candidates.size();
    candidates.push_back({std::move(object), eviction});
    for (const auto& m : mappers) {
      AddressSpace* space = attached(spaces, m.space);
      if (!space) continue;
      targets[space].push_back({page_address(m, index), f});
      owners[space].push_back(at);
    }
  }

  // 3. One pass (and one shootdown) per address space. A fault on a busy page waits for it
  // holding its space's mmap lock for read, and a writer queued on that lock (munmap, say)
  // keeps new readers out: were the reclaimer to wait for the lock here, all three would
  // wait for ever (found by tools/soak.py). So a space whose lock is not free at once is
  // passed over; its ptes keep their frames, and finish_evict keeps those pages.
  for (auto& [space, list] : targets) {
    if (!space->unmap_shared_pages(v, list)) continue;
    const auto& who = owners[space];
    for (size_t i = 0; i < list.size(); ++i)
      if (list[i].dirty) candidates[who[i]].eviction.dirty = true;
  }

  // 4. Settle each page.
  for (Candidate& c : candidates) {
    bool io_error = false;
    if (c.object->finish_evict(v, c.eviction, &io_error)) {
      ++outcome.freed;
    } else if (io_error) {
      outcome.io_error = true;
    }
  }
  return outcome;
}

}  // namespace mmu
