// Backing store for reclaimed anonymous pages: a file carved into 4 KiB slots.
//
// Slots are handed out from a bitmap under a mutex (swap I/O costs microseconds, the
// allocation a few nanoseconds, so one lock is plenty). Reads and writes are positional
// (pread/pwrite) and need no lock at all: a slot belongs to exactly one owner at a time,
// either one swap pte or the frame holding its up-to-date copy.
//
// Errors are reported, never hidden: a short or failed write or read returns false and is
// counted, and the caller decides (the reclaimer keeps the page resident and reports, a
// swap-in turns into SIGBUS). Test seams inject failures as a full disk would produce.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "mmu/spin_lock.h"
#include "mmu/thread_annotations.h"

namespace mmu {

using SwapSlot = uint32_t;
inline constexpr SwapSlot kNoSwapSlot = ~SwapSlot{0};

class SwapDevice {
 public:
  // Swap on `path`. A directory: a fresh file inside it, unlinked at once, so nothing is left
  // behind however the process ends. A path that does not exist: created, and unlinked at
  // once too. An existing file or device: used as it is and left in place (a regular file is
  // resized to `bytes`). nullptr and the reason in *error when that cannot be done.
  static std::unique_ptr<SwapDevice> open(const std::string& path, uint64_t bytes, std::string* error);
  // Swap in a temporary file under $TMPDIR (or /tmp), unlinked at once.
  static std::unique_ptr<SwapDevice> open_temporary(uint64_t bytes, std::string* error);
  ~SwapDevice();
  SwapDevice(const SwapDevice&) = delete;
  SwapDevice& operator=(const SwapDevice&) = delete;

  // Uses only the first `slots` slots (a 2-level i386 pte holds 20 bits of slot number):
  // called by an address space before anything is swapped.
  void limit_slots(uint64_t slots);
  // A free slot below `below` (a 2-level i386 pte holds 20 bits of slot number; the device
  // is shared by spaces of every format), or kNoSwapSlot when there is none.
  SwapSlot allocate(uint64_t below = ~uint64_t{0});
  // Drops one reference to `s`; the slot is free again when none is left.
  void free(SwapSlot s);
  // One more reference to a slot in use: a forked address space's copy of a swap entry (the
  // kernel's swap_duplicate). Each reference is dropped by its own free().
  void dup(SwapSlot s);
  // References beyond the first (0 for a slot mapped once).
  uint32_t extra_refs(SwapSlot s);
  bool write(SwapSlot s, const void* page) {
    uint8_t* const one = const_cast<uint8_t*>(static_cast<const uint8_t*>(page));  // iovec wants non-const
    return write_run(s, std::span<uint8_t* const>(&one, 1)) == 1;
  }
  // Writes pages[i] to slot first+i with one positional vectored write (the reclaimer's
  // batches mostly get consecutive slots). Returns how many pages, from the start, were
  // written: all of them, or fewer after an error.
  size_t write_run(SwapSlot first, std::span<uint8_t* const> pages);
  bool read(SwapSlot s, void* page);

  uint64_t slot_count() const { return slot_count_; }
  uint64_t slots_used() const { return used_.load(std::memory_order_relaxed); }
  uint64_t bytes_written() const { return bytes_written_.load(std::memory_order_relaxed); }
  uint64_t bytes_read() const { return bytes_read_.load(std::memory_order_relaxed); }
  // Time spent inside the write and read calls, for the swap's own I/O rate.
  uint64_t write_ns() const { return write_ns_.load(std::memory_order_relaxed); }
  uint64_t read_ns() const { return read_ns_.load(std::memory_order_relaxed); }
  uint64_t write_errors() const { return write_errors_.load(std::memory_order_relaxed); }
  uint64_t read_errors() const { return read_errors_.load(std::memory_order_relaxed); }
  const std::string& description() const { return description_; }
  // The host errno of the last failed I/O (0 if none), for the message that ends the guest.
  int last_error() const { return last_errno_.load(std::memory_order_relaxed); }

  // Test seams: the next `count` writes (reads) after `skip` more successes fail with EIO.
  void inject_write_failures(uint64_t skip, uint64_t count);
  void inject_read_failures(uint64_t skip, uint64_t count);

 private:
  SwapDevice(int fd, uint64_t slots, std::string description);
  struct Injection {
    std::atomic<int64_t> skip{0};
    std::atomic<int64_t> count{0};
    bool fire();
  };

  int fd_;
  uint64_t slot_count_;
  std::string description_;
  Mutex lock_;
  std::vector<uint64_t> in_use_ EMU_GUARDED_BY(lock_);  // bitmap, one bit per slot
  size_t cursor_ EMU_GUARDED_BY(lock_) = 0;
  // Slots mapped by more than one swap entry (after fork) and their extra references: few,
  // and only while forked processes share swapped pages, so a map beats a count per slot.
  std::unordered_map<SwapSlot, uint32_t> extra_refs_ EMU_GUARDED_BY(lock_);             // next-fit: swap-outs stay sequential
  std::atomic<uint64_t> used_{0};
  std::atomic<uint64_t> bytes_written_{0};
  std::atomic<uint64_t> bytes_read_{0};
  std::atomic<uint64_t> write_ns_{0};
  std::atomic<uint64_t> read_ns_{0};
  std::atomic<uint64_t> write_errors_{0};
  std::atomic<uint64_t> read_errors_{0};
  std::atomic<int> last_errno_{0};
  Injection inject_write_;
  Injection inject_read_;
};

}  // namespace mmu
