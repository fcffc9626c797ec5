// Memory syscalls: the MMU's map/unmap/protect/brk, with Linux's argument conventions.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include "emu/loader/file_source.h"
#include "emu/process/guest_process.h"
#include "emu/process/machine.h"
#include "emu/process/page_cache_sync.h"
#include "emu/syscalls/sys_handlers.h"

namespace emu::sys {

namespace {

int64_t result_of(const mmu::MmResult& r) { return r.ok() ? static_cast<int64_t>(r.value) : -mmu::to_errno(r.error); }

// Whether [start, end) overlaps executable memory (whose translated blocks must then go).
bool touches_code(Call& c, uint64_t start, uint64_t end) {
  for (const mmu::Vma& vma : c.mem.space().vmas(c.v))
    if ((vma.prot & mmu::kProtExec) && vma.start < end && start < vma.end) return true;
  return false;
}

// A request that recreates `vma`'s kind of mapping over [start, end).
mmu::MapRequest like(const mmu::Vma& vma, uint64_t start, uint64_t end, mmu::MapPlacement placement) {
  mmu::MapRequest req;
  req.addr = start;
  req.length = end - start;
  req.prot = vma.prot;
  req.placement = placement;
  req.kind = vma.kind;
  req.flags = vma.flags;
  req.name = vma.name;
  if (vma.kind == mmu::VmaKind::FilePrivate) {
    req.source = vma.source;
    req.source_offset = vma.source_offset + (start - vma.start);
    const uint64_t end_off = vma.source_end;
    req.source_length = end_off > req.source_offset ? end_off - req.source_offset : 0;
    req.shared = vma.shared;  // the page cache, if it reads through it
  }
  if (vma.kind == mmu::VmaKind::Shared) {
    req.shared = vma.shared;
    req.source_offset = vma.source_offset + (start - vma.start);
  }
  return req;
}

uint8_t prot_bits(int prot) {
  uint8_t p = 0;
  if (prot & PROT_READ) p |= mmu::kProtRead;
  if (prot & PROT_WRITE) p |= mmu::kProtWrite;
  if (prot & PROT_EXEC) p |= mmu::kProtExec;
  return p;
}

// Linux's TASK_SIZE, the top of user space: an i386 task on x86_64 gets 0xFFFFE000 (emu keeps
// the i386 GDT above it), an x86_64 one the paging format's limit less a guard page. munmap
// and fixed mmaps are checked against it, so that no length, however large, reaches there.
uint64_t task_size(Call& c) { return c.i386 ? 0xFFFFE000u : c.mem.space().virt_limit() - mmu::kPageSize; }

}  // namespace

int64_t mmap(Call& c, uint64_t addr, uint64_t len, int prot, int flags, int fd, uint64_t offset) {
  const uint64_t top = task_size(c);
  if ((flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) && (len > top || addr > top - len)) return -ENOMEM;
  if (len == 0 || (offset & (mmu::kPageSize - 1))) return -EINVAL;
  if (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) return -EINVAL;
  const int type = flags & MAP_TYPE;
  if (type != MAP_PRIVATE && type != MAP_SHARED && type != MAP_SHARED_VALIDATE) return -EINVAL;
  mmu::MapRequest req;
  req.addr = addr;
  req.length = len;
  req.prot = prot_bits(prot);
  req.placement = (flags & MAP_FIXED_NOREPLACE) ? mmu::MapPlacement::FixedNoReplace
                  : (flags & MAP_FIXED)         ? mmu::MapPlacement::Fixed
                  : addr                        ? mmu::MapPlacement::Hint
                                                : mmu::MapPlacement::Anywhere;
  if (flags & MAP_GROWSDOWN) req.flags |= mmu::kVmaGrowsDown;
  const bool shared = type != MAP_PRIVATE;
  const auto shared_anonymous = [&] {
    // Anonymous shared memory: an object of its own, passed on to children with the VMA.
    auto& registry = c.proc.machine().shared_memory();
    req.kind = mmu::VmaKind::Shared;
    req.shared = registry.create_anonymous((len + mmu::kPageSize - 1) & ~(mmu::kPageSize - 1), "/dev/zero (deleted)");
    req.source_offset = 0;
    req.name = "/dev/zero (deleted)";
  };
  if (shared && (flags & MAP_ANONYMOUS)) shared_anonymous();
  if (!(flags & MAP_ANONYMOUS)) {
    const auto file = c.proc.files().get(fd);
    struct stat st {};
    if (!file || ::fstat(file->fd(), &st) != 0) return -EBADF;
    const int access = ::fcntl(file->fd(), F_GETFL) & O_ACCMODE;
    if (access == O_WRONLY) return -EACCES;  // a mapping always reads
    if (shared && (prot & PROT_WRITE) && access != O_RDWR) return -EACCES;
    if (S_ISDIR(st.st_mode)) return -ENODEV;
    const std::string host_name = host_fd_path(file->fd());
    if (shared && S_ISCHR(st.st_mode) && host_name == "/dev/zero") {
      shared_anonymous();  // as Linux: /dev/zero mapped shared is anonymous shared memory
    } else if (shared) {
      if (!S_ISREG(st.st_mode)) return -ENODEV;
      // The page cache: one object per file for the whole run, so every mapping of it in
      // every process sees the same frames (and read()/write() stay coherent with them).
      auto object = page_cache_object(c.proc.machine(), file->fd(), c.proc.config().sysroot.guest_path(host_name));
      if (!object) return -errno;
      req.kind = mmu::VmaKind::Shared;
      req.shared = std::move(object);
      req.source_offset = offset;
      req.name = req.shared->name();
    } else {
      // Pages are read from the file when first touched (the fault path's file fill), through
      // emu's own duplicate of the descriptor: the guest may close its fd right away.
      auto source = FileSource::from_fd(file->fd(), c.proc.config().sysroot.guest_path(host_name));
      if (!source) return -errno;
      req.kind = mmu::VmaKind::FilePrivate;
      req.source_offset = offset;
      req.source_length = (len + mmu::kPageSize - 1) & ~(mmu::kPageSize - 1);
      // Read through the page cache when it can (a regular file): pages stay the cache's
      // until written, one copy for every process (ld.so maps every library this way).
      if (S_ISREG(st.st_mode) && c.proc.config().shared_file_pages)
        req.shared = page_cache_object(c.proc.machine(), file->fd(), source->name());
      req.name = source->name();
      req.source = std::move(source);
    }
  }
  if (req.kind == mmu::VmaKind::Shared) c.proc.note_shared_memory();
  const bool replaces_code = req.placement == mmu::MapPlacement::Fixed && touches_code(c, addr, addr + len);
  const int64_t r = result_of(c.mem.space().map(c.v, req));
  if (replaces_code) c.proc.flush_code();
  return r;
}

int64_t munmap(Call& c, uint64_t addr, uint64_t len) {
  const uint64_t top = task_size(c);
  const uint64_t rounded = (len + mmu::kPageSize - 1) & ~(mmu::kPageSize - 1);
  if (rounded < len || addr > top || rounded > top - addr) return -EINVAL;  // munmap(0, ~0UL) too
  const bool code = touches_code(c, addr, addr + len);
  const int64_t r = result_of(c.mem.space().unmap(c.v, addr, len));
  if (code) c.proc.flush_code();
  return r;
}

int64_t mprotect(Call& c, uint64_t addr, uint64_t len, int prot) {
  if (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_GROWSDOWN | PROT_GROWSUP)) return -EINVAL;
  const bool code = touches_code(c, addr, addr + len);
  const int64_t r = result_of(c.mem.space().protect(c.v, addr, len, prot_bits(prot)));
  if (code) c.proc.flush_code();
  return r;
}

