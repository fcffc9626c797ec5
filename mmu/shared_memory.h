// Shared memory: one set of frames that every mapping of the same object sees (Linux's shmem
// inode and a file's page cache, in one class). MAP_SHARED|MAP_ANONYMOUS creates a private
// object that fork passes on with the VMA; a file mapped MAP_SHARED (a regular file, a memfd,
// a /dev/shm file) finds its object through a SharedMemoryRegistry keyed by the file's
// identity, so every process of the run maps the same frames.
//
// A frame of an object is in state FrameState::Shared. Its reference count is one for the
// object plus one per pte that maps it; the object drops its own when it goes, and the last
// pte (released after its flush) frees the frame. Such frames are never copied on write and
// never reclaimed (they stay resident; see the README of mmu/).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mmu/frame_pool.h"
#include "mmu/spin_lock.h"
#include "mmu/thread_annotations.h"
#include "mmu/types.h"

namespace mmu {

// Where a file-backed object's pages come from and go back to.
class SharedBacking {
 public:
  virtual ~SharedBacking() = default;
  // Copies up to `len` bytes at `offset`; returns how many the file has there.
  virtual size_t read(uint64_t offset, uint8_t* dst, size_t len) = 0;
  // Writes `len` bytes at `offset`; false on an I/O error.
  virtual bool write(uint64_t offset, const uint8_t* src, size_t len) = 0;
  // The file's size now (a fault past it is SIGBUS, as on Linux).
  virtual uint64_t size() = 0;
};

enum class SharedPageResult : uint8_t { Ok, OutOfMemory, BeyondEnd };

struct SharedMemoryStats {
  std::atomic<uint64_t> hits{0};        // page found in the object
  std::atomic<uint64_t> misses{0};      // page allocated (zeroed or read from the file)
  std::atomic<uint64_t> writebacks{0};  // pages written back to their file
  std::atomic<uint64_t> refreshes{0};   // pages read again after a write() to the file
};

class SharedMemory {
 public:
  // `backing` nullptr: anonymous shared memory, zero-filled, `size` bytes long.
  SharedMemory(FramePool& pool, std::shared_ptr<SharedBacking> backing, uint64_t size, std::string name,
               SharedMemoryStats* stats = nullptr);
  ~SharedMemory();
  SharedMemory(const SharedMemory&) = delete;
  SharedMemory& operator=(const SharedMemory&) = delete;

  // The frame holding page `index`, with one reference added for the caller's pte (drop it
  // with FramePool::drop_ref, after the flush). `writable`: the pte will allow writes, so the
  // page is written back later. `*hit` tells whether it was there already.
  SharedPageResult page(VcpuId v, uint64_t index, bool writable, FrameNumber* out, bool* hit);
  // Writes back every page that was mapped writable, within the file's size. Returns false
  // if a write failed (the pages stay, and are written again next time).
  bool writeback();
  // The file changed under its pages at [offset, offset+len) (a write() through an fd):
  // pages cached there are read again.
  void refresh(uint64_t offset, uint64_t len);
  bool file_backed() const { return backing_ != nullptr; }
  const std::string& name() const { return name_; }
  size_t resident_pages() const;

 private:
  struct Page {
    FrameNumber frame = kNoFrame;
    bool written = false;  // mapped writable at some point: written back from now on
  };
  FramePool& pool_;
  const std::shared_ptr<SharedBacking> backing_;
  const uint64_t size_;
  const std::string name_;
  SharedMemoryStats* stats_;
  mutable Mutex lock_;
  std::map<uint64_t, Page> pages_ EMU_GUARDED_BY(lock_);
};

// The page cache's index: one live object per file identity, so that every mapping of a file
// (in any process of the run, through any fd) shares its frames. Objects live as long as a
// mapping or an fd holds them; the registry keeps only weak references.
class SharedMemoryRegistry {
 public:
  explicit SharedMemoryRegistry(FramePool& pool) : pool_(pool) {}
  struct Key {
    uint64_t device = 0;
    uint64_t inode = 0;
    auto operator<=>(const Key&) const = default;
  };
  // The object for `key`, created with `make_backing()` if none is alive.
  template <class MakeBacking>
  std::shared_ptr<SharedMemory> get(const Key& key, const std::string& name, MakeBacking make_backing) {
    MutexGuard g(lock_);
    auto it = objects_.find(key);
    if (it != objects_.end())
      if (auto live = it->second.lock()) return live;
    auto backing = make_backing();
    if (!backing) return nullptr;
    auto obj = std::make_shared<SharedMemory>(pool_, std::move(backing), 0, name, &stats_);
    objects_[key] = obj;
    entries_.store(objects_.size(), std::memory_order_release);
    return obj;
  }
  // Cheap check before find(): no file was ever mapped shared (or all such entries are gone).
  bool empty() const { return entries_.load(std::memory_order_acquire) == 0; }
  // The live object for `key`, if any (write()/read() keep it coherent with the file).
  std::shared_ptr<SharedMemory> find(const Key& key);
  // Writes back every live object (exit, sync).
  void writeback_all();
  SharedMemoryStats& stats() { return stats_; }
  FramePool& pool() { return pool_; }

 private:
  FramePool& pool_;
  Mutex lock_;
  std::map<Key, std::weak_ptr<SharedMemory>> objects_ EMU_GUARDED_BY(lock_);
  std::atomic<size_t> entries_{0};
  SharedMemoryStats stats_;
};

}  // namespace mmu
