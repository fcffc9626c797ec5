// What execve(path, argv) runs, worked out as Linux's exec does before any memory changes:
// #! scripts rewritten to their interpreter (nested as deep as Linux allows), the ELF found
// (through the sysroot), and its PT_INTERP interpreter (ld.so) opened. Errors carry the
// errno execve returns and the exit status a shell gives.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "emu/loader/elf_image.h"
#include "emu/loader/sysroot.h"

namespace emu {

struct Program {
  ElfImage exe;
  std::optional<ElfImage> interp;  // the dynamic linker, for programs with PT_INTERP
  std::vector<std::string> argv;   // after #! rewriting
  std::string execfn;              // AT_EXECFN: the path execve was given
  std::string guest_exe;           // what /proc/self/exe shows: the ELF, as the guest names it
  std::string host_exe;            // the same file on the host (what opening /proc/self/exe opens)
  std::string guest_interp;        // the interpreter's file, as the guest names it (maps)
};

// Linux's exec_binprm: at most this many #! rewrites, then ELOOP.
constexpr int kMaxScriptDepth = 5;
// binfmt_script reads the #! line from this many leading bytes (BINPRM_BUF_SIZE).
constexpr size_t kShebangBytes = 256;

// `path` as the guest gave it (relative to emu's working directory when `cwd_fd` is
// AT_FDCWD). nullopt and *error when it cannot run.
std::optional<Program> open_program(const std::string& path, std::vector<std::string> argv, const Sysroot& root,
                                    ElfError* error, int cwd_fd = -100 /* AT_FDCWD */);

// The #! line of a script: interpreter and optional single argument, as binfmt_script
// splits it. nullopt when `head` is not a #! line; `interp` empty when the line is malformed
// (no interpreter, or too long to hold in kShebangBytes).
struct Shebang {
  std::string interp;
  std::optional<std::string> arg;
};
std::optional<Shebang> parse_shebang(std::string_view head);

}  // namespace emu
