// Calls that change files by name or descriptor: links, symlinks, owners, times, sizes,
// device nodes, renames and syncs. Each passes through to the host call of the same meaning,
// with guest paths looked up as every path call does (the guest's directory and dirfds, its
// /proc/self/fd names, the sysroot: sys_paths.h), guest fds as their HostFiles, and the
// guest's layouts (i386: 16-bit ids, 32-bit times, split 64-bit numbers) converted.
//
// Linux checks arguments in an order of its own (flags, then the path, then the dirfd...). To
// answer what Linux answers when several are bad, a path the guest cannot give is handed to
// the host as a path the host cannot read either (EFAULT at the same point of its checks) or
// as one as long (ENAMETOOLONG), rather than failing early here.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <string>

#include "emu/process/guest_process.h"
#include "emu/process/page_cache_sync.h"
#include "emu/syscalls/sys_handlers.h"
#include "emu/syscalls/sys_paths.h"

namespace emu::sys {

namespace {

// An address no host call can read (page 0 is never mapped): the host answers EFAULT.
const char* const kUnreadable = reinterpret_cast<const char*>(1);

// A guest path (or symlink target) made ready for a host call.
struct HostArg {
  HostPath hp;
  enum class State { Ok, Null, Unreadable } state = State::Ok;
  const char* c_str() const {
    return state == State::Null ? nullptr : state == State::Unreadable ? kUnreadable : hp.path.c_str();
  }
  int dirfd() const { return hp.dirfd; }
};

// Reads the guest string at `addr`; false (and `out` set to what the host is to see) when it
// cannot: NULL, unreadable, or longer than PATH_MAX.
bool read_guest_string(Call& c, uint64_t addr, HostArg& out) {
  if (addr == 0) {
    out.state = HostArg::State::Null;
    return false;
  }
  if (c.mem.read_string(c.v, addr, PATH_MAX, out.hp.path)) return true;
  if (out.hp.path.size() >= PATH_MAX) out.hp.path.assign(PATH_MAX, 'x');  // no NUL in PATH_MAX bytes
  else out.state = HostArg::State::Unreadable;
  return false;
}

// A path looked up from `dirfd` (sys_paths.h's host_path), or what stands for a bad one.
HostArg at_path(Call& c, int dirfd, uint64_t path) {
  HostArg a;
  if (!read_guest_string(c, path, a)) {
    // The dirfd still becomes the host's, for a host that checks it first (AT_EMPTY_PATH).
    const auto dir = dirfd == AT_FDCWD ? c.proc.files().cwd() : c.proc.files().get(dirfd);
    a.hp.dir = dir;
    a.hp.dirfd = dir ? dir->fd() : dirfd == AT_FDCWD ? AT_FDCWD : -1;
    return a;
  }
  a.hp = HostPath{};
  (void)host_path(c, dirfd, path, a.hp);  // readable a moment ago: cannot fail but by a race
  return a;
}

// A symlink's target: text stored as it is, never looked up or rewritten.
HostArg text_arg(Call& c, uint64_t addr) {
  HostArg a;
  (void)read_guest_string(c, addr, a);
  return a;
}

// A path for the host calls that take no dirfd (truncate): a relative one through the
// guest's directory fd.
std::string plain_host_path(const HostArg& a) {
  if (a.state != HostArg::State::Ok || a.hp.path.empty() || a.hp.path[0] == '/' || a.dirfd() == AT_FDCWD) return a.hp.path;
  return "/proc/self/fd/" + std::to_string(a.dirfd()) + "/" + a.hp.path;
}

int64_t fd_host_call(Call& c, long nr, int fd, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4 = 0) {
  const auto f = c.proc.files().get(fd);
  if (!f) return -EBADF;
  return host_result(::syscall(nr, f->fd(), a1, a2, a3, a4));
}

// utimensat as the host takes it, for every form of the call: `times` null for "now". A null
// path with a dirfd names the dirfd's file itself (Linux's utimes on a descriptor).
int64_t set_times(Call& c, int dirfd, uint64_t path, const timespec* times, int flags) {
  if (path == 0) {
    // With AT_FDCWD there is no descriptor to act on: the host's lookup of NULL says EFAULT.
    const auto f = dirfd == AT_FDCWD ? nullptr : c.proc.files().get(dirfd);
    const int host = dirfd == AT_FDCWD ? AT_FDCWD : f ? f->fd() : -1;
    return host_result(::syscall(SYS_utimensat, host, nullptr, times, flags));
  }
  const HostArg p = at_path(c, dirfd, path);
  return host_result(::syscall(SYS_utimensat, p.dirfd(), p.c_str(), times, flags));
}

// Two guest longs (time_t / suseconds_t), of the ABI's size.
bool read_long_pair(Call& c, uint64_t addr, int64_t out[2]) {
  if (c.i386) {
    int32_t v[2];
    if (!c.mem.read(c.v, addr, v, sizeof v)) return false;
    out[0] = v[0];
    out[1] = v[1];
    return true;
  }
  return c.mem.read(c.v, addr, out, 2 * sizeof(int64_t));
}

}  // namespace

int64_t linkat(Call& c, int olddirfd, uint64_t oldpath, int newdirfd, uint64_t newpath, int flags) {
  const HostArg from = at_path(c, olddirfd, oldpath);
  const HostArg to = at_path(c, newdirfd, newpath);
  return host_result(::syscall(SYS_linkat, from.dirfd(), from.c_str(), to.dirfd(), to.c_str(), flags));
}

int64_t symlinkat(Call& c, uint64_t target, int newdirfd, uint64_t linkpath) {
  const HostArg text = text_arg(c, target);
  const HostArg link = at_path(c, newdirfd, linkpath);
  return host_result(::syscall(SYS_symlinkat, text.c_str(), link.dirfd(), link.c_str()));
}

int64_t fchownat(Call& c, int dirfd, uint64_t path, uint32_t uid, uint32_t gid, int flags) {
  const HostArg p = at_path(c, dirfd, path);
  return host_result(::syscall(SYS_fchownat, p.dirfd(), p.c_str(), uid, gid, flags));
}

int64_t fchown(Call& c, int fd, uint32_t uid, uint32_t gid) { return fd_host_call(c, SYS_fchown, fd, uid, gid, 0); }

int64_t utime(Call& c, uint64_t path, uint64_t times) {
  timespec ts[2] = {};
  if (times) {
    int64_t v[2];  // struct utimbuf: actime, modtime
    if (!read_long_pair(c, times, v)) return -EFAULT;
    ts[0].tv_sec = v[0];
    ts[1].tv_sec = v[1];
  }
  return set_times(c, AT_FDCWD, path, times ? ts : nullptr, 0);
}

int64_t futimesat(Call& c, int dirfd, uint64_t path, uint64_t times) {
  timespec ts[2] = {};
  if (times) {
    int64_t tv[4];
    if (!read_long_pair(c, times, tv) || !read_long_pair(c, times + (c.i386 ? 8 : 16), tv + 2)) return -EFAULT;
    // Before the path, as Linux: microseconds out of range (UTIME_NOW/OMIT among them).
    if (tv[1] < 0 || tv[1] >= 1000000 || tv[3] < 0 || tv[3] >= 1000000) return -EINVAL;
    ts[0] = {static_cast<time_t>(tv[0]), static_cast<long>(tv[1] * 1000)};
    ts[1] = {static_cast<time_t>(tv[2]), static_cast<long>(tv[3] * 1000)};
  }
  return set_times(c, dirfd, path, times ? ts : nullptr, 0);
}

int64_t utimensat(Call& c, int dirfd, uint64_t path, uint64_t times, int flags, bool time64) {
  timespec ts[2] = {};
  if (times) {
    for (int i = 0; i < 2; ++i) {
      int64_t sec = 0, nsec = 0;
      if (!read_timespec(c, times + i * (time64 || !c.i386 ? 16 : 8), time64, sec, nsec)) return -EFAULT;
      ts[i] = {static_cast<time_t>(sec), static_cast<long>(nsec)};
    }
  }
  return set_times(c, dirfd, path, times ? ts : nullptr, flags);
}

int64_t truncate(Call& c, uint64_t path, int64_t length) {
  const HostArg p = at_path(c, AT_FDCWD, path);
  const std::string host = plain_host_path(p);
  const char* at = p.state == HostArg::State::Ok ? host.c_str() : p.c_str();
  const int64_t r = host_result(::syscall(SYS_truncate, at, length));
  if (r == 0) {
    // The page cache is keyed by the file, not the name: find it through a descriptor.
    const int fd = ::open(at, O_PATH | O_CLOEXEC);
    if (fd >= 0) {
      truncate_cached(c.proc.machine(), c.proc, c.v, fd, static_cast<uint64_t>(length));
      ::close(fd);
    }
  }
  return r;
}

int64_t fallocate(Call& c, int fd, int mode, int64_t offset, int64_t len) {
  return fd_host_call(c, SYS_fallocate, fd, static_cast<uint64_t>(mode), static_cast<uint64_t>(offset),
                      static_cast<uint64_t>(len));
}

int64_t mknodat(Call& c, int dirfd, uint64_t path, uint32_t mode, uint32_t dev) {
  const HostArg p = at_path(c, dirfd, path);
  return host_result(::syscall(SYS_mknodat, p.dirfd(), p.c_str(), mode, dev));
}

int64_t renameat2(Call& c, int olddirfd, uint64_t oldpath, int newdirfd, uint64_t newpath, unsigned flags) {
  const HostArg from = at_path(c, olddirfd, oldpath);
  const HostArg to = at_path(c, newdirfd, newpath);
  return host_result(::syscall(SYS_renameat2, from.dirfd(), from.c_str(), to.dirfd(), to.c_str(), flags));
}

int64_t sync_file_range(Call& c, int fd, int64_t offset, int64_t nbytes, unsigned flags) {
  return fd_host_call(c, SYS_sync_file_range, fd, static_cast<uint64_t>(offset), static_cast<uint64_t>(nbytes), flags);
}

}  // namespace emu::sys
