// The one line a user sees when the guest dies of a fault: what was accessed, where, and the
// faulting instruction disassembled by Capstone.
#pragma once

#include <string>

#include "emu/cpu/vcpu.h"

namespace emu {

int fault_signal(mmu::FaultOutcome outcome);
// Both read the vCPU's registers, so they run on its own thread.
std::string describe_fault(Vcpu& vcpu, const GuestFault& fault);
std::string describe_signal(Vcpu& vcpu, int signal);
// The exact address a fault at `page` (all the TLB-fill hook is told) was for: the faulting
// instruction's memory operand that falls in that page, decoded by Capstone from the
// registers, or the slot below the stack pointer for an implicit push; `page` itself when
// neither fits. On the vCPU's own thread.
uint64_t exact_fault_address(Vcpu& vcpu, uint64_t page);
// " (/usr/lib/x86_64-linux-gnu/libc.so.6+0x2a3f0)": the mapping `ip` is in and the offset
// in its file (the offset in the region for named anonymous ones); "" when unnamed.
std::string locate_code(Vcpu& vcpu, uint64_t ip);
// "mov dword ptr [rax], 1", or "<unreadable>".
std::string disassemble_at(Vcpu& vcpu, uint64_t ip);
// The same from up to 16 bytes already read.
std::string disassemble(GuestArch arch, const uint8_t* code, size_t n, uint64_t ip);

}  // namespace emu
