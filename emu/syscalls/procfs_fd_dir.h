// /proc/PID/fd as a directory for the guest: getdents64 lists the guest's fd numbers, not
// emu's. glibc's closefrom fallback, Python's subprocess (closing inherited fds), `ls
// /proc/self/fd` all list it; the names they get back are guest fds they then close or read.
//
// The guest fd names a HostFile whose host fd is a stand-in: an empty directory (removed, so
// nothing is left behind), so fstat says "directory" and a lookup relative to it finds nothing
// (ENOENT) instead of one of emu's own fds. The entries come from FdDirView, which the
// syscall layer asks in place of the host (getdents64, lseek).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "emu/process/fd_table.h"

namespace emu {
class GuestProcess;
}

namespace emu::procfs {

// One struct linux_dirent64 (the same on every ABI).
struct DirEntry {
  uint64_t ino = 0;
  int64_t next = 0;  // d_off: the position after this entry
  uint8_t type = 0;  // DT_*
  std::string name;
};
// Writes `e` at `out` if it fits in `room` bytes: its d_reclen (8-byte aligned), else 0.
size_t encode_dirent64(const DirEntry& e, uint8_t* out, size_t room);

// The entries of an fd directory from position `pos` on, as Linux's proc_readfd_common numbers
// them: 0 ".", 1 "..", then fd N at position N + 2. So a reader that closes fds between
// calls neither skips nor repeats one. `dir_ino`: the directory's inode.
std::vector<DirEntry> fd_dir_entries(const std::vector<int>& open_fds, int64_t pos, uint64_t dir_ino);

// The directory fd of `owner` (the process the path named when it was opened: a child that
// inherits the fd still lists its parent's fds, as on Linux).
class FdDirView final : public GuestView {
 public:
  FdDirView(std::weak_ptr<GuestProcess> owner, std::string path) : owner_(std::move(owner)), path_(std::move(path)) {}
  std::string link_target() const override { return path_; }

  // getdents64: what fits in `room` bytes from the current position into `out`, the
  // position moved past it. Bytes written (0 at the end), or -EINVAL when the next entry
  // does not fit at all.
  int64_t read(const HostFile& dir, std::vector<uint8_t>& out, size_t room);
  // lseek on the directory: the new position, or -EINVAL (generic_file_llseek's rules with a
  // size of 0).
  int64_t seek(int64_t offset, int whence);

 private:
  const std::weak_ptr<GuestProcess> owner_;
  const std::string path_;
  std::mutex lock_;  // dup'd and inherited fds share the position, as an open file description does
  int64_t pos_ = 0;
};

// A host fd for the stand-in directory (O_RDONLY | O_DIRECTORY | O_CLOEXEC), or -errno.
int open_fd_dir_standin();

}  // namespace emu::procfs
