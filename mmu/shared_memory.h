// Shared memory: one set of frames that every mapping of the same object sees (Linux's shmem
// inode and a file's page cache, in one class). MAP_SHARED|MAP_ANONYMOUS creates a private
// object that fork passes on with the VMA; a file mapped MAP_SHARED (a regular file, a memfd,
// a /dev/shm file) finds its object through a SharedMemoryRegistry keyed by the file's
// identity, so every process of the run maps the same frames.
//
// A frame of an object is in state FrameState::Shared. Its reference count is one for the
// object plus one per pte that maps it; the object drops its own when it goes, and the last
// pte (released after its flush) frees the frame. Such frames are never copied on write. The
// descriptor names the object (owner = the object's id) and the page (vaddr = page index), so
// the reclaimer can find them; the object's list of mappers (address space, virtual base) is
// its reverse map, as Linux's i_mmap is a file's: the pte of page i in a mapper is at
// base + i pages. See mmu/shared_reclaim.h for how a page leaves memory.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mmu/frame_pool.h"
#include "mmu/swap_device.h"
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

// Busy: the reclaimer is taking the page out right now; wait and ask again. IoError: the
// page's swap copy could not be read back (SIGBUS, as a failed swap-in).
enum class SharedPageResult : uint8_t { Ok, OutOfMemory, BeyondEnd, Busy, IoError };

struct SharedMemoryStats {
  std::atomic<uint64_t> hits{0};        // page found in the object
  std::atomic<uint64_t> misses{0};      // page allocated (zeroed or read from the file)
  std::atomic<uint64_t> writebacks{0};  // pages written back to their file
  std::atomic<uint64_t> refreshes{0};   // cached pages changed by a write() or a truncate of the file
  // Reclaim (mmu/shared_reclaim.h).
  std::atomic<uint64_t> rmap_walks{0};     // ptes looked up through a mapper list
  std::atomic<uint64_t> swapped_out{0};    // anonymous shared pages written to swap
  std::atomic<uint64_t> swapped_in{0};     // ... and read back on a fault
  std::atomic<uint64_t> dropped{0};        // clean file pages dropped (re-read on the next fault)
  std::atomic<uint64_t> evict_written{0};  // dirty file pages written back to be dropped
  std::atomic<uint64_t> evict_aborted{0};  // taken out, then kept: a pte no mapper list named
};

// Where a reclaim of page `index` stands (SharedMemory::begin_evict and the steps after).
struct SharedEviction {
  uint64_t index = 0;
  FrameNumber frame = kNoFrame;
  bool dirty = false;  // some pte had its dirty bit set, or the page was mapped writable
};

class SharedMemory {
 public:
  // `backing` nullptr: anonymous shared memory, zero-filled, `size` bytes long. `id` (0: none)
  // names the object in its frames' descriptors; only an object a SharedMemoryRegistry made
  // (and so can find by id) is reclaimable. `swap`: where its anonymous pages go.
  SharedMemory(FramePool& pool, std::shared_ptr<SharedBacking> backing, uint64_t size, std::string name,
               SharedMemoryStats* stats = nullptr, uint32_t id = 0, SwapDevice* swap = nullptr);
  ~SharedMemory();
  SharedMemory(const SharedMemory&) = delete;
  SharedMemory& operator=(const SharedMemory&) = delete;

  // The frame holding page `index`, with one reference added for the caller's pte (drop it
  // with FramePool::drop_ref, after the flush). `writable`: the pte will allow writes, so the
  // page is written back later. `*hit` tells whether it was there already.
  SharedPageResult page(VcpuId v, uint64_t index, bool writable, FrameNumber* out, bool* hit);
  // Page `index` is now mapped writable (a write fault upgraded a read-only pte): written
  // back from now on.
  void note_written(uint64_t index);
  // Writes back every page that was mapped writable, within the file's size, of the `len`
  // bytes from `offset` (everything by default). Returns false if a write failed (the pages
  // stay, and are written again next time). A read() of the file passes its own range: a
  // program reading a mapped file page by page would otherwise write every dirty page back
  // at every read (measured: 12288 4-byte preads of a 48 MiB file took minutes).
  bool writeback(uint64_t offset = 0, uint64_t len = ~uint64_t{0});
  // A write() through an fd put `len` bytes from `src` at `offset` in the file: the cached
  // pages there get the same bytes (only those: a store through a mapping elsewhere in the
  // page, not yet written back, stays).
  void store(uint64_t offset, const uint8_t* src, uint64_t len);
  // The file was cut to `new_size` (ftruncate, truncate, O_TRUNC): cached bytes from there on
  // become zeros, as Linux's truncate_pagecache leaves them for a file that grows again.
  // Ptes that map the pages are the address spaces' (AddressSpace::zap_object_pages).
  void truncate(uint64_t new_size);
  bool file_backed() const { return backing_ != nullptr; }
  const std::string& name() const { return name_; }
  size_t resident_pages() const;
  uint32_t id() const { return id_; }

