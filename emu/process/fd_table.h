// One guest process's file descriptors and current directory.
//
// Guest fds are not host fds: several guest processes will share the one host emu process,
// and a guest that closes its fd 1 must not close emu's stdout. A guest fd names a HostFile,
// which owns one host fd: an open file description in Linux's terms. dup, dup2 and fork
// share the HostFile, so they share the offset and status flags exactly as Linux does (it
// is the same host description); close-on-exec belongs to the guest fd, as in Linux.
//
// Every host fd emu opens for a guest is O_CLOEXEC on the host: it is emu's, never a host
// child's. The guest's own close-on-exec is the flag kept here.
//
// Threads of one guest process share the table (CLONE_FILES | CLONE_FS), hence the lock.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "mmu/spin_lock.h"
#include "mmu/thread_annotations.h"

namespace emu {

// What emu shows the guest instead of what the host fd would: for files emu makes up (the
// guest's own /proc entries, sys_procfs.h), whose host fd is only a stand-in (a memfd holding
// the text, an empty directory). Opaque here; the syscall layer knows its kinds.
class GuestView {
 public:
  virtual ~GuestView() = default;
  // What readlink of /proc/self/fd/N shows for a guest fd naming the file ("/proc/7/maps").
  virtual std::string link_target() const = 0;
};

class HostFile {
 public:
  // Takes `host_fd` over; closed with the last guest fd (of any process) that names it.
  // `view`: set for a file emu makes up (see GuestView).
  explicit HostFile(int host_fd, std::unique_ptr<GuestView> view = nullptr);
  ~HostFile();
  HostFile(const HostFile&) = delete;
  HostFile& operator=(const HostFile&) = delete;

  int fd() const { return fd_; }
  // A pipe, socket, terminal or event fd: a read or write may wait for another process, so a blocking
  // one must be interruptible (the guest process may be killed meanwhile).
  bool may_block() const { return may_block_; }
  // Null for a plain host file.
  GuestView* view() const { return view_.get(); }
  // `release` runs as the description goes (its last guest fd closed, in whichever process):
  // what belongs to the description, its flock and OFD locks (file_locks.h), goes with it.
  // Only the first call sets it.
  void on_release(std::function<void(HostFile&)> release);

 private:
  const int fd_;
  bool may_block_ = false;
  const std::unique_ptr<GuestView> view_;
  std::once_flag release_once_;
  std::function<void(HostFile&)> release_;
};

class FdTable {
 public:
  // Like Linux's default RLIMIT_NOFILE soft limit: guest fds are 0 .. limit-1.
  static constexpr int kDefaultLimit = 1024;

  // No fds; the current directory is emu's at this moment.
  explicit FdTable(int limit = kDefaultLimit);
  // Guest 0, 1, 2 name duplicates of emu's own 0, 1, 2 (at host fd 10 or above, so that a
  // host fd the guest frees never becomes emu's stdio). A std fd emu lacks stays free.
  static FdTable with_stdio(int limit = kDefaultLimit);
  // For fork: the same HostFiles under the same numbers and flags, the same directory.
  // Closing or chdir in one table never touches the other.
  FdTable clone() const EMU_EXCLUDES(lock_);

  // Takes `other`'s fds and directory, leaving it empty: for placing a table that a factory
  // made (std::make_unique<FdTable>(FdTable::with_stdio())). Not while `other` is in use.
  FdTable(FdTable&& other) noexcept EMU_EXCLUDES(other.lock_);
  FdTable(const FdTable&) = delete;
  FdTable& operator=(const FdTable&) = delete;

  int limit() const { return limit_.load(std::memory_order_acquire); }
  // setrlimit(RLIMIT_NOFILE)'s soft limit: fds at or above it can no longer be made (open fds
  // stay, as in Linux).
  void set_limit(int limit) { limit_.store(limit, std::memory_order_release); }

  // Null for a fd that is not open (EBADF). Callers hold the pointer across their host call,
  // so a close by another guest thread meanwhile cannot close the host fd under them.
  std::shared_ptr<HostFile> get(int fd) const EMU_EXCLUDES(lock_);
  // The open fds, ascending (what /proc/self/fd lists).
  std::vector<int> open_fds() const EMU_EXCLUDES(lock_);
  // Lowest free fd >= min_fd; -EINVAL when min_fd is outside [0, limit), -EMFILE when full.
  int install(std::shared_ptr<HostFile> file, bool cloexec, int min_fd = 0) EMU_EXCLUDES(lock_);
  // dup2/dup3: `fd` names `file` from now on; what it named before is closed. `fd` or
  // -EBADF when it is outside [0, limit).
  int install_at(int fd, std::shared_ptr<HostFile> file, bool cloexec) EMU_EXCLUDES(lock_);
  // 0 or -EBADF.
  int close(int fd) EMU_EXCLUDES(lock_);
  // 1 or 0, or -EBADF.
  int cloexec(int fd) const EMU_EXCLUDES(lock_);
  // 0 or -EBADF.
  int set_cloexec(int fd, bool on) EMU_EXCLUDES(lock_);
  // execve: every close-on-exec fd goes.
  void close_on_exec() EMU_EXCLUDES(lock_);
  // The process has ended: every fd goes (a pipe's last writer gone, its reader sees EOF).
  void close_all() EMU_EXCLUDES(lock_);
  // `dropped` runs (outside the lock) for every file this table stops naming, whichever way:
  // a process's POSIX record locks on a file go when it closes any fd of it (file_locks.h).
  // A clone() for fork starts without one (the child is another lock owner).
  void on_drop(std::function<void(const HostFile&)> dropped) EMU_EXCLUDES(lock_);

  // The current directory: an O_PATH directory fd every relative guest path is looked up
  // from. Null only if emu's own could not be opened; callers then use the host's (AT_FDCWD).
  std::shared_ptr<HostFile> cwd() const EMU_EXCLUDES(lock_);
  void set_cwd(std::shared_ptr<HostFile> dir) EMU_EXCLUDES(lock_);

 private:
  struct Entry {
    std::shared_ptr<HostFile> file;  // null: free
    bool cloexec = false;
  };
  FdTable(int limit, std::vector<Entry> entries, std::shared_ptr<HostFile> cwd);
  bool open_locked(int fd) const EMU_REQUIRES(lock_);
  // Tells the on_drop hook of `files` (called without the lock held).
  void dropped(const std::vector<std::shared_ptr<HostFile>>& files) EMU_EXCLUDES(lock_);

  std::atomic<int> limit_;
  mutable mmu::Mutex lock_;
  std::vector<Entry> entries_ EMU_GUARDED_BY(lock_);  // by guest fd; grows as fds are taken
  std::shared_ptr<HostFile> cwd_ EMU_GUARDED_BY(lock_);
  std::function<void(const HostFile&)> on_drop_ EMU_GUARDED_BY(lock_);
};

}  // namespace emu
