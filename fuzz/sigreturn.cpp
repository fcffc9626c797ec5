// Signal frames (emu/signals/signal_frame.h), both ABIs. Two modes:
//  - garbage: a stack of fuzz bytes and a fuzzed stack pointer given to pop_signal_frame, as
//    a guest's rt_sigreturn / sigreturn with a frame it forged. It may refuse (SIGSEGV);
//    what it restores must be a state the ABI allows (only FIX_EFLAGS bits of EFLAGS taken
//    from the frame, 32-bit registers for i386, MXCSR's 16 bits).
//  - round trip: push_signal_frame for a fuzzed delivery (signal, siginfo, SA_* flags,
//    handler, restorer, alternate stack), the handler "runs" (every register but the stack
//    pointer scrambled, its `ret` popping the return address), and pop_signal_frame must
//    give back exactly the interrupted registers and signal mask.
//
// Input: flags (bit 0: i386, bit 1: rt for i386's garbage mode, bit 2: round trip), stack
// bytes, then registers and the delivery.
#include <algorithm>
#include <array>
#include <cstring>
#include <string>

#include "emu/process/guest_memory.h"
#include "emu/signals/signal_frame.h"
#include "fuzz/harness.h"

namespace emu::fuzz {

namespace {

constexpr const char* kName = "sigreturn";
// CpuRegisters::general order (cpu_registers.cpp).
enum : int { kAx = 0, kBx, kCx, kDx, kSi, kDi, kBp, kSp, kR8, kR15 = 15, kIp, kFlags };
// Linux's FIX_EFLAGS: what sigreturn takes from the frame.
constexpr uint64_t kFixFlags = 0x40000 | 0x800 | 0x400 | 0x100 | 0x80 | 0x40 | 0x10 | 0x4 | 0x1 | 0x10000;
// The stack: 16 writable pages, then a read-only one; nothing mapped around them.
constexpr uint64_t kStack = 0x100000, kStackBytes = 16 * mmu::kPageSize;
constexpr uint64_t kReadOnly = kStack + kStackBytes;

std::string hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "%#llx", static_cast<unsigned long long>(v));
  return b;
}

// Somewhere in or around the stack mostly; anywhere at all sometimes.
uint64_t pick_address(Input& in) {
  const uint8_t how = in.u8();
  if (how < 0x20) return in.u64();
  return kStack - 2 * mmu::kPageSize + in.u32() % (kStackBytes + 4 * mmu::kPageSize);
}

void fill_registers(Input& in, CpuRegisters& r, bool i386) {
  for (int i = 0; i < CpuRegisters::kGeneral; ++i) r.general[i] = in.u64();
  r.general[kSp] = pick_address(in);
  for (auto& x : r.xmm) x = {in.u64(), in.u64()};
  r.mxcsr = in.u16();
  r.fpcw = in.u16();
  r.fpsw = in.u16();
  r.fptag = in.u16();
  for (auto& s : r.st) {
    s = {};
    const uint64_t lo = in.u64();
    const uint16_t hi = in.u16();
    std::memcpy(s.data(), &lo, 8);
    std::memcpy(s.data() + 8, &hi, 2);
  }
  if (i386)
    for (auto& g : r.general) g &= 0xffffffffu;
}

