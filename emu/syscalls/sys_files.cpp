// File syscalls, passed through to the host: each guest fd becomes the host fd of its HostFile
// (fd_table.h), each guest path is looked up from the guest's directory (sys_paths.h).
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <string>
#include <string_view>
#include <vector>

#include "emu/process/guest_process.h"
#include "emu/process/page_cache_sync.h"
#include "emu/syscalls/sys_handlers.h"
#include "emu/syscalls/sys_paths.h"
#include "emu/syscalls/sys_procfs.h"

namespace emu::sys {

namespace {

// One host call moves at most this much; a larger read or write returns short, as Linux may.
constexpr size_t kMaxChunk = size_t{8} << 20;

// The i386 `struct stat64` (96 bytes, packed: long long is 4-byte aligned there).
#pragma pack(push, 4)
struct I386Stat64 {
  uint64_t dev;
  uint32_t pad0;
  uint32_t ino32;
  uint32_t mode;
  uint32_t nlink;
  uint32_t uid;
  uint32_t gid;
  uint64_t rdev;
  uint32_t pad3;
  int64_t size;
  uint32_t blksize;
  uint64_t blocks;
  uint32_t atime, atime_nsec;
  uint32_t mtime, mtime_nsec;
  uint32_t ctime, ctime_nsec;
  uint64_t ino;
};
#pragma pack(pop)
static_assert(sizeof(I386Stat64) == 96);

int64_t store_stat(Call& c, const struct stat& st, uint64_t buf) {
  if (!c.i386) return c.mem.write(c.v, buf, &st, sizeof st) ? 0 : -EFAULT;  // same layout as the host
  I386Stat64 s{};
  s.dev = st.st_dev;
  s.ino32 = static_cast<uint32_t>(st.st_ino);
  s.mode = st.st_mode;
  s.nlink = static_cast<uint32_t>(st.st_nlink);
  s.uid = st.st_uid;
  s.gid = st.st_gid;
  s.rdev = st.st_rdev;
  s.size = st.st_size;
  s.blksize = static_cast<uint32_t>(st.st_blksize);
  s.blocks = st.st_blocks;
  s.atime = static_cast<uint32_t>(st.st_atim.tv_sec);
  s.atime_nsec = static_cast<uint32_t>(st.st_atim.tv_nsec);
  s.mtime = static_cast<uint32_t>(st.st_mtim.tv_sec);
  s.mtime_nsec = static_cast<uint32_t>(st.st_mtim.tv_nsec);
  s.ctime = static_cast<uint32_t>(st.st_ctim.tv_sec);
  s.ctime_nsec = static_cast<uint32_t>(st.st_ctim.tv_nsec);
  s.ino = st.st_ino;
  return c.mem.write(c.v, buf, &s, sizeof s) ? 0 : -EFAULT;
}

// Guest iovec arrays: {pointer, length} of the guest's word size.
bool read_iovecs(Call& c, uint64_t iov, uint64_t count, std::vector<std::pair<uint64_t, uint64_t>>& out) {
  if (count > 1024) return false;
  for (uint64_t i = 0; i < count; ++i) {
    if (c.i386) {
      uint32_t e[2];
      if (!c.mem.read(c.v, iov + i * 8, e, sizeof e)) return false;
      out.emplace_back(e[0], e[1]);
    } else {
      uint64_t e[2];
      if (!c.mem.read(c.v, iov + i * 16, e, sizeof e)) return false;
      out.emplace_back(e[0], e[1]);
    }
  }
  return true;
}

}  // namespace

int64_t plain(long host_nr, uint64_t a0, uint64_t a1, uint64_t a2) { return host_result(::syscall(host_nr, a0, a1, a2)); }

int64_t fd_call(Call& c, long host_nr, int fd, uint64_t a1, uint64_t a2) {
  const auto f = c.proc.files().get(fd);
  if (!f) return -EBADF;
  // What shared mappings of the file wrote reaches it before it is synced.
  if (host_nr == SYS_fsync || host_nr == SYS_fdatasync) sync_before_read(c.proc.machine(), f->fd(), 0, ~uint64_t{0});
  const int64_t r = host_result(::syscall(host_nr, f->fd(), a1, a2));
  if (host_nr == SYS_ftruncate && r == 0) truncate_cached(c.proc.machine(), c.proc, c.v, f->fd(), a1);
  return r;
}

namespace {
// Whether a wait for `events` on host fd `fd` can ever end with it ready. A file without a
// read or write at all (an epoll fd's read or write; a timerfd's, inotify's or signalfd's
// write) is never reported ready for it, while Linux answers such a call EINVAL at once: it
// must not wait (a guest's read of an epoll fd hung emu; found by fuzz/syscalls). Asked only
// of an fd that is not ready, so it costs nothing on the way to a ready one.
bool can_become_ready(int fd, short events) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || (st.st_mode & S_IFMT) != 0) return true;  // only anonymous inodes
  char link[64];
  const ssize_t n = ::readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), link, sizeof link);
  if (n <= 0) return true;
  const std::string_view name(link, static_cast<size_t>(n));
  if (name == "anon_inode:[eventpoll]") return false;
  return !((events & POLLOUT) &&
           (name == "anon_inode:[timerfd]" || name == "anon_inode:inotify" || name == "anon_inode:[signalfd]"));
}
}  // namespace

