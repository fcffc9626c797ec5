#include "mmu/swap_device.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "mmu/types.h"

namespace mmu {

namespace {
std::string errno_text(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

uint64_t elapsed_ns(std::chrono::steady_clock::time_point start) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count());
}

bool check_size(uint64_t bytes, std::string* error) {
  if (bytes < kPageSize) {
    *error = "swap size must be at least one page (4 KiB)";
    return false;
  }
  // Slot numbers are 32-bit (and a 2-level i386 pte carries only 20 bits of them: the
  // address space stops using slots its entries cannot hold).
  if (bytes / kPageSize >= kNoSwapSlot) {
    *error = "swap size too large (at most 16 TiB)";
    return false;
  }
  return true;
}
}  // namespace

bool SwapDevice::Injection::fire() {
  if (count.load(std::memory_order_relaxed) <= 0) return false;
  if (skip.fetch_sub(1, std::memory_order_relaxed) > 0) return false;
  return count.fetch_sub(1, std::memory_order_relaxed) > 0;
}

std::unique_ptr<SwapDevice> SwapDevice::open_temporary(uint64_t bytes, std::string* error) {
  const char* dir = std::getenv("TMPDIR");
  return open(dir && *dir ? dir : "/tmp", bytes, error);
}

std::unique_ptr<SwapDevice> SwapDevice::open(const std::string& path, uint64_t bytes, std::string* error) {
  if (!check_size(bytes, error)) return nullptr;
  struct stat st {};
  int fd = -1;
  std::string description;
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    // O_TMPFILE would be neater but not every file system has it; mkstemp + unlink does.
    std::string templ = path + "/emu-swap-XXXXXX";
    fd = ::mkostemp(templ.data(), O_CLOEXEC);
    if (fd < 0) {
      *error = errno_text("cannot create a swap file in", path);
      return nullptr;
    }
    ::unlink(templ.c_str());
    description = "temporary file in " + path;
  } else if (::stat(path.c_str(), &st) == 0) {
    fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      *error = errno_text("cannot open swap file", path);
      return nullptr;
    }
    description = path;
  } else {
    fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      *error = errno_text("cannot create swap file", path);
      return nullptr;
    }
    ::unlink(path.c_str());
    description = path + " (removed at exit)";
  }
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && ::ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    *error = errno_text("cannot size swap file", path);
    ::close(fd);
    return nullptr;
  }
  return std::unique_ptr<SwapDevice>(new SwapDevice(fd, bytes / kPageSize, std::move(description)));
}

SwapDevice::SwapDevice(int fd, uint64_t slots, std::string description)
    : fd_(fd), slot_count_(slots), description_(std::move(description)), in_use_((slots + 63) / 64, 0) {
  // Bits past the last slot are permanently "in use" so the scan never hands them out.
  if (slots % 64) in_use_.back() = ~uint64_t{0} << (slots % 64);
}

SwapDevice::~SwapDevice() { ::close(fd_); }

void SwapDevice::limit_slots(uint64_t slots) {
  MutexGuard g(lock_);
  if (slots >= slot_count_) return;
  // Slots past the limit become permanently "in use", as the bits past the end are.
  for (uint64_t s = slots; s < slot_count_; ++s) {
    if (s % 64 == 0 && s + 64 <= slot_count_) {
      in_use_[s / 64] = ~uint64_t{0};
      s += 63;
      continue;
    }
    in_use_[s / 64] |= uint64_t{1} << (s % 64);
  }
  slot_count_ = slots;
}

void SwapDevice::dup(SwapSlot s) {
  MutexGuard g(lock_);
  if (s >= slot_count_ || !(in_use_[s / 64] & (uint64_t{1} << (s % 64)))) {
    std::fprintf(stderr, "emu mmu: swap slot %u duplicated while free or out of range\n", s);
    std::abort();
  }
  ++extra_refs_[s];
}

uint32_t SwapDevice::extra_refs(SwapSlot s) {
  MutexGuard g(lock_);
  const auto it = extra_refs_.find(s);
  return it == extra_refs_.end() ? 0 : it->second;
}

