#include "mmu/frame_pool.h"

#include <sched.h>
#include <sys/mman.h>

#include <algorithm>
#include <memory>
#include <new>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace mmu {

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14; older kernels answer EINVAL and we touch pages
#endif

std::string_view counter_name(PoolCounter c) {
  static constexpr std::string_view kNames[] = {"frames_allocated", "frames_freed",
                                                "frame_allocation_failures", "frame_cache_refills",
                                                "frame_cache_spills", "pool_growths"};
  static_assert(std::size(kNames) == static_cast<size_t>(PoolCounter::kCount));
  return kNames[static_cast<size_t>(c)];
}

namespace {
// Zeroing a frame is the floor of a zero-fill fault. Called through a pointer so the compiler
// cannot inline it as `rep stosq`, which measured slower here than the C library's
// vectorised memset.
void* (*volatile zero_fill)(void*, int, size_t) = std::memset;

[[noreturn]] void corrupted(const char* what, FrameNumber f) {
  std::fprintf(stderr, "emu mmu: frame pool corrupted: %s (frame %u)\n", what, f);
  std::abort();
}
}  // namespace

std::unique_ptr<FramePool> FramePool::create(const FramePoolConfig& config, std::string* error) {
  auto fail = [&](std::string msg) {
    if (error) *error = std::move(msg);
    return nullptr;
  };
  if (config.bytes < 16 * kPageSize || !is_page_aligned(config.bytes))
    return fail("frame pool size must be a multiple of 4 KiB and at least 64 KiB");
  if (config.bytes / kPageSize >= kNoFrame) return fail("frame pool larger than 16 TiB");
  if (config.vcpu_slots == 0) return fail("frame pool needs at least one vCPU slot");
  if (config.cache_batch == 0) return fail("frame cache batch must be positive");
  // Reserve 2 MiB more than needed so the pool can start on a 2 MiB boundary, then ask for
  // transparent huge pages where the host has them: fewer host TLB misses per guest frame.
  constexpr uint64_t kHuge = uint64_t{2} << 20;
  void* p = mmap(nullptr, config.bytes + kHuge, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    return fail("cannot reserve " + std::to_string(config.bytes >> 20) +
                " MiB of host memory for guest-physical frames: " + std::strerror(errno));
  auto* raw = static_cast<uint8_t*>(p);
  auto* base = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(raw) + kHuge - 1) & ~(kHuge - 1));
  if (base > raw) munmap(raw, static_cast<size_t>(base - raw));
  if (base + config.bytes < raw + config.bytes + kHuge)
    munmap(base + config.bytes, static_cast<size_t>(raw + config.bytes + kHuge - (base + config.bytes)));
  madvise(base, config.bytes, MADV_HUGEPAGE);  // advisory: fine if the host declines
  return std::unique_ptr<FramePool>(
      new FramePool(base, static_cast<uint32_t>(config.bytes / kPageSize), config));
}

