// The one line a user sees when the guest dies of a fault: what was accessed, where, and the
// faulting instruction disassembled by Capstone.
#pragma once

#include <string>

#include "emu/vcpu.h"

namespace emu {

int fault_signal(mmu::FaultOutcome outcome);
// Both read the vCPU's registers, so they run on its own thread.
std::string describe_fault(Vcpu& vcpu, const GuestFault& fault);
std::string describe_signal(Vcpu& vcpu, int signal);
// "mov dword ptr [rax], 1", or "<unreadable>".
std::string disassemble_at(Vcpu& vcpu, uint64_t ip);
// The same from up to 16 bytes already read.
std::string disassemble(GuestArch arch, const uint8_t* code, size_t n, uint64_t ip);

}  // namespace emu
