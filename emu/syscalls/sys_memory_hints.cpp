// What a process may ask of its memory besides mapping it: which pages are resident
// (mincore), writing it back (msync), keeping it resident (mlock and friends). All of it is
// checked against the guest's own mappings, as Linux checks it against the process's VMAs.
//
// What each call can do here: mincore asks the MMU which pages have a present entry; msync
// has nothing to write back (the guest's memory is its own: emu has no shared file
// mappings), so it only answers; mlock faults the pages in, as Linux populates them, but
// does not pin them against the reclaimer (a locked page may still go to --swap).
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "emu/process/guest_process.h"
#include "mmu/shared_memory.h"
#include "emu/syscalls/sys_handlers.h"

namespace emu::sys {

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kUserTop64 = 0x00007ffffffff000;  // x86_64's TASK_SIZE_MAX (access_ok)

uint64_t page_up(uint64_t len) { return (len + kPage - 1) & ~(kPage - 1); }

// The VMA holding `addr`, or null.
const mmu::Vma* vma_at(const std::vector<mmu::Vma>& vmas, uint64_t addr) {
  for (const mmu::Vma& v : vmas)
    if (v.contains(addr)) return &v;
  return nullptr;
}

// Whether [start, end) is mapped without a hole (Linux's mlock: ENOMEM otherwise).
bool fully_mapped(const std::vector<mmu::Vma>& vmas, uint64_t start, uint64_t end) {
  uint64_t at = start;
  while (at < end) {
    const mmu::Vma* v = vma_at(vmas, at);
    if (!v) return false;
    at = v->end;
  }
  return true;
}

// CAP_IPC_LOCK of the calling thread: it lifts RLIMIT_MEMLOCK.
bool may_lock_unlimited() {
  __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct d[2] = {};
  return ::syscall(SYS_capget, &h, d) == 0 && (d[0].effective & (1u << CAP_IPC_LOCK));
}

// Linux's can_do_mlock and its RLIMIT_MEMLOCK check for `pages` more locked pages.
int64_t lock_allowed(uint64_t pages) {
  if (may_lock_unlimited()) return 0;
  rlimit r{};
  ::getrlimit(RLIMIT_MEMLOCK, &r);
  if (r.rlim_cur == 0) return -EPERM;
  return r.rlim_cur != RLIM_INFINITY && pages > r.rlim_cur / kPage ? -ENOMEM : 0;
}

// Faults the readable pages of [start, end) in, as mlock populates them.
void populate(Call& c, const std::vector<mmu::Vma>& vmas, uint64_t start, uint64_t end) {
  for (uint64_t at = start; at < end; at += kPage) {
    const mmu::Vma* v = vma_at(vmas, at);
    uint8_t byte;
    if (v && v->allows(mmu::Access::Read)) (void)c.mem.read(c.v, at, &byte, 1);
  }
}

}  // namespace

int64_t mincore(Call& c, uint64_t start, uint64_t len, uint64_t vec) {
  if (start % kPage) return -EINVAL;
  if (!c.i386 && (start > kUserTop64 || len > kUserTop64 - start)) return -ENOMEM;
  uint64_t pages = len / kPage + (len % kPage != 0);
  const auto vmas = c.proc.space().vmas(c.v);
  // As Linux: one VMA at a time, at most a page of answers each, copied out as it goes.
  std::vector<uint8_t> answers;
  while (pages) {
    const mmu::Vma* v = vma_at(vmas, start);
    if (!v) return -ENOMEM;
    const uint64_t n = std::min({pages, kPage, (v->end - start) / kPage});
    answers.assign(n, 0);
    for (uint64_t i = 0; i < n; ++i) answers[i] = c.proc.space().peek(c.v, start + i * kPage).has_value();
    if (!c.mem.write(c.v, vec, answers.data(), n)) return -EFAULT;
    vec += n;
    start += n * kPage;
    pages -= n;
  }
  return 0;
}

int64_t msync(Call& c, uint64_t start, uint64_t len, int flags) {
  if (flags & ~(MS_ASYNC | MS_INVALIDATE | MS_SYNC)) return -EINVAL;
  if (start % kPage) return -EINVAL;
  if ((flags & MS_ASYNC) && (flags & MS_SYNC)) return -EINVAL;
  len = (len + kPage - 1) & ~(kPage - 1);  // wraps for a huge length, as Linux's does
  const uint64_t end = start + len;
  if (end < start) return -ENOMEM;
  if (end == start) return 0;
  // Holes are skipped, but reported at the end (at once for a plain MS_SYNC).
  const auto vmas = c.proc.space().vmas(c.v);
  int64_t unmapped = 0;
  uint64_t at = start;
  for (;;) {
    const mmu::Vma* next = nullptr;
    for (const mmu::Vma& v : vmas)
      if (v.end > at && (!next || v.start < next->start)) next = &v;
    if (!next) return -ENOMEM;
    if (at < next->start) {
      if (flags == MS_SYNC) return -ENOMEM;
      at = next->start;
      if (at >= end) return -ENOMEM;
      unmapped = -ENOMEM;
    }
    // Shared file mappings in the range go back to their files: the part of the object the
    // range covers (a program syncing page by page must not write the whole file each time).
    if (next->kind == mmu::VmaKind::Shared && next->shared) {
      const uint64_t from = std::max(at, next->start), to = std::min(end, next->end);
      (void)next->shared->writeback(next->source_offset + (from - next->start), to - from);
    }
    at = next->end;
    if (at >= end) return unmapped;
  }
}

int64_t mlock(Call& c, uint64_t start, uint64_t len, unsigned flags, bool lock) {
  if (flags & ~static_cast<unsigned>(MLOCK_ONFAULT)) return -EINVAL;
  len = page_up(len + (start % kPage));
  start -= start % kPage;
  if (lock)
    if (const int64_t r = lock_allowed(len / kPage)) return r;
  const uint64_t end = start + len;
  if (end < start) return -EINVAL;
  if (end == start) return 0;
  const auto vmas = c.proc.space().vmas(c.v);
  if (!fully_mapped(vmas, start, end)) return -ENOMEM;
  if (lock && !(flags & MLOCK_ONFAULT)) populate(c, vmas, start, end);
  return 0;
}

int64_t mlockall(Call& c, int flags) {
  if (!flags || (flags & ~(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)) || flags == MCL_ONFAULT) return -EINVAL;
  uint64_t pages = 0;
  if (flags & MCL_CURRENT)
    for (const mmu::Vma& v : c.proc.space().vmas(c.v)) pages += v.length() / kPage;
  return lock_allowed(pages);
}

}  // namespace emu::sys
