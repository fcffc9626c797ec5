// The host file behind a MAP_SHARED file mapping (mmu::SharedBacking): pages are read from it
// on their first fault and written back to it on msync, fsync, a read() of the file, and when
// the last mapping goes. It holds its own descriptor, read-only (private mappings of every
// program and library read through here, and the host cannot execve a file open for
// writing); the first write-back opens the file again for writing.
#pragma once

#include <memory>
#include <mutex>

#include "mmu/shared_memory.h"

namespace emu {

class SharedFileBacking final : public mmu::SharedBacking {
 public:
  // nullptr (errno set) when no descriptor for the file can be had.
  static std::shared_ptr<SharedFileBacking> open(int host_fd);
  ~SharedFileBacking() override;
  size_t read(uint64_t offset, uint8_t* dst, size_t len) override;
  bool write(uint64_t offset, const uint8_t* src, size_t len) override;
  uint64_t size() override;

 private:
  explicit SharedFileBacking(int fd) : fd_(fd) {}
  const int fd_;       // read-only
  std::mutex write_lock_;
  int write_fd_ = -1;  // opened on the first write-back, then kept

};

}  // namespace emu
