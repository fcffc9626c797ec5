// The guest's /proc as it sees itself. A guest's open of /proc/self/maps would otherwise
// reach the host's /proc and describe emu's process: its own VMAs, auxv, argv, threads and
// fds are what the guest asks for, and what it gets here.
//
// Emu answers, for the calling process ("self", "thread-self", its pid, and its threads'
// /proc/PID/task/TID): maps, auxv, cmdline, comm, stat, status (generated at open into a
// read-only memfd, as Linux generates them at read time), the fd directory (procfs_fd_dir.h),
// and readlink of exe, /proc/self and /proc/thread-self; and /proc/cpuinfo (the emulated
// CPU). Everything else under /proc and /sys is the host's.
//
// Other guest processes of the run (/proc/PID with a guest pid): exe, cmdline and comm, from a
// copy taken under the process's identity lock (their execve may replace them meanwhile).
// The rest of their /proc (maps, status: their address space may be replaced or dropped
// under a reader) still reaches the host.
//
// Only absolute paths are recognised: a guest that chdir()s into /proc/self and opens "maps"
// reaches the host's file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "emu/process/fd_table.h"
#include "emu/syscalls/syscalls.h"

namespace emu::procfs {

// What a /proc path names, among the paths emu may answer.
struct ProcPath {
  enum class Kind : uint8_t {
    CpuInfo,         // /proc/cpuinfo
    SelfLink,        // /proc/self itself (a symlink: readlink)
    ThreadSelfLink,  // /proc/thread-self itself
    Process,         // something under /proc/self, /proc/thread-self, /proc/PID[/task/TID]
  };
  enum class Who : uint8_t { Self, ThreadSelf, Pid };
  Kind kind = Kind::Process;
  Who who = Who::Self;
  int pid = 0;  // Who::Pid
  int tid = 0;  // /proc/PID/task/TID (also under self); 0: none
  std::string file;  // below the process (or task) directory: "maps", "fd", "fd/3"; "" for it
};

// `path` with "//", "/./" and trailing slashes gone and ".." applied (lexically: in /proc
// the only links are self and thread-self, and their ".." is /proc again).
std::string normalize_path(std::string_view path);
// nullopt for a path that is not one of the forms above (relative ones included).
std::optional<ProcPath> parse_proc_path(std::string_view path);

}  // namespace emu::procfs

namespace emu::sys {

// openat of a path emu answers: the guest fd or -errno; nullopt for a path the host answers.
std::optional<int64_t> procfs_openat(Call& c, uint64_t path, int flags);
// readlinkat: the target of /proc/self, /proc/thread-self, the exe link, or of a fd link
// (`named`: the HostFile sys_paths found behind /proc/self/fd/N) naming a file emu made up.
// nullopt for a link the host answers.
std::optional<std::string> procfs_readlink(Call& c, uint64_t path, const HostFile* named);
// getdents64 and lseek on a directory emu made up (the fd directory); nullopt for a host one.
std::optional<int64_t> procfs_getdents64(Call& c, const HostFile& f, uint64_t buf, uint64_t n);
std::optional<int64_t> procfs_lseek(const HostFile& f, int64_t offset, int whence);

}  // namespace emu::sys
