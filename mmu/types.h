// Vocabulary types shared by the whole MMU library.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace mmu {

using VirtAddr = uint64_t;
using PhysAddr = uint64_t;
using FrameNumber = uint32_t;
// Index of the per-vCPU slot a caller uses (frame cache, counters, mmap-lock reader slot).
// A slot is used by one thread at a time: the vCPU that owns it, or a host thread given
// a slot of its own (reclaimer, syscall helpers in tests).
using VcpuId = uint32_t;

inline constexpr uint64_t kPageSize = 4096;
inline constexpr unsigned kPageShift = 12;
inline constexpr FrameNumber kNoFrame = ~FrameNumber{0};

constexpr uint64_t page_floor(uint64_t a) { return a & ~(kPageSize - 1); }
constexpr bool is_page_aligned(uint64_t a) { return (a & (kPageSize - 1)) == 0; }
// Rounds up; returns nullopt on overflow instead of wrapping.
constexpr std::optional<uint64_t> page_ceil(uint64_t a) {
  if (a > ~uint64_t{0} - (kPageSize - 1)) return std::nullopt;
  return (a + kPageSize - 1) & ~(kPageSize - 1);
}

// The kind of guest access, numbered like Unicorn's UC_MEM_READ/WRITE/FETCH minus 16 is not
// assumed anywhere: the emulator maps them explicitly.
enum class Access : uint8_t { Read, Write, Fetch };

// Protection bits as in mmap(2).
enum Prot : uint8_t { kProtNone = 0, kProtRead = 1, kProtWrite = 2, kProtExec = 4 };

// Permissions a translation grants right now. Write is withheld on a clean page so that the
// first write comes back through the fault handler and sets the dirty bit.
enum Perm : uint8_t { kPermRead = 1, kPermWrite = 2, kPermExec = 4 };

enum class PagingMode : uint8_t { I386, Pae, X86_64, La57 };
enum class SchemeKind : uint8_t { Global, Split, Atomic, PteBit };
// Seed 000 patch 7: one shared atomic RSS counter vs per-vCPU counters summed on demand.
enum class RssMode : uint8_t { SharedAtomic, PerVcpu };
// How fork() gives the child its page tables: copied (every private page counted twice and
// write-protected), or shared whole until first changed (seed 004).
enum class ForkTables : uint8_t { Copy, Share };

std::string_view to_string(PagingMode m);
std::string_view to_string(SchemeKind s);
std::string_view to_string(RssMode m);
std::string_view to_string(Access a);
std::optional<PagingMode> parse_paging_mode(std::string_view s);
std::optional<SchemeKind> parse_scheme(std::string_view s);
std::optional<RssMode> parse_rss_mode(std::string_view s);

// What a translation ended in. Anything but Ok means the guest access does not happen.
enum class FaultOutcome : uint8_t {
  Ok,
  SegvMapError,     // no mapping at the address (SEGV_MAPERR)
  SegvAccessError,  // mapping exists but forbids the access (SEGV_ACCERR)
  OutOfMemory,      // no frame could be had for the page or a page table
  SigBus,           // backing store failed (swap I/O; entries this build cannot resolve)
};
std::string_view to_string(FaultOutcome o);

struct [[nodiscard]] Translation {
  FaultOutcome outcome = FaultOutcome::SegvMapError;
  PhysAddr page = 0;  // guest-physical address of the 4 KiB page holding the address
  uint8_t perms = 0;  // Perm bits valid until the next shootdown of this page
  bool ok() const { return outcome == FaultOutcome::Ok; }
};

// Errors of the mapping calls, each the errno a Linux syscall would return.
enum class MmError : uint8_t { None, InvalidArgument, NoMemory, AccessDenied, AlreadyMapped };
int to_errno(MmError e);
std::string_view to_string(MmError e);

struct [[nodiscard]] MmResult {
  uint64_t value = 0;
  MmError error = MmError::None;
  bool ok() const { return error == MmError::None; }
  static MmResult success(uint64_t v) { return {v, MmError::None}; }
  static MmResult failure(MmError e) { return {0, e}; }
};

}  // namespace mmu
