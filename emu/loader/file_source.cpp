#include "emu/loader/file_source.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

namespace emu {

std::shared_ptr<FileSource> FileSource::from_fd(int fd, std::string name) {
  const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return nullptr;
  return std::shared_ptr<FileSource>(new FileSource(copy, std::move(name)));
}

std::shared_ptr<FileSource> FileSource::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return nullptr;
  return std::shared_ptr<FileSource>(new FileSource(fd, path));
}

FileSource::~FileSource() { ::close(fd_); }

size_t FileSource::read(uint64_t offset, uint8_t* dst, size_t len) const {
  // The file may have shrunk since it was mapped: what is not there any more reads as zero
  // (Linux would raise SIGBUS; the page cache issue brings that).
  return pread_all(fd_, dst, len, offset);
}

size_t pread_all(int fd, uint8_t* dst, size_t len, uint64_t offset) {
  size_t done = 0;
  while (done < len) {
    const ssize_t n = ::pread(fd, dst + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

std::string host_fd_path(int fd) {
  char buf[PATH_MAX];
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  const ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

}  // namespace emu
