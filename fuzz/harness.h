// libFuzzer harnesses for emu's input-facing code (the hardening issue's fuzzing part).
//
// Each harness is a plain function over one input's bytes, built into the library
// emu_fuzz_harnesses in every configuration: the libFuzzer targets (-DEMU_FUZZ=ON, clang)
// call it from LLVMFuzzerTestOneInput (fuzz_main.cpp), and the regression test
// (tests/fuzz_regression_test.cpp, any compiler) replays fuzz/regressions/ and the seed
// corpora through the very same function. A property a harness checks that does not hold is
// reported by fail(): one line on stderr, then abort(), which libFuzzer saves as a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "emu/cpu/guest_arch.h"
#include "mmu/address_space.h"
#include "mmu/frame_pool.h"

namespace emu::fuzz {

// The harnesses. Each returns 0 (libFuzzer's "keep going").
int elf_loader(const uint8_t* data, size_t size);     // ElfImage, open_program, load_program
int initial_stack(const uint8_t* data, size_t size);  // build_initial_stack, read back
int syscalls(const uint8_t* data, size_t size);       // dispatch_x86_64 / dispatch_i386
int sigreturn(const uint8_t* data, size_t size);      // pop_signal_frame, push/pop round trip
int procfs_maps(const uint8_t* data, size_t size);    // /proc/self/maps over a fuzzed space

struct HarnessInfo {
  const char* name;  // also the folder under fuzz/corpus and fuzz/regressions
  int (*run)(const uint8_t* data, size_t size);
};
// Every harness, in a fixed order.
const std::vector<HarnessInfo>& harnesses();

// A harness's property does not hold: prints "emu-fuzz: <harness>: <what>" and aborts.
[[noreturn]] void fail(const char* harness, const std::string& what);

// Once per process: quiet logging, SIGPIPE and SIGXFSZ ignored (a guest's write to a closed
// socket or past the file size limit must come back as an error, not end the fuzzer), a file
// size limit so that a guest cannot fill the disk, and the scratch directory.
void init_process();

// The input, consumed front to back; reads past the end give zeros.
class Input {
 public:
  Input(const uint8_t* data, size_t size) : p_(data), n_(size) {}
  bool empty() const { return n_ == 0; }
  size_t left() const { return n_; }
  uint8_t u8() { return static_cast<uint8_t>(take_le(1)); }
  uint16_t u16() { return static_cast<uint16_t>(take_le(2)); }
  uint32_t u32() { return static_cast<uint32_t>(take_le(4)); }
  uint64_t u64() { return take_le(8); }
  bool flag() { return u8() & 1; }
  // Up to `n` bytes (fewer at the end).
  std::string_view bytes(size_t n) {
    if (n > n_) n = n_;
    std::string_view out(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    n_ -= n;
    return out;
  }
  std::string_view rest() { return bytes(n_); }

 private:
  uint64_t take_le(size_t k) {
    uint64_t v = 0;
    for (size_t i = 0; i < k && n_ > 0; ++i, ++p_, --n_) v |= uint64_t{*p_} << (8 * i);
    return v;
  }
  const uint8_t* p_;
  size_t n_;
};

// A memfd holding `bytes`, opened by path as any file is: /proc/self/fd/N.
class MemFile {
 public:
  MemFile(std::string_view bytes, const char* name = "emu-fuzz");
  ~MemFile();
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;
  const std::string& path() const { return path_; }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  std::string path_;
};

// The guest-physical memory of the harnesses that need no Machine (loader, stack, frames,
// maps): one small pool for the whole process, every frame back in it after each input.
mmu::FramePool& small_pool();
// Aborts when a frame other than the zero frame is still in use (an input leaked one).
void check_pool_empty(const char* harness, const mmu::FramePool& pool);
// An empty address space over small_pool() with the paging a guest of `arch` gets (i386:
// 2-level, x86_64: 4-level), through slot 0.
std::unique_ptr<mmu::AddressSpace> new_space(GuestArch arch);

// Host fds this process has open (/proc/self/fd): equal before and after an input, or an
// input leaked one.
int count_host_fds();

// A directory of the harness's own under $TMPDIR (or /dev/shm), made empty again with
// reset_scratch(): the only place a fuzzed guest may create, rename or remove files.
const std::string& scratch_dir();
void reset_scratch();

}  // namespace emu::fuzz
