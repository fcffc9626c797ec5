// How the MMU asks the emulator to drop cached translations (DESIGN.md decision 7).
//
// After an entry that a vCPU may have cached is removed or downgraded, the address space
// calls flush() and frees nothing until it returns. flush() must return only once every vCPU
// that may cache a translation of `space` has acknowledged. It is always called with no
// page-table lock held (the mmap lock may be held: waiters for it serve their mailbox).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "mmu/types.h"

namespace mmu {

class AddressSpace;

struct VirtRange {
  VirtAddr start;
  VirtAddr end;
};

class TlbShootdown {
 public:
  virtual ~TlbShootdown() = default;
  // `ranges` empty means everything of `space`. `requester` is the slot of the calling vCPU,
  // which flushes its own TLB itself and needs no acknowledgement from itself.
  virtual void flush(const AddressSpace& space, std::span<const VirtRange> ranges, VcpuId requester) = 0;
  // Frames that held executable pages of `space` were reclaimed: code translated from them
  // must not be run again once the frames hold something else. Called after flush().
  virtual void invalidate_code(const AddressSpace& /*space*/) {}
  // False while some holder of `space`'s translations could not acknowledge a flush until it
  // chose to (an emulator's vCPU running guest code with no point where it looks at its
  // mailbox): a flush now might wait without bound. The reclaimer passes such a space over
  // for the sweep; its pages stay resident, and a page it shares with others stays too.
  virtual bool can_flush_now(const AddressSpace& /*space*/) const { return true; }
};

// For address spaces nobody caches translations of (MMU-only benchmarks and tests).
class NoTlbs final : public TlbShootdown {
 public:
  void flush(const AddressSpace&, std::span<const VirtRange>, VcpuId) override {}
};

}  // namespace mmu
