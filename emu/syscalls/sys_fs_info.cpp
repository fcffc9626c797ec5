// File-system queries and hints that programs make as a matter of course (ls -l asks for
// extended attributes, df and find for statfs, cp and sort give fadvise hints, posix_spawn
// and python close descriptor ranges): each as Linux answers it, through the host.
#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <vector>

#include "emu/process/guest_process.h"
#include "emu/syscalls/sys_handlers.h"
#include "emu/syscalls/sys_paths.h"

namespace emu::sys {

namespace {

constexpr size_t kXattrNameMax = 255;       // XATTR_NAME_MAX
constexpr size_t kXattrSizeMax = 65536;     // XATTR_SIZE_MAX
constexpr size_t kXattrListMax = 65536;     // XATTR_LIST_MAX

// A path the plain (not *at) host calls accept: relative ones through the guest's cwd fd.
int64_t plain_path(Call& c, uint64_t path, std::string& out) {
  HostPath hp;
  if (const int64_t r = host_path(c, AT_FDCWD, path, hp)) return r;
  out = hp.path;
  if (!out.empty() && out[0] != '/' && hp.dirfd != AT_FDCWD) out = "/proc/self/fd/" + std::to_string(hp.dirfd) + "/" + out;
  return out.empty() ? -ENOENT : 0;
}

// What a set or remove acts on: `path` when `fd` is AT_FDCWD, else the guest's `fd`.
int64_t xattr_target(Call& c, uint64_t path, int fd, std::string& host_path_out, std::shared_ptr<HostFile>& file) {
  if (fd == AT_FDCWD) return plain_path(c, path, host_path_out);
  file = c.proc.files().get(fd);
  return file ? 0 : -EBADF;
}

int64_t xattr_name(Call& c, uint64_t name, std::string& out) {
  // Read further than the limit, so a long name is ERANGE as on Linux, not EFAULT.
  if (name == 0) return -EFAULT;
  if (!c.mem.read_string(c.v, name, 4096, out)) return out.size() == 4096 ? -ERANGE : -EFAULT;
  if (out.empty() || out.size() > kXattrNameMax) return -ERANGE;
  return 0;
}

// Runs `query(buffer, size)` (a get or list call) and copies what it returned to the guest.
template <typename Query>
int64_t copy_out(Call& c, uint64_t buf, uint64_t size, size_t max, Query query) {
  std::vector<char> tmp(std::min<uint64_t>(size, max));
  const ssize_t n = query(tmp.empty() ? nullptr : tmp.data(), tmp.size());
  // A buffer of the largest size that still does not hold it: E2BIG, as Linux says.
  if (n < 0 && errno == ERANGE && size >= max) return -E2BIG;
  if (n < 0) return -errno;
  if (size == 0) return n;  // the size it would take
  if (n > 0 && !c.mem.write(c.v, buf, tmp.data(), static_cast<size_t>(n))) return -EFAULT;
  return n;
}

// Writes a host statfs as the guest's layout: x86_64's struct statfs is the host's; i386
// has the compat statfs (32-bit counts, EOVERFLOW when they do not fit) and statfs64 (packed).
int64_t put_statfs(Call& c, const struct statfs& s, uint64_t buf, bool wide) {
  if (buf == 0) return -EFAULT;
  if (!c.i386) return c.mem.write(c.v, buf, &s, sizeof s) ? 0 : -EFAULT;
  const uint64_t fsid = [&] {
    uint64_t v = 0;
    std::memcpy(&v, &s.f_fsid, sizeof v);
    return v;
  }();
  std::array<uint8_t, 84> out{};
  size_t at = 0;
  auto put32 = [&](uint64_t v) { const uint32_t w = static_cast<uint32_t>(v); std::memcpy(out.data() + at, &w, 4); at += 4; };
  auto put64 = [&](uint64_t v) { std::memcpy(out.data() + at, &v, 8); at += 8; };
  if (!wide) {
    const uint64_t big = s.f_blocks | s.f_bfree | s.f_bavail | static_cast<uint64_t>(s.f_bsize) | static_cast<uint64_t>(s.f_frsize);
    const auto too_big = [](uint64_t v) { return v != ~uint64_t{0} && (v >> 32) != 0; };
    if ((big >> 32) != 0 || too_big(s.f_files) || too_big(s.f_ffree)) return -EOVERFLOW;
  }
  put32(s.f_type);
  put32(s.f_bsize);
  for (const uint64_t v : {s.f_blocks, s.f_bfree, s.f_bavail, s.f_files, s.f_ffree}) wide ? put64(v) : put32(v);
  put64(fsid);
  put32(s.f_namelen);
  put32(s.f_frsize);
  put32(s.f_flags);
  at += 16;  // f_spare
  return c.mem.write(c.v, buf, out.data(), at) ? 0 : -EFAULT;
}

}  // namespace

int64_t getxattr(Call& c, uint64_t path, uint64_t name, uint64_t value, uint64_t size, bool follow) {
  std::string p, n;
  if (const int64_t r = plain_path(c, path, p)) return r;
  if (const int64_t r = xattr_name(c, name, n)) return r;
  return copy_out(c, value, size, kXattrSizeMax, [&](char* b, size_t s) {
    return follow ? ::getxattr(p.c_str(), n.c_str(), b, s) : ::lgetxattr(p.c_str(), n.c_str(), b, s);
  });
}

int64_t fgetxattr(Call& c, int fd, uint64_t name, uint64_t value, uint64_t size) {
  const auto f = c.proc.files().get(fd);
  if (!f) return -EBADF;
  std::string n;
  if (const int64_t r = xattr_name(c, name, n)) return r;
  return copy_out(c, value, size, kXattrSizeMax, [&](char* b, size_t s) { return ::fgetxattr(f->fd(), n.c_str(), b, s); });
}

int64_t listxattr(Call& c, uint64_t path, uint64_t list, uint64_t size, bool follow) {
  std::string p;
  if (const int64_t r = plain_path(c, path, p)) return r;
  return copy_out(c, list, size, kXattrListMax, [&](char* b, size_t s) {
    return follow ? ::listxattr(p.c_str(), b, s) : ::llistxattr(p.c_str(), b, s);
  });
}

int64_t flistxattr(Call& c, int fd, uint64_t list, uint64_t size) {
  const auto f = c.proc.files().get(fd);
  if (!f) return -EBADF;
  return copy_out(c, list, size, kXattrListMax, [&](char* b, size_t s) { return ::flistxattr(f->fd(), b, s); });
}

int64_t setxattr(Call& c, uint64_t path, int fd, uint64_t name, uint64_t value, uint64_t size, int flags, bool follow) {
  std::string p, n;
  std::shared_ptr<HostFile> f;
  if (const int64_t r = xattr_target(c, path, fd, p, f)) return r;
  if (const int64_t r = xattr_name(c, name, n)) return r;
  if (size > kXattrSizeMax) return -E2BIG;
  std::vector<char> v(size);
  if (size && !c.mem.read(c.v, value, v.data(), size)) return -EFAULT;
  int r = 0;
  if (f) r = ::fsetxattr(f->fd(), n.c_str(), v.data(), size, flags);
  else r = follow ? ::setxattr(p.c_str(), n.c_str(), v.data(), size, flags) : ::lsetxattr(p.c_str(), n.c_str(), v.data(), size, flags);
  return r < 0 ? -errno : 0;
}

int64_t removexattr(Call& c, uint64_t path, int fd, uint64_t name, bool follow) {
  std::string p, n;
  std::shared_ptr<HostFile> f;
  if (const int64_t r = xattr_target(c, path, fd, p, f)) return r;
  if (const int64_t r = xattr_name(c, name, n)) return r;
  int r = 0;
  if (f) r = ::fremovexattr(f->fd(), n.c_str());
  else r = follow ? ::removexattr(p.c_str(), n.c_str()) : ::lremovexattr(p.c_str(), n.c_str());
  return r < 0 ? -errno : 0;
}

int64_t statfs(Call& c, uint64_t path, uint64_t buf, bool wide) {
  std::string p;
  if (const int64_t r = plain_path(c, path, p)) return r;
  struct statfs s {};
  if (::statfs(p.c_str(), &s) != 0) return -errno;
  return put_statfs(c, s, buf, wide);
}

int64_t fstatfs(Call& c, int fd, uint64_t buf, bool wide) {
  const auto f = c.proc.files().get(fd);
  if (!f) return -EBADF;
  struct statfs s {};
  if (::fstatfs(f->fd(), &s) != 0) return -errno;
  return put_statfs(c, s, buf, wide);
}

int64_t fadvise(Call& c, int fd, int64_t offset, int64_t len, int advice) {
  const auto f = c.proc.files().get(fd);
  if (!f) return -EBADF;
  return -::posix_fadvise(f->fd(), offset, len, advice);
}

int64_t close_range(Call& c, unsigned first, unsigned last, unsigned flags) {
  if (flags & ~(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC)) return -EINVAL;
  if (first > last) return -EINVAL;
  // CLOSE_RANGE_UNSHARE: every guest process has a table of its own already.
  for (const int fd : c.proc.files().open_fds()) {
    if (fd < 0 || static_cast<unsigned>(fd) < first || static_cast<unsigned>(fd) > last) continue;
    if (flags & CLOSE_RANGE_CLOEXEC) (void)c.proc.files().set_cloexec(fd, true);
    else (void)close(c, fd);
  }
  return 0;
}

}  // namespace emu::sys
