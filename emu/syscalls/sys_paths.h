// Guest paths and descriptors made ready for a host call: what the file syscalls share.
#pragma once

#include <fcntl.h>

#include <cerrno>
#include <cstdint>
#include <memory>
#include <string>

#include "emu/process/fd_table.h"
#include "emu/syscalls/syscalls.h"

namespace emu::sys {

// A host call's result as a syscall result: the value, or -errno.
inline int64_t host_result(long r) { return r < 0 ? -errno : r; }

// A guest (dirfd, path) pair for a host *at call. A relative path is looked up from the
// guest's dirfd, or its current directory for AT_FDCWD (never emu's); a /proc or /dev path
// that names a guest fd (/proc/self/fd/N, /dev/fd/N, /dev/stdout, /proc/self/cwd, ...) is
// rewritten to name the host fd behind it. The HostFiles stay open while this lives.
struct HostPath {
  int dirfd = AT_FDCWD;
  std::string path;
  std::shared_ptr<HostFile> dir;    // behind dirfd
  std::shared_ptr<HostFile> named;  // behind a rewritten /proc path
};

// Whether /dev/stdin, /dev/stdout and /dev/stderr are rewritten: not for readlink, which
// must see those symlinks themselves ("/proc/self/fd/0"), as on Linux.
enum class StdLinks { Follow, Keep };

// 0, or -EFAULT for an unreadable path. A dirfd the guest has not open becomes host fd -1,
// so the host call fails with EBADF just where Linux would (not at all for an absolute path).
int64_t host_path(Call& c, int guest_dirfd, uint64_t path, HostPath& out, StdLinks std_links = StdLinks::Follow);

}  // namespace emu::sys