void map_stack(mmu::AddressSpace& space, const GuestMemory& mem, std::string_view fill) {
  mmu::MapRequest rw;
  rw.addr = kStack;
  rw.length = kStackBytes;
  rw.placement = mmu::MapPlacement::FixedNoReplace;
  mmu::MapRequest ro = rw;
  ro.addr = kReadOnly;
  ro.length = mmu::kPageSize;
  ro.prot = mmu::kProtRead;
  if (!space.map(0, rw).ok() || !space.map(0, ro).ok()) fail(kName, "cannot map the stack");
  if (fill.empty()) return;
  std::string bytes(kStackBytes, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = fill[i % fill.size()];
  if (!mem.write(0, kStack, bytes.data(), bytes.size())) fail(kName, "cannot fill the stack");
}

void garbage(Input& in, const GuestMemory& mem, bool i386, bool rt) {
  CpuRegisters regs;
  fill_registers(in, regs, i386);
  const CpuRegisters before = regs;
  uint64_t mask = 0;
  if (!pop_signal_frame(mem, 0, i386 ? GuestArch::I386 : GuestArch::X86_64, rt, regs, &mask)) return;
  if ((regs.general[kFlags] ^ before.general[kFlags]) & ~kFixFlags)
    fail(kName, "sigreturn took EFLAGS bits outside FIX_EFLAGS: " + hex(regs.general[kFlags]));
  if (regs.mxcsr > 0xffff) fail(kName, "MXCSR above 16 bits");
  if (i386) {
    for (int i = 0; i < CpuRegisters::kGeneral; ++i)
      if (regs.general[i] > 0xffffffffu) fail(kName, "i386 register " + std::to_string(i) + " above 32 bits");
    for (int i = kR8; i <= kR15; ++i)
      if (regs.general[i] != before.general[i]) fail(kName, "i386 sigreturn changed r8-r15");
  }
}

void round_trip(Input& in, const GuestMemory& mem, bool i386) {
  const GuestArch arch = i386 ? GuestArch::I386 : GuestArch::X86_64;
  SignalDelivery d;
  d.signo = 1 + in.u8() % 64;
  d.info.signo = d.signo;
  d.info.code = static_cast<int32_t>(in.u32());
  d.info.pid = static_cast<int32_t>(in.u32());
  d.info.uid = static_cast<int32_t>(in.u32());
  d.info.status = static_cast<int32_t>(in.u32());
  const uint8_t info_kind = in.u8();
  d.info.has_addr = info_kind & 1;
  d.info.has_value = info_kind & 2;
  d.info.addr = in.u64();
  d.info.value = in.u64();
  d.info.timer_id = static_cast<int32_t>(in.u32());
  d.info.overrun = static_cast<int32_t>(in.u32());
  d.action.handler = in.u64();
  d.action.restorer = in.u64();
  const uint8_t sa = in.u8();
  d.action.flags = (sa & 1 ? kSaSigInfo : 0) | (sa & 2 ? kSaOnStack : 0) | (sa & 4 ? kSaRestorer : 0) |
                   (sa & 8 ? kSaRestart : 0) | (sa & 16 ? in.u64() : 0);
  d.saved_mask = in.u64();
  d.altstack.disabled = in.flag();
  d.altstack.sp = pick_address(in);
  d.altstack.size = in.u16();
  CpuRegisters regs;
  fill_registers(in, regs, i386);
  const CpuRegisters interrupted = regs;
  if (!push_signal_frame(mem, 0, arch, d, regs)) return;

  const uint64_t word_mask = i386 ? 0xffffffffu : ~uint64_t{0};
  if (regs.general[kIp] != (d.action.handler & word_mask)) fail(kName, "the handler does not run at its address");
  if (regs.general[kSp] % 16 != (i386 ? 12u : 8u)) fail(kName, "handler stack misaligned: " + hex(regs.general[kSp]));
  // The handler runs: every register but the stack pointer may change, then its `ret`
  // (and for i386's old-style frame, the return code's `pop eax`) leaves the frame.
  CpuRegisters clobbered;
  fill_registers(in, clobbered, i386);
  clobbered.general[kSp] = regs.general[kSp] + (i386 ? ((d.action.flags & kSaSigInfo) ? 4 : 8) : 8);
  const uint64_t handler_flags = clobbered.general[kFlags];
  uint64_t mask = ~d.saved_mask;
  const bool rt = !i386 || (d.action.flags & kSaSigInfo);
  if (!pop_signal_frame(mem, 0, arch, rt, clobbered, &mask)) fail(kName, "the frame just pushed does not pop");
  if (mask != d.saved_mask) fail(kName, "signal mask not restored: " + hex(mask) + " for " + hex(d.saved_mask));
  const int nregs = i386 ? 8 : 16;
  for (int i = 0; i < nregs; ++i)
    if (clobbered.general[i] != interrupted.general[i])
      fail(kName, "register " + std::to_string(i) + " not restored: " + hex(clobbered.general[i]) + " for " +
                      hex(interrupted.general[i]));
  if (clobbered.general[kIp] != interrupted.general[kIp]) fail(kName, "instruction pointer not restored");
  // FIX_EFLAGS bits come back from the frame; the others (IF, IOPL, ...) stay the current ones.
  const uint64_t want_flags = (handler_flags & ~kFixFlags) | (interrupted.general[kFlags] & kFixFlags);
  if (clobbered.general[kFlags] != want_flags)
    fail(kName, "EFLAGS not restored: " + hex(clobbered.general[kFlags]) + " for " + hex(want_flags));
  const int nxmm = i386 ? 8 : 16;
  for (int i = 0; i < nxmm; ++i)
    if (clobbered.xmm[i] != interrupted.xmm[i]) fail(kName, "xmm" + std::to_string(i) + " not restored");
  for (int i = 0; i < 8; ++i)
    if (std::memcmp(clobbered.st[i].data(), interrupted.st[i].data(), 10) != 0)
      fail(kName, "st" + std::to_string(i) + " not restored");
  if ((clobbered.fpcw & 0xffff) != (interrupted.fpcw & 0xffff) || (clobbered.fpsw & 0xffff) != (interrupted.fpsw & 0xffff) ||
      (clobbered.fptag & 0xffff) != (interrupted.fptag & 0xffff) || clobbered.mxcsr != (interrupted.mxcsr & 0xffff))
    fail(kName, "x87/SSE control state not restored");
}

}  // namespace

int sigreturn(const uint8_t* data, size_t size) {
  init_process();
  (void)small_pool();
  Input in(data, size);
  const uint8_t flags = in.u8();
  const bool i386 = flags & 1;
  {
    auto space = new_space(i386 ? GuestArch::I386 : GuestArch::X86_64);
    GuestMemory mem(*space);
    map_stack(*space, mem, in.bytes(in.u16() % 2048));
    if (flags & 4) {
      round_trip(in, mem, i386);
    } else {
      garbage(in, mem, i386, flags & 2);
    }
  }
  check_pool_empty(kName, small_pool());
  return 0;
}

}  // namespace emu::fuzz
