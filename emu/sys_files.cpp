// File syscalls, passed through to the host like qemu-user does: guest fds are host fds.
#include <fcntl.h>
#include <poll.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <vector>

#include "emu/guest_process.h"
#include "emu/sys_handlers.h"

namespace emu::sys {

namespace {

// One host call moves at most this much; a larger read or write returns short, as Linux may.
constexpr size_t kMaxChunk = size_t{8} << 20;

int64_t host_result(long r) { return r < 0 ? -errno : r; }

bool read_path(Call& c, uint64_t addr, std::string& out) {
  return addr != 0 && c.mem.read_string(c.v, addr, PATH_MAX, out);
}

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

// poll and ppoll: the guest's pollfd array (the same layout on both ABIs) in and out around
// the host's ppoll. `timeout` nullptr: wait without one.
int64_t poll_fds(Call& c, uint64_t fds, uint64_t n, const timespec* timeout) {
  if (n > 4096) return -EINVAL;
  std::vector<pollfd> p(n);
  if (n && !c.mem.read(c.v, fds, p.data(), n * sizeof(pollfd))) return -EFAULT;
  const int r = ::ppoll(p.data(), n, timeout, nullptr);
  if (r < 0) return -errno;
  return (n == 0 || c.mem.write(c.v, fds, p.data(), n * sizeof(pollfd))) ? r : -EFAULT;
}

}  // namespace

int64_t plain(long host_nr, uint64_t a0, uint64_t a1, uint64_t a2) { return host_result(::syscall(host_nr, a0, a1, a2)); }

int64_t read(Call& c, int fd, uint64_t buf, uint64_t n) {
  std::vector<uint8_t> tmp(std::min<uint64_t>(n, kMaxChunk));
  const long r = ::read(fd, tmp.data(), tmp.size());
  if (r < 0) return -errno;
  return c.mem.write(c.v, buf, tmp.data(), r) ? r : -EFAULT;
}

int64_t write(Call& c, int fd, uint64_t buf, uint64_t n) {
  std::vector<uint8_t> tmp(std::min<uint64_t>(n, kMaxChunk));
  if (!c.mem.read(c.v, buf, tmp.data(), tmp.size())) return -EFAULT;
  return host_result(::write(fd, tmp.data(), tmp.size()));
}

int64_t pread(Call& c, int fd, uint64_t buf, uint64_t n, int64_t off) {
  std::vector<uint8_t> tmp(std::min<uint64_t>(n, kMaxChunk));
  const long r = ::pread(fd, tmp.data(), tmp.size(), off);
  if (r < 0) return -errno;
  return c.mem.write(c.v, buf, tmp.data(), r) ? r : -EFAULT;
}

int64_t pwrite(Call& c, int fd, uint64_t buf, uint64_t n, int64_t off) {
  std::vector<uint8_t> tmp(std::min<uint64_t>(n, kMaxChunk));
  if (!c.mem.read(c.v, buf, tmp.data(), tmp.size())) return -EFAULT;
  return host_result(::pwrite(fd, tmp.data(), tmp.size(), off));
}

int64_t readv(Call& c, int fd, uint64_t iov, uint64_t count) {
  std::vector<std::pair<uint64_t, uint64_t>> v;
  if (!read_iovecs(c, iov, count, v)) return count > 1024 ? -EINVAL : -EFAULT;
  uint64_t total = 0;
  for (auto& [p, len] : v) total += len;
  std::vector<uint8_t> tmp(std::min<uint64_t>(total, kMaxChunk));
  const long r = ::read(fd, tmp.data(), tmp.size());
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
  std::vector<std::pair<uint64_t, uint64_t>> v;
  if (!read_iovecs(c, iov, count, v)) return count > 1024 ? -EINVAL : -EFAULT;
  std::vector<uint8_t> tmp;
  for (auto& [p, len] : v) {
    const size_t at = tmp.size();
    const uint64_t n = std::min<uint64_t>(len, kMaxChunk - std::min<size_t>(at, kMaxChunk));
    tmp.resize(at + n);
    if (n && !c.mem.read(c.v, p, tmp.data() + at, n)) return -EFAULT;
  }
  return host_result(::write(fd, tmp.data(), tmp.size()));
}

int64_t openat(Call& c, int dirfd, uint64_t path, int flags, int mode) {
  std::string p;
  if (!read_path(c, path, p)) return -EFAULT;
  return host_result(::openat(dirfd, p.c_str(), flags, mode));
}

int64_t close(Call&, int fd) { return host_result(::close(fd)); }

int64_t lseek(Call&, int fd, int64_t off, int whence) { return host_result(::lseek(fd, off, whence)); }

int64_t llseek(Call& c, int fd, uint64_t hi, uint64_t lo, uint64_t result, int whence) {
  const off_t r = ::lseek(fd, static_cast<off_t>((hi << 32) | (lo & 0xffffffffu)), whence);
  if (r < 0) return -errno;
  const int64_t value = r;
  return c.mem.write_value(c.v, result, value) ? 0 : -EFAULT;
}

int64_t fstatat(Call& c, int dirfd, uint64_t path, uint64_t buf, int flags) {
  std::string p;
  if (!c.mem.read_string(c.v, path, PATH_MAX, p)) return -EFAULT;
  struct stat st {};
  if (::fstatat(dirfd, p.c_str(), &st, flags) != 0) return -errno;
  return store_stat(c, st, buf);
}

int64_t fstat(Call& c, int fd, uint64_t buf) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return -errno;
  return store_stat(c, st, buf);
}

