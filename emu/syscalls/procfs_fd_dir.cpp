#include "emu/syscalls/procfs_fd_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <mutex>

#include "emu/process/guest_process.h"

namespace emu::procfs {

namespace {

// struct linux_dirent64: d_ino, d_off, d_reclen, d_type, then the name and its NUL.
constexpr size_t kNameOffset = 19;

// An O_PATH fd of an empty directory that no longer has a name: made once, kept for the run.
int standin_parent() {
  static const int fd = [] {
    const char* tmp = ::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/emu-procfs-XXXXXX";
    if (!::mkdtemp(pattern.data())) return -errno;
    const int dir = ::open(pattern.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    const int saved = errno;
    ::rmdir(pattern.c_str());  // removed at once: nothing to clean up, whatever happens later
    return dir >= 0 ? dir : -saved;
  }();
  return fd;
}

}  // namespace

size_t encode_dirent64(const DirEntry& e, uint8_t* out, size_t room) {
  const size_t reclen = (kNameOffset + e.name.size() + 1 + 7) & ~size_t{7};
  if (reclen > room) return 0;
  std::memset(out, 0, reclen);
  const uint16_t len16 = static_cast<uint16_t>(reclen);
  std::memcpy(out, &e.ino, 8);
  std::memcpy(out + 8, &e.next, 8);
  std::memcpy(out + 16, &len16, 2);
  out[18] = e.type;
  std::memcpy(out + kNameOffset, e.name.data(), e.name.size());
  return reclen;
}

std::vector<DirEntry> fd_dir_entries(const std::vector<int>& open_fds, int64_t pos, uint64_t dir_ino) {
  std::vector<DirEntry> out;
  // Inode numbers only have to be distinct and non-zero (glibc's readdir skips 0).
  if (pos <= 0) out.push_back({dir_ino, 1, DT_DIR, "."});
  if (pos <= 1) out.push_back({dir_ino + 1, 2, DT_DIR, ".."});
  for (const int fd : open_fds)
    if (fd + 2 >= pos) out.push_back({dir_ino + 2 + static_cast<uint64_t>(fd), fd + 3, DT_LNK, std::to_string(fd)});
  return out;
}

int64_t FdDirView::read(const HostFile& dir, std::vector<uint8_t>& out, size_t room) {
  struct stat st {};
  const uint64_t dir_ino = ::fstat(dir.fd(), &st) == 0 && st.st_ino ? st.st_ino : 1;
  const auto owner = owner_.lock();
  std::lock_guard lk(lock_);
  // A process that has gone has no fds left (Linux: its directory lists nothing).
  const std::vector<int> fds = owner ? owner->files().open_fds() : std::vector<int>{};
  out.assign(room, 0);
  size_t used = 0;
  for (const DirEntry& e : fd_dir_entries(fds, pos_, dir_ino)) {
    const size_t n = encode_dirent64(e, out.data() + used, room - used);
    if (n == 0) {
      if (used == 0) return -EINVAL;  // the buffer holds not even one entry
      break;
    }
    used += n;
    pos_ = e.next;
  }
  out.resize(used);
  return static_cast<int64_t>(used);
}

int64_t FdDirView::seek(int64_t offset, int whence) {
  std::lock_guard lk(lock_);
  int64_t to = 0;
  switch (whence) {
    case SEEK_SET: case SEEK_END: to = offset; break;  // the size is 0
    case SEEK_CUR: to = pos_ + offset; break;
    default: return -EINVAL;
  }
  if (to < 0) return -EINVAL;
  pos_ = to;
  return to;
}

int open_fd_dir_standin() {
  if (const int parent = standin_parent(); parent >= 0) {
    const int fd = ::openat(parent, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) return fd;
  }
  // No temporary directory: emu's own fd directory stands in (a lookup in it would find
  // emu's fds, but listing and fstat are still right).
  const int fd = ::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  return fd >= 0 ? fd : -errno;
}

}  // namespace emu::procfs
