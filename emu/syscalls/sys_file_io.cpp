// Positioned vector I/O (preadv, pwritev and their *2 forms) and the copies that never pass
// through the caller's memory (copy_file_range, splice, tee), on the guest's HostFiles.
//
// Data moves through a host buffer (the guest's memory is reached only through GuestMemory),
// in the host call's single segment. A guest iovec array that Linux would refuse (too many
// segments, unreadable, a negative length, a segment outside user space) is handed to the
// host as an equally bad one, so that the host answers what Linux answers, in Linux's order
// of checks (ESPIPE or EBADF before EINVAL or EFAULT).
#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <vector>

#include "emu/process/guest_process.h"
#include "emu/syscalls/sys_handlers.h"
#include "emu/syscalls/sys_paths.h"

namespace emu::sys {

namespace {

constexpr uint64_t kMaxIov = 1024;                   // UIO_MAXIOV
constexpr size_t kMaxChunk = size_t{8} << 20;        // one host call moves at most this much
constexpr uint64_t kUserTop64 = 0x00007ffffffff000;  // x86_64's TASK_SIZE_MAX: access_ok's limit
// Host addresses the kernel refuses: page 0 (a fault while copying), and one above user space
// (refused by access_ok before anything is copied).
void* const kFaulting = reinterpret_cast<void*>(1);
void* const kNotUser = reinterpret_cast<void*>(0xffff800000000000);

struct Segment {
  uint64_t base = 0, len = 0;
};

// The guest's iovec array, or the host iovecs that make the host refuse it as Linux would.
struct Vector {
  std::vector<Segment> segs;
  uint64_t total = 0;
  bool bad = false;             // answered by the host with `host_bad`
  std::vector<iovec> host_bad;  // empty with bad: the array itself is unreadable
  uint64_t count = 0;
};

Vector read_vector(Call& c, uint64_t iov, uint64_t count) {
  Vector v;
  v.count = count;
  if (count > kMaxIov) {
    v.bad = true;  // EINVAL (after the host's own checks of the descriptor)
    return v;
  }
  bool negative = false;
  for (uint64_t i = 0; i < count; ++i) {
    Segment s;
    if (c.i386) {
      uint32_t e[2];
      if (!c.mem.read(c.v, iov + i * 8, e, sizeof e)) {
        v.bad = true;
        v.host_bad.clear();
        return v;
      }
      // compat_ssize_t: a length with the top bit set is negative.
      s = {e[0], static_cast<uint64_t>(static_cast<int64_t>(static_cast<int32_t>(e[1])))};
    } else {
      uint64_t e[2];
      if (!c.mem.read(c.v, iov + i * 16, e, sizeof e)) {
        v.bad = true;
        v.host_bad.clear();
        return v;
      }
      s = {e[0], e[1]};
    }
    negative = negative || static_cast<int64_t>(s.len) < 0;
    v.segs.push_back(s);
  }
  if (negative) {
    // Linux checks every length while it copies the array: EINVAL before any address.
    v.bad = true;
    for (const Segment& s : v.segs) v.host_bad.push_back({nullptr, static_cast<size_t>(s.len)});
    return v;
  }
  for (const Segment& s : v.segs) {
    const bool outside = !c.i386 && s.len && (s.base > kUserTop64 || s.len > kUserTop64 - s.base);
    if (outside) {
      // access_ok refuses it before any data moves (i386 pointers are always below the limit).
      v.bad = true;
      for (const Segment& t : v.segs) v.host_bad.push_back({&t == &s ? kNotUser : nullptr, static_cast<size_t>(t.len)});
      return v;
    }
    v.total = std::min<uint64_t>(v.total + s.len, INT_MAX & ~uint64_t{4095});  // MAX_RW_COUNT
  }
  return v;
}

// The host's answer to a refused vector: its checks of fd, offset and flags come first.
int64_t refuse(long nr, int host_fd, const Vector& v, int64_t pos, int flags) {
  const iovec* iov = v.host_bad.empty() ? static_cast<const iovec*>(kFaulting) : v.host_bad.data();
  return host_result(::syscall(nr, host_fd, iov, v.count, pos, 0, flags));
}

// Copies `n` bytes to the guest segments; how many arrived before one could not be written.
uint64_t scatter(Call& c, const Vector& v, const uint8_t* data, uint64_t n) {
  uint64_t done = 0;
  for (const Segment& s : v.segs) {
    for (uint64_t at = 0; at < s.len && done < n;) {
      // Page by page: a fault stops the copy where it happened, as copy_to_user does.
      const uint64_t addr = s.base + at;
      const uint64_t piece = std::min({s.len - at, n - done, 4096 - (addr & 4095)});
      if (!c.mem.write(c.v, addr, data + done, piece)) return done;
      at += piece;
      done += piece;
    }
    if (done == n) break;
  }
  return done;
}

// Gathers the guest segments into `out` up to the first byte that cannot be read; how many
// bytes the segments would have held past that point is `missing`.
void gather(Call& c, const Vector& v, std::vector<uint8_t>& out, uint64_t& missing) {
  missing = 0;
  for (const Segment& s : v.segs) {
    for (uint64_t at = 0; at < s.len;) {
      if (out.size() >= kMaxChunk) return;
      const uint64_t addr = s.base + at;
      const uint64_t piece = std::min({s.len - at, uint64_t{kMaxChunk - out.size()}, 4096 - (addr & 4095)});
      const size_t had = out.size();
      out.resize(had + piece);
      if (!c.mem.read(c.v, addr, out.data() + had, piece)) {
        out.resize(had);
        missing = std::max<uint64_t>(1, std::min<uint64_t>(v.total - had, kMaxChunk));
        return;
      }
      at += piece;
    }
  }
}

// Waits, interruptibly, until `in` may be read or `out` written (each only if given).
// 0 to try again, or the syscall's answer when the wait was cut short.
int64_t wait_either(Call& c, const HostFile* in, const HostFile* out) {
  if (c.proc.signals().deliverable(c.vcpu.signals())) return -kErestartSys;
  pollfd p[4] = {{in ? in->fd() : -1, POLLIN, 0},
                 {out ? out->fd() : -1, POLLOUT, 0},
                 {c.proc.ending_fd(), POLLIN, 0},
                 {c.vcpu.wake_fd(), POLLIN, 0}};
  // A side that is ready already is not what blocks the call: wait for the other one.
  if (::poll(p, 2, 0) > 0) {
    for (int i = 0; i < 2; ++i)
      if (p[i].revents) p[i].fd = -1;
    if (p[0].fd < 0 && p[1].fd < 0) {
      ::usleep(1000);  // both ready, yet the call could not go on: a moment, then again
      return 0;
    }
  }
  for (auto& e : p) e.revents = 0;
  if (::poll(p, 4, -1) < 0 && errno != EINTR) return -errno;
  if (p[2].revents & POLLIN) return -EINTR;
  if (p[3].revents) c.vcpu.drain_wake_fd();
  return 0;
}

// A guest loff_t pointer for the host: its value, or a host pointer that faults likewise.
struct Offset {
  loff_t value = 0;
  bool given = false, readable = true;
  loff_t* host() { return !given ? nullptr : readable ? &value : static_cast<loff_t*>(kFaulting); }
};

Offset read_offset(Call& c, uint64_t addr) {
  Offset o;
  o.given = addr != 0;
  if (o.given) o.readable = c.mem.read_value(c.v, addr, o.value);
  return o;
}

const HostFile* blocking(const std::shared_ptr<HostFile>& f) { return f && f->may_block() ? f.get() : nullptr; }

// Whether preadv2/pwritev2 at the file position may wait first: not for flags the host will
// refuse, nor for a descriptor not open that way (the host says EBADF at once).
bool may_wait(const HostFile& f, int flags, bool write) {
  constexpr int kKnownRwf = 0xff;  // RWF_HIPRI .. RWF_DONTCACHE
  if ((flags & ~kKnownRwf) || (flags & RWF_NOWAIT)) return false;
  const int fl = ::fcntl(f.fd(), F_GETFL);
  const int access = fl & O_ACCMODE;
  return fl >= 0 && (write ? access == O_WRONLY || access == O_RDWR : access == O_RDONLY || access == O_RDWR);
}

bool nonblocking(const std::shared_ptr<HostFile>& f) {
  if (!f || !f->may_block()) return false;
  const int fl = ::fcntl(f->fd(), F_GETFL);
  return fl >= 0 && (fl & O_NONBLOCK);
}

}  // namespace

int64_t preadv(Call& c, int fd, uint64_t iov, uint64_t count, int64_t pos, int flags, bool v2) {
  // preadv2's -1 is "at the file position" (readv); any other negative offset is EINVAL.
  const bool at_position = v2 && pos == -1;
  if (pos < 0 && !at_position) return -EINVAL;
  const auto f = c.proc.files().get(fd);
  if (!f) return -EBADF;
  const Vector v = read_vector(c, iov, count);
  if (v.bad) return refuse(SYS_preadv2, f->fd(), v, pos, flags);
  if (at_position && may_wait(*f, flags, false))
    if (const int64_t r = wait_ready(c, *f, POLLIN); r < 0) return r;
  std::vector<uint8_t> tmp(std::min<uint64_t>(v.total, kMaxChunk));
  iovec one{tmp.data(), tmp.size()};
  const long r = ::syscall(SYS_preadv2, f->fd(), &one, 1, pos, 0, flags);
  if (r < 0) return -errno;
  const uint64_t done = scatter(c, v, tmp.data(), static_cast<uint64_t>(r));
  if (done < static_cast<uint64_t>(r) && at_position) (void)::lseek(f->fd(), static_cast<off_t>(done) - r, SEEK_CUR);
  if (done == 0 && r > 0) return -EFAULT;
  return static_cast<int64_t>(done);
}

int64_t pwritev(Call& c, int fd, uint64_t iov, uint64_t count, int64_t pos, int flags, bool v2) {
  const bool at_position = v2 && pos == -1;
  if (pos < 0 && !at_position) return -EINVAL;
  const auto f = c.proc.files().get(fd);
  if (!f) return -EBADF;
  const Vector v = read_vector(c, iov, count);
  if (v.bad) return refuse(SYS_pwritev2, f->fd(), v, pos, flags);
  std::vector<uint8_t> tmp;
  uint64_t missing = 0;
  gather(c, v, tmp, missing);
  if (at_position && may_wait(*f, flags, true))
    if (const int64_t r = wait_ready(c, *f, POLLOUT); r < 0) return r;
  // What could not be read goes to the host as a segment it cannot read either: it writes
  // what came before and stops there (or answers EFAULT when nothing did), as Linux does.
  iovec host[2] = {{tmp.data(), tmp.size()}, {kFaulting, missing}};
  return host_result(::syscall(SYS_pwritev2, f->fd(), host, missing ? 2 : 1, pos, 0, flags));
}

int64_t copy_file_range(Call& c, int fd_in, uint64_t off_in, int fd_out, uint64_t off_out, uint64_t len, unsigned flags) {
  const auto in = c.proc.files().get(fd_in);
  if (!in) return -EBADF;
  const auto out = c.proc.files().get(fd_out);
  if (!out) return -EBADF;
  Offset oi = read_offset(c, off_in), oo = read_offset(c, off_out);
  const long r = ::syscall(SYS_copy_file_range, in->fd(), oi.host(), out->fd(), oo.host(), std::min<uint64_t>(len, kMaxChunk), flags);
  if (r < 0) return -errno;
  // The offsets move only by what was copied (Linux writes them back only then).
  if (r > 0 && off_in && !c.mem.write_value(c.v, off_in, static_cast<int64_t>(oi.value))) return -EFAULT;
  if (r > 0 && off_out && !c.mem.write_value(c.v, off_out, static_cast<int64_t>(oo.value))) return -EFAULT;
  return r;
}

int64_t splice(Call& c, int fd_in, uint64_t off_in, int fd_out, uint64_t off_out, uint64_t len, unsigned flags) {
  // Guest fds that are not open go to the host as -1: it says EBADF where Linux does (a
  // zero length or bad flags are answered first).
  const auto in = c.proc.files().get(fd_in);
  const auto out = c.proc.files().get(fd_out);
  Offset oi = read_offset(c, off_in), oo = read_offset(c, off_out);
  const bool nonblock = (flags & SPLICE_F_NONBLOCK) || nonblocking(in) || nonblocking(out);
  for (;;) {
    // Never blocking on the host: a wait for a pipe is the guest's to interrupt.
    const long r = ::syscall(SYS_splice, in ? in->fd() : -1, oi.host(), out ? out->fd() : -1, oo.host(),
                             std::min<uint64_t>(len, kMaxChunk), flags | SPLICE_F_NONBLOCK);
    if (r >= 0) {
      if (off_in && !c.mem.write_value(c.v, off_in, static_cast<int64_t>(oi.value))) return -EFAULT;
      if (off_out && !c.mem.write_value(c.v, off_out, static_cast<int64_t>(oo.value))) return -EFAULT;
      return r;
    }
    if (errno != EAGAIN || nonblock) return -errno;
    if (const int64_t w = wait_either(c, blocking(in), blocking(out)); w < 0) return w;
  }
}

int64_t tee(Call& c, int fd_in, int fd_out, uint64_t len, unsigned flags) {
  const auto in = c.proc.files().get(fd_in);
  const auto out = c.proc.files().get(fd_out);
  const bool nonblock = (flags & SPLICE_F_NONBLOCK) || nonblocking(in) || nonblocking(out);
  for (;;) {
    const long r = ::syscall(SYS_tee, in ? in->fd() : -1, out ? out->fd() : -1, std::min<uint64_t>(len, kMaxChunk),
                             flags | SPLICE_F_NONBLOCK);
    if (r >= 0) return r;
    if (errno != EAGAIN || nonblock) return -errno;
    if (const int64_t w = wait_either(c, blocking(in), blocking(out)); w < 0) return w;
  }
}

}  // namespace emu::sys