// Before a blocking read or write of a pipe, socket or terminal: waits until it is ready, the
// process is ending (-EINTR then: the guest never sees it, it is being stopped), or a signal
// comes for this thread (-ERESTARTSYS: EINTR, or the call again under SA_RESTART).
int64_t wait_ready(Call& c, const HostFile& f, short events) {
  if (!f.may_block() || c.proc.ending_fd() < 0) return 0;
  const int flags = ::fcntl(f.fd(), F_GETFL);
  if (flags < 0 || (flags & O_NONBLOCK)) return 0;
  // A read of a write-only fd (a pipe's write end) or a write of a read-only one never becomes
  // ready: the host call answers EBADF at once, as Linux does (python's wakeup-fd test wrote
  // to a read end and hung).
  const int mode = flags & O_ACCMODE;
  if (((events & POLLIN) && mode == O_WRONLY) || ((events & POLLOUT) && mode == O_RDONLY)) return 0;
  bool checked = false;
  for (int timeout = 0;; timeout = -1) {  // a look first, then the wait
    if (c.proc.signals().deliverable(c.vcpu.signals())) return -kErestartSys;
    pollfd p[3] = {{f.fd(), events, 0}, {c.proc.ending_fd(), POLLIN, 0}, {c.vcpu.wake_fd(), POLLIN, 0}};
    const int ready = ::poll(p, 3, timeout);
    if (ready < 0) {
      if (errno != EINTR) return 0;
      continue;
    }
    if (p[1].revents & POLLIN) return -EINTR;
    if (p[0].revents) return 0;
    if (!checked) {  // not ready: before any wait, make sure it ever can be
      checked = true;
      if (!can_become_ready(f.fd(), events)) return 0;  // the host call answers at once
    }
    if (ready > 0) c.vcpu.drain_wake_fd();  // then look again: a wake for a signal since taken elsewhere is stale
  }
}

int64_t read(Call& c, int fd, uint64_t buf, uint64_t n) {
  const auto f = c.proc.files().get(fd);
  if (!f) return -EBADF;
  if (f->view()) {
    if (auto r = signalfd_read(c, *f, buf, n)) return *r;
  }
  if (const int64_t r = wait_ready(c, *f, POLLIN); r < 0) return r;
  std::vector<uint8_t> tmp(std::min<uint64_t>(n, kMaxChunk));
  sync_before_read(c.proc.machine(), f->fd(), -1, tmp.size());
  const long r = ::read(f->fd(), tmp.data(), tmp.size());
  if (r < 0) return -errno;
  return c.mem.write(c.v, buf, tmp.data(), r) ? r : -EFAULT;
}

int64_t write(Call& c, int fd, uint64_t buf, uint64_t n) {
  const auto f = c.proc.files().get(fd);
  if (!f) return -EBADF;
  std::vector<uint8_t> tmp(std::min<uint64_t>(n, kMaxChunk));
  if (!c.mem.read(c.v, buf, tmp.data(), tmp.size())) return -EFAULT;
  if (const int64_t r = wait_ready(c, *f, POLLOUT); r < 0) return r;
  const int64_t r = host_result(::write(f->fd(), tmp.data(), tmp.size()));
  store_after_write(c.proc.machine(), f->fd(), -1, tmp.data(), r);
  return r;
}

