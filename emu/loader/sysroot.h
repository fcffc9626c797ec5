// A foreign root for the guest's absolute paths (-L DIR, EMU_LD_PREFIX), as qemu-user's -L:
// "/usr/lib/libc.so.6" names DIR/usr/lib/libc.so.6 when that exists, else the host's file.
// The loader and the guest's path-taking calls (open, stat, access, readlink, exec) both
// look through it, so an i386 program finds its i386 libraries on an x86_64 host.
#pragma once

#include <string>

namespace emu {

class Sysroot {
 public:
  Sysroot() = default;
  // `dir` made absolute and without a trailing slash; "" (or "/") means the host's root.
  explicit Sysroot(const std::string& dir);

  bool empty() const { return dir_.empty(); }
  const std::string& dir() const { return dir_; }
  // The host path for the guest's `path`: under the root when it exists there. Relative
  // paths, and /proc, /dev, /sys and /tmp (the running system's, never a root's), stay.
  std::string host_path(const std::string& path) const;
  // The reverse, for what the guest is shown (/proc/self/exe, maps): a host path inside the
  // root loses the root's prefix.
  std::string guest_path(const std::string& host) const;

 private:
  std::string dir_;
};

}  // namespace emu
