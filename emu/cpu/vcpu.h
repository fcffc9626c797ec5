// One guest thread on one Unicorn engine in its own host thread (DESIGN.md decision 4).
//
// The engine's TLB misses go to the MMU's fault handler; its syscalls to the syscall layer.
// Other threads never touch the engine: they post requests to this vCPU's mailbox (an
// attention word) and it serves them at its sync points (decision 5): the block hook, the
// syscall hook, re-entry into guest code, and every wait loop.
#pragma once

#include <unicorn/unicorn.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "emu/cpu/atomic_block_detector.h"
#include "emu/cpu/guest_atomics.h"
#include "emu/cpu/cpu_registers.h"
#include "emu/cpu/guest_arch.h"
#include "emu/observe/emu_counters.h"
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
  // The host thread's own tid, once run() has started (0 before): getrusage reads the CPU
  // time of a process's other threads through it.
  int host_tid() const { return host_tid_.load(std::memory_order_acquire); }
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
  // Whether the hook must be added before guest code runs again: the process needs it, or
  // this vCPU already stopped counting itself hookless (hookless_counted_) on that promise.
  bool block_hook_due() const;
  // This vCPU no longer counts as hookless in its process (it has the hook, will add it
  // before it runs guest code again, or its engine is closing).
  void stop_counting_hookless();
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
  void end_exclusive();
  // Guest atomics (vcpu_atomics.cpp). What the block about to run needs: nothing, the
  // exclusive gate (an atomic without a host-atomic hook), or a restart of the engine at the
  // block (its atomics were hooked just now; this translation of it has no call to the hook).
  enum class BlockAtomics : uint8_t { None, Gate, Restart };
  BlockAtomics block_atomics(uint64_t address, uint32_t size);
  // Takes the exclusive gate at a block boundary or in the code hook (released at the next
  // block boundary or when the engine stops).
  void begin_exclusive(uint64_t address, uint32_t size, const char* why);
  // The code hook at each hooked atomic (its user data is the site): the host atomic, then
  // the instruction on a scratch copy, or registers, EFLAGS and RIP written here.
  struct HookedSite;
  static void on_atomic(uc_engine* uc, uint64_t address, uint32_t size, void* site);
  void do_atomic(const HookedSite& h, uint64_t address);
  bool hook_site(const AtomicSite& site);
  const HookedSite* find_site(uint64_t address) const;
  // The fast path leaves the instruction to Unicorn on a scratch copy of the old value: its
  // base register points there for that one instruction and is put back here, by the hook
  // at the next instruction, the next block hook, or when the engine stops.
  void end_redirect() {
    if (redirect_pending_) end_redirect_slow();
  }
  void end_redirect_slow();
  // Host address of guest page `page` for a locked write (the MMU's write path: dirty bit,
  // copy-on-write, swap-in), cached until the next TLB flush; nullptr if the access faults.
  uint8_t* atomic_page(uint64_t page);
  void clear_atomic_tlb() {
    atomic_tlb_.fill({});
    ++flush_epoch_;
  }
  // Executable memory changed: the hooked sites may no longer be atomics (outside emulation).
  void drop_atomic_sites();
  // uc_emu_stop from a hook; from the block hook RIP is set to the block first (with a code
  // hook installed, Unicorn no longer syncs it when a block exits before its first
  // instruction: measured, it resumed at the previous block).
  void stop_engine();

  GuestProcess& process_;
  const mmu::VcpuId slot_;
  const int tid_;
  uc_engine* uc_ = nullptr;
  std::unique_ptr<AtomicBlockDetector> detector_;  // per engine: the arch may change on execve
  // Hooked atomic sites of this engine (each the user data of its hook, so never moved),
  // and an open-addressing table of them keyed by address.
  struct HookedSite {
    Vcpu* vcpu = nullptr;
    AtomicSite site;
    uc_hook hook = 0;
    // The general register the fast path may point at the scratch copy (the base register,
    // when the instruction reads and writes no other way), or -1: RIP-relative and absolute
    // operands, and the rest, take the slower path (results written, RIP moved).
    int8_t redirect = -1;
    // The Unicorn registers the hook reads, in one batch, and where each operand is in it.
    int nregs = 0;
    int regs[10] = {};
    int8_t i_base = -1, i_index = -1, i_src = -1, i_acc = -1, i_dx = -1, i_bx = -1, i_cx = -1, i_seg = -1, i_sp = -1;
  };
  std::vector<std::unique_ptr<HookedSite>> site_nodes_;
  std::vector<HookedSite*> sites_;  // the table (power of two, at most half full)
  bool mode64_ = true;              // the engine's arch, read in the hooks
  EmuCounters::Slot* counter_slot_ = nullptr;
  struct AtomicTlbEntry {
    uint64_t page = ~uint64_t{0};
    uint8_t* host = nullptr;
  };
  std::array<AtomicTlbEntry, 64> atomic_tlb_{};
  // Counts the flushes served: a translation may wait (for a frame, a swap-in) and serve
  // one, after which a host pointer obtained before it may point to a freed frame.
  uint64_t flush_epoch_ = 0;
  bool in_block_hook_ = false;  // on_block_slow is running (stop_engine sets RIP)
  bool redirect_pending_ = false;
  int redirect_reg_ = 0;         // Unicorn register id to put back
  uint64_t redirect_value_ = 0;  // its value
  uint64_t redirect_next_ = 0;   // the instruction after the redirected one
  uint64_t block_pc_ = 0;
  bool exclusive_owner_ = false;
  bool block_hook_installed_ = false;
  bool hookless_counted_ = false;  // counted in GuestProcess::count_hookless_vcpu
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

  std::atomic<int> host_tid_{0};

  alignas(64) std::atomic<uint32_t> attention_{0};
  std::atomic<uint64_t> flush_requested_{0};
  std::atomic<uint64_t> flush_done_{0};
  std::atomic<VcpuWhere> where_{VcpuWhere::Outside};
};

}  // namespace emu