int64_t pread(Call& c, int fd, uint64_t buf, uint64_t n, int64_t off) {
  const auto f = c.proc.files().get(fd);
  if (!f) return -EBADF;
  std::vector<uint8_t> tmp(std::min<uint64_t>(n, kMaxChunk));
  if (off >= 0) sync_before_read(c.proc.machine(), f->fd(), off, tmp.size());  // a negative one is EINVAL
  const long r = ::pread(f->fd(), tmp.data(), tmp.size(), off);
  if (r < 0) return -errno;
  return c.mem.write(c.v, buf, tmp.data(), r) ? r : -EFAULT;
}

int64_t pwrite(Call& c, int fd, uint64_t buf, uint64_t n, int64_t off) {
  const auto f = c.proc.files().get(fd);
  if (!f) return -EBADF;
  std::vector<uint8_t> tmp(std::min<uint64_t>(n, kMaxChunk));
  if (!c.mem.read(c.v, buf, tmp.data(), tmp.size())) return -EFAULT;
  const int64_t r = host_result(::pwrite(f->fd(), tmp.data(), tmp.size(), off));
  store_after_write(c.proc.machine(), f->fd(), off, tmp.data(), r);
  return r;
}

int64_t readv(Call& c, int fd, uint64_t iov, uint64_t count) {
  const auto f = c.proc.files().get(fd);
  if (!f) return -EBADF;
  std::vector<std::pair<uint64_t, uint64_t>> v;
  if (!read_iovecs(c, iov, count, v)) return count > 1024 ? -EINVAL : -EFAULT;
  uint64_t total = 0;
  for (auto& [p, len] : v) total += len;
  std::vector<uint8_t> tmp(std::min<uint64_t>(total, kMaxChunk));
  sync_before_read(c.proc.machine(), f->fd(), -1, tmp.size());
  const long r = ::read(f->fd(), tmp.data(), tmp.size());
  if (r < 0) return -errno;
  uint64_t done = 0;
  for (auto& [p, len] : v) {
    const uint64_t n = std::min<uint64_t>(len, r - done);
    if (n && !c.mem.write(c.v, p, tmp.data() + done, n)) return -EFAULT;
    done += n;
  }
  return r;
}

int64_t writev(Call& c, int fd, uint64_t iov, uint64_t count) {
  const auto f = c.proc.files().get(fd);
  if (!f) return -EBADF;
  std::vector<std::pair<uint64_t, uint64_t>> v;
  if (!read_iovecs(c, iov, count, v)) return count > 1024 ? -EINVAL : -EFAULT;
  std::vector<uint8_t> tmp;
  for (auto& [p, len] : v) {
    const size_t at = tmp.size();
    const uint64_t n = std::min<uint64_t>(len, kMaxChunk - std::min<size_t>(at, kMaxChunk));
    tmp.resize(at + n);
    if (n && !c.mem.read(c.v, p, tmp.data() + at, n)) return -EFAULT;
  }
  const int64_t r = host_result(::write(f->fd(), tmp.data(), tmp.size()));
  store_after_write(c.proc.machine(), f->fd(), -1, tmp.data(), r);
  return r;
}

