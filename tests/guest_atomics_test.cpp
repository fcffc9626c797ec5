// Guest atomics as host atomics (emu/cpu/guest_atomics.h) against the host CPU: every
// operation at every width, on random and edge-case inputs, is run both by perform_atomic and
// by the real instruction in inline assembly (the host is x86_64), and the memory, EFLAGS
// (CF PF AF ZF SF OF) and output registers must agree. Then the decoder, on encodings of
// every form the vCPU hooks.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "emu/cpu/atomic_block_detector.h"
#include "emu/cpu/guest_atomics.h"

namespace {

using emu::AtomicArgs;
using emu::AtomicOp;
using emu::AtomicResult;
using emu::GuestArch;
using emu::kArithFlags;

// What the host CPU did: memory after, EFLAGS after, and the register the instruction writes
// (xadd/xchg source, cmpxchg accumulator, cmpxchg8b/16b edx:eax as out_reg:out_hi).
struct Host {
  uint64_t mem = 0, mem_hi = 0;
  uint64_t flags = 0;
  uint64_t out_reg = 0, out_hi = 0;
};

// The inline assembly pushes and pops flags: stay clear of the red zone.
#define SAVE_RZ "sub $128, %%rsp\n\t"
#define RESTORE_RZ "add $128, %%rsp\n\t"
#define FLAGS_IN "pushq %[fin]\n\tpopfq\n\t"
#define FLAGS_OUT "pushfq\n\tpopq %[fout]\n\t"

// op [m], src (memory destination, register source; src may be written: xadd, xchg).
#define BINOP(NAME, INSN)                                                                                          \
  template <typename T>                                                                                            \
  Host NAME(uint64_t mem, uint64_t src, uint64_t fin) {                                                            \
    T m = static_cast<T>(mem), s = static_cast<T>(src);                                                            \
    uint64_t fout;                                                                                                 \
    if constexpr (sizeof(T) == 1)                                                                                  \
      __asm__ volatile(SAVE_RZ FLAGS_IN INSN "b %[s], (%[p])\n\t" FLAGS_OUT RESTORE_RZ                               \
                       : [s] "+q"(s), [fout] "=&r"(fout) : [p] "r"(&m), [fin] "r"(fin) : "cc", "memory");          \
    else if constexpr (sizeof(T) == 2)                                                                             \
      __asm__ volatile(SAVE_RZ FLAGS_IN INSN "w %[s], (%[p])\n\t" FLAGS_OUT RESTORE_RZ                               \
                       : [s] "+r"(s), [fout] "=&r"(fout) : [p] "r"(&m), [fin] "r"(fin) : "cc", "memory");          \
    else if constexpr (sizeof(T) == 4)                                                                             \
      __asm__ volatile(SAVE_RZ FLAGS_IN INSN "l %[s], (%[p])\n\t" FLAGS_OUT RESTORE_RZ                               \
                       : [s] "+r"(s), [fout] "=&r"(fout) : [p] "r"(&m), [fin] "r"(fin) : "cc", "memory");          \
    else                                                                                                           \
      __asm__ volatile(SAVE_RZ FLAGS_IN INSN "q %[s], (%[p])\n\t" FLAGS_OUT RESTORE_RZ                               \
                       : [s] "+r"(s), [fout] "=&r"(fout) : [p] "r"(&m), [fin] "r"(fin) : "cc", "memory");          \
    return Host{m, 0, fout, s, 0};                                                                                 \
  }

BINOP(host_add, "lock add")
BINOP(host_adc, "lock adc")
BINOP(host_sub, "lock sub")
BINOP(host_sbb, "lock sbb")
BINOP(host_and, "lock and")
BINOP(host_or, "lock or")
BINOP(host_xor, "lock xor")
BINOP(host_xadd, "lock xadd")
BINOP(host_xchg, "xchg")

// bts/btr/btc [m], reg: 16, 32 and 64 bits only.
#define BITOP(NAME, INSN)                                                                                          \
  template <typename T>                                                                                            \
  Host NAME(uint64_t mem, uint64_t src, uint64_t fin) {                                                            \
    T m = static_cast<T>(mem), s = static_cast<T>(src);                                                            \
    uint64_t fout;                                                                                                 \
    if constexpr (sizeof(T) == 2)                                                                                  \
      __asm__ volatile(SAVE_RZ FLAGS_IN INSN "w %[s], (%[p])\n\t" FLAGS_OUT RESTORE_RZ                               \
                       : [fout] "=&r"(fout) : [s] "r"(s), [p] "r"(&m), [fin] "r"(fin) : "cc", "memory");           \
    else if constexpr (sizeof(T) == 4)                                                                             \
      __asm__ volatile(SAVE_RZ FLAGS_IN INSN "l %[s], (%[p])\n\t" FLAGS_OUT RESTORE_RZ                               \
                       : [fout] "=&r"(fout) : [s] "r"(s), [p] "r"(&m), [fin] "r"(fin) : "cc", "memory");           \
    else                                                                                                           \
      __asm__ volatile(SAVE_RZ FLAGS_IN INSN "q %[s], (%[p])\n\t" FLAGS_OUT RESTORE_RZ                               \
                       : [fout] "=&r"(fout) : [s] "r"(s), [p] "r"(&m), [fin] "r"(fin) : "cc", "memory");           \
    return Host{m, 0, fout, 0, 0};                                                                                 \
  }

BITOP(host_bts, "lock bts")
BITOP(host_btr, "lock btr")
BITOP(host_btc, "lock btc")

#define UNOP(NAME, INSN)                                                                                           \
  template <typename T>                                                                                            \
  Host NAME(uint64_t mem, uint64_t, uint64_t fin) {                                                                \
    T m = static_cast<T>(mem);                                                                                     \
    uint64_t fout;                                                                                                 \
    if constexpr (sizeof(T) == 1)                                                                                  \
      __asm__ volatile(SAVE_RZ FLAGS_IN INSN "b (%[p])\n\t" FLAGS_OUT RESTORE_RZ                                     \
                       : [fout] "=&r"(fout) : [p] "r"(&m), [fin] "r"(fin) : "cc", "memory");                       \
    else if constexpr (sizeof(T) == 2)                                                                             \
      __asm__ volatile(SAVE_RZ FLAGS_IN INSN "w (%[p])\n\t" FLAGS_OUT RESTORE_RZ                                     \
                       : [fout] "=&r"(fout) : [p] "r"(&m), [fin] "r"(fin) : "cc", "memory");                       \
    else if constexpr (sizeof(T) == 4)                                                                             \
      __asm__ volatile(SAVE_RZ FLAGS_IN INSN "l (%[p])\n\t" FLAGS_OUT RESTORE_RZ                                     \
                       : [fout] "=&r"(fout) : [p] "r"(&m), [fin] "r"(fin) : "cc", "memory");                       \
    else                                                                                                           \
      __asm__ volatile(SAVE_RZ FLAGS_IN INSN "q (%[p])\n\t" FLAGS_OUT RESTORE_RZ                                     \
                       : [fout] "=&r"(fout) : [p] "r"(&m), [fin] "r"(fin) : "cc", "memory");                       \
    return Host{m, 0, fout, 0, 0};                                                                                 \
  }

UNOP(host_inc, "lock inc")
UNOP(host_dec, "lock dec")
UNOP(host_neg, "lock neg")
UNOP(host_not, "lock not")

// lock cmpxchg [m], src with the accumulator `acc`; out_reg: the accumulator after (full
// 64-bit rax, so the upper half's fate is checked too).
template <typename T>
Host host_cmpxchg(uint64_t mem, uint64_t src, uint64_t fin, uint64_t acc) {
  T m = static_cast<T>(mem), s = static_cast<T>(src);
  uint64_t a = acc, fout;
  if constexpr (sizeof(T) == 1)
    __asm__ volatile(SAVE_RZ FLAGS_IN "lock cmpxchgb %[s], (%[p])\n\t" FLAGS_OUT RESTORE_RZ
                     : "+a"(a), [fout] "=&r"(fout) : [s] "q"(s), [p] "r"(&m), [fin] "r"(fin) : "cc", "memory");
  else if constexpr (sizeof(T) == 2)
    __asm__ volatile(SAVE_RZ FLAGS_IN "lock cmpxchgw %[s], (%[p])\n\t" FLAGS_OUT RESTORE_RZ
                     : "+a"(a), [fout] "=&r"(fout) : [s] "r"(s), [p] "r"(&m), [fin] "r"(fin) : "cc", "memory");
  else if constexpr (sizeof(T) == 4)
    __asm__ volatile(SAVE_RZ FLAGS_IN "lock cmpxchgl %[s], (%[p])\n\t" FLAGS_OUT RESTORE_RZ
                     : "+a"(a), [fout] "=&r"(fout) : [s] "r"(s), [p] "r"(&m), [fin] "r"(fin) : "cc", "memory");
  else
    __asm__ volatile(SAVE_RZ FLAGS_IN "lock cmpxchgq %[s], (%[p])\n\t" FLAGS_OUT RESTORE_RZ
                     : "+a"(a), [fout] "=&r"(fout) : [s] "r"(s), [p] "r"(&m), [fin] "r"(fin) : "cc", "memory");
  return Host{m, 0, fout, a, 0};
}

Host host_cmpxchg8b(uint64_t mem, uint64_t fin, uint64_t eax, uint64_t edx, uint64_t ebx, uint64_t ecx) {
  uint64_t m = mem, a = eax, d = edx, fout;
  __asm__ volatile(SAVE_RZ FLAGS_IN "lock cmpxchg8b (%[p])\n\t" FLAGS_OUT RESTORE_RZ
                   : "+a"(a), "+d"(d), [fout] "=&r"(fout) : "b"(ebx), "c"(ecx), [p] "r"(&m), [fin] "r"(fin)
                   : "cc", "memory");
  return Host{m, 0, fout, a, d};
}

Host host_cmpxchg16b(uint64_t lo, uint64_t hi, uint64_t fin, uint64_t rax, uint64_t rdx, uint64_t rbx, uint64_t rcx) {
  unsigned __int128 m = (static_cast<unsigned __int128>(hi) << 64) | lo;  // 16-byte aligned
  uint64_t a = rax, d = rdx, fout;
  __asm__ volatile(SAVE_RZ FLAGS_IN "lock cmpxchg16b (%[p])\n\t" FLAGS_OUT RESTORE_RZ
                   : "+a"(a), "+d"(d), [fout] "=&r"(fout)
                   : "b"(rbx), "c"(rcx), [p] "r"(&m), [fin] "r"(fin)
                   : "cc", "memory");
  return Host{static_cast<uint64_t>(m), static_cast<uint64_t>(m >> 64), fout, a, d};
}

// Random values with the edges of every width mixed in.
class Inputs {
 public:
  explicit Inputs(uint32_t seed) : rng_(seed) {}
  uint64_t value() {
    static constexpr uint64_t kEdges[] = {0, 1, 2, 0xf, 0x10, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff,
                                          0x7fffffff, 0x80000000, 0xffffffff, 0x100000000, 0x7fffffffffffffff,
                                          0x8000000000000000, 0xffffffffffffffff};
    const uint64_t pick = rng_() % 4;
    if (pick == 0) return kEdges[rng_() % std::size(kEdges)];
    if (pick == 1) return rng_() % 64;
    return rng_();
  }
  // EFLAGS with random arithmetic flags (and the reserved bit 1, IF clear is fine in user mode).
  uint64_t flags() { return 0x202 | (rng_() & kArithFlags); }
  uint64_t below(uint64_t n) { return rng_() % n; }