int64_t brk(Call& c, uint64_t end) { return static_cast<int64_t>(c.mem.space().brk(c.v, end)); }

// The advice values Linux knows (madvise_behavior_valid); anything else is EINVAL.
constexpr int kMadvSoftOffline = 101;  // MADV_SOFT_OFFLINE, not in every libc's headers
bool known_advice(int advice) {
  return (advice >= MADV_NORMAL && advice <= MADV_DONTNEED) || (advice >= MADV_FREE && advice <= 25) ||
         advice == MADV_HWPOISON || advice == kMadvSoftOffline;
}

int64_t madvise(Call& c, uint64_t addr, uint64_t len, int advice) {
  if (addr & (mmu::kPageSize - 1)) return -EINVAL;
  if (!known_advice(advice)) return -EINVAL;
  const uint64_t rounded = (len + mmu::kPageSize - 1) & ~(mmu::kPageSize - 1);
  // Wrapping around the end of the guest's (32- or 64-bit) address space.
  const uint64_t top = c.i386 ? (uint64_t{1} << 32) : 0;
  if (rounded < len || addr + rounded < addr || (top && addr + rounded > top)) return -EINVAL;
  if (rounded == 0) return 0;
  const uint64_t end = addr + rounded;
  if (advice == MADV_HWPOISON || advice == kMadvSoftOffline) return -EPERM;  // CAP_SYS_ADMIN
  // Linux applies the advice to what is mapped and then answers ENOMEM for a hole.
  uint64_t covered = 0;
  for (const mmu::Vma& vma : c.mem.space().vmas(c.v)) {
    const uint64_t s = std::max(vma.start, addr), e = std::min(vma.end, end);
    if (s < e) covered += e - s;
  }
  const int64_t hole = covered < rounded ? -ENOMEM : 0;
  if (advice == MADV_WIPEONFORK || advice == MADV_KEEPONFORK) {
    if (hole) return hole;
    return result_of(c.mem.space().set_wipe_on_fork(c.v, addr, rounded, advice == MADV_WIPEONFORK));
  }
  // Everything but DONTNEED is a hint emu may ignore: MADV_FREE lets the kernel drop the
  // pages or keep them (keeping them is one of the allowed outcomes).
  if (advice != MADV_DONTNEED) return hole;
  const bool code = touches_code(c, addr, end);
  // Dropping private pages means the next touch sees zeros (or the file): the same as
  // mapping the range afresh with the same properties.
  for (const mmu::Vma& vma : c.mem.space().vmas(c.v)) {
    const uint64_t s = std::max(vma.start, addr), e = std::min(vma.end, end);
    if (s >= e) continue;
    const mmu::MmResult r = c.mem.space().map(c.v, like(vma, s, e, mmu::MapPlacement::Fixed));
    if (!r.ok()) return -mmu::to_errno(r.error);
  }
  if (code) c.proc.flush_code();  // the pages' translated blocks must not outlive them
  return hole;
}

