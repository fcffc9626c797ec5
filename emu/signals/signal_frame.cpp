#include "emu/signals/signal_frame.h"

#include <array>
#include <cstring>
#include <vector>

#include "emu/process/guest_memory.h"

namespace emu {

namespace {

// Indices into CpuRegisters::general (cpu_registers.cpp).
enum : int { kAx = 0, kBx, kCx, kDx, kSi, kDi, kBp, kSp, kR8, kR9, kR10, kR11, kR12, kR13, kR14, kR15, kIp, kFlags };

// The x86_64 sigcontext's register order, and i386's (from edi on).
constexpr std::array<int, 18> kSigcontext64 = {kR8, kR9, kR10, kR11, kR12, kR13, kR14, kR15, kDi,
                                               kSi, kBp, kBx,  kDx,  kAx,  kCx,  kSp,  kIp,  kFlags};
constexpr std::array<int, 8> kSigcontext32 = {kDi, kSi, kBp, kSp, kBx, kDx, kCx, kAx};

// EFLAGS bits sigreturn takes from the frame (FIX_EFLAGS); DF, TF and RF are cleared for the handler.
constexpr uint64_t kFixFlags = 0x40000 | 0x800 | 0x400 | 0x100 | 0x80 | 0x40 | 0x10 | 0x4 | 0x1 | 0x10000;
constexpr uint64_t kHandlerClearsFlags = 0x400 | 0x100 | 0x10000;

constexpr uint64_t kRedZone = 128;       // x86_64 ABI: below rsp, the leaf function's
constexpr uint64_t kFxsaveBytes = 512;   // fxsave image: x87, MXCSR, XMM
constexpr uint64_t kFpstate32Bytes = 624;  // i386 _fpstate_32: the fsave header, then the fxsave image
constexpr uint64_t kFxsaveIn32 = 112;
constexpr uint64_t kSiginfoBytes = 128;

// x86_64 struct rt_sigframe: pretcode, ucontext (flags, link, stack, sigcontext, mask), siginfo.
constexpr uint64_t kRt64Uc = 8, kRt64Stack = kRt64Uc + 16, kRt64Mcontext = kRt64Uc + 40,
                   kRt64Sigmask = kRt64Mcontext + 256, kRt64Info = kRt64Sigmask + 8, kRt64Bytes = kRt64Info + kSiginfoBytes;
// i386 struct sigframe_ia32: pretcode, sig, sigcontext, unused fpstate, extramask, retcode.
constexpr uint64_t kSf32Sc = 8, kSf32Extramask = kSf32Sc + 88 + kFpstate32Bytes, kSf32Retcode = kSf32Extramask + 4,
                   kSf32Bytes = kSf32Retcode + 8;
// i386 struct rt_sigframe_ia32: pretcode, sig, pinfo, puc, siginfo, ucontext, retcode.
constexpr uint64_t kRt32Info = 16, kRt32Uc = kRt32Info + kSiginfoBytes, kRt32Stack = kRt32Uc + 8,
                   kRt32Mcontext = kRt32Uc + 20, kRt32Sigmask = kRt32Mcontext + 88, kRt32Retcode = kRt32Sigmask + 8,
                   kRt32Bytes = kRt32Retcode + 8;

// What a frame without SA_RESTORER returns through (i386 only): sigreturn and rt_sigreturn.
constexpr std::array<uint8_t, 8> kRetcode32 = {0x58, 0xb8, 119, 0, 0, 0, 0xcd, 0x80};    // pop eax; mov eax,119; int 0x80
constexpr std::array<uint8_t, 8> kRtRetcode32 = {0xb8, 173, 0, 0, 0, 0xcd, 0x80, 0};     // mov eax,173; int 0x80

class Bytes {
 public:
  explicit Bytes(size_t n) : b_(n, 0) {}
  template <typename T>
  void put(uint64_t off, T value) { std::memcpy(b_.data() + off, &value, sizeof value); }
  template <typename T>
  T get(uint64_t off) const {
    T value;
    std::memcpy(&value, b_.data() + off, sizeof value);
    return value;
  }
  void put_bytes(uint64_t off, const void* src, size_t n) { std::memcpy(b_.data() + off, src, n); }
  void get_bytes(uint64_t off, void* dst, size_t n) const { std::memcpy(dst, b_.data() + off, n); }
  uint8_t* data() { return b_.data(); }
  size_t size() const { return b_.size(); }

