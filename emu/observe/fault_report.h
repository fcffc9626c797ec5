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
// "mov dword ptr [rax], 1", or "<unreadable>".
std::string disassemble_at(Vcpu& vcpu, uint64_t ip);
// The same from up to 16 bytes already read.
std::string disassemble(GuestArch arch, const uint8_t* code, size_t n, uint64_t ip);

}  // namespace emu