int64_t statx(Call& c, int dirfd, uint64_t path, int flags, unsigned mask, uint64_t buf) {
  std::string p;
  if (!c.mem.read_string(c.v, path, PATH_MAX, p)) return -EFAULT;
  struct statx sx {};  // the same layout for every architecture
  if (::statx(dirfd, p.c_str(), flags, mask, &sx) != 0) return -errno;
  return c.mem.write(c.v, buf, &sx, sizeof sx) ? 0 : -EFAULT;
}

int64_t getdents64(Call& c, int fd, uint64_t buf, uint64_t n) {
  std::vector<uint8_t> tmp(std::min<uint64_t>(n, 1 << 20));
  const long r = ::syscall(SYS_getdents64, fd, tmp.data(), tmp.size());
  if (r < 0) return -errno;
  return c.mem.write(c.v, buf, tmp.data(), r) ? r : -EFAULT;
}

int64_t ioctl(Call& c, int fd, uint64_t request, uint64_t arg) {
  // Only terminal queries busybox and glibc make; their structures have one layout on both
  // architectures (the kernel's termios is 36 bytes).
  size_t size = 0;
  bool out = true;
  switch (request) {
    case 0x5401: size = 36; break;                          // TCGETS
    case 0x5402: case 0x5403: case 0x5404: size = 36; out = false; break;  // TCSETS*
    case 0x5413: size = 8; break;                           // TIOCGWINSZ
    case 0x5414: size = 8; out = false; break;              // TIOCSWINSZ
    case 0x540F: case 0x541B: size = 4; break;              // TIOCGPGRP, FIONREAD
    default: return -ENOTTY;
  }
  uint8_t tmp[64] = {};
  if (!out && !c.mem.read(c.v, arg, tmp, size)) return -EFAULT;
  const long r = ::syscall(SYS_ioctl, fd, request, tmp);
  if (r < 0) return -errno;
  if (out && !c.mem.write(c.v, arg, tmp, size)) return -EFAULT;
  return r;
}

int64_t fcntl(Call&, int fd, int cmd, uint64_t arg) {
  switch (cmd) {
    case F_DUPFD: case F_GETFD: case F_SETFD: case F_GETFL: case F_SETFL: case F_DUPFD_CLOEXEC:
      return host_result(::fcntl(fd, cmd, static_cast<long>(arg)));
    default:
      return -EINVAL;  // locks and the rest: not passed through
  }
}

int64_t dup(Call&, int fd) { return host_result(::dup(fd)); }

int64_t dup3(Call&, int fd, int fd2, int flags, bool dup2_semantics) {
  if (dup2_semantics) return host_result(::dup2(fd, fd2));
  return host_result(::dup3(fd, fd2, flags));
}

int64_t pipe2(Call& c, uint64_t fds, int flags) {
  int p[2];
  if (::pipe2(p, flags) != 0) return -errno;
  if (!c.mem.write(c.v, fds, p, sizeof p)) {
    ::close(p[0]);
    ::close(p[1]);
    return -EFAULT;
  }
  return 0;
}

