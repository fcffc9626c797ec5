#include "emu/process/shared_file_backing.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "emu/loader/file_source.h"

namespace emu {

std::shared_ptr<SharedFileBacking> SharedFileBacking::open(int host_fd) {
  // Reopening through /proc gives a descriptor of its own (own offset, own access mode),
  // read-only: every program and library emu runs is mapped through here, and a descriptor
  // open for writing would make the host's execve of that file fail with ETXTBSY. The first
  // write-back opens one for writing (write()).
  const std::string path = "/proc/self/fd/" + std::to_string(host_fd);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fd = ::fcntl(host_fd, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return nullptr;
  return std::shared_ptr<SharedFileBacking>(new SharedFileBacking(fd));
}

SharedFileBacking::~SharedFileBacking() {
  ::close(fd_);
  if (write_fd_ >= 0) ::close(write_fd_);
}

size_t SharedFileBacking::read(uint64_t offset, uint8_t* dst, size_t len) { return pread_all(fd_, dst, len, offset); }

bool SharedFileBacking::write(uint64_t offset, const uint8_t* src, size_t len) {
  int wfd;
  {
    // Only a writable MAP_SHARED mapping writes back, and mmap checked that the guest's fd
    // was open for writing; failing here (the file's mode changed since) is an I/O error.
    std::lock_guard g(write_lock_);
    if (write_fd_ < 0) write_fd_ = ::open(("/proc/self/fd/" + std::to_string(fd_)).c_str(), O_WRONLY | O_CLOEXEC);
    if (write_fd_ < 0) return false;
    wfd = write_fd_;
  }
  size_t put = 0;
  while (put < len) {
    const ssize_t n = ::pwrite(wfd, src + put, len - put, static_cast<off_t>(offset + put));
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
