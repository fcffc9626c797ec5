// The Linux syscall layer: x86_64 `syscall` and i386 `int 0x80` arrive here from the vCPU's
// hooks. Files pass through to the host, each guest fd through its process's own table
// (fd_table.h); memory goes to the MMU; threads become vCPUs. Every guest pointer goes
// through GuestMemory (EFAULT, never a host crash).
#pragma once

#include <array>
#include <cstdint>

namespace emu {

class Vcpu;
class GuestProcess;
class GuestMemory;

// Reads the number and arguments from the vCPU's registers and writes the result back; the
// number and result also come back to the vCPU (an interrupted call may have to run again).
struct SyscallOutcome {
  uint64_t nr = 0;
  int64_t result = 0;
};
SyscallOutcome handle_syscall(Vcpu& vcpu);

namespace sys {

// What every handler gets: who is calling and the arguments as the ABI passed them.
struct Call {
  Vcpu& vcpu;
  GuestProcess& proc;
  GuestMemory& mem;
  uint32_t v;  // the vCPU slot
  bool i386;
  std::array<uint64_t, 6> a;
  // Set by a send with MSG_NOSIGNAL: an EPIPE result raises no SIGPIPE.
  bool no_sigpipe = false;
};

// Per-architecture tables: the number to the handler; -ENOSYS for unknown numbers is
// reported through *known = false.
int64_t dispatch_x86_64(Call& c, uint64_t nr, bool* known);
int64_t dispatch_i386(Call& c, uint64_t nr, bool* known);

}  // namespace sys
}  // namespace emu