int64_t faccessat(Call& c, int dirfd, uint64_t path, int mode, int flags) {
  std::string p;
  if (!read_path(c, path, p)) return -EFAULT;
  return host_result(::syscall(SYS_faccessat2, dirfd, p.c_str(), mode, flags));
}

int64_t readlinkat(Call& c, int dirfd, uint64_t path, uint64_t buf, uint64_t n) {
  std::string p;
  if (!read_path(c, path, p)) return -EFAULT;
  std::string target;
  if (p == "/proc/self/exe" || p == "/proc/" + std::to_string(c.proc.pid()) + "/exe") {
    target = c.proc.exe_path();  // the guest program, not emu
  } else {
    std::vector<char> tmp(PATH_MAX);
    const ssize_t r = ::readlinkat(dirfd, p.c_str(), tmp.data(), tmp.size());
    if (r < 0) return -errno;
    target.assign(tmp.data(), r);
  }
  const size_t len = std::min<uint64_t>(target.size(), n);
  return c.mem.write(c.v, buf, target.data(), len) ? static_cast<int64_t>(len) : -EFAULT;
}

int64_t getcwd(Call& c, uint64_t buf, uint64_t n) {
  std::vector<char> tmp(PATH_MAX);
  if (!::getcwd(tmp.data(), tmp.size())) return -errno;
  const size_t len = std::strlen(tmp.data()) + 1;
  if (len > n) return -ERANGE;
  return c.mem.write(c.v, buf, tmp.data(), len) ? static_cast<int64_t>(len) : -EFAULT;
}

int64_t path_call(Call& c, long host_nr, uint64_t path, uint64_t arg1, uint64_t arg2) {
  std::string p;
  if (!read_path(c, path, p)) return -EFAULT;
  return host_result(::syscall(host_nr, p.c_str(), arg1, arg2));
}

int64_t path_at_call(Call& c, long host_nr, int dirfd, uint64_t path, uint64_t arg1, uint64_t arg2) {
  std::string p;
  if (!read_path(c, path, p)) return -EFAULT;
  return host_result(::syscall(host_nr, dirfd, p.c_str(), arg1, arg2));
}

int64_t two_path_at_call(Call& c, long host_nr, int dirfd1, uint64_t path1, int dirfd2, uint64_t path2, uint64_t arg) {
  std::string p1, p2;
  if (!read_path(c, path1, p1) || !read_path(c, path2, p2)) return -EFAULT;
  return host_result(::syscall(host_nr, dirfd1, p1.c_str(), dirfd2, p2.c_str(), arg));
}

int64_t poll(Call& c, uint64_t fds, uint64_t n, int timeout_ms) {
  if (timeout_ms < 0) return poll_fds(c, fds, n, nullptr);
  const timespec timeout{timeout_ms / 1000, (timeout_ms % 1000) * 1000000L};
  return poll_fds(c, fds, n, &timeout);
}

int64_t ppoll(Call& c, uint64_t fds, uint64_t n, uint64_t timeout, bool time64) {
  if (!timeout) return poll_fds(c, fds, n, nullptr);
  int64_t sec = 0, nsec = 0;
  if (!read_timespec(c, timeout, time64, sec, nsec)) return -EFAULT;
  if (!valid_timespec(sec, nsec)) return -EINVAL;
  // The host's ppoll takes the timespec as it is: no rounding a sub-millisecond timeout down
  // to a busy 0, no overflow converting a far one to milliseconds (the kernel saturates).
  const timespec ts{static_cast<time_t>(sec), static_cast<long>(nsec)};
  return poll_fds(c, fds, n, &ts);
}

int64_t sendfile(Call& c, int out_fd, int in_fd, uint64_t offset_ptr, uint64_t count, bool offset_64) {
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
  const ssize_t r = ::sendfile(out_fd, in_fd, offset_ptr ? &off : nullptr, std::min<uint64_t>(count, kMaxChunk));
  if (r < 0) return -errno;
  if (offset_ptr) {
    const bool ok = offset_64 ? c.mem.write_value(c.v, offset_ptr, static_cast<int64_t>(off))
                              : c.mem.write_value(c.v, offset_ptr, static_cast<int32_t>(off));
    if (!ok) return -EFAULT;
  }
  return r;
}

}  // namespace emu::sys
