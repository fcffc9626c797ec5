#include "emu/syscalls/syscalls.h"

#include <cerrno>
#include <csignal>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cerrno>

#include "emu/process/guest_process.h"
#include "emu/cpu/vcpu.h"

namespace emu {

SyscallOutcome handle_syscall(Vcpu& vcpu) {
  const bool i386 = vcpu.arch() == GuestArch::I386;
  GuestProcess& proc = vcpu.process();
  sys::Call c{vcpu, proc, proc.memory(), vcpu.slot(), i386, {}};
  uint64_t nr;
  if (i386) {
    nr = vcpu.reg(UC_X86_REG_EAX);
    const int regs[6] = {UC_X86_REG_EBX, UC_X86_REG_ECX, UC_X86_REG_EDX, UC_X86_REG_ESI, UC_X86_REG_EDI, UC_X86_REG_EBP};
    for (int i = 0; i < 6; ++i) c.a[i] = vcpu.reg(regs[i]);
  } else {
    nr = vcpu.reg(UC_X86_REG_RAX);
    const int regs[6] = {UC_X86_REG_RDI, UC_X86_REG_RSI, UC_X86_REG_RDX, UC_X86_REG_R10, UC_X86_REG_R8, UC_X86_REG_R9};
    for (int i = 0; i < 6; ++i) c.a[i] = vcpu.reg(regs[i]);
  }
  bool known = true;
  Tracer* tracer = proc.tracer();
  const bool traced = tracer && tracer->on(TraceEvent::Syscalls) && tracer->wants_vcpu(vcpu.slot());
  const uint64_t start = traced ? Tracer::now_ns() : 0;
  const int64_t result = i386 ? sys::dispatch_i386(c, nr, &known) : sys::dispatch_x86_64(c, nr, &known);
  if (traced) {
    const uint64_t end = Tracer::now_ns();
    tracer->record(TraceEvent::Syscalls, vcpu.slot(), start, end - start, fmt::format("syscall {}", nr),
                   fmt::format("({:#x}, {:#x}, {:#x}, {:#x}, {:#x}, {:#x}) = {} {:.3f}us{}", c.a[0], c.a[1], c.a[2],
                               c.a[3], c.a[4], c.a[5], result, double(end - start) / 1000.0, known ? "" : " (unknown)"),
                   {{"nr", nr}, {"args", c.a}, {"result", result}, {"known", known}});
  }
  SPDLOG_DEBUG("tid {} syscall {} ({:#x}, {:#x}, {:#x}, {:#x}) = {}", vcpu.tid(), nr, c.a[0], c.a[1], c.a[2], c.a[3], result);
  // A write to a pipe with no reader: Linux sends SIGPIPE too (emu itself ignores it).
  if (result == -EPIPE && !c.no_sigpipe) {
    SigInfo info;
    info.signo = SIGPIPE;
    info.code = kSiUser;
    info.pid = proc.pid();
    proc.send_signal(SIGPIPE, info, &vcpu);  // to the thread that wrote
  }
  if (!known) {
    proc.note_unknown_syscall(nr);
    proc.counters().slot(vcpu.slot()).add(EmuCounter::UnknownSyscalls);
  }
  if (i386) {
    vcpu.set_reg(UC_X86_REG_EAX, static_cast<uint32_t>(result));
  } else {
    vcpu.set_reg(UC_X86_REG_RAX, static_cast<uint64_t>(result));
  }
  return {nr, result};
}

}  // namespace emu
