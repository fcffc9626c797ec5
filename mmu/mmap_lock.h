// The address space's mmap lock: faults take it shared, mmap/munmap/mprotect exclusive.
//
// Readers take it on every emulated TLB miss, so a shared counter would bounce one cache
// line between all vCPUs. Instead each vCPU slot has its own reader flag (a "big reader"
// lock): a reader sets its flag then checks the writer word; a writer sets the writer word
// then waits for every flag to clear. Each side must see the other's store before its own
// load (Dekker). Writers are rare and readers are hot, so the fence is made asymmetric: the
// writer runs membarrier(2), which puts a full barrier on every CPU running this process,
// and the reader needs only a compiler barrier. Where membarrier is unavailable both sides
// fall back to sequentially consistent store-then-load.
//
// Waiting on either side calls the wait hook, so a vCPU can serve its mailbox (TLB shootdown
// requests) while it waits: the holder may itself be waiting for that vCPU's acknowledgement.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>

#include "mmu/thread_annotations.h"
#include "mmu/types.h"

namespace mmu {

using WaitHook = std::function<void(VcpuId)>;

class EMU_CAPABILITY("mmap_lock") MmapLock {
 public:
  explicit MmapLock(uint32_t slots);

  void set_wait_hook(WaitHook hook) { wait_hook_ = std::move(hook); }

  void lock_shared(VcpuId v) EMU_ACQUIRE_SHARED() {
    auto& flag = readers_[v].active;
    for (;;) {
      if (asymmetric_fence_) {
        flag.store(1, std::memory_order_relaxed);
        std::atomic_signal_fence(std::memory_order_seq_cst);  // the writer's membarrier does the rest
      } else {
        flag.store(1, std::memory_order_seq_cst);
      }
      if (writer_.load(std::memory_order_seq_cst) == 0) return;
      flag.store(0, std::memory_order_release);  // let the writer in, then try again
      wait_while([&] { return writer_.load(std::memory_order_acquire) != 0; }, v);
    }
  }

  // Never waits: false when a writer holds it or is waiting for it. For a thread that already
  // holds another space's mmap lock (the reclaimer walking a family of forked spaces), where
  // waiting could close a cycle.
  bool try_lock_shared(VcpuId v) EMU_TRY_ACQUIRE_SHARED(true) {
    auto& flag = readers_[v].active;
    if (writer_.load(std::memory_order_acquire) != 0) return false;
    if (asymmetric_fence_) {
      flag.store(1, std::memory_order_relaxed);
      std::atomic_signal_fence(std::memory_order_seq_cst);
    } else {
      flag.store(1, std::memory_order_seq_cst);
    }
    if (writer_.load(std::memory_order_seq_cst) == 0) return true;
    flag.store(0, std::memory_order_release);
    return false;
  }

  void unlock_shared(VcpuId v) EMU_RELEASE_SHARED() {
    readers_[v].active.store(0, std::memory_order_release);
  }

  void lock(VcpuId v) EMU_ACQUIRE() {
    // Writers queue on a plain mutex; they are rare (mmap, munmap, mprotect, brk).
    while (!writer_mutex_.try_lock()) wait_once(v);
    writer_.store(1, std::memory_order_seq_cst);
    if (asymmetric_fence_) heavy_fence();
    for (uint32_t i = 0; i < slots_; ++i)
      wait_while([&] { return readers_[i].active.load(std::memory_order_seq_cst) != 0; }, v);
  }

  void unlock() EMU_RELEASE() {
    writer_.store(0, std::memory_order_release);
    writer_mutex_.unlock();
  }

  uint32_t slot_count() const { return slots_; }

  // One round of any wait loop: the wait hook (the caller's mailbox), then a yield. For
  // waits outside the lock itself (an entry in transition, a pool being refilled).
  void wait_once(VcpuId v);

 private:
  struct alignas(64) ReaderSlot {
    std::atomic<uint32_t> active{0};
  };

  static void heavy_fence();
  template <class Cond>
  void wait_while(Cond&& cond, VcpuId v) {
    while (cond()) wait_once(v);
  }

  std::unique_ptr<ReaderSlot[]> readers_;
  uint32_t slots_;
  alignas(64) std::atomic<uint32_t> writer_{0};
  std::mutex writer_mutex_;
  WaitHook wait_hook_;
  bool asymmetric_fence_;
};

class EMU_SCOPED_CAPABILITY MmapReadGuard {
 public:
  MmapReadGuard(MmapLock& l, VcpuId v) EMU_ACQUIRE_SHARED(l) : lock_(l), vcpu_(v) { l.lock_shared(v); }
  ~MmapReadGuard() EMU_RELEASE() { lock_.unlock_shared(vcpu_); }
  MmapReadGuard(const MmapReadGuard&) = delete;
  MmapReadGuard& operator=(const MmapReadGuard&) = delete;

 private:
  MmapLock& lock_;
  VcpuId vcpu_;
};

class EMU_SCOPED_CAPABILITY MmapWriteGuard {
 public:
  MmapWriteGuard(MmapLock& l, VcpuId v) EMU_ACQUIRE(l) : lock_(l) { l.lock(v); }
  ~MmapWriteGuard() EMU_RELEASE() { lock_.unlock(); }
  MmapWriteGuard(const MmapWriteGuard&) = delete;
  MmapWriteGuard& operator=(const MmapWriteGuard&) = delete;

 private:
  MmapLock& lock_;
};

}  // namespace mmu
