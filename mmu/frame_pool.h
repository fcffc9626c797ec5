// Guest-physical memory: one host mapping carved into 4 KiB frames, with a descriptor per
// frame and a scalable allocator (per-vCPU caches in front of a shared free list, like the
// kernel's per-cpu pagesets).
//
// The mapping is reserved whole at creation (so an emulator can register it once) and
// pre-faulted in chunks as the pool grows: a guest fault must never pay for a host
// first-touch fault, and start-up must not pay for memory the guest never uses.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mmu/frame_descriptor.h"
#include "mmu/per_vcpu_counters.h"
#include "mmu/spin_lock.h"
#include "mmu/thread_annotations.h"
#include "mmu/types.h"

namespace mmu {

enum class PoolCounter : uint16_t {
  Allocations,
  Frees,
  AllocationFailures,
  CacheRefills,
  CacheSpills,
  Growths,
  kCount
};
std::string_view counter_name(PoolCounter c);
using PoolCounters = PerVcpuCounters<PoolCounter>;

struct FramePoolConfig {
  uint64_t bytes = uint64_t{256} << 20;
  uint32_t vcpu_slots = 64;
  // Pre-fault granularity as the pool grows; populate_all pre-faults everything at creation.
  uint64_t populate_chunk_bytes = uint64_t{32} << 20;
  bool populate_all = false;
  // Frames moved between a vCPU cache and the shared list at a time.
  uint32_t cache_batch = 64;
  // Free-frame watermarks for the reclaimer, in frames; 0 picks 1/64 and 1/32 of the pool.
  uint64_t low_watermark = 0;
  uint64_t high_watermark = 0;
};

enum class FrameFill : uint8_t { Zero, Uninitialized };

class FramePool {
 public:
  // Returns nullptr and explains in *error when the configuration or the host refuses.
  static std::unique_ptr<FramePool> create(const FramePoolConfig& config, std::string* error);
  ~FramePool();
  FramePool(const FramePool&) = delete;
  FramePool& operator=(const FramePool&) = delete;

  uint8_t* host_base() const { return base_; }
  uint64_t bytes() const { return uint64_t{frame_count_} * kPageSize; }
  uint32_t frame_count() const { return frame_count_; }
  uint32_t vcpu_slots() const { return vcpu_slots_; }
  uint8_t* host(PhysAddr p) const { return base_ + p; }
  uint8_t* frame_ptr(FrameNumber f) const { return base_ + uint64_t{f} * kPageSize; }
  FrameDescriptor& descriptor(FrameNumber f) { return descriptors_[f]; }
  const FrameDescriptor& descriptor(FrameNumber f) const { return descriptors_[f]; }
  static constexpr FrameNumber zero_frame() { return 0; }

  // A frame in `state`, zeroed if asked, or kNoFrame when the pool is exhausted. `v` is the
  // caller's slot: one thread at a time per slot.
  [[nodiscard]] FrameNumber allocate(VcpuId v, FrameState state, FrameFill fill);
  void free(VcpuId v, FrameNumber f);
  // For a thread with no slot of its own (a shared-memory object going away wherever its
  // last holder let go): straight to the shared list, under its lock.
  void free_unslotted(FrameNumber f);
  // Sharing a frame between page tables (fork): one more reference, and one less; true when
  // the dropped one was the last, the caller then frees (a table after releasing what it
  // maps). The zero frame is never counted.
  void add_ref(FrameNumber f);
  [[nodiscard]] bool drop_ref(FrameNumber f);
  uint16_t refs(FrameNumber f) const { return descriptors_[f].refs.load(std::memory_order_acquire); }

