#include "emu/cpu/guest_atomics.h"

#include <cstring>
#include <type_traits>

namespace emu {

namespace {

uint64_t width_mask(unsigned width) { return width >= 8 ? ~uint64_t{0} : (uint64_t{1} << (width * 8)) - 1; }

uint32_t zsp(uint64_t r, unsigned width) {
  uint32_t f = 0;
  if (r == 0) f |= kFlagZf;
  if ((r >> (width * 8 - 1)) & 1) f |= kFlagSf;
  if (!__builtin_parityll(r & 0xff)) f |= kFlagPf;
  return f;
}

// The general register a Capstone register names.
GuestReg guest_reg(x86_reg r) {
  static constexpr x86_reg k8[16] = {X86_REG_AL,  X86_REG_CL,  X86_REG_DL,  X86_REG_BL,  X86_REG_SPL, X86_REG_BPL,
                                     X86_REG_SIL, X86_REG_DIL, X86_REG_R8B, X86_REG_R9B, X86_REG_R10B, X86_REG_R11B,
                                     X86_REG_R12B, X86_REG_R13B, X86_REG_R14B, X86_REG_R15B};
  static constexpr x86_reg k16[16] = {X86_REG_AX,  X86_REG_CX,  X86_REG_DX,   X86_REG_BX,   X86_REG_SP,   X86_REG_BP,
                                      X86_REG_SI,  X86_REG_DI,  X86_REG_R8W,  X86_REG_R9W,  X86_REG_R10W, X86_REG_R11W,
                                      X86_REG_R12W, X86_REG_R13W, X86_REG_R14W, X86_REG_R15W};
  static constexpr x86_reg k32[16] = {X86_REG_EAX, X86_REG_ECX, X86_REG_EDX,  X86_REG_EBX,  X86_REG_ESP,  X86_REG_EBP,
                                      X86_REG_ESI, X86_REG_EDI, X86_REG_R8D,  X86_REG_R9D,  X86_REG_R10D, X86_REG_R11D,
                                      X86_REG_R12D, X86_REG_R13D, X86_REG_R14D, X86_REG_R15D};
  static constexpr x86_reg k64[16] = {X86_REG_RAX, X86_REG_RCX, X86_REG_RDX, X86_REG_RBX, X86_REG_RSP, X86_REG_RBP,
                                      X86_REG_RSI, X86_REG_RDI, X86_REG_R8,  X86_REG_R9,  X86_REG_R10, X86_REG_R11,
                                      X86_REG_R12, X86_REG_R13, X86_REG_R14, X86_REG_R15};
  static constexpr x86_reg kHigh[4] = {X86_REG_AH, X86_REG_CH, X86_REG_DH, X86_REG_BH};
  for (int8_t i = 0; i < 16; ++i) {
    if (r == k8[i]) return {i, 1, false};
    if (r == k16[i]) return {i, 2, false};
    if (r == k32[i]) return {i, 4, false};
    if (r == k64[i]) return {i, 8, false};
  }
  for (int8_t i = 0; i < 4; ++i)
    if (r == kHigh[i]) return {i, 1, true};
  return {};
}

template <typename T>
AtomicResult run(AtomicOp op, unsigned width, T* p, const AtomicArgs& a, bool want) {
  static_assert(std::is_unsigned_v<T>);
  constexpr int kSeq = __ATOMIC_SEQ_CST;
  const T src = static_cast<T>(a.src);
  const uint32_t keep = a.flags & ~kArithFlags;
  AtomicResult r;
  T old = 0;
  switch (op) {
    case AtomicOp::Add:
    case AtomicOp::Xadd:  // the same in memory and flags; xadd's register gets `old` (the caller)
      old = __atomic_fetch_add(p, src, kSeq);
      if (want) r.flags = keep | flags_add(old, src, 0, width);
      break;
    case AtomicOp::Sub:
      old = __atomic_fetch_sub(p, src, kSeq);
      if (want) r.flags = keep | flags_sub(old, src, 0, width);
      break;
    case AtomicOp::And:
      old = __atomic_fetch_and(p, src, kSeq);
      if (want) r.flags = keep | flags_logic(T(old & src), width);
      break;
    case AtomicOp::Or:
      old = __atomic_fetch_or(p, src, kSeq);
      if (want) r.flags = keep | flags_logic(T(old | src), width);
      break;
    case AtomicOp::Xor:
      old = __atomic_fetch_xor(p, src, kSeq);
      if (want) r.flags = keep | flags_logic(T(old ^ src), width);
      break;
    case AtomicOp::Inc:
      old = __atomic_fetch_add(p, T(1), kSeq);
      if (want) r.flags = keep | (a.flags & kFlagCf) | (flags_add(old, 1, 0, width) & ~kFlagCf);
      break;
    case AtomicOp::Dec:
      old = __atomic_fetch_sub(p, T(1), kSeq);
      if (want) r.flags = keep | (a.flags & kFlagCf) | (flags_sub(old, 1, 0, width) & ~kFlagCf);
      break;
    case AtomicOp::Not:
      old = __atomic_fetch_xor(p, T(~T(0)), kSeq);
      if (want) r.flags = a.flags;
      break;
    case AtomicOp::Neg:
    case AtomicOp::Adc:
    case AtomicOp::Sbb: {
      const T carry = (a.flags & kFlagCf) ? 1 : 0;
      old = __atomic_load_n(p, __ATOMIC_RELAXED);
      T next;
      do {
        next = op == AtomicOp::Neg ? T(T(0) - old) : op == AtomicOp::Adc ? T(old + src + carry) : T(old - src - carry);
      } while (!__atomic_compare_exchange_n(p, &old, next, false, kSeq, __ATOMIC_RELAXED));
      if (want) r.flags = keep | (op == AtomicOp::Neg   ? flags_sub(0, old, 0, width)
                        : op == AtomicOp::Adc ? flags_add(old, src, carry, width)
                                              : flags_sub(old, src, carry, width));
      break;
    }
    case AtomicOp::Xchg:
      old = __atomic_exchange_n(p, src, kSeq);
      if (want) r.flags = a.flags;
      break;
    case AtomicOp::Cmpxchg: {
      const T expected_in = static_cast<T>(a.acc);
      old = expected_in;
      r.success = __atomic_compare_exchange_n(p, &old, src, false, kSeq, kSeq);
      if (want) r.flags = keep | flags_sub(expected_in, old, 0, width);
      break;
    }
    case AtomicOp::Bts:
    case AtomicOp::Btr:
    case AtomicOp::Btc: {
      const unsigned bit = static_cast<unsigned>(a.src) & (width * 8 - 1);
      const T mask = T(T(1) << bit);
      old = op == AtomicOp::Bts   ? __atomic_fetch_or(p, mask, kSeq)
            : op == AtomicOp::Btr ? __atomic_fetch_and(p, T(~mask), kSeq)
                                  : __atomic_fetch_xor(p, mask, kSeq);
      // CF is the bit; the other arithmetic flags are left as they were (what this host's
      // CPU does, and what Unicorn's own translation does; Intel calls them undefined).
      if (want) r.flags = (a.flags & ~kFlagCf) | ((old & mask) ? kFlagCf : 0);
      break;
    }
    case AtomicOp::Cmpxchg8b:
    case AtomicOp::Cmpxchg16b:
      break;  // handled by the caller
  }
  r.old = old;
  return r;
}

}  // namespace

uint32_t flags_add(uint64_t a, uint64_t b, uint64_t carry, unsigned width) {
  const uint64_t m = width_mask(width);
  a &= m;
  b &= m;
  const uint64_t r = (a + b + carry) & m;
  uint32_t f = zsp(r, width);
  if (carry ? r <= a : r < a) f |= kFlagCf;
  if ((((a ^ r) & (b ^ r)) >> (width * 8 - 1)) & 1) f |= kFlagOf;
  if ((a ^ b ^ r) & 0x10) f |= kFlagAf;
  return f;
}

uint32_t flags_sub(uint64_t a, uint64_t b, uint64_t borrow, unsigned width) {
  const uint64_t m = width_mask(width);
  a &= m;
  b &= m;
  const uint64_t r = (a - b - borrow) & m;
  uint32_t f = zsp(r, width);
  if (borrow ? a <= b : a < b) f |= kFlagCf;
  if ((((a ^ b) & (a ^ r)) >> (width * 8 - 1)) & 1) f |= kFlagOf;
  if ((a ^ b ^ r) & 0x10) f |= kFlagAf;
  return f;
}

uint32_t flags_logic(uint64_t result, unsigned width) { return zsp(result & width_mask(width), width); }

uint64_t reg_operand(uint64_t full, const GuestReg& r) {
  if (r.high8) return (full >> 8) & 0xff;
  return full & width_mask(r.width);
}

uint64_t reg_merge(uint64_t full, const GuestReg& r, uint64_t value, bool mode64) {
  switch (r.width) {
    case 1:
      if (r.high8) return (full & ~uint64_t{0xff00}) | ((value & 0xff) << 8);
      return (full & ~uint64_t{0xff}) | (value & 0xff);
    case 2: return (full & ~uint64_t{0xffff}) | (value & 0xffff);
    case 4: return mode64 ? (value & 0xffffffffu) : ((full & ~uint64_t{0xffffffffu}) | (value & 0xffffffffu));
    default: return value;
  }
}

void bit_string_offset(uint64_t offset_reg, unsigned width, int64_t* byte_delta, unsigned* bit) {
  const unsigned bits = width * 8;
  const int64_t off = bits == 64 ? static_cast<int64_t>(offset_reg)
                                 : static_cast<int64_t>(offset_reg << (64 - bits)) >> (64 - bits);
  const unsigned shift = bits == 16 ? 4 : bits == 32 ? 5 : 6;
  *byte_delta = (off >> shift) * static_cast<int64_t>(width);
  *bit = static_cast<unsigned>(off) & (bits - 1);
}

AtomicResult perform_atomic(AtomicOp op, unsigned width, void* p, const AtomicArgs& a, bool flags) {
  if (op == AtomicOp::Cmpxchg8b) {
    AtomicResult r;
    uint64_t old = (a.acc_hi << 32) | (a.acc & 0xffffffffu);
    const uint64_t next = (a.new_hi << 32) | (a.new_lo & 0xffffffffu);
    r.success = __atomic_compare_exchange_n(static_cast<uint64_t*>(p), &old, next, false, __ATOMIC_SEQ_CST,
                                            __ATOMIC_SEQ_CST);
    r.old = old & 0xffffffffu;
    r.old_hi = old >> 32;
    r.flags = (a.flags & ~kFlagZf) | (r.success ? kFlagZf : 0);
    return r;
  }
  if (op == AtomicOp::Cmpxchg16b) {
    AtomicResult r;
    uint64_t lo = a.acc, hi = a.acc_hi;
    bool ok;
    // No __atomic builtin gives cmpxchg16b without libatomic; this is the instruction itself.
    __asm__ volatile("lock cmpxchg16b %[m]"
                     : "=@ccz"(ok), [m] "+m"(*static_cast<unsigned __int128*>(p)), "+a"(lo), "+d"(hi)
                     : "b"(a.new_lo), "c"(a.new_hi)
                     : "memory");
    r.success = ok;
    r.old = lo;
    r.old_hi = hi;
    r.flags = (a.flags & ~kFlagZf) | (ok ? kFlagZf : 0);
    return r;
  }
  switch (width) {
    case 1: return run(op, 1, static_cast<uint8_t*>(p), a, flags);
    case 2: return run(op, 2, static_cast<uint16_t*>(p), a, flags);
    case 4: return run(op, 4, static_cast<uint32_t*>(p), a, flags);
    default: return run(op, 8, static_cast<uint64_t*>(p), a, flags);
  }
}

bool decode_atomic_site(const cs_insn& insn, GuestArch arch, AtomicSite* out) {
  if (!insn.detail) return false;
  const cs_x86& x = insn.detail->x86;
  const bool locked = x.prefix[0] == X86_PREFIX_LOCK;
  AtomicSite s;
  s.address = insn.address;
  s.length = static_cast<uint8_t>(insn.size);
  switch (insn.id) {
    case X86_INS_ADD: s.op = AtomicOp::Add; break;
    case X86_INS_ADC: s.op = AtomicOp::Adc; break;
    case X86_INS_SUB: s.op = AtomicOp::Sub; break;
    case X86_INS_SBB: s.op = AtomicOp::Sbb; break;
    case X86_INS_AND: s.op = AtomicOp::And; break;
    case X86_INS_OR: s.op = AtomicOp::Or; break;
    case X86_INS_XOR: s.op = AtomicOp::Xor; break;
    case X86_INS_INC: s.op = AtomicOp::Inc; break;
    case X86_INS_DEC: s.op = AtomicOp::Dec; break;
    case X86_INS_NEG: s.op = AtomicOp::Neg; break;
    case X86_INS_NOT: s.op = AtomicOp::Not; break;
    case X86_INS_XADD: s.op = AtomicOp::Xadd; break;
    case X86_INS_XCHG: s.op = AtomicOp::Xchg; break;
    case X86_INS_CMPXCHG: s.op = AtomicOp::Cmpxchg; break;
    case X86_INS_CMPXCHG8B: s.op = AtomicOp::Cmpxchg8b; break;
    case X86_INS_CMPXCHG16B: s.op = AtomicOp::Cmpxchg16b; break;
    case X86_INS_BTS: s.op = AtomicOp::Bts; break;
    case X86_INS_BTR: s.op = AtomicOp::Btr; break;
    case X86_INS_BTC: s.op = AtomicOp::Btc; break;
    default: return false;
  }
  if (!locked && s.op != AtomicOp::Xchg) return false;
  const cs_x86_op* mem = nullptr;
  const cs_x86_op* other = nullptr;
  int mems = 0;
  for (uint8_t i = 0; i < x.op_count; ++i) {
    if (x.operands[i].type == X86_OP_MEM) {
      mem = &x.operands[i];
      ++mems;
    } else {
      other = &x.operands[i];
    }
  }
  if (mems != 1) return false;
  s.width = mem->size;
  if (s.op == AtomicOp::Cmpxchg8b) {
    if (s.width != 8) return false;
  } else if (s.op == AtomicOp::Cmpxchg16b) {
    if (s.width != 16 || arch != GuestArch::X86_64) return false;
  } else if (s.width != 1 && s.width != 2 && s.width != 4 && !(s.width == 8 && arch == GuestArch::X86_64)) {
    return false;
  }
  // The memory operand.
  switch (mem->mem.segment) {
    case X86_REG_INVALID: break;
    case X86_REG_FS: s.segment = AtomicSite::Segment::Fs; break;
    case X86_REG_GS: s.segment = AtomicSite::Segment::Gs; break;
    case X86_REG_CS:
    case X86_REG_DS:
    case X86_REG_ES:
    case X86_REG_SS: break;  // flat in both modes emu runs
    default: return false;
  }
  s.addr_bytes = x.addr_size ? x.addr_size : (arch == GuestArch::I386 ? 4 : 8);
  if (mem->mem.base == X86_REG_RIP || mem->mem.base == X86_REG_EIP) {
    s.rip_relative = true;
  } else if (mem->mem.base != X86_REG_INVALID) {
    s.base = guest_reg(static_cast<x86_reg>(mem->mem.base));
    if (!s.base.valid() || s.base.high8) return false;
  }
  if (mem->mem.index != X86_REG_INVALID) {
    s.index = guest_reg(static_cast<x86_reg>(mem->mem.index));
    if (!s.index.valid() || s.index.high8) return false;
  }
  s.scale = static_cast<uint8_t>(mem->mem.scale ? mem->mem.scale : 1);
  s.disp = mem->mem.disp;
  // The source operand.
  const bool unary = s.op == AtomicOp::Inc || s.op == AtomicOp::Dec || s.op == AtomicOp::Neg || s.op == AtomicOp::Not ||
                     s.op == AtomicOp::Cmpxchg8b || s.op == AtomicOp::Cmpxchg16b;
  if (unary) {
    if (other) return false;
  } else {
    if (!other) return false;
    if (other->type == X86_OP_REG) {
      s.src = guest_reg(static_cast<x86_reg>(other->reg));
      if (!s.src.valid()) return false;
      const bool bit_string = s.op == AtomicOp::Bts || s.op == AtomicOp::Btr || s.op == AtomicOp::Btc;
      if (!bit_string && s.src.width != s.width) return false;
    } else if (other->type == X86_OP_IMM) {
      if (s.op == AtomicOp::Xadd || s.op == AtomicOp::Xchg || s.op == AtomicOp::Cmpxchg) return false;
      s.src_imm = true;
      s.imm = other->imm;
    } else {
      return false;
    }
  }
  *out = s;
  return true;
}

}  // namespace emu
