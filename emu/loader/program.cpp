#include "emu/loader/program.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

namespace emu {

namespace {


// The host path to open for the guest's `path`: absolute ones through the root, relative
// ones through the guest's current directory (a host fd).
std::string host_file(const std::string& path, const Sysroot& root, int cwd_fd) {
  if (!path.empty() && path[0] == '/') return root.host_path(path);
  if (cwd_fd == AT_FDCWD) return path;
  return "/proc/self/fd/" + std::to_string(cwd_fd) + "/" + path;
}

}  // namespace

// binfmt_script's load_script, step by step, on the same zero-padded buffer (its last byte
// is never part of the line).
std::optional<Shebang> parse_shebang(std::string_view head) {
  if (!head.starts_with("#!")) return std::nullopt;
  char buf[kShebangBytes] = {};
  std::memcpy(buf, head.data(), std::min(head.size(), sizeof buf));
  const char* const last = buf + sizeof buf - 1;
  auto spacetab = [](char ch) { return ch == ' ' || ch == '\t'; };
  auto next_non_spacetab = [&](const char* p, const char* end) -> const char* {
    for (; p <= end; ++p)
      if (!spacetab(*p)) return p;
    return nullptr;
  };
  auto next_terminator = [&](const char* p, const char* end) -> const char* {
    for (; p <= end; ++p)
      if (spacetab(*p) || *p == '\0') return p;
    return nullptr;
  };
  Shebang out;  // interp empty: ENOEXEC
  const char* i_end = static_cast<const char*>(std::memchr(buf, '\n', sizeof buf));
  if (!i_end) {
    // No newline: the interpreter's name must end inside the buffer, or it was cut short.
    i_end = next_non_spacetab(buf + 2, last);
    if (!i_end || !next_terminator(i_end, last)) return out;
    i_end = last;
  }
  while (i_end > buf + 2 && spacetab(i_end[-1])) --i_end;
  const char* i_name = next_non_spacetab(buf + 2, i_end);
  if (!i_name || i_name == i_end) return out;
  const char* i_sep = next_terminator(i_name, i_end);
  const char* name_end = i_sep ? i_sep : i_end;
  const char* i_arg = i_sep && *i_sep != '\0' ? next_non_spacetab(i_sep, i_end) : nullptr;
  // Both are C strings in the kernel: each stops at its first NUL (the line's end is one).
  out.interp.assign(i_name, static_cast<size_t>(name_end - i_name));
  out.interp.resize(std::strlen(out.interp.c_str()));
  if (out.interp.empty()) return out;
  if (i_arg) {
    out.arg = std::string(i_arg, static_cast<size_t>(i_end - i_arg));
    out.arg->resize(std::strlen(out.arg->c_str()));
  }
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
    // Non-blocking: a FIFO must not hang the exec; anything but a regular file is EACCES.
    if (const int fd = ::open(host.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK); fd >= 0) {
      struct stat st {};
      const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
      if (regular) got = ::pread(fd, head, sizeof head, 0);
      ::close(fd);
      if (!regular) return fail(126, EACCES, file + ": " + std::strerror(EACCES));
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
    Program program{std::move(*exe), std::nullopt, std::move(argv), root.guest_path(path), root.guest_path(exe_host), exe_host, {}};
    if (const std::string& interp = program.exe.interpreter(); !interp.empty()) {
      const std::string interp_host = root.host_path(interp);
      ElfError interp_error;
      auto ld = ElfImage::open(interp_host, &interp_error);
      if (!ld && interp_error.exit_status == 127) {
        const std::string hint = root.empty() ? "give the root of the program's system with -L DIR (or EMU_LD_PREFIX)"
                                              : "it is not under the root " + root.dir() + " either (-L)";
        return fail(127, ENOENT, file + ": interpreter " + interp + " not found; " + hint);
      }
      if (!ld) {
        // Linux: a corrupt or non-ELF interpreter is ELIBBAD, an unreadable one its own errno.
        const int err = interp_error.errno_value == ENOEXEC ? ELIBBAD : interp_error.errno_value;
        return fail(126, err, file + ": interpreter " + interp_error.message);
      }
      if (::access(interp_host.c_str(), X_OK) != 0)
        return fail(126, errno, file + ": interpreter " + interp + ": " + std::strerror(errno));
      if (ld->arch() != program.exe.arch())
        return fail(126, ELIBBAD, file + ": interpreter " + interp + " is for " + std::string(to_string(ld->arch())));
      // An interpreter's own PT_INTERP is ignored, as Linux ignores it.
      program.guest_interp = root.guest_path(::realpath(interp_host.c_str(), real) ? std::string(real) : interp_host);
      program.interp = std::move(*ld);
    }
    return program;
  }
}

}  // namespace emu
