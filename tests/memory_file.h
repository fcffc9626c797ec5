// A file in memory for the page-cache tests: a SharedBacking whose page p holds p at byte 8,
// thread-safe, counting the writes it gets; and the same file as a private mapping's
// PageSource (what a FilePrivate VMA reads when it does not go through the cache).
#pragma once

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "mmu/shared_memory.h"
#include "mmu/vma.h"

namespace mmu::testing {

class MemoryFile final : public SharedBacking {
 public:
  explicit MemoryFile(uint64_t bytes) : data_(bytes) {
    for (uint64_t p = 0; p < bytes / kPageSize; ++p) std::memcpy(&data_[p * kPageSize + 8], &p, sizeof p);
  }
  size_t read(uint64_t offset, uint8_t* dst, size_t len) override {
    std::lock_guard g(lock_);
    if (offset >= data_.size()) return 0;
    const size_t n = std::min<size_t>(len, data_.size() - offset);
    std::memcpy(dst, &data_[offset], n);
    return n;
  }
  bool write(uint64_t offset, const uint8_t* src, size_t len) override {
    std::lock_guard g(lock_);
    if (offset + len > data_.size()) return false;
    std::memcpy(&data_[offset], src, len);
    ++writes_;
    return true;
  }
  uint64_t size() override { return data_.size(); }
  uint64_t word(uint64_t offset) {
    std::lock_guard g(lock_);
    uint64_t v;
    std::memcpy(&v, &data_[offset], sizeof v);
    return v;
  }
  uint64_t writes() {
    std::lock_guard g(lock_);
    return writes_;
  }

 private:
  std::mutex lock_;
  std::vector<uint8_t> data_;
  uint64_t writes_ = 0;
};

class MemoryFileSource final : public PageSource {
 public:
  explicit MemoryFileSource(std::shared_ptr<MemoryFile> f) : file_(std::move(f)) {}
  size_t read(uint64_t offset, uint8_t* dst, size_t len) const override { return file_->read(offset, dst, len); }
  std::string name() const override { return "memory file"; }

 private:
  std::shared_ptr<MemoryFile> file_;
};

}  // namespace mmu::testing
