#include "emu/observe/fault_report.h"

#include <capstone/capstone.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <csignal>
#include <cstring>
#include <optional>

#include "emu/cpu/capstone_lock.h"
#include "emu/process/guest_process.h"

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

namespace {
// Capstone's general registers to Unicorn's (only those that can address memory).
int unicorn_register(x86_reg r) {
  static const std::array<std::pair<x86_reg, int>, 34> map = {{
      {X86_REG_RAX, UC_X86_REG_RAX}, {X86_REG_RBX, UC_X86_REG_RBX}, {X86_REG_RCX, UC_X86_REG_RCX},
      {X86_REG_RDX, UC_X86_REG_RDX}, {X86_REG_RSI, UC_X86_REG_RSI}, {X86_REG_RDI, UC_X86_REG_RDI},
      {X86_REG_RBP, UC_X86_REG_RBP}, {X86_REG_RSP, UC_X86_REG_RSP}, {X86_REG_R8, UC_X86_REG_R8},
      {X86_REG_R9, UC_X86_REG_R9},   {X86_REG_R10, UC_X86_REG_R10}, {X86_REG_R11, UC_X86_REG_R11},
      {X86_REG_R12, UC_X86_REG_R12}, {X86_REG_R13, UC_X86_REG_R13}, {X86_REG_R14, UC_X86_REG_R14},
      {X86_REG_R15, UC_X86_REG_R15}, {X86_REG_EAX, UC_X86_REG_EAX}, {X86_REG_EBX, UC_X86_REG_EBX},
      {X86_REG_ECX, UC_X86_REG_ECX}, {X86_REG_EDX, UC_X86_REG_EDX}, {X86_REG_ESI, UC_X86_REG_ESI},
      {X86_REG_EDI, UC_X86_REG_EDI}, {X86_REG_EBP, UC_X86_REG_EBP}, {X86_REG_ESP, UC_X86_REG_ESP},
      {X86_REG_R8D, UC_X86_REG_R8D}, {X86_REG_R9D, UC_X86_REG_R9D}, {X86_REG_R10D, UC_X86_REG_R10D},
      {X86_REG_R11D, UC_X86_REG_R11D}, {X86_REG_R12D, UC_X86_REG_R12D}, {X86_REG_R13D, UC_X86_REG_R13D},
      {X86_REG_R14D, UC_X86_REG_R14D}, {X86_REG_R15D, UC_X86_REG_R15D}, {X86_REG_RIP, UC_X86_REG_RIP},
      {X86_REG_EIP, UC_X86_REG_EIP},
  }};
  for (const auto& [cs, uc] : map)
    if (cs == r) return uc;
  return -1;
}
}  // namespace

uint64_t exact_fault_address(Vcpu& vcpu, uint64_t page) {
  const bool i386 = vcpu.arch() == GuestArch::I386;
  const uint64_t ip = instruction_pointer(vcpu);
  const uint64_t width_mask = i386 ? 0xffffffffu : ~uint64_t{0};
  uint8_t code[16];
  size_t n = 0;
  while (n < sizeof code && vcpu.process().memory().read(vcpu.slot(), ip + n, code + n, 1)) ++n;
  const auto in_page = [&](uint64_t first, uint64_t size) -> std::optional<uint64_t> {
    first &= width_mask;
    const uint64_t last = first + (size ? size : 1) - 1;
    if (last < page || first > page + mmu::kPageSize - 1) return std::nullopt;
    return std::max(first, page);
  };
  struct Handle {  // one per thread, with operand details
    csh h = 0;
    bool open = false;
    ~Handle() {
      if (open) cs_close(&h);
    }
  };
  thread_local Handle handles[2];
  Handle& handle = handles[i386 ? 0 : 1];
  std::optional<uint64_t> found;
  if (n > 0) {
    std::lock_guard g(capstone_lock());
    if (!handle.open && cs_open(CS_ARCH_X86, i386 ? CS_MODE_32 : CS_MODE_64, &handle.h) == CS_ERR_OK) {
      cs_option(handle.h, CS_OPT_DETAIL, CS_OPT_ON);
      handle.open = true;
    }
    cs_insn* insn = nullptr;
    if (handle.open && cs_disasm(handle.h, code, n, ip, 1, &insn) == 1) {
      const cs_x86& x86 = insn->detail->x86;
      for (uint8_t i = 0; i < x86.op_count && !found; ++i) {
        const cs_x86_op& op = x86.operands[i];
        if (op.type != X86_OP_MEM) continue;
        const auto value = [&](x86_reg r) -> uint64_t {
          if (r == X86_REG_INVALID) return 0;
          if (r == X86_REG_RIP || r == X86_REG_EIP) return ip + insn->size;
          const int id = unicorn_register(r);
          return id < 0 ? 0 : vcpu.reg(id);
        };
        uint64_t ea = value(op.mem.base) + value(op.mem.index) * static_cast<uint64_t>(op.mem.scale) +
                      static_cast<uint64_t>(op.mem.disp);
        if (!i386 && op.mem.segment == X86_REG_FS) ea += vcpu.reg(UC_X86_REG_FS_BASE);
        if (!i386 && op.mem.segment == X86_REG_GS) ea += vcpu.reg(UC_X86_REG_GS_BASE);
        found = in_page(ea, op.size);
      }
      cs_free(insn, 1);
    }
  }
  if (found) return *found;
  // An implicit stack access (push, call): the word below the stack pointer.
  const uint64_t word = i386 ? 4 : 8;
  const uint64_t sp = vcpu.reg(i386 ? UC_X86_REG_ESP : UC_X86_REG_RSP);
  if (const auto below = in_page(sp - word, word)) return *below;
  return page;
}

std::string locate_code(Vcpu& vcpu, uint64_t ip) {
  for (const mmu::Vma& vma : vcpu.process().space().vmas(vcpu.slot())) {
    if (ip < vma.start || ip >= vma.end) continue;
    if (vma.name.empty()) return "";
    // A file's offset, as Linux's segfault line gives it: what to feed to addr2line/objdump.
    const uint64_t offset = vma.kind == mmu::VmaKind::FilePrivate ? vma.source_offset + (ip - vma.start) : ip - vma.start;
    return fmt::format(" ({}+0x{:x})", vma.name, offset);
  }
  return "";
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
  } else if (fault.outcome == mmu::FaultOutcome::SigBus && process.swap() &&
             (process.swap()->read_errors() || process.swap()->write_errors())) {
    why = fmt::format("swap {} failed on {}: {}", process.swap()->read_errors() ? "read" : "write",
                      process.swap()->description(), std::strerror(process.swap()->last_error()));
  }
  const uint64_t sp = vcpu.reg(vcpu.arch() == GuestArch::I386 ? UC_X86_REG_ESP : UC_X86_REG_RSP);
  return fmt::format("guest killed by SIG{}: {} 0x{:x} ({}) at ip 0x{:x}{} (sp 0x{:x}) in thread {}: {}",
                     sigabbrev_np(sig), access_name(fault.access), fault.address, why, ip, locate_code(vcpu, ip), sp,
                     vcpu.tid(), disassemble_at(vcpu, ip));
}

std::string describe_signal(Vcpu& vcpu, int signal) {
  const uint64_t ip = instruction_pointer(vcpu);
  return fmt::format("guest killed by SIG{} at ip 0x{:x}{} in thread {}: {}", sigabbrev_np(signal), ip,
                     locate_code(vcpu, ip), vcpu.tid(), disassemble_at(vcpu, ip));
}

}  // namespace emu
