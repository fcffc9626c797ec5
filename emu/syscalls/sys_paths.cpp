#include "emu/syscalls/sys_paths.h"

#include <fcntl.h>

#include <array>
#include <cerrno>
#include <climits>
#include <optional>
#include <string_view>

#include "emu/process/guest_process.h"

namespace emu::sys {

namespace {

// What a /proc or /dev path names through the guest's descriptors: fd `fd`, or the current
// directory; `rest` is what follows in the path ("" or "/...").
struct FdAlias {
  std::optional<int> fd;  // nullopt: the current directory
  std::string_view rest;
};

// "N" or "N/...": a canonical fd number as /proc spells it (no sign, no leading zero). Other
// spellings are left to the host, which finds no such fd either.
std::optional<FdAlias> fd_number(std::string_view s) {
  size_t digits = 0;
  while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
  if (digits == 0 || digits > 9 || (digits > 1 && s[0] == '0')) return std::nullopt;
  if (digits < s.size() && s[digits] != '/') return std::nullopt;
  return FdAlias{std::stoi(std::string(s.substr(0, digits))), s.substr(digits)};
}

std::optional<FdAlias> fd_alias(std::string_view p, int pid, StdLinks std_links) {
  if (std_links == StdLinks::Follow) {
    constexpr std::array<std::string_view, 3> kStd = {"/dev/stdin", "/dev/stdout", "/dev/stderr"};
    for (int fd = 0; fd < 3; ++fd)
      if (p == kStd[fd]) return FdAlias{fd, {}};
  }
  if (p.starts_with("/dev/fd/")) return fd_number(p.substr(8));
  if (!p.starts_with("/proc/")) return std::nullopt;
  std::string_view in = p.substr(6);
  if (const std::string own = std::to_string(pid) + "/"; in.starts_with(own))
    in.remove_prefix(own.size());
  else if (in.starts_with("self/"))
    in.remove_prefix(5);
  else if (in.starts_with("thread-self/"))
    in.remove_prefix(12);
  else
    return std::nullopt;
  if (in.starts_with("fd/")) return fd_number(in.substr(3));
  if (in == "cwd" || in.starts_with("cwd/")) return FdAlias{std::nullopt, in.substr(3)};
  return std::nullopt;
}

// The guest's /proc path, naming the host's fd instead (one that cannot exist when the guest
// fd is not open: ENOENT, as Linux answers).
// /proc/self/exe names the guest program, not emu: exec'ing it (busybox runs its applets
// so) or opening it reaches the guest's executable. readlink keeps the link itself.
bool rewrite_exe_alias(Call& c, HostPath& out, StdLinks std_links) {
  if (std_links != StdLinks::Follow) return false;
  const std::string own = "/proc/" + std::to_string(c.proc.pid()) + "/exe";
  if (out.path != "/proc/self/exe" && out.path != "/proc/thread-self/exe" && out.path != own) return false;
  out.path = c.proc.exe_host_path();  // the file that was loaded, not a lookup by name again
  return true;
}

void rewrite_fd_alias(Call& c, HostPath& out, StdLinks std_links) {
  if (rewrite_exe_alias(c, out, std_links)) return;
  const auto alias = fd_alias(out.path, c.proc.pid(), std_links);
  if (!alias) return;
  out.named = alias->fd ? c.proc.files().get(*alias->fd) : c.proc.files().cwd();
  if (!alias->fd && !out.named) return;  // the directory is emu's own: /proc/self/cwd is right
  const std::string host_fd = out.named ? std::to_string(out.named->fd()) : "-1";
  out.path = "/proc/self/fd/" + host_fd + std::string(alias->rest);
}

}  // namespace

int64_t host_path(Call& c, int guest_dirfd, uint64_t path, HostPath& out, StdLinks std_links) {
  if (path == 0) return -EFAULT;
  // As Linux's getname: PATH_MAX bytes without their terminating zero are too long.
  if (!c.mem.read_string(c.v, path, PATH_MAX, out.path)) return out.path.size() == PATH_MAX ? -ENAMETOOLONG : -EFAULT;
  rewrite_fd_alias(c, out, std_links);
  if (out.path.starts_with('/')) {
    out.path = c.proc.config().sysroot.host_path(out.path);  // -L: the guest's root first
    return 0;  // Linux ignores the dirfd
  }
  out.dir = guest_dirfd == AT_FDCWD ? c.proc.files().cwd() : c.proc.files().get(guest_dirfd);
  out.dirfd = out.dir ? out.dir->fd() : guest_dirfd == AT_FDCWD ? AT_FDCWD : -1;
  return 0;
}

}  // namespace emu::sys
