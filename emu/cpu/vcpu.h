// One guest thread on one Unicorn engine in its own host thread (DESIGN.md decision 4).
//
// The engine's TLB misses go to the MMU's fault handler; its syscalls to the syscall layer.
// Other threads never touch the engine: they post requests to this vCPU's mailbox (an
// attention word) and it serves them at its sync points (decision 5): the block hook, the
// syscall hook, re-entry into guest code, and every wait loop.
#pragma once

#include <unicorn/unicorn.h>

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

#include "emu/cpu/atomic_block_detector.h"
#include "emu/cpu/cpu_registers.h"
#include "emu/cpu/guest_arch.h"
#include "emu/signals/guest_signals.h"
#include "mmu/types.h"

namespace emu {

class GuestProcess;

enum Attention : uint32_t {
  kAttnFlushTlb = 1,    // drop cached translations, then acknowledge
  kAttnExclusive = 2,   // another vCPU wants to run a block alone: park at this boundary
  kAttnStop = 4,        // the process is exiting
  kAttnFlushCode = 8,   // executable memory changed: drop translated blocks
  kAttnSignal = 16,     // a signal to take: leave guest code at the next block boundary
};

// Where a vCPU is, as the others see it.
enum class VcpuWhere : uint8_t {
  Outside,  // not in guest code (in a syscall, waiting, starting, finished): quiescent
  Running,  // executing guest code; its TLB is in use
  Parked,   // at a block boundary, waiting for another vCPU's exclusive block
  // In a syscall, copying to or from guest frames it just translated: not quiescent, a
  // shootdown waits until it is done (or acknowledges from a wait loop) before freeing.
  HostAccess,
};

struct GuestFault {
  uint64_t address = 0;
  mmu::Access access = mmu::Access::Read;
  mmu::FaultOutcome outcome = mmu::FaultOutcome::SegvMapError;
};

// How the thread starts: registers, and i386 TLS to install first.
struct VcpuStart {
  CpuRegisters regs;
  std::optional<std::array<uint32_t, 2>> i386_tls_descriptor;  // GDT entry to load GS from
  uint32_t i386_tls_entry = 0;
  // Inherited from the creating thread (clone, fork).
  uint64_t signal_mask = 0;
  AltStack altstack;
};

class Vcpu {
 public:
  // i386: this thread's own TLS descriptor (set_thread_area, or the one it started with). The
  // GDT page in guest memory holds whichever thread wrote it last, so a fork child must
  // load the forking thread's, not what the page says.
  std::optional<std::array<uint32_t, 2>> tls_descriptor;
  uint32_t tls_entry = 0;

  Vcpu(GuestProcess& process, mmu::VcpuId slot, int tid);
  ~Vcpu();
  Vcpu(const Vcpu&) = delete;
  Vcpu& operator=(const Vcpu&) = delete;

  // The host thread's body: runs guest code until the thread or the process exits.
  void run(const VcpuStart& start);

  mmu::VcpuId slot() const { return slot_; }
  int tid() const { return tid_; }
  GuestArch arch() const;
  GuestProcess& process() { return process_; }

  // Registers, from this vCPU's own thread only.
  uint64_t reg(int id) const;
  void set_reg(int id, uint64_t value);
  void save_registers(CpuRegisters& out) const { out.save(uc_, arch()); }

  // Mailbox, from any thread.
  void post(uint32_t attention_bits) { attention_.fetch_or(attention_bits, std::memory_order_seq_cst); }
  void request_flush(uint64_t generation);
  uint64_t flushes_done() const { return flush_done_.load(std::memory_order_acquire); }
  VcpuWhere where() const { return where_.load(std::memory_order_seq_cst); }
  // From this vCPU's own thread.
  void set_where(VcpuWhere w) { where_.store(w, std::memory_order_seq_cst); }
  // From this vCPU's own thread, around direct accesses to guest frames (nests).
  void begin_host_access() {
    if (host_access_depth_++ == 0 && where() == VcpuWhere::Outside) {
      set_where(VcpuWhere::HostAccess);
      host_access_marked_ = true;
    }
  }
  void end_host_access() {
    if (--host_access_depth_ == 0 && host_access_marked_) {
      set_where(VcpuWhere::Outside);
      host_access_marked_ = false;
    }
  }