SwapSlot SwapDevice::allocate(uint64_t below) {
  MutexGuard g(lock_);
  const uint64_t limit = std::min<uint64_t>(below, slot_count_);
  const size_t words = static_cast<size_t>((limit + 63) / 64);
  if (words == 0) return kNoSwapSlot;
  if (cursor_ >= words) cursor_ = 0;
  for (size_t scanned = 0; scanned < words; ++scanned) {
    uint64_t taken = in_use_[cursor_];
    if (cursor_ == words - 1 && limit % 64) taken |= ~uint64_t{0} << (limit % 64);  // past the limit
    if (~taken) {
      const unsigned bit = static_cast<unsigned>(__builtin_ctzll(~taken));
      in_use_[cursor_] |= uint64_t{1} << bit;
      used_.fetch_add(1, std::memory_order_relaxed);
      return static_cast<SwapSlot>(cursor_ * 64 + bit);
    }
    cursor_ = (cursor_ + 1) % words;
  }
  return kNoSwapSlot;
}

void SwapDevice::free(SwapSlot s) {
  MutexGuard g(lock_);
  if (s >= slot_count_ || !(in_use_[s / 64] & (uint64_t{1} << (s % 64)))) {
    std::fprintf(stderr, "emu mmu: swap slot %u freed twice or out of range\n", s);
    std::abort();
  }
  if (auto it = extra_refs_.find(s); it != extra_refs_.end()) {
    if (--it->second == 0) extra_refs_.erase(it);
    return;
  }
  in_use_[s / 64] &= ~(uint64_t{1} << (s % 64));
  used_.fetch_sub(1, std::memory_order_relaxed);
}

size_t SwapDevice::write_run(SwapSlot first, std::span<uint8_t* const> pages) {
  // Injected failures count page by page, as if each page had its own write.
  size_t n = 0;
  while (n < pages.size() && !inject_write_.fire()) ++n;
  std::vector<iovec> iov(n);
  for (size_t i = 0; i < n; ++i) iov[i] = {pages[i], kPageSize};
  size_t done = 0;  // pages written
  const auto start = std::chrono::steady_clock::now();
  while (done < n) {
    const int count = static_cast<int>(std::min<size_t>(n - done, IOV_MAX));
    const ssize_t got = ::pwritev(fd_, iov.data() + done, count, static_cast<off_t>((uint64_t{first} + done) * kPageSize));
    if (got < 0 || got % kPageSize != 0 || got == 0) {
      last_errno_.store(got < 0 ? errno : ENOSPC, std::memory_order_relaxed);
      break;
    }
    done += static_cast<size_t>(got) / kPageSize;  // a short write: go on from where it stopped
  }
  write_ns_.fetch_add(elapsed_ns(start), std::memory_order_relaxed);
  if (n < pages.size() && done == n) last_errno_.store(EIO, std::memory_order_relaxed);
  if (done < pages.size()) write_errors_.fetch_add(1, std::memory_order_relaxed);
  bytes_written_.fetch_add(done * kPageSize, std::memory_order_relaxed);
  return done;
}

bool SwapDevice::read(SwapSlot s, void* page) {
  if (inject_read_.fire()) {
    last_errno_.store(EIO, std::memory_order_relaxed);
    read_errors_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  const auto start = std::chrono::steady_clock::now();
  const ssize_t n = ::pread(fd_, page, kPageSize, static_cast<off_t>(uint64_t{s} * kPageSize));
  read_ns_.fetch_add(elapsed_ns(start), std::memory_order_relaxed);
  if (n != static_cast<ssize_t>(kPageSize)) {
    last_errno_.store(n < 0 ? errno : EIO, std::memory_order_relaxed);
    read_errors_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  bytes_read_.fetch_add(kPageSize, std::memory_order_relaxed);
  return true;
}

void SwapDevice::inject_write_failures(uint64_t skip, uint64_t count) {
  inject_write_.skip.store(static_cast<int64_t>(skip), std::memory_order_relaxed);
  inject_write_.count.store(static_cast<int64_t>(count), std::memory_order_relaxed);
}

void SwapDevice::inject_read_failures(uint64_t skip, uint64_t count) {
  inject_read_.skip.store(static_cast<int64_t>(skip), std::memory_order_relaxed);
  inject_read_.count.store(static_cast<int64_t>(count), std::memory_order_relaxed);
}

}  // namespace mmu