namespace {

// Moves [old_addr, old_addr + old_len) of `vma` to a new mapping of `new_len` bytes (placed
// anywhere, or at `new_addr` replacing what is there), copying its pages; the old range is
// unmapped, or with `keep_old` (MREMAP_DONTUNMAP) left mapped with its pages gone.
int64_t move_mapping(Call& c, const mmu::Vma& vma, uint64_t old_addr, uint64_t old_len, uint64_t new_len,
                     mmu::MapPlacement placement, uint64_t new_addr, bool keep_old) {
  const uint64_t page = mmu::kPageSize;
  mmu::MapRequest req = like(vma, old_addr, old_addr + new_len, placement);
  req.addr = new_addr;
  // The copy goes through guest-visible permissions: the new mapping starts read-write and
  // an unreadable old one is made readable for the copy; both get their protection after.
  const uint8_t prot = req.prot;
  req.prot = mmu::kProtRead | mmu::kProtWrite;
  auto& space = c.mem.space();
  const bool replaces_code = placement == mmu::MapPlacement::Fixed && touches_code(c, new_addr, new_addr + new_len);
  const mmu::MmResult moved = space.map(c.v, req);
  if (replaces_code) c.proc.flush_code();
  if (!moved.ok()) return -mmu::to_errno(moved.error);
  if (!(prot & mmu::kProtRead)) (void)space.protect(c.v, old_addr, old_len, prot | mmu::kProtRead);
  std::vector<uint8_t> buf(page);
  for (uint64_t off = 0; off < old_len; off += page) {
    if (!c.mem.read(c.v, old_addr + off, buf.data(), page)) {
      (void)space.unmap(c.v, moved.value, new_len);
      (void)space.protect(c.v, old_addr, old_len, prot);
      return -EFAULT;
    }
    // Pages never written read as zero in the new mapping too: no frame for them.
    if (std::any_of(buf.begin(), buf.end(), [](uint8_t b) { return b != 0; }))
      (void)c.mem.write(c.v, moved.value + off, buf.data(), page);
  }
  (void)space.protect(c.v, moved.value, new_len, prot);
  if (!keep_old) {
    (void)munmap(c, old_addr, old_len);
  } else {
    // The old range stays mapped, emptied: a fresh mapping of the same kind over it.
    (void)space.protect(c.v, old_addr, old_len, prot);
    (void)space.map(c.v, like(vma, old_addr, old_addr + old_len, mmu::MapPlacement::Fixed));
  }
  return static_cast<int64_t>(moved.value);
}

}  // namespace