  // From this vCPU's own thread: serve TLB flushes only (safe inside any hook and wait loop).
  void serve_flushes();
  // Thread-exit bookkeeping for the syscall layer.
  void request_thread_exit(int code) {
    thread_exit_ = true;
    exit_code_ = code;
  }
  // The process is ending (exit_group from this vCPU): leave guest code now.
  void request_stop() { stop_ = true; }
  // execve succeeded: leave guest code, reopen the engine for the new image, go on at `start`.
  void request_exec(const VcpuStart& start) { exec_start_ = start; }
  // sigreturn: these registers replace the engine's once the syscall is over.
  void request_register_load(const CpuRegisters& regs) { load_regs_ = regs; }
  uint64_t clear_child_tid = 0;

  // Signals: this thread's mask and pending set (the process's lock guards changes).
  ThreadSignals& signals() { return signals_; }
  // From any thread: wakes this vCPU from a host poll that includes wake_fd().
  void wake();
  int wake_fd() const { return wake_fd_; }
  // From this vCPU's own thread, after a poll saw wake_fd() readable.
  void drain_wake_fd();

 private:
  static bool on_tlb_fill(uc_engine* uc, uint64_t vaddr, uc_mem_type type, uc_tlb_entry* e, void* self);
  static void on_block(uc_engine* uc, uint64_t address, uint32_t size, void* self);
  // Kept out of line so on_block's common path has no frame to set up.
  [[gnu::noinline]] void on_block_slow(uint64_t address, uint32_t size);
  // Drops the translated blocks of every mapped executable page (not the whole cache).
  void drop_translations();
  static void on_syscall(uc_engine* uc, void* self);
  static void on_interrupt(uc_engine* uc, uint32_t intno, void* self);
  static bool on_invalid_instruction(uc_engine* uc, void* self);

  bool open_engine(std::string* error);
  // Opens the engine for the process's arch and loads `start` into it; false and the
  // process killed when Unicorn refuses.
  bool start_engine(const VcpuStart& start);
  // A lone vCPU runs without the block hook (it costs about 2 ns per block executed, the
  // largest part of a compute-bound guest's overhead); the hook comes with the second vCPU.
  bool install_block_hook(bool fresh);
  void do_syscall();
  // Between engine runs: registers from sigreturn, the interrupted syscall's EINTR or restart,
  // the next signal's handler frame (or its fatal default).
  bool signal_work() const;
  void take_signals();
  // A fault or CPU exception with a guest handler for `sig`: queued for this thread (true),
  // to run at the faulting instruction. False: the process dies of it.
  bool raise_for_handler(int sig, int32_t code, uint64_t addr);
  // Serves everything in the mailbox; true when this vCPU must stop.
  bool serve_attention();
  // Back into guest code: Running, then the mailbox (Dekker against requesters).
  void enter_guest();
  void leave_guest();
  bool block_has_atomics(uint64_t address, uint32_t size);
  void end_exclusive();

  GuestProcess& process_;
  const mmu::VcpuId slot_;
  const int tid_;
  uc_engine* uc_ = nullptr;
  std::unique_ptr<AtomicBlockDetector> detector_;  // per engine: the arch may change on execve
  bool exclusive_owner_ = false;
  bool block_hook_installed_ = false;
  bool stop_ = false;         // leave uc_emu_start and end the thread
  bool stopping_ = false;     // uc_emu_stop called to come back to run()'s loop
  bool in_emulation_ = false; // inside uc_emu_start (hooks run here)
  bool thread_exit_ = false;  // the exit syscall
  int exit_code_ = 0;
  std::optional<GuestFault> fault_;
  std::optional<VcpuStart> exec_start_;
  int pending_signal_ = 0;    // a CPU exception turned into a fatal signal
  ThreadSignals signals_;
  int wake_fd_ = -1;          // an eventfd
  std::optional<CpuRegisters> load_regs_;
  struct InterruptedSyscall {
    uint64_t nr = 0;
    int64_t result = 0;  // one of the kErestart codes
  };
  std::optional<InterruptedSyscall> restart_;
  unsigned host_access_depth_ = 0;
  bool host_access_marked_ = false;

  alignas(64) std::atomic<uint32_t> attention_{0};
  std::atomic<uint64_t> flush_requested_{0};
  std::atomic<uint64_t> flush_done_{0};
  std::atomic<VcpuWhere> where_{VcpuWhere::Outside};
};

}  // namespace emu
