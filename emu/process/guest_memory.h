// Guest-virtual memory as the syscall layer and the loader see it: every access goes through
// the MMU's fault handler, exactly as a guest access would, so a bad guest pointer becomes
// EFAULT (a false return) and never a host crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "mmu/address_space.h"

namespace emu {

// Who must know that a host thread is about to touch guest frames directly. Between a
// translation and the end of the copy the frame must not be freed: a vCPU doing this from a
// syscall is no longer quiescent, so shootdowns wait for it (GuestProcess implements it).
class HostAccessTracker {
 public:
  virtual ~HostAccessTracker() = default;
  virtual void begin_host_access(mmu::VcpuId v) = 0;
  virtual void end_host_access(mmu::VcpuId v) = 0;
};

class GuestMemory {
 public:
  GuestMemory() = default;
  explicit GuestMemory(mmu::AddressSpace& space, HostAccessTracker* tracker = nullptr)
      : space_(&space), tracker_(tracker) {}

  // Keeps slot `v` marked as touching guest frames while it lives: what word() returned
  // may be used until then. Nests.
  class [[nodiscard]] Pin {
   public:
    Pin(const GuestMemory& m, mmu::VcpuId v) : tracker_(m.tracker_), v_(v) {
      if (tracker_) tracker_->begin_host_access(v_);
    }
    ~Pin() { release(); }
    Pin(const Pin&) = delete;
    Pin& operator=(const Pin&) = delete;
    void release() {
      if (tracker_) tracker_->end_host_access(v_);
      tracker_ = nullptr;
    }

   private:
    HostAccessTracker* tracker_;
    mmu::VcpuId v_;
  };
  Pin pin(mmu::VcpuId v) const { return Pin(*this, v); }

  bool read(mmu::VcpuId v, uint64_t addr, void* dst, size_t len) const;
  bool write(mmu::VcpuId v, uint64_t addr, const void* src, size_t len) const;
  bool fill(mmu::VcpuId v, uint64_t addr, uint8_t byte, size_t len) const;
  // A NUL-terminated string of at most `max` bytes (without the NUL).
  bool read_string(mmu::VcpuId v, uint64_t addr, size_t max, std::string& out) const;

  template <typename T>
  bool read_value(mmu::VcpuId v, uint64_t addr, T& out) const { return read(v, addr, &out, sizeof out); }
  template <typename T>
  bool write_value(mmu::VcpuId v, uint64_t addr, const T& value) const { return write(v, addr, &value, sizeof value); }

  // The host address of an aligned 32-bit guest word, for atomic operations (futexes, the
  // child-tid word); nullptr when the page is not accessible that way. Valid only while the
  // caller holds a pin() taken before the call.
  uint32_t* word(mmu::VcpuId v, uint64_t addr, mmu::Access access) const;

  mmu::AddressSpace& space() const { return *space_; }

 private:
  // Calls fn(host_pointer, chunk_length) for each page-sized piece of [addr, addr+len).
  template <typename Fn>
  bool for_each_chunk(mmu::VcpuId v, uint64_t addr, size_t len, mmu::Access access, Fn&& fn) const;

  mmu::AddressSpace* space_ = nullptr;
  HostAccessTracker* tracker_ = nullptr;
};

}  // namespace emu