int64_t mremap(Call& c, uint64_t old_addr, uint64_t old_len, uint64_t new_len, int flags, uint64_t new_addr) {
  const uint64_t page = mmu::kPageSize;
  if ((old_addr & (page - 1)) || new_len == 0) return -EINVAL;
  if (flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP)) return -EINVAL;
  const bool fixed = flags & MREMAP_FIXED, keep_old = flags & MREMAP_DONTUNMAP;
  // Linux's checks (mremap_to): both need MAYMOVE; DONTUNMAP keeps the size; the target,
  // fixed or a hint, is page aligned, below the top of user space and clear of the old range.
  if ((fixed || keep_old) && !(flags & MREMAP_MAYMOVE)) return -EINVAL;
  if (keep_old && old_len != new_len) return -EINVAL;  // compared before rounding, as Linux does
  old_len = (old_len + page - 1) & ~(page - 1);
  new_len = (new_len + page - 1) & ~(page - 1);
  if (new_len == 0) return -EINVAL;  // a length so large that rounding wrapped it
  if (fixed || keep_old) {
    const uint64_t top = task_size(c);
    if ((new_addr & (page - 1)) || new_len > top || new_addr > top - new_len) return -EINVAL;
    if (new_addr < old_addr + old_len && old_addr < new_addr + new_len) return -EINVAL;
  }
  if (!fixed && !keep_old && new_len <= old_len) {
    if (new_len < old_len) {
      const int64_t r = munmap(c, old_addr + new_len, old_len - new_len);
      if (r < 0) return r;
    }
    return static_cast<int64_t>(old_addr);
  }
  std::optional<mmu::Vma> vma;
  for (const mmu::Vma& v : c.mem.space().vmas(c.v))
    if (v.start <= old_addr && old_addr + std::min(old_len, new_len) <= v.end) vma = v;
  if (!vma) return -EFAULT;
  if (fixed) {
    // Shrinking to a fixed place: the tail goes first, then the rest moves.
    if (new_len < old_len) {
      const int64_t r = munmap(c, old_addr + new_len, old_len - new_len);
      if (r < 0) return r;
      old_len = new_len;
    }
    return move_mapping(c, *vma, old_addr, old_len, new_len, mmu::MapPlacement::Fixed, new_addr, keep_old);
  }
  // Grow in place when the space above is free.
  if (!keep_old &&
      c.mem.space().map(c.v, like(*vma, old_addr + old_len, old_addr + new_len, mmu::MapPlacement::FixedNoReplace)).ok())
    return static_cast<int64_t>(old_addr);
  if (!(flags & MREMAP_MAYMOVE)) return -ENOMEM;
  return move_mapping(c, *vma, old_addr, old_len, new_len, mmu::MapPlacement::Anywhere, 0, keep_old);
}

}  // namespace emu::sys
