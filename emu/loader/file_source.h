// A host file as the MMU's page source: pages are read with pread when a fault needs them,
// never copied up front. The descriptor is emu's own duplicate, so the guest may close its fd
// (as programs do right after mmap) and the mapping still reads the file.
#pragma once

#include <memory>
#include <string>

#include "mmu/vma.h"

namespace emu {

class FileSource final : public mmu::PageSource {
 public:
  // Duplicates `fd` (close-on-exec); nullptr and errno set when that fails. `name` is what
  // /proc/self/maps and fault reports show: the file's path.
  static std::shared_ptr<FileSource> from_fd(int fd, std::string name);
  // Opens `path` read-only; nullptr and errno set when that fails.
  static std::shared_ptr<FileSource> open(const std::string& path);
  ~FileSource() override;
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;

  size_t read(uint64_t offset, uint8_t* dst, size_t len) const override;
  std::string name() const override { return name_; }
  int fd() const { return fd_; }

 private:
  FileSource(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}
  int fd_;
  std::string name_;
};

// The path a host fd names (readlink of /proc/self/fd/N), or "" when it has none.
std::string host_fd_path(int fd);

// pread until `len` bytes or the end of the file (EINTR retried); returns how many were read.
size_t pread_all(int fd, uint8_t* dst, size_t len, uint64_t offset);

}  // namespace emu
