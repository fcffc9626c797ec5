#include "mmu/shared_memory.h"

#include <algorithm>
#include <cstring>

namespace mmu {

SharedMemory::SharedMemory(FramePool& pool, std::shared_ptr<SharedBacking> backing, uint64_t size, std::string name,
                           SharedMemoryStats* stats)
    : pool_(pool), backing_(std::move(backing)), size_(size), name_(std::move(name)), stats_(stats) {}

SharedMemory::~SharedMemory() {
  if (backing_) (void)writeback();
  MutexGuard g(lock_);
  // Our reference on each frame; a pte still mapping one (released after its flush) frees it.
  for (auto& [index, page] : pages_)
    if (pool_.drop_ref(page.frame)) pool_.free_unslotted(page.frame);
  pages_.clear();
}

SharedPageResult SharedMemory::page(VcpuId v, uint64_t index, bool writable, FrameNumber* out, bool* hit) {
  const uint64_t limit = backing_ ? backing_->size() : size_;
  if (index >= (limit + kPageSize - 1) / kPageSize) return SharedPageResult::BeyondEnd;
  MutexGuard g(lock_);
  auto it = pages_.find(index);
  *hit = it != pages_.end();
  if (*hit) {
    if (stats_) stats_->hits.fetch_add(1, std::memory_order_relaxed);
  } else {
    const FrameNumber f = pool_.allocate(v, FrameState::Shared, backing_ ? FrameFill::Uninitialized : FrameFill::Zero);
    if (f == kNoFrame) return SharedPageResult::OutOfMemory;
    if (backing_) {
      uint8_t* dst = pool_.frame_ptr(f);
      const size_t got = backing_->read(index * kPageSize, dst, kPageSize);
      std::memset(dst + got, 0, kPageSize - got);
    }
    if (stats_) stats_->misses.fetch_add(1, std::memory_order_relaxed);
    it = pages_.emplace(index, Page{f, false}).first;
  }
  if (writable) it->second.written = true;
  pool_.add_ref(it->second.frame);
  *out = it->second.frame;
  return SharedPageResult::Ok;
}

bool SharedMemory::writeback() {
  if (!backing_) return true;
  MutexGuard g(lock_);
  const uint64_t file_size = backing_->size();
  bool ok = true;
  for (const auto& [index, page] : pages_) {
    if (!page.written) continue;
    const uint64_t off = index * kPageSize;
    if (off >= file_size) continue;  // never extends the file: past its end is SIGBUS anyway
    const size_t len = static_cast<size_t>(std::min<uint64_t>(kPageSize, file_size - off));
    if (!backing_->write(off, pool_.frame_ptr(page.frame), len)) {
      ok = false;
      continue;
    }
    if (stats_) stats_->writebacks.fetch_add(1, std::memory_order_relaxed);
  }
  return ok;
}

void SharedMemory::refresh(uint64_t offset, uint64_t len) {
  if (!backing_ || len == 0) return;
  MutexGuard g(lock_);
  const uint64_t first = offset / kPageSize, last = (offset + len - 1) / kPageSize;
  for (auto it = pages_.lower_bound(first); it != pages_.end() && it->first <= last; ++it) {
    uint8_t* dst = pool_.frame_ptr(it->second.frame);
    const size_t got = backing_->read(it->first * kPageSize, dst, kPageSize);
    std::memset(dst + got, 0, kPageSize - got);
    if (stats_) stats_->refreshes.fetch_add(1, std::memory_order_relaxed);
  }
}

size_t SharedMemory::resident_pages() const {
  MutexGuard g(lock_);
  return pages_.size();
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