 private:
  std::vector<uint8_t> b_;
};

// The fxsave image at `off`: control and status words, tags (16 bits here: emu's own
// round trip), MXCSR, the x87 registers, the XMM registers.
void put_fxsave(Bytes& b, uint64_t off, const CpuRegisters& r, int nxmm) {
  b.put<uint16_t>(off + 0, static_cast<uint16_t>(r.fpcw));
  b.put<uint16_t>(off + 2, static_cast<uint16_t>(r.fpsw));
  b.put<uint16_t>(off + 4, static_cast<uint16_t>(r.fptag));
  b.put<uint32_t>(off + 24, static_cast<uint32_t>(r.mxcsr));
  b.put<uint32_t>(off + 28, 0xffff);  // MXCSR_MASK
  for (int i = 0; i < 8; ++i) b.put_bytes(off + 32 + 16 * i, r.st[i].data(), 10);
  for (int i = 0; i < nxmm; ++i) b.put_bytes(off + 160 + 16 * i, r.xmm[i].data(), 16);
}

void get_fxsave(const Bytes& b, uint64_t off, CpuRegisters& r, int nxmm) {
  r.fpcw = b.get<uint16_t>(off + 0);
  r.fpsw = b.get<uint16_t>(off + 2);
  r.fptag = b.get<uint16_t>(off + 4);
  r.mxcsr = b.get<uint32_t>(off + 24) & 0xffff;
  for (int i = 0; i < 8; ++i) b.get_bytes(off + 32 + 16 * i, r.st[i].data(), 10);
  for (int i = 0; i < nxmm; ++i) b.get_bytes(off + 160 + 16 * i, r.xmm[i].data(), 16);
}

// The ABI's siginfo at `off`: signo, errno, code, then the union (8-aligned on x86_64).
void put_siginfo(Bytes& b, uint64_t off, const SigInfo& si, bool i386) { write_siginfo(b.data() + off, si, i386); }

// Where the frame goes: the alternate stack's top when asked for and not already on it.
uint64_t frame_top(const SignalDelivery& d, uint64_t sp, bool i386, bool* on_altstack) {
  *on_altstack = d.altstack.contains(sp);
  if ((d.action.flags & kSaOnStack) && !d.altstack.disabled && !*on_altstack) {
    *on_altstack = true;
    return d.altstack.sp + d.altstack.size;
  }
  return i386 ? sp : sp - kRedZone;
}

int ss_flags(const SignalDelivery& d, bool on_altstack) { return d.altstack.disabled ? 2 /* SS_DISABLE */ : on_altstack ? 1 : 0; }

bool push64(const GuestMemory& mem, mmu::VcpuId v, const SignalDelivery& d, CpuRegisters& regs) {
  if (!(d.action.flags & kSaRestorer)) return false;  // the x86_64 kernel insists on one
  bool on_altstack = false;
  const uint64_t top = frame_top(d, regs.general[kSp], false, &on_altstack);
  const uint64_t fp = (top - kFxsaveBytes) & ~uint64_t{63};
  const uint64_t frame = ((fp - kRt64Bytes) & ~uint64_t{15}) - 8;  // as after a call: (sp + 8) % 16 == 0

  Bytes fx(kFxsaveBytes);
  put_fxsave(fx, 0, regs, 16);
  Bytes b(kRt64Bytes);
  b.put<uint64_t>(0, d.action.restorer);
  b.put<uint64_t>(kRt64Stack + 0, d.altstack.sp);
  b.put<int32_t>(kRt64Stack + 8, ss_flags(d, on_altstack));
  b.put<uint64_t>(kRt64Stack + 16, d.altstack.size);
  for (size_t i = 0; i < kSigcontext64.size(); ++i) b.put<uint64_t>(kRt64Mcontext + 8 * i, regs.general[kSigcontext64[i]]);
  b.put<uint16_t>(kRt64Mcontext + 144, 0x33);      // cs
  b.put<uint16_t>(kRt64Mcontext + 150, 0x2b);      // ss
  b.put<uint64_t>(kRt64Mcontext + 168, d.saved_mask);  // oldmask
  b.put<uint64_t>(kRt64Mcontext + 184, fp);        // fpstate
  b.put<uint64_t>(kRt64Sigmask, d.saved_mask);
  put_siginfo(b, kRt64Info, d.info, false);
  if (!mem.write(v, fp, fx.data(), fx.size()) || !mem.write(v, frame, b.data(), b.size())) return false;

  regs.general[kSp] = frame;
  regs.general[kIp] = d.action.handler;
  regs.general[kDi] = static_cast<uint64_t>(d.signo);
  regs.general[kSi] = frame + kRt64Info;
  regs.general[kDx] = frame + kRt64Uc;
  regs.general[kAx] = 0;
  regs.general[kFlags] &= ~kHandlerClearsFlags;
  return true;
}

void put_sigcontext32(Bytes& b, uint64_t sc, const CpuRegisters& regs, uint64_t fp, uint64_t mask) {
  b.put<uint32_t>(sc + 0, static_cast<uint32_t>(regs.gs));
  b.put<uint32_t>(sc + 8, 0x2b);  // es
  b.put<uint32_t>(sc + 12, 0x2b); // ds
  for (size_t i = 0; i < kSigcontext32.size(); ++i)
    b.put<uint32_t>(sc + 16 + 4 * i, static_cast<uint32_t>(regs.general[kSigcontext32[i]]));
  b.put<uint32_t>(sc + 56, static_cast<uint32_t>(regs.general[kIp]));
  b.put<uint32_t>(sc + 60, 0x23);  // cs
  b.put<uint32_t>(sc + 64, static_cast<uint32_t>(regs.general[kFlags]));
  b.put<uint32_t>(sc + 68, static_cast<uint32_t>(regs.general[kSp]));  // esp_at_signal
  b.put<uint32_t>(sc + 72, 0x2b);  // ss
  b.put<uint32_t>(sc + 76, static_cast<uint32_t>(fp));
  b.put<uint32_t>(sc + 80, static_cast<uint32_t>(mask));
}

bool push32(const GuestMemory& mem, mmu::VcpuId v, const SignalDelivery& d, CpuRegisters& regs) {
  const bool rt = d.action.flags & kSaSigInfo;
  bool on_altstack = false;
  const uint64_t top = frame_top(d, regs.general[kSp], true, &on_altstack);
  const uint64_t fp = (top - kFpstate32Bytes) & ~uint64_t{63};
  const uint64_t size = rt ? kRt32Bytes : kSf32Bytes;
  const uint64_t frame = ((fp - size + 4) & ~uint64_t{15}) - 4;  // as after a call: (sp + 4) % 16 == 0

  Bytes fx(kFpstate32Bytes);
  fx.put<uint32_t>(0, static_cast<uint32_t>(regs.fpcw) | 0xffff0000u);
  fx.put<uint32_t>(4, static_cast<uint32_t>(regs.fpsw) | 0xffff0000u);
  fx.put<uint32_t>(8, static_cast<uint32_t>(regs.fptag) | 0xffff0000u);
  fx.put<uint16_t>(110, 0);  // magic: X86_FXSR_MAGIC, the fxsave image follows
  put_fxsave(fx, kFxsaveIn32, regs, 8);

  Bytes b(size);
  const uint64_t retcode = frame + (rt ? kRt32Retcode : kSf32Retcode);
  b.put<uint32_t>(0, static_cast<uint32_t>((d.action.flags & kSaRestorer) ? d.action.restorer : retcode));
  b.put<int32_t>(4, d.signo);
  if (rt) {
    b.put<uint32_t>(8, static_cast<uint32_t>(frame + kRt32Info));
    b.put<uint32_t>(12, static_cast<uint32_t>(frame + kRt32Uc));
    put_siginfo(b, kRt32Info, d.info, true);
    b.put<uint32_t>(kRt32Stack + 0, static_cast<uint32_t>(d.altstack.sp));
    b.put<int32_t>(kRt32Stack + 4, ss_flags(d, on_altstack));
    b.put<uint32_t>(kRt32Stack + 8, static_cast<uint32_t>(d.altstack.size));
    put_sigcontext32(b, kRt32Mcontext, regs, fp, d.saved_mask);
    b.put<uint64_t>(kRt32Sigmask, d.saved_mask);
    b.put_bytes(kRt32Retcode, kRtRetcode32.data(), kRtRetcode32.size());
  } else {
    put_sigcontext32(b, kSf32Sc, regs, fp, d.saved_mask);
    b.put<uint32_t>(kSf32Extramask, static_cast<uint32_t>(d.saved_mask >> 32));
    b.put_bytes(kSf32Retcode, kRetcode32.data(), kRetcode32.size());
  }
  if (!mem.write(v, fp, fx.data(), fx.size()) || !mem.write(v, frame, b.data(), b.size())) return false;

  regs.general[kSp] = frame;
  regs.general[kIp] = d.action.handler & 0xffffffffu;
  regs.general[kAx] = static_cast<uint64_t>(d.signo);  // regparm(3) handlers take it here
  regs.general[kDx] = rt ? frame + kRt32Info : 0;
  regs.general[kCx] = rt ? frame + kRt32Uc : 0;
  regs.general[kFlags] &= ~kHandlerClearsFlags;
  return true;
}

void restore_flags(CpuRegisters& regs, uint64_t saved) {
  regs.general[kFlags] = (regs.general[kFlags] & ~kFixFlags) | (saved & kFixFlags);
}

bool pop64(const GuestMemory& mem, mmu::VcpuId v, CpuRegisters& regs, uint64_t* mask) {
  const uint64_t frame = regs.general[kSp] - 8;  // the handler's `ret` took the restorer address
  Bytes b(kRt64Bytes);
  if (!mem.read(v, frame, b.data(), b.size())) return false;
  const uint64_t flags = b.get<uint64_t>(kRt64Mcontext + 8 * 17);
  for (size_t i = 0; i < kSigcontext64.size(); ++i)
    if (kSigcontext64[i] != kFlags) regs.general[kSigcontext64[i]] = b.get<uint64_t>(kRt64Mcontext + 8 * i);
  restore_flags(regs, flags);
  if (const uint64_t fp = b.get<uint64_t>(kRt64Mcontext + 184)) {
    Bytes fx(kFxsaveBytes);
    if (!mem.read(v, fp, fx.data(), fx.size())) return false;
    get_fxsave(fx, 0, regs, 16);
  }
  *mask = b.get<uint64_t>(kRt64Sigmask);
  return true;
}

bool get_sigcontext32(const GuestMemory& mem, mmu::VcpuId v, const Bytes& b, uint64_t sc, CpuRegisters& regs) {
  for (size_t i = 0; i < kSigcontext32.size(); ++i) regs.general[kSigcontext32[i]] = b.get<uint32_t>(sc + 16 + 4 * i);
  regs.general[kIp] = b.get<uint32_t>(sc + 56);
  restore_flags(regs, b.get<uint32_t>(sc + 64));
  if (const uint32_t fp = b.get<uint32_t>(sc + 76)) {
    Bytes fx(kFpstate32Bytes);
    if (!mem.read(v, fp, fx.data(), fx.size())) return false;
    get_fxsave(fx, kFxsaveIn32, regs, 8);
  }
  return true;
}

bool pop32(const GuestMemory& mem, mmu::VcpuId v, bool rt, CpuRegisters& regs, uint64_t* mask) {
  // rt: the handler's `ret` took pretcode; sigreturn's code also popped the signal number.
  const uint64_t frame = (regs.general[kSp] - (rt ? 4 : 8)) & 0xffffffffu;
  Bytes b(rt ? kRt32Bytes : kSf32Bytes);
  if (!mem.read(v, frame, b.data(), b.size())) return false;
  if (rt) {
    if (!get_sigcontext32(mem, v, b, kRt32Mcontext, regs)) return false;
    *mask = b.get<uint64_t>(kRt32Sigmask);
  } else {
    if (!get_sigcontext32(mem, v, b, kSf32Sc, regs)) return false;
    *mask = b.get<uint32_t>(kSf32Sc + 80) | (uint64_t{b.get<uint32_t>(kSf32Extramask)} << 32);
  }
  return true;
}

}  // namespace

void write_siginfo(uint8_t* out, const SigInfo& si, bool i386) {
  std::memset(out, 0, kSiginfoBytes);
  const auto put32 = [&](size_t off, int32_t v) { std::memcpy(out + off, &v, 4); };
  put32(0, si.signo);
  put32(8, si.code);
  const size_t u = i386 ? 12 : 16;  // the union, pointer-aligned
  if (si.has_addr) {
    if (i386) {
      put32(u, static_cast<int32_t>(si.addr));
    } else {
      std::memcpy(out + u, &si.addr, 8);
    }
    return;
  }
  if (si.code == kSiTimer) {
    put32(u + 0, si.timer_id);
    put32(u + 4, si.overrun);
  } else {
    put32(u + 0, si.pid);
    put32(u + 4, si.uid);
  }
  if (si.has_value || si.code == kSiTimer) {
    // sigval is pointer-sized, and at u + 8 on both ABIs (8-aligned on x86_64).
    if (i386) {
      put32(u + 8, static_cast<int32_t>(si.value));
    } else {
      std::memcpy(out + u + 8, &si.value, 8);
    }
    return;
  }
  put32(u + 8, si.status);
}

bool push_signal_frame(const GuestMemory& mem, mmu::VcpuId v, GuestArch arch, const SignalDelivery& d,
                       CpuRegisters& regs) {
  return arch == GuestArch::I386 ? push32(mem, v, d, regs) : push64(mem, v, d, regs);
}

bool pop_signal_frame(const GuestMemory& mem, mmu::VcpuId v, GuestArch arch, bool rt, CpuRegisters& regs,
                      uint64_t* mask) {
  return arch == GuestArch::I386 ? pop32(mem, v, rt, regs, mask) : pop64(mem, v, regs, mask);
}

}  // namespace emu
