#include "mmu/shared_memory.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace mmu {

SharedMemory::SharedMemory(FramePool& pool, std::shared_ptr<SharedBacking> backing, uint64_t size, std::string name,
                           SharedMemoryStats* stats, uint32_t id, SwapDevice* swap)
    : pool_(pool), backing_(std::move(backing)), size_(size), name_(std::move(name)), stats_(stats), id_(id),
      swap_(swap) {}

SharedMemory::~SharedMemory() {
  if (backing_) (void)writeback();
  MutexGuard g(lock_);
  // Our reference on each frame; a pte still mapping one (released after its flush) frees it.
  // No page is Evicting: the reclaimer holds a reference to the object while it works.
  for (auto& [index, page] : pages_) {
    if (page.state == PageState::Swapped) {
      swap_->free(page.swap);
    } else if (pool_.drop_ref(page.frame)) {
      pool_.free_unslotted(page.frame);
    }
  }
  pages_.clear();
}

namespace {
void count(SharedMemoryStats* stats, std::atomic<uint64_t> SharedMemoryStats::*what) {
  if (stats) (stats->*what).fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

void SharedMemory::tag_frame(FrameNumber f, uint64_t index) {
  FrameDescriptor& d = pool_.descriptor(f);
  d.vaddr.store(index, std::memory_order_relaxed);
  // Last: the reclaimer reads the owner first, and an id of 0 names no object.
  d.owner.store(id_, std::memory_order_release);
}

SharedPageResult SharedMemory::page(VcpuId v, uint64_t index, bool writable, FrameNumber* out, bool* hit) {
  const uint64_t limit = backing_ ? backing_->size() : size_;
  if (index >= (limit + kPageSize - 1) / kPageSize) return SharedPageResult::BeyondEnd;
  MutexGuard g(lock_);
  auto it = pages_.find(index);
  if (it != pages_.end() && it->second.state == PageState::Evicting) return SharedPageResult::Busy;
  *hit = it != pages_.end() && it->second.state == PageState::Resident;
  if (*hit) {
    count(stats_, &SharedMemoryStats::hits);
  } else if (it != pages_.end()) {
    // Swapped out: read it back into a fresh frame; the slot is not kept (any mapper may
    // write the page from now on, and a clean copy would have to be tracked per pte).
    Page& p = it->second;
    const FrameNumber f = pool_.allocate(v, FrameState::Shared, FrameFill::Uninitialized);
    if (f == kNoFrame) return SharedPageResult::OutOfMemory;
    if (!swap_->read(p.swap, pool_.frame_ptr(f))) {
      pool_.free(v, f);
      return SharedPageResult::IoError;
    }
    swap_->free(p.swap);
    p.swap = kNoSwapSlot;
    p.frame = f;
    p.state = PageState::Resident;
    tag_frame(f, index);
    count(stats_, &SharedMemoryStats::swapped_in);
  } else {
    const FrameNumber f = pool_.allocate(v, FrameState::Shared, backing_ ? FrameFill::Uninitialized : FrameFill::Zero);
    if (f == kNoFrame) return SharedPageResult::OutOfMemory;
    if (backing_) {
      uint8_t* dst = pool_.frame_ptr(f);
      const size_t got = backing_->read(index * kPageSize, dst, kPageSize);
      std::memset(dst + got, 0, kPageSize - got);
    }
    count(stats_, &SharedMemoryStats::misses);
    it = pages_.emplace(index, Page{.frame = f}).first;
    tag_frame(f, index);
  }
  Page& p = it->second;
  p.referenced = true;
  if (writable) p.written = ever_written_ = true;
  pool_.add_ref(p.frame);
  *out = p.frame;
  return SharedPageResult::Ok;
}

void SharedMemory::note_written(uint64_t index) {
  MutexGuard g(lock_);
  auto it = pages_.find(index);
  if (it != pages_.end()) it->second.written = ever_written_ = true;
}

bool SharedMemory::write_page_back(uint64_t index, FrameNumber frame) {
  const uint64_t file_size = backing_->size();
  const uint64_t off = index * kPageSize;
  if (off >= file_size) return true;  // never extends the file: past its end is SIGBUS anyway
  const size_t len = static_cast<size_t>(std::min<uint64_t>(kPageSize, file_size - off));
  if (!backing_->write(off, pool_.frame_ptr(frame), len)) return false;
  count(stats_, &SharedMemoryStats::writebacks);
  return true;
}

bool SharedMemory::writeback(uint64_t offset, uint64_t len) {
  if (!backing_ || len == 0) return true;
  MutexGuard g(lock_);
  if (!ever_written_) return true;  // only ever mapped read-only (a library's text): nothing to do
  const uint64_t first = offset / kPageSize;
  const uint64_t last = len > ~uint64_t{0} - offset ? ~uint64_t{0} : (offset + len - 1) / kPageSize;
  bool ok = true;
  for (auto it = pages_.lower_bound(first); it != pages_.end() && it->first <= last; ++it)
    if (it->second.written && it->second.frame != kNoFrame) ok &= write_page_back(it->first, it->second.frame);
  return ok;
}

void SharedMemory::store(uint64_t offset, const uint8_t* src, uint64_t len) {
  if (!backing_ || len == 0) return;
  MutexGuard g(lock_);
  const uint64_t end = offset + len;
  for (auto it = pages_.lower_bound(offset / kPageSize); it != pages_.end() && it->first * kPageSize < end; ++it) {
    if (it->second.frame == kNoFrame) continue;
    const uint64_t page = it->first * kPageSize;
    const uint64_t from = std::max(offset, page), to = std::min(end, page + kPageSize);
    std::memcpy(pool_.frame_ptr(it->second.frame) + (from - page), src + (from - offset), to - from);
    count(stats_, &SharedMemoryStats::refreshes);
  }
}

void SharedMemory::truncate(uint64_t new_size) {
  if (!backing_) return;
  MutexGuard g(lock_);
  for (auto it = pages_.lower_bound(new_size / kPageSize); it != pages_.end(); ++it) {
    if (it->second.frame == kNoFrame) continue;
    const uint64_t page = it->first * kPageSize;
    const uint64_t keep = new_size > page ? new_size - page : 0;
    std::memset(pool_.frame_ptr(it->second.frame) + keep, 0, kPageSize - keep);
    count(stats_, &SharedMemoryStats::refreshes);
  }
}

size_t SharedMemory::resident_pages() const {
  MutexGuard g(lock_);
  return static_cast<size_t>(std::count_if(pages_.begin(), pages_.end(),
                                           [](const auto& kv) { return kv.second.frame != kNoFrame; }));
}

void SharedMemory::add_mapper(uint32_t space, VirtAddr base) {
  MutexGuard g(lock_);
  const Mapper m{space, base};
  if (std::find(mappers_.begin(), mappers_.end(), m) == mappers_.end()) mappers_.push_back(m);
}

void SharedMemory::forget_space(uint32_t space) {
  MutexGuard g(lock_);
  std::erase_if(mappers_, [&](const Mapper& m) { return m.space == space; });
}

auto SharedMemory::mappers() const -> std::vector<Mapper> {
  MutexGuard g(lock_);
  return mappers_;
}

bool SharedMemory::test_and_clear_referenced(uint64_t index) {
  MutexGuard g(lock_);
  auto it = pages_.find(index);
  if (it == pages_.end()) return false;
  return std::exchange(it->second.referenced, false);
}

bool SharedMemory::begin_evict(uint64_t index, FrameNumber frame, SharedEviction* out) {
  MutexGuard g(lock_);
  auto it = pages_.find(index);
  if (it == pages_.end() || it->second.state != PageState::Resident || it->second.frame != frame) return false;
  // Anonymous memory goes to swap, or nowhere without one.
  if (!backing_ && !swap_) return false;
  it->second.state = PageState::Evicting;
  *out = SharedEviction{index, frame, it->second.written};
  return true;
}

void SharedMemory::cancel_evict(const SharedEviction& e) {
  MutexGuard g(lock_);
  auto it = pages_.find(e.index);
  if (it != pages_.end() && it->second.state == PageState::Evicting) it->second.state = PageState::Resident;
  count(stats_, &SharedMemoryStats::evict_aborted);
}

bool SharedMemory::finish_evict(VcpuId v, const SharedEviction& e, bool* io_error) {
  *io_error = false;
  MutexGuard g(lock_);
  auto it = pages_.find(e.index);
  if (it == pages_.end() || it->second.state != PageState::Evicting) return false;
  Page& p = it->second;
  // A pte nobody's mapper list named still holds the frame: it stays.
  if (pool_.refs(e.frame) != 1) {
    p.state = PageState::Resident;
    count(stats_, &SharedMemoryStats::evict_aborted);
    return false;
  }
  if (backing_) {
    if (e.dirty) {
      if (!write_page_back(e.index, e.frame)) {
        p.state = PageState::Resident;  // written again at the next writeback
        return false;
      }
      count(stats_, &SharedMemoryStats::evict_written);
    } else {
      count(stats_, &SharedMemoryStats::dropped);
    }
    pages_.erase(it);
  } else {
    const SwapSlot slot = swap_->allocate();
    if (slot == kNoSwapSlot) {
      p.state = PageState::Resident;
      return false;
    }
    if (!swap_->write(slot, pool_.frame_ptr(e.frame))) {
      swap_->free(slot);
      p.state = PageState::Resident;
      *io_error = true;
      return false;
    }
    p = Page{.frame = kNoFrame, .written = p.written, .state = PageState::Swapped, .swap = slot};
    count(stats_, &SharedMemoryStats::swapped_out);
  }
  if (pool_.drop_ref(e.frame)) pool_.free(v, e.frame);
  return true;
}

std::shared_ptr<SharedMemory> SharedMemoryRegistry::find(const Key& key) {
  MutexGuard g(lock_);
  auto it = objects_.find(key);
  if (it == objects_.end()) return nullptr;
  auto live = it->second.lock();
  if (!live) {
    objects_.erase(it);
    entries_.store(objects_.size(), std::memory_order_release);
  }
  return live;
}

std::shared_ptr<SharedMemory> SharedMemoryRegistry::make_locked(std::shared_ptr<SharedBacking> backing, uint64_t size,
                                                               const std::string& name) {
  const uint32_t id = next_id_++;
  auto obj = std::make_shared<SharedMemory>(pool_, std::move(backing), size, name, &stats_, id, swap_);
  by_id_[id] = obj;
  // Forget dead objects now and then, so a run that maps and unmaps without end stays small.
  if (id % 256 == 0) std::erase_if(by_id_, [](const auto& kv) { return kv.second.expired(); });
  return obj;
}

std::shared_ptr<SharedMemory> SharedMemoryRegistry::create_anonymous(uint64_t size, const std::string& name) {
  MutexGuard g(lock_);
  return make_locked(nullptr, size, name);
}

std::shared_ptr<SharedMemory> SharedMemoryRegistry::by_id(uint32_t id) {
  MutexGuard g(lock_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return nullptr;
  auto live = it->second.lock();
  if (!live) by_id_.erase(it);
  return live;
}

void SharedMemoryRegistry::writeback_all() {
  std::vector<std::shared_ptr<SharedMemory>> live;
  {
    MutexGuard g(lock_);
    for (auto it = objects_.begin(); it != objects_.end();) {
      if (auto obj = it->second.lock()) {
        live.push_back(std::move(obj));
        ++it;
      } else {
        it = objects_.erase(it);
      }
    }
    entries_.store(objects_.size(), std::memory_order_release);
  }
  for (auto& obj : live) (void)obj->writeback();
}

}  // namespace mmu