  // ---- the reverse map: who maps this object, and where ----
  struct Mapper {
    uint32_t space = 0;  // AddressSpace::id()
    VirtAddr base = 0;   // virtual address of page 0 (may wrap: only base + i pages is used)
    auto operator<=>(const Mapper&) const = default;
  };
  // An address space maps the object with page 0 at `base` (mmap, fork). A superset is fine:
  // the reclaimer acts only on ptes that really map the page's frame.
  void add_mapper(uint32_t space, VirtAddr base);
  // The space is going away.
  void forget_space(uint32_t space);
  std::vector<Mapper> mappers() const;

  // ---- reclaim (mmu/shared_reclaim.h drives these) ----
  // Whether page `index` was looked up by a fault since the last call (cleared).
  bool test_and_clear_referenced(uint64_t index);
  // Takes page `index` (still in `frame`) out of use: faults on it get Busy until
  // cancel_evict or finish_evict. False when the page is not (or no longer) there.
  bool begin_evict(uint64_t index, FrameNumber frame, SharedEviction* out);
  // The page stays: a pte was left that no mapper named, or its write failed.
  void cancel_evict(const SharedEviction& e);
  // Every pte is gone and flushed (the frame's only reference is ours): writes the page where
  // it goes (swap for anonymous memory, the file when dirty) and frees the frame. False when
  // it could not be written (then it is kept, as cancel_evict); *io_error tells a failed write
  // from a full swap.
  bool finish_evict(VcpuId v, const SharedEviction& e, bool* io_error);

 private:
  enum class PageState : uint8_t { Resident, Evicting, Swapped };
  struct Page {
    FrameNumber frame = kNoFrame;
    bool written = false;     // mapped writable at some point: written back from now on
    bool referenced = false;  // looked up since the reclaimer last aged it
    PageState state = PageState::Resident;
    SwapSlot swap = kNoSwapSlot;  // Swapped: where it is
  };
  // Writes a resident page to the file (the part within the file's size); false on an error.
  bool write_page_back(uint64_t index, FrameNumber frame) EMU_REQUIRES(lock_);
  // A resident page's frame gets its descriptor fields (the reclaimer's way back here).
  void tag_frame(FrameNumber f, uint64_t index);
  FramePool& pool_;
  const std::shared_ptr<SharedBacking> backing_;
  const uint64_t size_;
  const std::string name_;
  SharedMemoryStats* stats_;
  const uint32_t id_;
  SwapDevice* const swap_;
  mutable Mutex lock_;
  std::map<uint64_t, Page> pages_ EMU_GUARDED_BY(lock_);
  std::vector<Mapper> mappers_ EMU_GUARDED_BY(lock_);
  bool ever_written_ EMU_GUARDED_BY(lock_) = false;  // some page was mapped writable
};

// The page cache's index: one live object per file identity, so that every mapping of a file
// (in any process of the run, through any fd) shares its frames. Objects live as long as a
// mapping or an fd holds them; the registry keeps only weak references.
class SharedMemoryRegistry {
 public:
  // `swap`: where anonymous shared pages go when reclaimed (nullptr: they stay resident).
  explicit SharedMemoryRegistry(FramePool& pool, SwapDevice* swap = nullptr) : pool_(pool), swap_(swap) {}
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
    auto obj = make_locked(std::move(backing), 0, name);
    objects_[key] = obj;
    entries_.store(objects_.size(), std::memory_order_release);
    return obj;
  }
  // A new anonymous object of `size` bytes (MAP_SHARED|MAP_ANONYMOUS), reclaimable.
  std::shared_ptr<SharedMemory> create_anonymous(uint64_t size, const std::string& name);
  // The live object whose frames carry `id`, if any (the reclaimer's lookup).
  std::shared_ptr<SharedMemory> by_id(uint32_t id);
  // Cheap check before find(): no file was ever mapped shared (or all such entries are gone).
  bool empty() const { return entries_.load(std::memory_order_acquire) == 0; }
  // The live object for `key`, if any (write()/read() keep it coherent with the file).
  std::shared_ptr<SharedMemory> find(const Key& key);
  // Writes back every live object (exit, sync).
  void writeback_all();
  SharedMemoryStats& stats() { return stats_; }
  FramePool& pool() { return pool_; }
  SwapDevice* swap() const { return swap_; }

 private:
  std::shared_ptr<SharedMemory> make_locked(std::shared_ptr<SharedBacking> backing, uint64_t size,
                                            const std::string& name) EMU_REQUIRES(lock_);

  FramePool& pool_;
  SwapDevice* const swap_;
  Mutex lock_;
  std::map<Key, std::weak_ptr<SharedMemory>> objects_ EMU_GUARDED_BY(lock_);
  std::map<uint32_t, std::weak_ptr<SharedMemory>> by_id_ EMU_GUARDED_BY(lock_);
  uint32_t next_id_ EMU_GUARDED_BY(lock_) = 1;
  std::atomic<size_t> entries_{0};
  SharedMemoryStats stats_;
};

}  // namespace mmu