 private:
  std::mt19937_64 rng_;
};

uint64_t mask(unsigned width) { return width == 8 ? ~uint64_t{0} : (uint64_t{1} << (width * 8)) - 1; }

constexpr int kRounds = 20000;

using HostFn = Host (*)(uint64_t, uint64_t, uint64_t);

struct OpCase {
  const char* name;
  AtomicOp op;
  HostFn by_width[4];  // 1, 2, 4, 8 bytes (nullptr: no such form)
  bool writes_src;     // xadd, xchg: the source register receives the old value
};

#define BY_WIDTH(F) {F<uint8_t>, F<uint16_t>, F<uint32_t>, F<uint64_t>}
#define BY_WIDTH_NO8(F) {nullptr, F<uint16_t>, F<uint32_t>, F<uint64_t>}

const OpCase kCases[] = {
    {"add", AtomicOp::Add, BY_WIDTH(host_add), false},   {"adc", AtomicOp::Adc, BY_WIDTH(host_adc), false},
    {"sub", AtomicOp::Sub, BY_WIDTH(host_sub), false},   {"sbb", AtomicOp::Sbb, BY_WIDTH(host_sbb), false},
    {"and", AtomicOp::And, BY_WIDTH(host_and), false},   {"or", AtomicOp::Or, BY_WIDTH(host_or), false},
    {"xor", AtomicOp::Xor, BY_WIDTH(host_xor), false},   {"inc", AtomicOp::Inc, BY_WIDTH(host_inc), false},
    {"dec", AtomicOp::Dec, BY_WIDTH(host_dec), false},   {"neg", AtomicOp::Neg, BY_WIDTH(host_neg), false},
    {"not", AtomicOp::Not, BY_WIDTH(host_not), false},   {"xadd", AtomicOp::Xadd, BY_WIDTH(host_xadd), true},
    {"xchg", AtomicOp::Xchg, BY_WIDTH(host_xchg), true}, {"bts", AtomicOp::Bts, BY_WIDTH_NO8(host_bts), false},
    {"btr", AtomicOp::Btr, BY_WIDTH_NO8(host_btr), false}, {"btc", AtomicOp::Btc, BY_WIDTH_NO8(host_btc), false},
};

TEST(GuestAtomics, EveryOperationAndWidthMatchesTheHostCpu) {
  for (const OpCase& c : kCases) {
    for (unsigned wi = 0; wi < 4; ++wi) {
      if (!c.by_width[wi]) continue;
      const unsigned width = 1u << wi;
      const bool bit = c.op == AtomicOp::Bts || c.op == AtomicOp::Btr || c.op == AtomicOp::Btc;
      Inputs in(1234 + wi * 100 + static_cast<unsigned>(c.op));
      for (int i = 0; i < kRounds; ++i) {
        const uint64_t mem = in.value() & mask(width);
        // bt*: a bit number inside the word here (offsets that move the address are tested
        // with bit_string_offset below).
        const uint64_t src = bit ? in.below(width * 8) : in.value() & mask(width);
        const uint64_t fin = in.flags();
        const Host h = c.by_width[wi](mem, src, fin);
        uint64_t m = mem;
        AtomicArgs a;
        a.src = src;
        a.flags = static_cast<uint32_t>(fin);
        const AtomicResult r = emu::perform_atomic(c.op, width, &m, a);
        const std::string what = std::string(c.name) + " width " + std::to_string(width) + " mem " +
                                 std::to_string(mem) + " src " + std::to_string(src) + " flags " + std::to_string(fin);
        ASSERT_EQ(m & mask(width), h.mem & mask(width)) << what;
        ASSERT_EQ(r.flags & kArithFlags, h.flags & kArithFlags) << what;
        ASSERT_EQ(r.flags, static_cast<uint32_t>(h.flags) & ~uint32_t{0x10000}) << what << " (flags beyond the arithmetic ones)";
        ASSERT_EQ(r.old, mem) << what;
        if (c.writes_src) {
          ASSERT_EQ(h.out_reg & mask(width), r.old) << what;
        }
      }
    }
  }
}

template <typename T>
void cmpxchg_width(unsigned width) {
  Inputs in(77 + width);
  for (int i = 0; i < kRounds; ++i) {
    const uint64_t mem = in.value() & mask(width);
    const uint64_t src = in.value() & mask(width);
    // Half the time the accumulator matches (success), with junk in the upper bits of rax.
    const uint64_t junk = in.value() & ~mask(width);
    const uint64_t acc = (in.below(2) ? mem : in.value() & mask(width)) | (width == 8 ? 0 : junk);
    const uint64_t fin = in.flags();
    const Host h = host_cmpxchg<T>(mem, src, fin, acc);
    uint64_t m = mem;
    AtomicArgs a;
    a.src = src;
    a.acc = acc;
    a.flags = static_cast<uint32_t>(fin);
    const AtomicResult r = emu::perform_atomic(AtomicOp::Cmpxchg, width, &m, a);
    const std::string what = "cmpxchg width " + std::to_string(width) + " mem " + std::to_string(mem) + " acc " +
                             std::to_string(acc) + " src " + std::to_string(src);
    ASSERT_EQ(m & mask(width), h.mem & mask(width)) << what;
    ASSERT_EQ(r.flags & kArithFlags, h.flags & kArithFlags) << what;
    ASSERT_EQ(r.success, (acc & mask(width)) == mem) << what;
    ASSERT_EQ(r.old, mem) << what;
    // The accumulator as the vCPU writes it back: untouched on success, the old value on
    // failure (merged as a register write of that width: 32-bit zero-extends).
    const emu::GuestReg acc_reg{0, static_cast<uint8_t>(width), false};
    const uint64_t vcpu_acc = r.success ? acc : emu::reg_merge(acc, acc_reg, r.old, true);
    ASSERT_EQ(vcpu_acc, h.out_reg) << what << " (accumulator after)";
  }
}

TEST(GuestAtomics, CmpxchgEveryWidthMatchesTheHostCpu) {
  cmpxchg_width<uint8_t>(1);
  cmpxchg_width<uint16_t>(2);
  cmpxchg_width<uint32_t>(4);
  cmpxchg_width<uint64_t>(8);
}

TEST(GuestAtomics, Cmpxchg8bAndCmpxchg16bMatchTheHostCpu) {
  Inputs in(99);
  for (int i = 0; i < kRounds; ++i) {
    const uint64_t mem = in.value();
    const bool match = in.below(2);
    const uint64_t eax = match ? (mem & 0xffffffff) : in.value() & 0xffffffff;
    const uint64_t edx = match ? (mem >> 32) : in.value() & 0xffffffff;
    const uint64_t ebx = in.value() & 0xffffffff, ecx = in.value() & 0xffffffff;
    const uint64_t fin = in.flags();
    const Host h = host_cmpxchg8b(mem, fin, eax, edx, ebx, ecx);
    uint64_t m = mem;
    AtomicArgs a;
    a.acc = eax;
    a.acc_hi = edx;
    a.new_lo = ebx;
    a.new_hi = ecx;
    a.flags = static_cast<uint32_t>(fin);
    const AtomicResult r = emu::perform_atomic(AtomicOp::Cmpxchg8b, 8, &m, a);
    ASSERT_EQ(m, h.mem);
    ASSERT_EQ(r.flags & kArithFlags, h.flags & kArithFlags);
    ASSERT_EQ(r.success, ((edx << 32) | eax) == mem);
    if (!r.success) {
      ASSERT_EQ(r.old, h.out_reg);
      ASSERT_EQ(r.old_hi, h.out_hi);
    }
  }
  for (int i = 0; i < kRounds; ++i) {
    const uint64_t lo = in.value(), hi = in.value();
    const bool match = in.below(2);
    const uint64_t rax = match ? lo : in.value(), rdx = match ? hi : in.value();
    const uint64_t rbx = in.value(), rcx = in.value();
    const uint64_t fin = in.flags();
    const Host h = host_cmpxchg16b(lo, hi, fin, rax, rdx, rbx, rcx);
    alignas(16) uint64_t m[2] = {lo, hi};
    AtomicArgs a;
    a.acc = rax;
    a.acc_hi = rdx;
    a.new_lo = rbx;
    a.new_hi = rcx;
    a.flags = static_cast<uint32_t>(fin);
    const AtomicResult r = emu::perform_atomic(AtomicOp::Cmpxchg16b, 16, m, a);
    ASSERT_EQ(m[0], h.mem);
    ASSERT_EQ(m[1], h.mem_hi);
    ASSERT_EQ(r.flags & kArithFlags, h.flags & kArithFlags);
    ASSERT_EQ(r.success, rax == lo && rdx == hi);
    if (!r.success) {
      ASSERT_EQ(r.old, h.out_reg);
      ASSERT_EQ(r.old_hi, h.out_hi);
    }
  }
}

// bts/btr/btc with a register bit offset outside the operand address another word: the host
// instruction on a bit string against bit_string_offset + perform_atomic on the same string.
template <typename T>
void bit_string_width(unsigned width) {
  Inputs in(5 + width);
  for (int i = 0; i < 2000; ++i) {
    T host[64], ours[64];
    for (auto& w : host) w = static_cast<T>(in.value());
    std::memcpy(ours, host, sizeof host);
    // A signed offset within +-16 words of the middle.
    const int64_t off = static_cast<int64_t>(in.below(32 * width * 8)) - 16 * int64_t(width) * 8;
    const uint64_t fin = in.flags();
    T* base = &host[32];
    uint64_t fout;
    const T s = static_cast<T>(off);
    if constexpr (sizeof(T) == 2)
      __asm__ volatile(SAVE_RZ FLAGS_IN "lock btsw %[s], (%[p])\n\t" FLAGS_OUT RESTORE_RZ
                       : [fout] "=&r"(fout) : [s] "r"(s), [p] "r"(base), [fin] "r"(fin) : "cc", "memory");
    else if constexpr (sizeof(T) == 4)
      __asm__ volatile(SAVE_RZ FLAGS_IN "lock btsl %[s], (%[p])\n\t" FLAGS_OUT RESTORE_RZ
                       : [fout] "=&r"(fout) : [s] "r"(s), [p] "r"(base), [fin] "r"(fin) : "cc", "memory");
    else
      __asm__ volatile(SAVE_RZ FLAGS_IN "lock btsq %[s], (%[p])\n\t" FLAGS_OUT RESTORE_RZ
                       : [fout] "=&r"(fout) : [s] "r"(s), [p] "r"(base), [fin] "r"(fin) : "cc", "memory");
    int64_t delta;
    unsigned bitno;
    emu::bit_string_offset(static_cast<uint64_t>(off), width, &delta, &bitno);
    AtomicArgs a;
    a.src = bitno;
    a.flags = static_cast<uint32_t>(fin);
    const AtomicResult r = emu::perform_atomic(AtomicOp::Bts, width, reinterpret_cast<uint8_t*>(&ours[32]) + delta, a);
    ASSERT_EQ(std::memcmp(host, ours, sizeof host), 0) << "offset " << off << " width " << width;
    ASSERT_EQ(r.flags & kArithFlags, fout & kArithFlags) << "offset " << off;
  }
}

TEST(GuestAtomics, BitStringOffsetsMoveTheAddressLikeTheHostCpu) {
  bit_string_width<uint16_t>(2);
  bit_string_width<uint32_t>(4);
  bit_string_width<uint64_t>(8);
}

TEST(GuestAtomics, RegisterWritesKeepOrZeroTheRestAsTheCpuDoes) {
  const uint64_t full = 0x1122334455667788;
  EXPECT_EQ(emu::reg_merge(full, {0, 1, false}, 0xab, true), 0x11223344556677abu);
  EXPECT_EQ(emu::reg_merge(full, {0, 1, true}, 0xab, true), 0x112233445566ab88u);
  EXPECT_EQ(emu::reg_merge(full, {0, 2, false}, 0xabcd, true), 0x112233445566abcdu);
  EXPECT_EQ(emu::reg_merge(full, {0, 4, false}, 0xabcdef01, true), 0xabcdef01u);
  EXPECT_EQ(emu::reg_merge(0x55667788, {0, 4, false}, 0xabcdef01, false), 0xabcdef01u);
  EXPECT_EQ(emu::reg_operand(full, {0, 1, true}), 0x77u);
  EXPECT_EQ(emu::reg_operand(full, {0, 2, false}), 0x7788u);
}

// The decoder: operation, width, address parts and source for the forms guests use.
emu::AtomicSite decode(GuestArch arch, std::vector<uint8_t> code, bool* ok) {
  csh h;
  EXPECT_EQ(cs_open(CS_ARCH_X86, arch == GuestArch::I386 ? CS_MODE_32 : CS_MODE_64, &h), CS_ERR_OK);
  cs_option(h, CS_OPT_DETAIL, CS_OPT_ON);
  cs_insn* insn = nullptr;
  emu::AtomicSite s;
  *ok = false;
  if (cs_disasm(h, code.data(), code.size(), 0x1000, 1, &insn) == 1) {
    *ok = emu::decode_atomic_site(insn[0], arch, &s);
    cs_free(insn, 1);
  }
  cs_close(&h);
  return s;
}

TEST(GuestAtomics, DecodesTheFormsGuestsUse) {
  bool ok;
  // lock add qword [rbx], 1
  auto s = decode(GuestArch::X86_64, {0xf0, 0x48, 0x83, 0x03, 0x01}, &ok);
  ASSERT_TRUE(ok);
  EXPECT_EQ(s.op, AtomicOp::Add);
  EXPECT_EQ(s.width, 8);
  EXPECT_EQ(s.base.index, 3);
  EXPECT_TRUE(s.src_imm);
  EXPECT_EQ(s.imm, 1);
  EXPECT_EQ(s.length, 5);
  // lock cmpxchg dword [rip+0xb8def], edx
  s = decode(GuestArch::X86_64, {0xf0, 0x0f, 0xb1, 0x15, 0xef, 0x8d, 0x0b, 0x00}, &ok);
  ASSERT_TRUE(ok);
  EXPECT_EQ(s.op, AtomicOp::Cmpxchg);
  EXPECT_TRUE(s.rip_relative);
  EXPECT_EQ(s.disp, 0xb8def);
  EXPECT_EQ(s.src.index, 2);
  EXPECT_EQ(s.src.width, 4);
  // xchg dword [rdi], eax (no prefix: locked by definition)
  s = decode(GuestArch::X86_64, {0x87, 0x07}, &ok);
  ASSERT_TRUE(ok);
  EXPECT_EQ(s.op, AtomicOp::Xchg);
  EXPECT_EQ(s.base.index, 7);
  // lock add dword [rbx+rax+0x10], 2
  s = decode(GuestArch::X86_64, {0xf0, 0x83, 0x44, 0x03, 0x10, 0x02}, &ok);
  ASSERT_TRUE(ok);
  EXPECT_EQ(s.base.index, 3);
  EXPECT_EQ(s.index.index, 0);
  EXPECT_EQ(s.disp, 0x10);
  EXPECT_EQ(s.width, 4);
  // lock add qword [rbx], -1 (imm8 sign-extended to 64 bits)
  s = decode(GuestArch::X86_64, {0xf0, 0x48, 0x83, 0x03, 0xff}, &ok);
  ASSERT_TRUE(ok);
  EXPECT_EQ(static_cast<uint64_t>(s.imm), ~uint64_t{0});
  // lock cmpxchg16b [rsi]
  s = decode(GuestArch::X86_64, {0xf0, 0x48, 0x0f, 0xc7, 0x0e}, &ok);
  ASSERT_TRUE(ok);
  EXPECT_EQ(s.op, AtomicOp::Cmpxchg16b);
  EXPECT_EQ(s.width, 16);
  // i386: lock cmpxchg8b [esi]; lock incl [0x80ab000] (absolute); lock xadd [edx], eax
  s = decode(GuestArch::I386, {0xf0, 0x0f, 0xc7, 0x0e}, &ok);
  ASSERT_TRUE(ok);
  EXPECT_EQ(s.op, AtomicOp::Cmpxchg8b);
  EXPECT_EQ(s.width, 8);
  EXPECT_EQ(s.addr_bytes, 4);
  s = decode(GuestArch::I386, {0xf0, 0xff, 0x05, 0x00, 0xb0, 0x0a, 0x08}, &ok);
  ASSERT_TRUE(ok);
  EXPECT_EQ(s.op, AtomicOp::Inc);
  EXPECT_FALSE(s.base.valid());
  EXPECT_EQ(s.disp, 0x80ab000);
  s = decode(GuestArch::I386, {0xf0, 0x0f, 0xc1, 0x02}, &ok);
  ASSERT_TRUE(ok);
  EXPECT_EQ(s.op, AtomicOp::Xadd);
  EXPECT_EQ(s.src.index, 0);
  // lock or byte [rax], ah (a high-byte source)
  s = decode(GuestArch::X86_64, {0xf0, 0x08, 0x20}, &ok);
  ASSERT_TRUE(ok);
  EXPECT_TRUE(s.src.high8);
  // lock btsl [rdi], eax (register bit offset); lock btrl [rdi], 3
  s = decode(GuestArch::X86_64, {0xf0, 0x0f, 0xab, 0x07}, &ok);
  ASSERT_TRUE(ok);
  EXPECT_EQ(s.op, AtomicOp::Bts);
  EXPECT_FALSE(s.src_imm);
  s = decode(GuestArch::X86_64, {0xf0, 0x0f, 0xba, 0x37, 0x03}, &ok);
  ASSERT_TRUE(ok);
  EXPECT_EQ(s.op, AtomicOp::Btr);
  EXPECT_TRUE(s.src_imm);
  EXPECT_EQ(s.imm, 3);
  // fs-relative: lock add dword fs:[0x10], 1
  s = decode(GuestArch::X86_64, {0x64, 0xf0, 0x83, 0x04, 0x25, 0x10, 0x00, 0x00, 0x00, 0x01}, &ok);
  ASSERT_TRUE(ok);
  EXPECT_EQ(s.segment, emu::AtomicSite::Segment::Fs);
  // Not atomics: plain add to memory, cmpxchg without lock, xchg of registers.
  decode(GuestArch::X86_64, {0x48, 0x83, 0x03, 0x01}, &ok);
  EXPECT_FALSE(ok);
  decode(GuestArch::X86_64, {0x0f, 0xb1, 0x17}, &ok);
  EXPECT_FALSE(ok);
  decode(GuestArch::X86_64, {0x48, 0x87, 0xd8}, &ok);
  EXPECT_FALSE(ok);
}

}  // namespace

