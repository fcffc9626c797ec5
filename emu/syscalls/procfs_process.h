// The text of a guest's /proc/PID files that describe the process: stat, status, auxv,
// cmdline, comm. Pure functions of what is gathered about the guest (sys_procfs.cpp gathers),
// so that the formats are tested on their own.
//
// stat and status are the host's own files for emu's process with the guest's facts put in:
// what the guest shares with emu (its credentials, times, terminal, process group, CPU
// affinity: every such syscall passes through to the host) is already right there, and the
// host kernel's version decides which status lines exist and how they read, as it would for
// a native program.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "emu/loader/initial_stack.h"
#include "mmu/vma.h"

namespace emu::procfs {

// What the VMAs say (in bytes), in Linux's accounting (mm->total_vm, data_vm, stack_vm,
// exec_vm, start_code/end_code of the program's own executable segments).
struct VmFacts {
  uint64_t size = 0;   // VmSize, stat's vsize
  uint64_t data = 0;   // VmData: private writable, not a stack
  uint64_t stack = 0;  // VmStk: grows-down
  uint64_t exec = 0;   // executable, not writable, not a stack (VmExe + VmLib)
  uint64_t start_code = 0, end_code = 0;  // the program file's executable VMAs
  uint64_t start_data = 0, end_data = 0;  // the program file's writable VMAs
  uint64_t start_brk = 0;                 // the [heap] VMA, 0 when there is none yet
};
// `exe_path`: the guest name of the program file (its VMAs carry it).
VmFacts vm_facts(const std::vector<mmu::Vma>& vmas, const std::string& exe_path);

// The guest's side of stat and status.
struct ProcessFacts {
  int pid = 0;   // the thread group (Tgid)
  int tid = 0;   // the thread described: pid for /proc/PID, the thread's for thread-self
  int ppid = 0;
  std::string comm;
  int threads = 1;
  int fd_size = 64;        // FDSize
  VmFacts vm;
  int64_t rss_pages = 0;
  uint64_t sig_pending = 0;   // the thread's own (SigPnd)
  uint64_t shared_pending = 0;  // the process's (ShdPnd)
  uint64_t sig_blocked = 0, sig_ignored = 0, sig_caught = 0;  // bit n-1: signal n
};

// Linux's task comm: the program file's base name, at most 15 bytes (TASK_COMM_LEN - 1).
std::string comm_of(std::string_view exe_path);
// /proc/PID/comm: comm and a newline.
std::string format_comm(const std::string& comm);
// /proc/PID/cmdline: every argument followed by a NUL.
std::string format_cmdline(const std::vector<std::string>& argv);
// /proc/PID/auxv: the (type, value) pairs as the guest's words (4 bytes for i386, 8 for
// x86_64, little-endian), ending with the AT_NULL pair, as the kernel saved them.
std::string encode_auxv(const Auxv& auxv, bool i386);
// FDSize: the size Linux's fd array has grown to for `highest_fd` (64, then 128 * 2^k).
int fd_size_for(int highest_fd);

// /proc/PID/stat: `host_stat` (emu's own line; "" for none) with the guest's fields put in.
std::string format_stat(std::string_view host_stat, const ProcessFacts& f);
// /proc/PID/status: `host_status` (emu's own; "" for a built-in Linux 6.1 layout) with the
// guest's lines put in.
std::string format_status(std::string_view host_status, const ProcessFacts& f);

}  // namespace emu::procfs
