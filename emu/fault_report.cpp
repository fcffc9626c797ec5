#include "emu/fault_report.h"

#include <capstone/capstone.h>
#include <fmt/format.h>

#include <csignal>
#include <cstring>

#include "emu/capstone_lock.h"
#include "emu/guest_process.h"

namespace emu {

namespace {
uint64_t instruction_pointer(Vcpu& vcpu) {
  return vcpu.reg(vcpu.arch() == GuestArch::I386 ? UC_X86_REG_EIP : UC_X86_REG_RIP);
}
const char* access_name(mmu::Access a) {
  switch (a) {
    case mmu::Access::Read: return "read of";
    case mmu::Access::Write: return "write to";
    case mmu::Access::Fetch: return "instruction fetch from";
  }
  return "access to";
}
}  // namespace

int fault_signal(mmu::FaultOutcome outcome) {
  switch (outcome) {
    case mmu::FaultOutcome::SigBus: return SIGBUS;
    case mmu::FaultOutcome::OutOfMemory: return SIGKILL;
    default: return SIGSEGV;
  }
}

std::string disassemble_at(Vcpu& vcpu, uint64_t ip) {
  uint8_t code[16];
  size_t n = sizeof code;
  // Usually all 16 bytes are readable; else as many as are (the instruction may end at a
  // mapping's edge), a byte at a time.
  if (!vcpu.process().memory().read(vcpu.slot(), ip, code, n)) {
    n = 0;
    while (n < sizeof code && vcpu.process().memory().read(vcpu.slot(), ip + n, code + n, 1)) ++n;
  }
  return disassemble(vcpu.arch(), code, n, ip);
}

std::string disassemble(GuestArch arch, const uint8_t* code, size_t n, uint64_t ip) {
  if (n == 0) return "<unreadable>";
  // One handle per thread and mode: the tracer disassembles every fault.
  struct Handles {
    csh h[2] = {0, 0};
    bool open[2] = {false, false};
    ~Handles() {
      for (int i = 0; i < 2; ++i)
        if (open[i]) cs_close(&h[i]);
    }
  };
  thread_local Handles handles;
  std::lock_guard g(capstone_lock());
  const int mode = arch == GuestArch::I386 ? 0 : 1;
  if (!handles.open[mode]) {
    if (cs_open(CS_ARCH_X86, mode == 0 ? CS_MODE_32 : CS_MODE_64, &handles.h[mode]) != CS_ERR_OK)
      return "<no disassembler>";
    handles.open[mode] = true;
  }
  cs_insn* insn = nullptr;
  std::string text = "<undecodable>";
  if (cs_disasm(handles.h[mode], code, n, ip, 1, &insn) == 1) {
    text = insn->mnemonic;
    if (insn->op_str[0]) text += std::string(" ") + insn->op_str;
    cs_free(insn, 1);
  }
  return text;
}

std::string describe_fault(Vcpu& vcpu, const GuestFault& fault) {
  const uint64_t ip = instruction_pointer(vcpu);
  const int sig = fault_signal(fault.outcome);
  std::string why = fault.outcome == mmu::FaultOutcome::SegvMapError      ? "no mapping there"
                    : fault.outcome == mmu::FaultOutcome::SegvAccessError ? "mapping forbids it"
                    : fault.outcome == mmu::FaultOutcome::OutOfMemory     ? "out of guest memory"
                                                                          : "backing store failed";
  GuestProcess& process = vcpu.process();
  if (fault.outcome == mmu::FaultOutcome::OutOfMemory) {
    const mmu::SwapDevice* swap = process.swap();
    why += fmt::format(": --mem {} MiB, {}", process.pool().bytes() >> 20,
                       swap ? fmt::format("swap of {} MiB full", swap->slot_count() * mmu::kPageSize >> 20)
                            : std::string("no --swap"));
  } else if (fault.outcome == mmu::FaultOutcome::SigBus && process.swap() && process.swap()->read_errors()) {
    why = fmt::format("swap read failed on {}: {}", process.swap()->description(),
                      std::strerror(process.swap()->last_error()));
  }
  const uint64_t sp = vcpu.reg(vcpu.arch() == GuestArch::I386 ? UC_X86_REG_ESP : UC_X86_REG_RSP);
  return fmt::format("guest killed by SIG{}: {} 0x{:x} ({}) at ip 0x{:x} (sp 0x{:x}) in thread {}: {}",
                     sigabbrev_np(sig), access_name(fault.access), fault.address, why, ip, sp, vcpu.tid(),
                     disassemble_at(vcpu, ip));
}

std::string describe_signal(Vcpu& vcpu, int signal) {
  const uint64_t ip = instruction_pointer(vcpu);
  return fmt::format("guest killed by SIG{} at ip 0x{:x} in thread {}: {}", sigabbrev_np(signal), ip, vcpu.tid(),
                     disassemble_at(vcpu, ip));
}

}  // namespace emu
