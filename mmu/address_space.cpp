#include "mmu/address_space.h"

#include "mmu/shared_memory.h"

#include <algorithm>

namespace mmu {

namespace {
// Linux keeps this much unmapped space below a grows-down stack (stack_guard_gap).
constexpr uint64_t kStackGuardGap = 256 * kPageSize;
// Room left above "anywhere" mappings for the main stack.
constexpr uint64_t kStackReserve = uint64_t{128} << 20;
}  // namespace

AddressSpace::AddressSpace(FramePool& pool, const AddressSpaceConfig& config, VirtAddr limit)
    : pool_(pool),
      config_(config),
      limit_(limit),
      tlbs_(config.tlbs ? config.tlbs : &no_tlbs_),
      mmap_lock_(pool.vcpu_slots()),
      counters_(pool.vcpu_slots()),
      rss_split_(new RssSlot[pool.vcpu_slots()]),
      family_(config.id) {}

AddressSpace::~AddressSpace() = default;

void AddressSpace::teardown() {
  const VcpuId v = teardown_slot_;
  MmapWriteGuard g(mmap_lock_, v);
  auto batch = make_batch(v);
  // Whole tables only: a shared one is dropped, never copied, so this cannot fail.
  if (!zap_range_locked(batch, v, 0, limit_)) std::abort();
  // Off the reverse maps of the shared objects it mapped (the reclaimer no longer looks here).
  vmas_.for_each([&](const Vma& vma) {
    if (vma.shared) vma.shared->forget_space(config_.id);
  });
  vmas_.remove(0, limit_);
  batch.finish();
}

int64_t AddressSpace::rss_pages() const {
  int64_t n = rss_shared_.load(std::memory_order_relaxed);
  for (uint32_t i = 0; i < pool_.vcpu_slots(); ++i) n += rss_split_[i].value.load(std::memory_order_relaxed);
  return n;
}

std::vector<Vma> AddressSpace::vmas(VcpuId v) {
  MmapReadGuard g(mmap_lock_, v);
  std::vector<Vma> out;
  vmas_.for_each([&](const Vma& vma) { out.push_back(vma); });
  return out;
}

void AddressSpace::inject_table_ctor_failures(uint64_t skip, uint64_t count) {
  ctor_fail_skip_.store(static_cast<int64_t>(skip), std::memory_order_relaxed);
  ctor_fail_count_.store(static_cast<int64_t>(count), std::memory_order_relaxed);
}

bool AddressSpace::table_ctor_should_fail() {
  if (ctor_fail_count_.load(std::memory_order_relaxed) <= 0) return false;
  if (ctor_fail_skip_.fetch_sub(1, std::memory_order_relaxed) > 0) return false;
  return ctor_fail_count_.fetch_sub(1, std::memory_order_relaxed) > 0;
}

MmResult AddressSpace::map(VcpuId v, const MapRequest& req) {
  if (req.length == 0 || (req.prot & ~(kProtRead | kProtWrite | kProtExec))) return MmResult::failure(MmError::InvalidArgument);
  const auto length = page_ceil(req.length);
  if (!length || *length > limit_) return MmResult::failure(MmError::NoMemory);
  const bool fixed = req.placement == MapPlacement::Fixed || req.placement == MapPlacement::FixedNoReplace;
  if (fixed && !is_page_aligned(req.addr)) return MmResult::failure(MmError::InvalidArgument);
  if (fixed && (req.addr > limit_ - *length)) return MmResult::failure(MmError::NoMemory);
  if (req.kind == VmaKind::FilePrivate && (!req.source || !is_page_aligned(req.source_offset)))
    return MmResult::failure(MmError::InvalidArgument);
  if (req.kind == VmaKind::Shared && (!req.shared || !is_page_aligned(req.source_offset)))
    return MmResult::failure(MmError::InvalidArgument);
  MapRequest r = req;
  r.length = *length;
  // Declared before the guard: flushing and freeing what a fixed map replaced happen after
  // the mmap lock is released (its destructor runs last).
  auto batch = make_batch(v);
  MmapWriteGuard g(mmap_lock_, v);
  counters_.slot(v).add(MmuCounter::MmapCalls);
  return map_locked(batch, v, r);
}

MmResult AddressSpace::map_locked(ShootdownBatch& batch, VcpuId v, const MapRequest& req) {
  VirtAddr start = 0;
  const uint64_t length = req.length;
  switch (req.placement) {
    case MapPlacement::Fixed:
      start = req.addr;
      if (vmas_.overlaps(start, start + length) && !unmap_locked(batch, v, start, start + length))
        return MmResult::failure(MmError::NoMemory);
      break;
    case MapPlacement::FixedNoReplace:
      start = req.addr;
      if (vmas_.overlaps(start, start + length)) return MmResult::failure(MmError::AlreadyMapped);
      break;
    case MapPlacement::Hint:
    case MapPlacement::Anywhere: {
      const VirtAddr hint = page_floor(req.addr);
      if (req.placement == MapPlacement::Hint && hint >= config_.mmap_floor && hint <= limit_ - length &&
          !vmas_.overlaps(hint, hint + length)) {
        start = hint;
        break;
      }
      const VirtAddr ceiling = config_.mmap_ceiling ? std::min(config_.mmap_ceiling, limit_) : limit_ - kStackReserve;
      auto gap = vmas_.find_gap_top_down(length, config_.mmap_floor, ceiling);
      // Below the preferred area failed: try the whole space, as Linux falls back bottom-up.
      if (!gap) gap = vmas_.find_gap_top_down(length, config_.mmap_floor, limit_);
      if (!gap) return MmResult::failure(MmError::NoMemory);
      start = *gap;
      break;
    }
  }
  Vma vma;
  vma.start = start;
  vma.end = start + length;
  vma.prot = req.prot;
  vma.kind = req.kind;
  vma.flags = req.flags;
  vma.name = req.name;
  if (req.kind == VmaKind::FilePrivate) {
    vma.source = req.source;
    vma.source_offset = req.source_offset;
    vma.source_end = req.source_offset + req.source_length;
  }
  if (req.kind == VmaKind::Shared || (req.kind == VmaKind::FilePrivate && req.shared)) {
    vma.shared = req.shared;
    vma.source_offset = req.source_offset;
    vma.shared->add_mapper(config_.id, start - req.source_offset);  // the reverse map
  }
  vmas_.insert(std::move(vma));
  return MmResult::success(start);
}

bool AddressSpace::unmap_locked(ShootdownBatch& batch, VcpuId v, VirtAddr start, VirtAddr end) {
  if (!zap_range_locked(batch, v, start, end)) return false;
  vmas_.remove(start, end);
  return true;
}

MmResult AddressSpace::unmap(VcpuId v, VirtAddr addr, uint64_t length) {
  if (!is_page_aligned(addr) || length == 0) return MmResult::failure(MmError::InvalidArgument);
  const auto len = page_ceil(length);
  if (!len || addr >= limit_ || *len > limit_ - addr) return MmResult::failure(MmError::InvalidArgument);
  // The ptes are cleared under the lock; the flush and the frees follow after it is released
  // (the batch outlives the guard), so faults elsewhere in the space wait less.
  auto batch = make_batch(v);
  MmapWriteGuard g(mmap_lock_, v);
  counters_.slot(v).add(MmuCounter::MunmapCalls);
  if (!unmap_locked(batch, v, addr, addr + *len)) return MmResult::failure(MmError::NoMemory);
  return MmResult::success(0);
}

AddressSpace::ObjectZap AddressSpace::zap_object_pages(VcpuId v, const SharedMemory& object, uint64_t from) {
  ObjectZap result;
  auto batch = make_batch(v);
  MmapWriteGuard g(mmap_lock_, v);
  std::vector<std::pair<VirtAddr, VirtAddr>> ranges;
  vmas_.for_each([&](const Vma& vma) {
    if (vma.shared.get() != &object) return;
    // vma.source_offset is the file offset of vma.start, for both kinds that map an object.
    const uint64_t skip = from > vma.source_offset ? from - vma.source_offset : 0;
    if (skip >= vma.length()) return;
    ranges.emplace_back(vma.start + skip, vma.end);
    if (vma.prot & kProtExec) result.code = true;
  });
  for (const auto& [start, end] : ranges) {
    if (!zap_range_locked(batch, v, start, end)) {
      result.ok = false;
      break;
    }
  }
  return result;
}

MmResult AddressSpace::protect(VcpuId v, VirtAddr addr, uint64_t length, uint8_t prot) {
  if (!is_page_aligned(addr) || (prot & ~(kProtRead | kProtWrite | kProtExec)))
    return MmResult::failure(MmError::InvalidArgument);
  if (length == 0) return MmResult::success(0);
  const auto len = page_ceil(length);
  if (!len || addr >= limit_ || *len > limit_ - addr) return MmResult::failure(MmError::NoMemory);
  auto batch = make_batch(v);
  MmapWriteGuard g(mmap_lock_, v);
  counters_.slot(v).add(MmuCounter::MprotectCalls);
  const VirtAddr end = addr + *len;
  if (!vmas_.fully_mapped(addr, end)) return MmResult::failure(MmError::NoMemory);
  if (!change_protection_locked(batch, v, addr, end, prot)) return MmResult::failure(MmError::NoMemory);
  vmas_.protect(addr, end, prot);
  return MmResult::success(0);
}

MmResult AddressSpace::set_wipe_on_fork(VcpuId v, VirtAddr addr, uint64_t length, bool wipe) {
  if (!is_page_aligned(addr)) return MmResult::failure(MmError::InvalidArgument);
  if (length == 0) return MmResult::success(0);
  const auto len = page_ceil(length);
  if (!len || addr >= limit_ || *len > limit_ - addr) return MmResult::failure(MmError::NoMemory);
  MmapWriteGuard g(mmap_lock_, v);
  const VirtAddr end = addr + *len;
  if (!vmas_.fully_mapped(addr, end)) return MmResult::failure(MmError::NoMemory);
  bool anonymous = true;
  vmas_.for_each([&](const Vma& vma) {
    if (vma.start < end && addr < vma.end && vma.kind != VmaKind::Anonymous) anonymous = false;
  });
  if (!anonymous) return MmResult::failure(MmError::InvalidArgument);
  vmas_.set_flag(addr, end, kVmaWipeOnFork, wipe);
  return MmResult::success(0);
}

void AddressSpace::set_brk_base(VcpuId v, VirtAddr base) {
  MmapWriteGuard g(mmap_lock_, v);
  brk_base_ = brk_end_ = base;
}

VirtAddr AddressSpace::brk(VcpuId v, VirtAddr new_end) {
  auto batch = make_batch(v);
  MmapWriteGuard g(mmap_lock_, v);
  if (new_end < brk_base_ || new_end >= limit_) return brk_end_;
  const VirtAddr old_top = *page_ceil(brk_end_);
  const VirtAddr new_top = *page_ceil(new_end);
  if (new_top > old_top) {
    if (vmas_.overlaps(old_top, new_top)) return brk_end_;
    MapRequest r;
    r.addr = old_top;
    r.length = new_top - old_top;
    r.prot = kProtRead | kProtWrite;
    r.placement = MapPlacement::FixedNoReplace;
    r.flags = kVmaHeap;
    r.name = "[heap]";
    if (!map_locked(batch, v, r).ok()) return brk_end_;
  } else if (new_top < old_top) {
    if (!unmap_locked(batch, v, new_top, old_top)) return brk_end_;
  }
  brk_end_ = new_end;
  return brk_end_;
}

std::unique_ptr<AddressSpace> AddressSpace::fork(VcpuId v, const AddressSpaceConfig& child_config, ForkTables tables,
                                                std::string* error) {
  AddressSpaceConfig c = child_config;
  c.paging = config_.paging;
  c.scheme = config_.scheme;
  // Out of frames half way, everything the attempt took goes back and, as a fault would, fork
  // waits for the reclaimer (with no lock held) and tries again.
  for (int attempt = 0;; ++attempt) {
    auto child = fork_once(v, c, tables, error);
    if (child || !config_.reclaimer || attempt == 8) return child;
    counters_.slot(v).add(MmuCounter::FaultMemoryWaits);
    if (!config_.reclaimer->wait_for_frames([&] { mmap_lock_.wait_once(v); })) return nullptr;
  }
}

std::unique_ptr<AddressSpace> AddressSpace::fork_once(VcpuId v, const AddressSpaceConfig& c, ForkTables tables,
                                                     std::string* error) {
  auto child = make_address_space(pool_, c, error, v);
  if (!child) return nullptr;
  {
    AddressSpace& copy = *child;  // one name for the lock and what it guards (thread-safety analysis)
    copy.family_ = family_;
    // The parent's batch finishes after its lock is released: its writable translations
    // are gone before fork returns, so no write lands in a page the child now shares.
    auto batch = make_batch(v);
    auto child_batch = copy.make_batch(v);
    MmapWriteGuard g(mmap_lock_, v);
    MmapWriteGuard cg(copy.mmap_lock_, v);
    std::vector<Vma> all;
    vmas_.for_each([&](const Vma& vma) { all.push_back(vma); });
    for (Vma& vma : all) {
      if (vma.shared) vma.shared->add_mapper(copy.id(), vma.start - vma.source_offset);
      copy.vmas_.insert(std::move(vma));
    }
    copy.brk_base_ = brk_base_;
    copy.brk_end_ = brk_end_;
    if (!fork_tables_locked(batch, v, copy, tables)) {
      if (error) *error = "out of guest memory for the child's page tables";
      return nullptr;  // the child's destructor gives back what was copied so far
    }
    counters_.slot(v).add(MmuCounter::Forks);
    copy.rss_add(v, rss_pages());
    // MADV_WIPEONFORK: the child's pages there go (nobody runs in the child yet).
    std::vector<std::pair<VirtAddr, VirtAddr>> wiped;
    copy.vmas_.for_each([&](const Vma& vma) {
      if (vma.flags & kVmaWipeOnFork) wiped.emplace_back(vma.start, vma.end);
    });
    for (const auto& [start, end] : wiped) {
      if (!copy.zap_range_locked(child_batch, v, start, end)) {
        if (error) *error = "out of guest memory for the child's page tables";
        return nullptr;
      }
    }
  }
  return child;
}

AddressSpace::StackGrowth AddressSpace::stack_growth_for_locked(VirtAddr addr) const {
  const Vma* stack = vmas_.find_above(addr);
  if (!stack || !(stack->flags & kVmaGrowsDown) || addr >= stack->start) return StackGrowth::NotAStack;
  const VirtAddr new_start = page_floor(addr);
  if (stack->end - new_start > config_.max_stack) return StackGrowth::NotAStack;
  const Vma* below = vmas_.find_below(stack->start);
  if (below && (new_start < below->end || new_start - below->end < kStackGuardGap)) return StackGrowth::NotAStack;
  return StackGrowth::Grow;
}

bool AddressSpace::grow_stack(VcpuId v, VirtAddr addr) {
  MmapWriteGuard g(mmap_lock_, v);
  if (vmas_.find(addr)) return true;  // another vCPU grew it meanwhile
  if (stack_growth_for_locked(addr) != StackGrowth::Grow) return false;
  vmas_.extend_down(vmas_.find_above(addr)->start, page_floor(addr));
  counters_.slot(v).add(MmuCounter::FaultStackGrowth);
  return true;
}

}  // namespace mmu
