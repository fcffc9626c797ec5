#include "emu/loader/sysroot.h"

#include <sys/stat.h>

#include <array>
#include <climits>
#include <cstdlib>
#include <string_view>

namespace emu {

namespace {

// Paths that name the running system, not files of a distribution: never redirected (a root
// made from packages has empty /proc, /dev, /sys and /tmp directories that would hide them).
bool system_path(std::string_view p) {
  constexpr std::array<std::string_view, 4> kSystem = {"/proc", "/dev", "/sys", "/tmp"};
  if (p == "/") return true;
  for (std::string_view s : kSystem)
    if (p.starts_with(s) && (p.size() == s.size() || p[s.size()] == '/')) return true;
  return false;
}

}  // namespace

Sysroot::Sysroot(const std::string& dir) {
  if (dir.empty()) return;
  char resolved[PATH_MAX];
  dir_ = ::realpath(dir.c_str(), resolved) ? resolved : dir;
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
  if (dir_ == "/") dir_.clear();
}

std::string Sysroot::host_path(const std::string& path) const {
  if (dir_.empty() || path.empty() || path[0] != '/' || system_path(path)) return path;
  // Already a host path inside the root (a program that found its own location through
  // /proc/self/exe before it was shown the guest's path): keep it.
  if (path.starts_with(dir_) && (path.size() == dir_.size() || path[dir_.size()] == '/')) return path;
  std::string under = dir_ + path;
  struct stat st {};
  return ::lstat(under.c_str(), &st) == 0 ? under : path;
}

std::string Sysroot::guest_path(const std::string& host) const {
  if (dir_.empty() || !host.starts_with(dir_)) return host;
  if (host.size() == dir_.size()) return "/";
  return host[dir_.size()] == '/' ? host.substr(dir_.size()) : host;
}

}  // namespace emu
