// The host file behind a MAP_SHARED file mapping (mmu::SharedBacking): pages are read from it
// on their first fault and written back to it on msync, fsync, a read() of the file, and when
// the last mapping goes. It holds its own descriptor, opened read-write where the file
// allows, so that a later writable mapping through another fd can be written back too.
#pragma once

#include <memory>

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
  int fd_;
};

}  // namespace emu