namespace {

// The detector hands the vCPU what it can hook and says when something must keep the gate.
TEST(GuestAtomics, DetectorFindsHookableSitesAndFlagsTheRest) {
  emu::AtomicBlockDetector d(GuestArch::X86_64);
  std::vector<emu::AtomicSite> sites;
  bool undecoded = false;
  // mov edx, 1; lock cmpxchg [rdi], edx; jne ...; xchg [rdi], eax
  const std::vector<uint8_t> code = {0xba, 0x01, 0x00, 0x00, 0x00, 0xf0, 0x0f, 0xb1, 0x17, 0x75, 0x02, 0x87, 0x07};
  EXPECT_TRUE(d.find_sites(code, 0x4000, sites, &undecoded));
  EXPECT_FALSE(undecoded);
  ASSERT_EQ(sites.size(), 2u);
  EXPECT_EQ(sites[0].address, 0x4005u);
  EXPECT_EQ(sites[0].op, AtomicOp::Cmpxchg);
  EXPECT_EQ(sites[1].address, 0x400bu);
  EXPECT_EQ(sites[1].op, AtomicOp::Xchg);
  // i386: lock xadd [edx], eax; xchg [ecx], ebx.
  sites.clear();
  emu::AtomicBlockDetector d32(GuestArch::I386);
  const std::vector<uint8_t> code32 = {0xf0, 0x0f, 0xc1, 0x02, 0x87, 0x19};
  EXPECT_TRUE(d32.find_sites(code32, 0x1000, sites, &undecoded));
  EXPECT_FALSE(undecoded);
  ASSERT_EQ(sites.size(), 2u);
  EXPECT_EQ(sites[1].base.index, 1);
  EXPECT_EQ(sites[1].src.index, 3);
  // No atomics at all.
  sites.clear();
  undecoded = false;
  const std::vector<uint8_t> plain = {0x48, 0x83, 0x03, 0x01, 0xc3};  // add qword [rbx], 1; ret
  EXPECT_FALSE(d.find_sites(plain, 0x5000, sites, &undecoded));
  EXPECT_FALSE(undecoded);
}

}  // namespace
