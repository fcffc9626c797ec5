// Guest atomics as host atomics (DESIGN.md decision 6): what one LOCK-prefixed instruction (or
// xchg with memory) does, decoded once from Capstone's detail, and how it is carried out on
// the frame pool with a host atomic of the same width, with the registers and EFLAGS the CPU
// would leave. No Unicorn in here: the vCPU reads the registers, translates the address and
// writes the results (vcpu.cpp); the unit tests run the same operations against the host
// CPU executing the real instruction.
#pragma once

#include <capstone/capstone.h>

#include <cstdint>

#include "emu/cpu/guest_arch.h"

namespace emu {

enum class AtomicOp : uint8_t {
  Add, Adc, Sub, Sbb, And, Or, Xor,  // [m] op= src
  Inc, Dec, Neg, Not,                // [m] op= (no source)
  Xadd,                              // src <- [m], [m] += src
  Xchg,                              // src <-> [m]
  Cmpxchg,                           // if acc == [m]: [m] <- src, else acc <- [m]
  Cmpxchg8b, Cmpxchg16b,             // edx:eax / rdx:rax against [m], ecx:ebx / rcx:rbx stored
  Bts, Btr, Btc,                     // CF <- bit, then set / reset / complement it
};

// EFLAGS bits the arithmetic sets.
inline constexpr uint32_t kFlagCf = 1u << 0, kFlagPf = 1u << 2, kFlagAf = 1u << 4, kFlagZf = 1u << 6,
                          kFlagSf = 1u << 7, kFlagOf = 1u << 11;
inline constexpr uint32_t kArithFlags = kFlagCf | kFlagPf | kFlagAf | kFlagZf | kFlagSf | kFlagOf;

// A general register as an operand: index 0..15 (rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi,
// r8..r15), width in bytes, and for ah/ch/dh/bh the high byte of 0..3.
struct GuestReg {
  int8_t index = -1;
  uint8_t width = 0;
  bool high8 = false;
  bool valid() const { return index >= 0; }
};

// One atomic instruction at a guest address, as the vCPU's code hook needs it.
struct AtomicSite {
  uint64_t address = 0;
  uint8_t length = 0;
  AtomicOp op = AtomicOp::Add;
  uint8_t width = 0;  // operand bytes: 1, 2, 4, 8, or 16 (cmpxchg16b)
  // The memory operand: segment base (fs/gs only; other segments are flat) + base + index *
  // scale + disp (+ the next instruction's address when RIP-relative), wrapped to addr_bytes.
  GuestReg base, index;
  uint8_t scale = 1;
  int64_t disp = 0;
  bool rip_relative = false;
  uint8_t addr_bytes = 8;
  enum class Segment : uint8_t { None, Fs, Gs } segment = Segment::None;
  // The source: a register or an immediate (sign-extended). For bts/btr/btc a register
  // source is a signed bit offset that also moves the address (Intel's bit-string form).
  GuestReg src;
  bool src_imm = false;
  int64_t imm = 0;
};

// Decodes a LOCK-prefixed read-modify-write or an xchg with a memory operand. False for any
// other instruction, and for forms this code does not carry out (they keep the gate).
bool decode_atomic_site(const cs_insn& insn, GuestArch arch, AtomicSite* out);

// What a host-atomic operation needs besides the memory: the source value (register or
// immediate, or the bit offset for bt*), the accumulator(s), the cmpxchg8b/16b new value,
// and EFLAGS before (CF for adc/sbb, the bits left alone).
struct AtomicArgs {
  uint64_t src = 0;
  uint64_t acc = 0, acc_hi = 0;  // rax (cmpxchg); edx:eax or rdx:rax (cmpxchg8b/16b: acc low, acc_hi high)
  uint64_t new_lo = 0, new_hi = 0;  // ebx/rbx, ecx/rcx (cmpxchg8b/16b)
  uint32_t flags = 0;
};

struct AtomicResult {
  uint64_t old = 0, old_hi = 0;  // the memory operand before the operation (low, high for 16 bytes)
  uint32_t flags = 0;            // EFLAGS after
  bool success = false;          // cmpxchg*: the exchange happened
};

// Carries out `op` of `width` bytes on host memory `p` with one host atomic (a CAS loop for
// neg and adc/sbb), returning what the CPU would: the old value, the new EFLAGS. For bt* the
// caller has already moved `p` to the operand word holding the bit (bit_string_offset); `src`
// is then the bit number within it. `p` must not cross a page; cmpxchg16b needs 16-byte
// alignment (the caller checks: misaligned, the CPU raises #GP).
// With `flags` false the EFLAGS result is not computed (the caller lets Unicorn do it).
AtomicResult perform_atomic(AtomicOp op, unsigned width, void* p, const AtomicArgs& a, bool flags = true);

// bts/btr/btc with a register bit offset address the bit string at base + offset/8, rounded
// down to the operand width: the byte displacement to add to the effective address, and the
// bit number within that word.
void bit_string_offset(uint64_t offset_reg, unsigned width, int64_t* byte_delta, unsigned* bit);

// The flags these operations produce (exposed for the unit tests).
uint32_t flags_add(uint64_t a, uint64_t b, uint64_t carry, unsigned width);
uint32_t flags_sub(uint64_t a, uint64_t b, uint64_t borrow, unsigned width);
uint32_t flags_logic(uint64_t result, unsigned width);

// Register helpers: the value an operand register holds, and the full register after writing
// `value` to it (8/16-bit writes keep the rest, 32-bit writes zero the upper half in 64-bit
// mode, as the CPU does).
uint64_t reg_operand(uint64_t full, const GuestReg& r);
uint64_t reg_merge(uint64_t full, const GuestReg& r, uint64_t value, bool mode64);

}  // namespace emu