int64_t openat(Call& c, int dirfd, uint64_t path, int flags, int mode) {
  if (const auto made_up = procfs_openat(c, path, flags)) return *made_up;  // the guest's own /proc files
  HostPath hp;
  if (const int64_t r = host_path(c, dirfd, path, hp)) return r;
  // Close-on-exec on the host whatever the guest asked: the guest's flag is kept in the table.
  const int host_fd = ::openat(hp.dirfd, hp.path.c_str(), flags | O_CLOEXEC, mode);
  if (host_fd < 0) return -errno;
  if ((flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY) truncate_cached(c.proc.machine(), c.proc, c.v, host_fd, 0);
  return c.proc.files().install(std::make_shared<HostFile>(host_fd), (flags & O_CLOEXEC) != 0);
}

int64_t lseek(Call& c, int fd, int64_t off, int whence) {
  const auto f = c.proc.files().get(fd);
  if (!f) return -EBADF;
  if (const auto r = procfs_lseek(*f, off, whence)) return *r;
  return host_result(::lseek(f->fd(), off, whence));
}

int64_t llseek(Call& c, int fd, uint64_t hi, uint64_t lo, uint64_t result, int whence) {
  const auto f = c.proc.files().get(fd);
  if (!f) return -EBADF;
  const int64_t off = static_cast<int64_t>((hi << 32) | (lo & 0xffffffffu));
  const auto made_up = procfs_lseek(*f, off, whence);
  const off_t r = made_up ? *made_up : ::lseek(f->fd(), off, whence);
  if (r < 0) return made_up ? r : -errno;
  const int64_t value = r;
  return c.mem.write_value(c.v, result, value) ? 0 : -EFAULT;
}

int64_t fstatat(Call& c, int dirfd, uint64_t path, uint64_t buf, int flags) {
  HostPath hp;
  if (const int64_t r = host_path(c, dirfd, path, hp)) return r;
  struct stat st {};
  if (::fstatat(hp.dirfd, hp.path.c_str(), &st, flags) != 0) return -errno;
  return store_stat(c, st, buf);
}

int64_t fstat(Call& c, int fd, uint64_t buf) {
  const auto f = c.proc.files().get(fd);
  if (!f) return -EBADF;
  struct stat st {};
  if (::fstat(f->fd(), &st) != 0) return -errno;
  return store_stat(c, st, buf);
}

int64_t statx(Call& c, int dirfd, uint64_t path, int flags, unsigned mask, uint64_t buf) {
  HostPath hp;
  if (const int64_t r = host_path(c, dirfd, path, hp)) return r;
  struct statx sx {};  // the same layout for every architecture
  if (::statx(hp.dirfd, hp.path.c_str(), flags, mask, &sx) != 0) return -errno;
  return c.mem.write(c.v, buf, &sx, sizeof sx) ? 0 : -EFAULT;
}

int64_t getdents64(Call& c, int fd, uint64_t buf, uint64_t n) {
  const auto f = c.proc.files().get(fd);
  if (!f) return -EBADF;
  if (const auto r = procfs_getdents64(c, *f, buf, n)) return *r;  // the guest's fd directory
  std::vector<uint8_t> tmp(std::min<uint64_t>(n, 1 << 20));
  const long r = ::syscall(SYS_getdents64, f->fd(), tmp.data(), tmp.size());
  if (r < 0) return -errno;
  return c.mem.write(c.v, buf, tmp.data(), r) ? r : -EFAULT;
}

int64_t ioctl(Call& c, int fd, uint64_t request, uint64_t arg) {
  const auto f = c.proc.files().get(fd);
  if (!f) return -EBADF;
  // Only terminal queries busybox and glibc make; their structures have one layout on both
  // architectures (the kernel's termios is 36 bytes).
  size_t size = 0;
  bool out = true;
  switch (request) {
    case FIONCLEX: case FIOCLEX: return c.proc.files().set_cloexec(fd, request == FIOCLEX);  // the guest fd's flag
    case 0x5441: {  // TIOCGPTPEER: a pty master opens its peer; the new fd is the guest's
      const int flags = static_cast<int>(arg);
      const long peer = ::syscall(SYS_ioctl, f->fd(), request, static_cast<long>(flags | O_CLOEXEC));
      if (peer < 0) return -errno;
      return c.proc.files().install(std::make_shared<HostFile>(static_cast<int>(peer)), (flags & O_CLOEXEC) != 0);
    }
    // Arguments that are values, not pointers: TCSBRK, TCXONC, TCFLSH, TCSBRKP. (Not
    // TIOCSCTTY or TIOCNOTTY: they would change emu's own controlling terminal.)
    case 0x5409: case 0x540A: case 0x540B: case 0x5425:
      return host_result(::syscall(SYS_ioctl, f->fd(), request, static_cast<long>(arg)));
    case 0x80045430: size = 4; break;                      // TIOCGPTN (pty number: the host's /dev/pts)
    case 0x40045431: size = 4; out = false; break;         // TIOCSPTLCK
    case 0x5411: size = 4; break;                           // TIOCOUTQ
    case 0x5401: size = 36; break;                          // TCGETS
    case 0x5402: case 0x5403: case 0x5404: size = 36; out = false; break;  // TCSETS*
    case 0x5413: size = 8; break;                           // TIOCGWINSZ
    case 0x5414: size = 8; out = false; break;              // TIOCSWINSZ
    case 0x540F: case 0x5410: case 0x5429: return terminal_pgrp_ioctl(c, fd, request, arg);  // TIOC[GS]PGRP, TIOCGSID
    case 0x541B: size = 4; break;                           // FIONREAD
    case 0x5421: case 0x5452: size = 4; out = false; break;  // FIONBIO, FIOASYNC (python's settimeout)
    case 0x8905: size = 4; break;                           // SIOCATMARK
    default: return -ENOTTY;
  }
  uint8_t tmp[64] = {};
  if (!out && !c.mem.read(c.v, arg, tmp, size)) return -EFAULT;
  const long r = ::syscall(SYS_ioctl, f->fd(), request, tmp);
  if (r < 0) return -errno;
  if (out && !c.mem.write(c.v, arg, tmp, size)) return -EFAULT;
  return r;
}

int64_t faccessat(Call& c, int dirfd, uint64_t path, int mode, int flags) {
  HostPath hp;
  if (const int64_t r = host_path(c, dirfd, path, hp)) return r;
  return host_result(::syscall(SYS_faccessat2, hp.dirfd, hp.path.c_str(), mode, flags));
}

int64_t readlinkat(Call& c, int dirfd, uint64_t path, uint64_t buf, uint64_t n) {
  HostPath hp;
  if (const int64_t r = host_path(c, dirfd, path, hp, StdLinks::Keep)) return r;
  std::string target;
  if (auto link = procfs_readlink(c, path, hp.named.get())) {
    target = std::move(*link);  // the guest's own: its exe, its pid, a /proc file emu made up
  } else {
    std::vector<char> tmp(PATH_MAX);
    const ssize_t r = ::readlinkat(hp.dirfd, hp.path.c_str(), tmp.data(), tmp.size());
    if (r < 0) return -errno;
    target.assign(tmp.data(), r);
  }
  const size_t len = std::min<uint64_t>(target.size(), n);
  return c.mem.write(c.v, buf, target.data(), len) ? static_cast<int64_t>(len) : -EFAULT;
}

int64_t path_at_call(Call& c, long host_nr, int dirfd, uint64_t path, uint64_t arg1, uint64_t arg2) {
  HostPath hp;
  if (const int64_t r = host_path(c, dirfd, path, hp)) return r;
  return host_result(::syscall(host_nr, hp.dirfd, hp.path.c_str(), arg1, arg2));
}

int64_t two_path_at_call(Call& c, long host_nr, int dirfd1, uint64_t path1, int dirfd2, uint64_t path2, uint64_t arg) {
  HostPath hp1, hp2;
  if (const int64_t r = host_path(c, dirfd1, path1, hp1)) return r;
  if (const int64_t r = host_path(c, dirfd2, path2, hp2)) return r;
  return host_result(::syscall(host_nr, hp1.dirfd, hp1.path.c_str(), hp2.dirfd, hp2.path.c_str(), arg));
}

int64_t sendfile(Call& c, int out_fd, int in_fd, uint64_t offset_ptr, uint64_t count, bool offset_64) {
  // Linux reads the offset before it looks at either descriptor.
  off_t off = 0;
  if (offset_ptr) {
    if (offset_64) {
      int64_t o;
      if (!c.mem.read_value(c.v, offset_ptr, o)) return -EFAULT;
      off = o;
    } else {
      int32_t o;
      if (!c.mem.read_value(c.v, offset_ptr, o)) return -EFAULT;
      off = o;
    }
  }
  const auto out = c.proc.files().get(out_fd);
  const auto in = c.proc.files().get(in_fd);
  if (!out || !in) return -EBADF;
  const ssize_t r = ::sendfile(out->fd(), in->fd(), offset_ptr ? &off : nullptr, std::min<uint64_t>(count, kMaxChunk));
  if (r < 0) return -errno;
  if (offset_ptr) {
    const bool ok = offset_64 ? c.mem.write_value(c.v, offset_ptr, static_cast<int64_t>(off))
                              : c.mem.write_value(c.v, offset_ptr, static_cast<int32_t>(off));
    if (!ok) return -EFAULT;
  }
  return r;
}

}  // namespace emu::sys
