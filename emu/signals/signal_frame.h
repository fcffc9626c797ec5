// The frames Linux builds on a guest's stack to run a signal handler, and takes down again in
// rt_sigreturn (x86_64, i386) or sigreturn (i386 without SA_SIGINFO). The layouts are the
// kernel's (arch/x86/include/asm/sigframe.h, uapi sigcontext.h): programs look inside them
// (ucontext_t in a SA_SIGINFO handler), and a handler may longjmp away from one, so everything
// the interrupted code needs back is in guest memory, nothing in emu.
#pragma once

#include <cstdint>

#include "emu/cpu/cpu_registers.h"
#include "emu/cpu/guest_arch.h"
#include "emu/signals/guest_signals.h"
#include "mmu/types.h"

namespace emu {

class GuestMemory;

struct SignalDelivery {
  int signo = 0;
  SigInfo info;
  SigAction action;
  uint64_t saved_mask = 0;  // what the interrupted code ran with: sigreturn restores it
  AltStack altstack;
};

// The ABI's 128-byte siginfo_t for `info` (also what waitid and sigtimedwait write).
void write_siginfo(uint8_t* out, const SigInfo& info, bool i386);

// Writes the frame below the interrupted stack pointer (or at the top of the alternate stack,
// SA_ONSTACK) and points `regs` at the handler with its arguments. False when the frame cannot
// be written (a bad stack) or an x86_64 handler has no restorer: Linux then forces SIGSEGV.
bool push_signal_frame(const GuestMemory& mem, mmu::VcpuId v, GuestArch arch, const SignalDelivery& d,
                       CpuRegisters& regs);

// The frame whose handler just returned into sigreturn (`rt`: rt_sigreturn): `regs` (the
// current ones, for what the frame does not hold) become the interrupted code's, *mask its
// signal mask. False when the frame cannot be read (SIGSEGV).
bool pop_signal_frame(const GuestMemory& mem, mmu::VcpuId v, GuestArch arch, bool rt, CpuRegisters& regs,
                      uint64_t* mask);

}  // namespace emu
