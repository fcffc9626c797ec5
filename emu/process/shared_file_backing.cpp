#include "emu/process/shared_file_backing.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "emu/loader/file_source.h"

namespace emu {

std::shared_ptr<SharedFileBacking> SharedFileBacking::open(int host_fd) {
  // Reopening through /proc gives a descriptor of its own (own offset, own access mode):
  // read-write when the file permits, read-only otherwise (then write-back is impossible
  // anyway, and so is a writable shared mapping: mmap checks the guest's fd for that).
  const std::string path = "/proc/self/fd/" + std::to_string(host_fd);
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) fd = ::fcntl(host_fd, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return nullptr;
  return std::shared_ptr<SharedFileBacking>(new SharedFileBacking(fd));
}

SharedFileBacking::~SharedFileBacking() { ::close(fd_); }

size_t SharedFileBacking::read(uint64_t offset, uint8_t* dst, size_t len) { return pread_all(fd_, dst, len, offset); }

bool SharedFileBacking::write(uint64_t offset, const uint8_t* src, size_t len) {
  size_t put = 0;
  while (put < len) {
    const ssize_t n = ::pwrite(fd_, src + put, len - put, static_cast<off_t>(offset + put));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    put += static_cast<size_t>(n);
  }
  return true;
}

uint64_t SharedFileBacking::size() {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_size);
}

}  // namespace emu
