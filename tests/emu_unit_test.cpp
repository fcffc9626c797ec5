// Pieces of the emulator that can be checked without running a guest.
#include <gtest/gtest.h>

#include <vector>

#include "emu/atomic_block_detector.h"

namespace {

using emu::AtomicBlockDetector;
using emu::GuestArch;

bool atomic(GuestArch arch, std::vector<uint8_t> code) {
  AtomicBlockDetector d(arch);
  return d.contains_atomic(code, 0x1000);
}

TEST(AtomicBlockDetector, FindsLockedReadModifyWrites) {
  EXPECT_TRUE(atomic(GuestArch::X86_64, {0xf0, 0xff, 0x00}));              // lock inc dword [rax]
  EXPECT_TRUE(atomic(GuestArch::X86_64, {0x90, 0xf0, 0x0f, 0xb1, 0x17}));  // nop; lock cmpxchg [rdi], edx
  EXPECT_TRUE(atomic(GuestArch::X86_64, {0x87, 0x07}));                    // xchg [rdi], eax (implicitly locked)
  EXPECT_TRUE(atomic(GuestArch::X86_64, {0xf0, 0x48, 0x0f, 0xc7, 0x0e}));  // lock cmpxchg16b [rsi]
  EXPECT_TRUE(atomic(GuestArch::I386, {0xf0, 0x0f, 0xc7, 0x0e}));          // lock cmpxchg8b [esi]
  EXPECT_TRUE(atomic(GuestArch::I386, {0xf0, 0x0f, 0xc1, 0x02}));          // lock xadd [edx], eax
}

TEST(AtomicBlockDetector, IgnoresPlainInstructions) {
  EXPECT_FALSE(atomic(GuestArch::X86_64, {0xff, 0xc0}));        // inc eax
  EXPECT_FALSE(atomic(GuestArch::X86_64, {0x48, 0x87, 0xd8}));  // xchg rax, rbx (registers only)
  EXPECT_FALSE(atomic(GuestArch::X86_64, {0x0f, 0xb1, 0x17}));  // cmpxchg without lock
  EXPECT_FALSE(atomic(GuestArch::I386, {0x89, 0x07, 0xc3}));    // mov [edi], eax; ret
  EXPECT_FALSE(atomic(GuestArch::I386, {}));
}

TEST(AtomicBlockDetector, CachesPerBlockUntilInvalidated) {
  AtomicBlockDetector d(GuestArch::X86_64);
  const std::vector<uint8_t> locked = {0xf0, 0xff, 0x00};
  EXPECT_EQ(d.cached(0x4000, 3), -1);
  EXPECT_TRUE(d.scan(0x4000, 3, locked));
  EXPECT_EQ(d.cached(0x4000, 3), 1);
  EXPECT_EQ(d.cached(0x4000, 5), -1) << "same address, another block size";
  d.invalidate();
  EXPECT_EQ(d.cached(0x4000, 3), -1);
}

}  // namespace