  uint64_t free_frames() const;
  // Free frames any slot can get: the shared list and the part of the pool not grown into
  // yet. Frames cached by one slot are not available to the others.
  uint64_t available_frames() const;
  // Returns every frame cached by slot `v` to the shared list (the reclaimer, after a batch,
  // so the frames it freed reach the vCPUs waiting for them).
  void drain_cache(VcpuId v);
  uint64_t populated_frames() const { return populated_.load(std::memory_order_acquire); }
  // The most frames in use at once, sampled when a vCPU's cache is refilled (its fresh
  // frames counted as used): an upper bound, off by at most one cache batch per slot.
  uint64_t peak_used_frames() const { return peak_used_.load(std::memory_order_relaxed); }
  uint64_t low_watermark() const { return low_watermark_; }
  uint64_t high_watermark() const { return high_watermark_; }
  bool below_low_watermark() const { return available_frames() < low_watermark_; }
  // Called (from the allocating thread) when a refill leaves the pool below the low mark.
  void set_low_watermark_hook(std::function<void()> hook) { low_hook_ = std::move(hook); }

  // Test seam: the next `count` allocations after `skip` more successes fail.
  void inject_allocation_failures(uint64_t skip, uint64_t count);

  // Frames per state, counted from the descriptors (for invariant checks; not hot).
  std::array<uint64_t, 6> count_by_state() const;
  PoolCounters& counters() { return counters_; }
  const PoolCounters& counters() const { return counters_; }

 private:
  // Touched only by the thread that owns the slot (the VcpuId contract), so it needs no lock:
  // a locked instruction per allocation and per free measured about 10% of a fault.
  struct alignas(64) FrameCache {
    std::atomic<uint32_t> count{0};  // mirrored for free_frames() readers
    std::vector<FrameNumber> frames;
    // Where this slot's next refill starts scanning the shared bitmap. Slots start spread
    // over the pool so that vCPUs take frames from different places: interleaved frames
    // would share descriptor cache lines and bounce them between vCPUs on every claim.
    size_t cursor = 0;
  };

  FramePool(uint8_t* base, uint32_t frames, const FramePoolConfig& config);
  bool should_fail_injected();
  bool refill(FrameCache& cache, VcpuId v);
  void spill(FrameCache& cache);
  // Pre-faults the next chunk and publishes its frames; false when fully grown.
  bool grow(VcpuId v);
  void populate(uint64_t first_frame, uint64_t frames);
  void claim(FrameNumber f, FrameState state);

  uint8_t* base_;
  uint32_t frame_count_;
  uint32_t vcpu_slots_;
  uint32_t cache_batch_;
  std::atomic<uint64_t> peak_used_{0};
  uint64_t chunk_frames_;
  uint64_t low_watermark_;
  uint64_t high_watermark_;
  // Host memory for every frame's descriptor, constructed chunk by chunk as the pool grows:
  // constructing all of them up front wrote 8 MiB per GiB of guest memory at start-up
  // (a third of a small guest's run under emu).
  FrameDescriptor* descriptors_ = nullptr;
  std::unique_ptr<FrameCache[]> caches_;

  // The shared free frames as a bitmap scanned next-fit from a cursor, so that a refill hands
  // out runs of neighbouring frames however shuffled the frees were: with a LIFO list the
  // frames scatter over the pool and each fault pays host TLB and prefetch misses (measured:
  // the one-thread fault rate fell from 4.1 to 2.5 M/s after a few multi-thread runs).
  Mutex shared_lock_;
  std::vector<uint64_t> shared_free_ EMU_GUARDED_BY(shared_lock_);
  std::atomic<uint64_t> shared_count_{0};
  void release_to_shared_locked(FrameNumber f) EMU_REQUIRES(shared_lock_) { shared_free_[f >> 6] |= uint64_t{1} << (f & 63); }

  std::atomic<uint64_t> reserved_{0};   // frames of chunks claimed for pre-faulting
  std::atomic<uint64_t> populated_{0};  // frames of chunks pre-faulted and published

  std::atomic<int64_t> inject_skip_{0};
  std::atomic<int64_t> inject_count_{0};
  std::function<void()> low_hook_;
  PoolCounters counters_;
};

}  // namespace mmu
