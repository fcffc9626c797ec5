#include "emu/loader/program.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

namespace emu {

namespace {

bool blank(char c) { return c == ' ' || c == '\t'; }

// The host path to open for the guest's `path`: absolute ones through the root, relative
// ones through the guest's current directory (a host fd).
std::string host_file(const std::string& path, const Sysroot& root, int cwd_fd) {
  if (!path.empty() && path[0] == '/') return root.host_path(path);
  if (cwd_fd == AT_FDCWD) return path;
  return "/proc/self/fd/" + std::to_string(cwd_fd) + "/" + path;
}

}  // namespace

std::optional<Shebang> parse_shebang(std::string_view head) {
  if (!head.starts_with("#!")) return std::nullopt;
  head.remove_prefix(2);
  Shebang out;
  const size_t nl = head.find('\n');
  std::string_view line = head.substr(0, nl);
  const bool truncated = nl == std::string_view::npos && head.size() + 2 >= kShebangBytes;
  while (!line.empty() && (blank(line.back()) || line.back() == '\r' || line.back() == '\0'))
    line.remove_suffix(1);
  while (!line.empty() && blank(line.front())) line.remove_prefix(1);
  size_t end = 0;
  while (end < line.size() && !blank(line[end]) && line[end] != '\0') ++end;
  std::string_view rest = line.substr(end);
  // Linux gives ENOEXEC when the interpreter's name itself runs past the buffer.
  if (truncated && rest.empty()) return out;
  out.interp = std::string(line.substr(0, end));
  while (!rest.empty() && blank(rest.front())) rest.remove_prefix(1);
  if (!rest.empty()) out.arg = std::string(rest.substr(0, rest.find('\0')));
  return out;
}

std::optional<Program> open_program(const std::string& path, std::vector<std::string> argv, const Sysroot& root,
                                    ElfError* error, int cwd_fd) {
  auto fail = [&](int status, int err, const std::string& message) -> std::optional<Program> {
    *error = {status, err, message};
    return std::nullopt;
  };
  std::string file = path;
  for (int depth = 0;; ++depth) {
    if (depth > kMaxScriptDepth) return fail(126, ELOOP, path + ": too many levels of #! interpreters");
    const std::string host = host_file(file, root, cwd_fd);
    if (::access(host.c_str(), F_OK) != 0) {
      const int err = errno;
      if (depth == 0) return fail(err == ENOENT ? 127 : 126, err, file + ": " + std::strerror(err));
      return fail(err == ENOENT ? 127 : 126, err, path + ": bad #! interpreter " + file + ": " + std::strerror(err));
    }
    if (::access(host.c_str(), X_OK) != 0) return fail(126, errno, file + ": " + std::strerror(errno));
    char head[kShebangBytes] = {};
    ssize_t got = 0;
    if (const int fd = ::open(host.c_str(), O_RDONLY | O_CLOEXEC); fd >= 0) {
      got = ::pread(fd, head, sizeof head, 0);
      ::close(fd);
    }
    const auto shebang = got > 0 ? parse_shebang(std::string_view(head, static_cast<size_t>(got))) : std::nullopt;
    if (shebang) {
      if (shebang->interp.empty()) return fail(126, ENOEXEC, file + ": malformed #! line");
      // argv[0] gives way to the interpreter, its argument and the script's path.
      std::vector<std::string> next{shebang->interp};
      if (shebang->arg) next.push_back(*shebang->arg);
      next.push_back(root.guest_path(file));
      if (argv.size() > 1) next.insert(next.end(), argv.begin() + 1, argv.end());
      argv = std::move(next);
      file = shebang->interp;
      continue;
    }
    ElfError elf_error;
    auto exe = ElfImage::open(host, &elf_error);
    if (!exe) {
      elf_error.message = file + elf_error.message.substr(host.size());
      *error = elf_error;
      return std::nullopt;
    }
    char real[PATH_MAX];
    const std::string exe_host = ::realpath(host.c_str(), real) ? std::string(real) : host;
    Program program{std::move(*exe), std::nullopt, std::move(argv), root.guest_path(path), root.guest_path(exe_host), {}};
    if (const std::string& interp = program.exe.interpreter(); !interp.empty()) {
      const std::string interp_host = root.host_path(interp);
      ElfError interp_error;
      auto ld = ElfImage::open(interp_host, &interp_error);
      if (!ld && interp_error.exit_status == 127) {
        const std::string hint = root.empty() ? "give the root of the program's system with -L DIR (or EMU_LD_PREFIX)"
                                              : "it is not under the root " + root.dir() + " either (-L)";
        return fail(127, ENOENT, file + ": interpreter " + interp + " not found; " + hint);
      }
      if (!ld) return fail(126, interp_error.errno_value, file + ": interpreter " + interp_error.message);
      if (ld->arch() != program.exe.arch())
        return fail(126, ELIBBAD, file + ": interpreter " + interp + " is for " + std::string(to_string(ld->arch())));
      if (!ld->interpreter().empty())
        return fail(126, ELIBBAD, file + ": interpreter " + interp + " asks for an interpreter itself");
      program.guest_interp = root.guest_path(::realpath(interp_host.c_str(), real) ? std::string(real) : interp_host);
      program.interp = std::move(*ld);
    }
    return program;
  }
}

}  // namespace emu
