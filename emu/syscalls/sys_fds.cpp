// The descriptor table and the current directory: the calls that change which guest fd names
// which HostFile (close, dup*, fcntl's table commands, pipe2), and chdir/fchdir/getcwd. The
// guest's descriptors are its own (fd_table.h): none of this touches emu's fds.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <string>
#include <vector>

#include "emu/process/guest_process.h"
#include "emu/syscalls/sys_handlers.h"
#include "emu/syscalls/sys_paths.h"

namespace emu::sys {

namespace {

// i386 fcntl64's commands for struct flock64 (sys_locks.cpp takes them).
constexpr int kI386GetLk64 = 12, kI386SetLk64 = 13, kI386SetLkW64 = 14;

// Makes the O_PATH directory `host_fd` (or -1 and errno) the guest's current directory.
// Linux's chdir wants search permission on it, which opening it with O_PATH never checked.
int64_t change_dir(Call& c, int host_fd) {
  if (host_fd < 0) return -errno;
  auto dir = std::make_shared<HostFile>(host_fd);
  if (::syscall(SYS_faccessat2, host_fd, "", X_OK, AT_EMPTY_PATH | AT_EACCESS) != 0 && errno != ENOSYS) return -errno;
  c.proc.files().set_cwd(std::move(dir));
  return 0;
}

constexpr int kDirFlags = O_PATH | O_DIRECTORY | O_CLOEXEC;

}  // namespace

int64_t close(Call& c, int fd) { return c.proc.files().close(fd); }

int64_t dup(Call& c, int fd) {
  auto f = c.proc.files().get(fd);
  return f ? c.proc.files().install(std::move(f), false) : -EBADF;
}

int64_t dup3(Call& c, int fd, int fd2, int flags, bool dup2_semantics) {
  FdTable& files = c.proc.files();
  if (dup2_semantics && fd == fd2) return files.get(fd) ? fd : -EBADF;  // dup2 onto itself: nothing changes
  // dup3's checks, in Linux's order.
  if (flags & ~O_CLOEXEC) return -EINVAL;
  if (fd == fd2) return -EINVAL;
  if (fd2 < 0 || fd2 >= files.limit()) return -EBADF;
  auto f = files.get(fd);
  return f ? files.install_at(fd2, std::move(f), (flags & O_CLOEXEC) != 0) : -EBADF;
}

int64_t fcntl(Call& c, int fd, int cmd, uint64_t arg, [[maybe_unused]] bool fcntl64) {
  FdTable& files = c.proc.files();
  auto f = files.get(fd);
  if (!f) return -EBADF;
  switch (cmd) {
    case F_DUPFD: case F_DUPFD_CLOEXEC:
      // The kernel takes the minimum as unsigned: a negative one is beyond the limit too.
      if (arg >= static_cast<uint64_t>(files.limit())) return -EINVAL;
      return files.install(std::move(f), cmd == F_DUPFD_CLOEXEC, static_cast<int>(arg));
    case F_GETFD: {
      const int on = files.cloexec(fd);
      return on < 0 ? on : (on ? FD_CLOEXEC : 0);
    }
    case F_SETFD: return files.set_cloexec(fd, (arg & FD_CLOEXEC) != 0);
    // The open file description's: the host's, shared by every guest fd that names it.
    case F_GETFL: case F_SETFL: case F_GETPIPE_SZ: case F_SETPIPE_SZ:
      return host_result(::fcntl(f->fd(), cmd, static_cast<long>(arg)));
    case F_GETLK: case F_SETLK: case F_SETLKW: case F_OFD_GETLK: case F_OFD_SETLK: case F_OFD_SETLKW:
    case kI386GetLk64: case kI386SetLk64: case kI386SetLkW64:
      return record_lock(c, f, cmd, arg);  // i386's fcntl is Linux's compat fcntl64 too (syscall_32.tbl)
    default:
      return -EINVAL;  // owners, leases, notifications, seals: not passed through
  }
}

int64_t pipe2(Call& c, uint64_t fds, int flags) {
  int p[2];
  if (::pipe2(p, flags | O_CLOEXEC) != 0) return -errno;  // the guest's O_CLOEXEC is the table's
  auto read_end = std::make_shared<HostFile>(p[0]);
  auto write_end = std::make_shared<HostFile>(p[1]);
  FdTable& files = c.proc.files();
  const bool cloexec = (flags & O_CLOEXEC) != 0;
  const int guest[2] = {files.install(std::move(read_end), cloexec), files.install(std::move(write_end), cloexec)};
  if (guest[0] < 0 || guest[1] < 0 || !c.mem.write(c.v, fds, guest, sizeof guest)) {
    for (int fd : guest)
      if (fd >= 0) files.close(fd);
    return guest[0] < 0 ? guest[0] : guest[1] < 0 ? guest[1] : -EFAULT;
  }
  return 0;
}

int64_t chdir(Call& c, uint64_t path) {
  HostPath hp;
  if (const int64_t r = host_path(c, AT_FDCWD, path, hp)) return r;
  return change_dir(c, ::openat(hp.dirfd, hp.path.c_str(), kDirFlags));
}

int64_t fchdir(Call& c, int fd) {
  const auto f = c.proc.files().get(fd);
  if (!f) return -EBADF;
  return change_dir(c, ::openat(f->fd(), ".", kDirFlags));  // ENOTDIR for a fd that is not a directory
}

int64_t getcwd(Call& c, uint64_t buf, uint64_t n) {
  std::string path;
  if (const auto cwd = c.proc.files().cwd()) {
    std::vector<char> tmp(PATH_MAX);
    const ssize_t r = ::readlink(("/proc/self/fd/" + std::to_string(cwd->fd())).c_str(), tmp.data(), tmp.size());
    if (r < 0) return -errno;
    path.assign(tmp.data(), r);
    // A directory that has been removed: the link reads "<path> (deleted)", Linux's getcwd fails.
    struct stat st {};
    if (::fstat(cwd->fd(), &st) == 0 && st.st_nlink == 0) return -ENOENT;
  } else {
    std::vector<char> tmp(PATH_MAX);
    if (!::getcwd(tmp.data(), tmp.size())) return -errno;
    path = tmp.data();
  }
  const size_t len = path.size() + 1;
  if (len > n) return -ERANGE;
  return c.mem.write(c.v, buf, path.c_str(), len) ? static_cast<int64_t>(len) : -EFAULT;
}

}  // namespace emu::sys