namespace {
size_t descriptor_bytes(uint64_t frames) { return (frames * sizeof(FrameDescriptor) + kPageSize - 1) & ~(kPageSize - 1); }
// Zero pages from the host, touched only as chunks are constructed.
FrameDescriptor* allocate_descriptors(uint64_t frames) {
  void* p = mmap(nullptr, descriptor_bytes(frames), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  return static_cast<FrameDescriptor*>(p);
}
}  // namespace

FramePool::FramePool(uint8_t* base, uint32_t frames, const FramePoolConfig& config)
    : base_(base),
      frame_count_(frames),
      vcpu_slots_(config.vcpu_slots),
      cache_batch_(config.cache_batch),
      chunk_frames_(std::max<uint64_t>(config.populate_chunk_bytes / kPageSize, 1)),
      low_watermark_(config.low_watermark ? config.low_watermark : std::max<uint64_t>(frames / 64, 1)),
      high_watermark_(config.high_watermark ? config.high_watermark : std::max<uint64_t>(frames / 32, 2)),
      descriptors_(allocate_descriptors(frames)),
      caches_(new FrameCache[config.vcpu_slots]),
      counters_(config.vcpu_slots) {
  if (config.populate_all) chunk_frames_ = frames;
  {
    MutexGuard s(shared_lock_);
    shared_free_.assign((frames + 63) / 64, 0);
  }
  for (uint32_t i = 0; i < vcpu_slots_; ++i) caches_[i].cursor = (uint64_t{i} * ((frames + 63) / 64)) / vcpu_slots_;
  // Frame 0 is the shared zero frame: populate it and never hand it out.
  std::uninitialized_default_construct_n(descriptors_, 1);
  populate(0, 1);
  claim(zero_frame(), FrameState::Zero);
  populated_.store(1, std::memory_order_release);
  reserved_.store(1, std::memory_order_release);
  grow(0);
}

FramePool::~FramePool() {
  munmap(base_, bytes());
  munmap(descriptors_, descriptor_bytes(frame_count_));
}

void FramePool::populate(uint64_t first, uint64_t frames) {
  uint8_t* start = frame_ptr(static_cast<FrameNumber>(first));
  if (madvise(start, frames * kPageSize, MADV_POPULATE_WRITE) == 0) return;
  for (uint64_t i = 0; i < frames; ++i) reinterpret_cast<volatile uint8_t*>(start)[i * kPageSize] = 0;
}

bool FramePool::grow(VcpuId v) {
  if (shared_count_.load(std::memory_order_acquire) > 0) return true;  // someone else grew it
  // Chunks are claimed with an atomic add and pre-faulted outside any lock, so vCPUs that
  // run dry together populate different chunks in parallel: under one lock the host's page
  // clearing was serialised and capped emu's 16-vCPU fault rate near 3x one vCPU.
  const uint64_t first = reserved_.fetch_add(chunk_frames_, std::memory_order_acq_rel);
  if (first >= frame_count_) {
    // Fully reserved; chunks still being pre-faulted will publish their frames.
    while (populated_.load(std::memory_order_acquire) < frame_count_) sched_yield();
    return shared_count_.load(std::memory_order_acquire) > 0;
  }
  const uint64_t n = std::min<uint64_t>(chunk_frames_, frame_count_ - first);
  std::uninitialized_default_construct_n(descriptors_ + first, n);
  populate(first, n);
  {
    MutexGuard s(shared_lock_);
    for (uint64_t f = first; f < first + n; ++f) release_to_shared_locked(static_cast<FrameNumber>(f));
    shared_count_.fetch_add(n, std::memory_order_release);
  }
  populated_.fetch_add(n, std::memory_order_acq_rel);
  counters_.slot(v).add(PoolCounter::Growths);
  return true;
}

bool FramePool::refill(FrameCache& cache, VcpuId v) {
  for (;;) {
    {
      MutexGuard s(shared_lock_);
      const size_t words = shared_free_.size();
      size_t taken = 0;
      for (size_t scanned = 0; scanned < words && taken < cache_batch_; ++scanned) {
        uint64_t& w = shared_free_[cache.cursor];
        while (w && taken < cache_batch_) {
          const unsigned bit = static_cast<unsigned>(__builtin_ctzll(w));
          w &= w - 1;
          cache.frames.push_back(static_cast<FrameNumber>(cache.cursor * 64 + bit));
          ++taken;
        }
        if (!w) cache.cursor = (cache.cursor + 1) % words;
      }
      if (taken > 0) {
        // The cache pops from the back: reverse so the lowest frame of the run goes first.
        std::reverse(cache.frames.end() - static_cast<ptrdiff_t>(taken), cache.frames.end());
        shared_count_.fetch_sub(taken, std::memory_order_release);
        cache.count.store(static_cast<uint32_t>(cache.frames.size()), std::memory_order_relaxed);
        break;
      }
    }
    if (!grow(v)) return false;
  }
  // Refills are rare (one per cache batch), so the peak costs the hot path nothing.
  const uint64_t used = frame_count_ - free_frames() + cache.frames.size();
  uint64_t peak = peak_used_.load(std::memory_order_relaxed);
  while (used > peak && !peak_used_.compare_exchange_weak(peak, used, std::memory_order_relaxed)) {
  }
  if (low_hook_ && below_low_watermark()) low_hook_();
  return true;
}

void FramePool::spill(FrameCache& cache) {
  MutexGuard s(shared_lock_);
  const size_t give = std::min<size_t>(cache_batch_, cache.frames.size());
  for (size_t i = cache.frames.size() - give; i < cache.frames.size(); ++i) release_to_shared_locked(cache.frames[i]);
  cache.frames.resize(cache.frames.size() - give);
  shared_count_.fetch_add(give, std::memory_order_release);
  cache.count.store(static_cast<uint32_t>(cache.frames.size()), std::memory_order_relaxed);
}

bool FramePool::should_fail_injected() {
  if (inject_count_.load(std::memory_order_relaxed) <= 0) return false;
  if (inject_skip_.fetch_sub(1, std::memory_order_relaxed) > 0) return false;
  return inject_count_.fetch_sub(1, std::memory_order_relaxed) > 0;
}

void FramePool::inject_allocation_failures(uint64_t skip, uint64_t count) {
  inject_skip_.store(static_cast<int64_t>(skip), std::memory_order_relaxed);
  inject_count_.store(static_cast<int64_t>(count), std::memory_order_relaxed);
}

void FramePool::claim(FrameNumber f, FrameState state) {
  FrameDescriptor& d = descriptors_[f];
  FrameState expected = FrameState::Free;
  if (!d.state.compare_exchange_strong(expected, state, std::memory_order_acq_rel))
    corrupted("allocated a frame that is in use", f);
  d.table_level.store(0, std::memory_order_relaxed);
  d.refs.store(1, std::memory_order_relaxed);
  d.owner.store(0, std::memory_order_relaxed);
  d.rmap_pte.store(0, std::memory_order_relaxed);
  d.swap_copy.store(0, std::memory_order_relaxed);
  d.vaddr.store(0, std::memory_order_relaxed);
}

FrameNumber FramePool::allocate(VcpuId v, FrameState state, FrameFill fill) {
  auto& stats = counters_.slot(v);
  if (should_fail_injected()) {
    stats.add(PoolCounter::AllocationFailures);
    return kNoFrame;
  }
  FrameNumber f;
  {
    FrameCache& cache = caches_[v];
    if (cache.frames.empty()) {
      if (!refill(cache, v)) {
        stats.add(PoolCounter::AllocationFailures);
        return kNoFrame;
      }
      stats.add(PoolCounter::CacheRefills);
    }
    f = cache.frames.back();
    cache.frames.pop_back();
    cache.count.store(static_cast<uint32_t>(cache.frames.size()), std::memory_order_relaxed);
  }
  claim(f, state);
  if (fill == FrameFill::Zero) zero_fill(frame_ptr(f), 0, kPageSize);
  stats.add(PoolCounter::Allocations);
  return f;
}

void FramePool::add_ref(FrameNumber f) {
  if (f == zero_frame()) return;
  if (descriptors_[f].refs.fetch_add(1, std::memory_order_relaxed) == UINT16_MAX) corrupted("frame reference count overflow", f);
}

bool FramePool::drop_ref(FrameNumber f) {
  if (f == zero_frame()) return false;
  // acq_rel: the last dropper frees the frame and must see every other holder's writes.
  const uint16_t before = descriptors_[f].refs.fetch_sub(1, std::memory_order_acq_rel);
  if (before == 0) corrupted("dropped a reference the frame did not have", f);
  return before == 1;
}

void FramePool::free(VcpuId v, FrameNumber f) {
  if (f == zero_frame() || f >= frame_count_) corrupted("freed the zero frame or a frame out of range", f);
  if (descriptors_[f].state.exchange(FrameState::Free, std::memory_order_acq_rel) == FrameState::Free)
    corrupted("freed a frame twice", f);
  counters_.slot(v).add(PoolCounter::Frees);
  FrameCache& cache = caches_[v];
  cache.frames.push_back(f);
  cache.count.store(static_cast<uint32_t>(cache.frames.size()), std::memory_order_relaxed);
  if (cache.frames.size() >= 2 * cache_batch_) {
    spill(cache);
    counters_.slot(v).add(PoolCounter::CacheSpills);
  }
}

void FramePool::free_unslotted(FrameNumber f) {
  if (f == zero_frame() || f >= frame_count_) corrupted("freed the zero frame or a frame out of range", f);
  if (descriptors_[f].state.exchange(FrameState::Free, std::memory_order_acq_rel) == FrameState::Free)
    corrupted("freed a frame twice", f);
  MutexGuard g(shared_lock_);
  release_to_shared_locked(f);
  shared_count_.fetch_add(1, std::memory_order_release);
}

uint64_t FramePool::available_frames() const {
  return frame_count_ - populated_.load(std::memory_order_acquire) + shared_count_.load(std::memory_order_acquire);
}

void FramePool::drain_cache(VcpuId v) {
  FrameCache& cache = caches_[v];
  while (!cache.frames.empty()) spill(cache);
}

uint64_t FramePool::free_frames() const {
  // Frames not yet pre-faulted count as free: the pool grows into them on demand.
  uint64_t n = frame_count_ - populated_.load(std::memory_order_acquire);
  n += shared_count_.load(std::memory_order_acquire);
  for (uint32_t i = 0; i < vcpu_slots_; ++i) n += caches_[i].count.load(std::memory_order_relaxed);
  return n;
}

std::array<uint64_t, 6> FramePool::count_by_state() const {
  std::array<uint64_t, 6> n{};
  // Frames not yet populated have no descriptor yet: they are free. (Not while the pool
  // grows: a chunk being pre-faulted is counted as populated before it is.)
  const uint64_t populated = std::min<uint64_t>(reserved_.load(std::memory_order_acquire), frame_count_);
  n[static_cast<size_t>(FrameState::Free)] += frame_count_ - populated;
  for (uint32_t f = 0; f < populated; ++f)
    ++n[static_cast<size_t>(descriptors_[f].state.load(std::memory_order_acquire))];
  return n;
}

}  // namespace mmu
