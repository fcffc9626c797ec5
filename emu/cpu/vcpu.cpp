#include "emu/cpu/vcpu.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <csignal>

#include "emu/observe/fault_report.h"
#include "emu/observe/fault_trace.h"
#include "emu/process/guest_process.h"
#include "emu/process/machine.h"
#include "emu/signals/signal_frame.h"
#include "emu/syscalls/syscalls.h"

namespace emu {

namespace {
// Translated code per engine (Unicorn flushes and retranslates when it fills up).
constexpr size_t kCodeBufferBytes = size_t{64} << 20;
constexpr uint64_t kCr4Osfxsr = 1u << 9;
constexpr uint64_t kCr4Osxmmexcpt = 1u << 10;
// uc_emu_start's `until`: an address no guest instruction can have.
constexpr uint64_t kNoStopAddress = ~uint64_t{0};
}  // namespace

Vcpu::Vcpu(GuestProcess& process, mmu::VcpuId slot, int tid)
    : process_(process), slot_(slot), tid_(tid), wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

Vcpu::~Vcpu() {
  if (uc_) uc_close(uc_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void Vcpu::wake() {
  if (wake_fd_ >= 0) (void)::eventfd_write(wake_fd_, 1);
}

void Vcpu::drain_wake_fd() {
  eventfd_t value;
  if (wake_fd_ >= 0) (void)::eventfd_read(wake_fd_, &value);
}

GuestArch Vcpu::arch() const { return process_.arch(); }

uint64_t Vcpu::reg(int id) const {
  uint64_t value = 0;
  uc_reg_read(uc_, id, &value);
  return arch() == GuestArch::I386 ? value & 0xffffffffu : value;
}

void Vcpu::set_reg(int id, uint64_t value) { uc_reg_write(uc_, id, &value); }

bool Vcpu::open_engine(std::string* error) {
  const bool i386 = arch() == GuestArch::I386;
  uc_err err = uc_open(UC_ARCH_X86, i386 ? UC_MODE_32 : UC_MODE_64, &uc_);
  // Unicorn's default code buffer is 1 GiB per engine, and flushing translated blocks (done
  // when the block hook is added) touched all of it: 2 GiB resident for a two-thread guest.
  if (err == UC_ERR_OK) err = uc_ctl_set_tcg_buffer_size(uc_, kCodeBufferBytes);
  if (err == UC_ERR_OK) err = uc_ctl_tlb_mode(uc_, UC_TLB_VIRTUAL);
  // Guest-physical memory: the whole frame pool at physical 0, shared by every engine.
  if (err == UC_ERR_OK)
    err = uc_mem_map_ptr(uc_, 0, process_.pool().bytes(), UC_PROT_ALL, process_.pool().host_base());
  if (err == UC_ERR_OK) {
    // What Linux sets in CR4 for user code: OSFXSR (fxsave/fxrstor include the XMM
    // registers: glibc's lazy-binding trampoline saves the float arguments with them, and
    // without it math.log(10) got a clobbered argument) and OSXMMEXCPT (SSE exceptions as
    // SIGFPE). Unicorn's reset sets them only for CPU models with XSAVE, which its default
    // model lacks.
    uint64_t cr4 = 0;
    err = uc_reg_read(uc_, UC_X86_REG_CR4, &cr4);
    cr4 |= kCr4Osfxsr | kCr4Osxmmexcpt;
    if (err == UC_ERR_OK) err = uc_reg_write(uc_, UC_X86_REG_CR4, &cr4);
  }
  uc_hook h;
  if (err == UC_ERR_OK)
    err = uc_hook_add(uc_, &h, UC_HOOK_TLB_FILL, reinterpret_cast<void*>(&Vcpu::on_tlb_fill), this, 1, 0);
  // Counted first, then the question asked: a reclaimer that saw no hookless vCPU after
  // memory ran short is sure this one sees the shortage (GuestProcess::count_hookless_vcpu).
  process_.count_hookless_vcpu(+1);
  hookless_counted_ = true;
  if (err == UC_ERR_OK && process_.needs_block_hook()) err = install_block_hook(/*fresh=*/true) ? UC_ERR_OK : UC_ERR_HOOK;
  if (err == UC_ERR_OK)
    err = uc_hook_add(uc_, &h, UC_HOOK_INTR, reinterpret_cast<void*>(&Vcpu::on_interrupt), this, 1, 0);
  if (err == UC_ERR_OK)
    err = uc_hook_add(uc_, &h, UC_HOOK_INSN_INVALID, reinterpret_cast<void*>(&Vcpu::on_invalid_instruction), this, 1, 0);
  if (err == UC_ERR_OK && !i386)
    err = uc_hook_add(uc_, &h, UC_HOOK_INSN, reinterpret_cast<void*>(&Vcpu::on_syscall), this, 1, 0, UC_X86_INS_SYSCALL);
  if (err == UC_ERR_OK && i386) {
    uc_x86_mmr gdtr{};
    gdtr.base = kI386GdtAddress;
    gdtr.limit = mmu::kPageSize - 1;
    err = uc_reg_write(uc_, UC_X86_REG_GDTR, &gdtr);
    // Load SS from the GDT: Unicorn's initial SS has no 32-bit flag in its descriptor cache,
    // and the first segment load (the guest's GS for TLS) recomputes the stack size from it,
    // turning the stack 16-bit. A real flat 32-bit descriptor keeps it 32-bit.
    uint64_t ss = kI386KernelDataSelector;
    if (err == UC_ERR_OK) err = uc_reg_write(uc_, UC_X86_REG_SS, &ss);
  }
  if (err != UC_ERR_OK) {
    *error = std::string("unicorn: ") + uc_strerror(err);
    return false;
  }
  return true;
}

bool Vcpu::install_block_hook(bool fresh) {
  uc_hook h;
  if (uc_hook_add(uc_, &h, UC_HOOK_BLOCK, reinterpret_cast<void*>(&Vcpu::on_block), this, 1, 0) != UC_ERR_OK)
    return false;
  // Blocks translated before carry no call to the hook: translate them again.
  if (!fresh) drop_translations();
  block_hook_installed_ = true;
  stop_counting_hookless();
  return true;
}

bool Vcpu::block_hook_due() const {
  return !block_hook_installed_ && (!hookless_counted_ || process_.needs_block_hook());
}

void Vcpu::stop_counting_hookless() {
  if (!hookless_counted_) return;
  hookless_counted_ = false;
  process_.count_hookless_vcpu(-1);
}

// Only mapped executable pages can hold translated blocks, so those are dropped page by page.
// A whole-cache flush would do the same, but Unicorn 2.1.1 zeroes its entire code buffer on
// every flush: measured, 0.2 s of python3.11's 1.1 s start (the memset and the host's
// clearing of the pages it touched), paid when the program sets its first signal handler.
void Vcpu::drop_translations() {
  mmu::AddressSpace& space = process_.space();
  for (const mmu::Vma& vma : space.vmas(slot_)) {
    if (!(vma.prot & mmu::kProtExec)) continue;
    for (uint64_t page = vma.start; page < vma.end; page += mmu::kPageSize)
      if (space.peek(slot_, page)) uc_ctl_remove_cache(uc_, page, page + mmu::kPageSize);
  }
}

bool Vcpu::start_engine(const VcpuStart& start) {
  std::string error;
  if (uc_) {
    uc_close(uc_);
    uc_ = nullptr;
  }
  stop_counting_hookless();  // open_engine counts the new engine
  block_hook_installed_ = false;
  detector_ = std::make_unique<AtomicBlockDetector>(arch());
  sites_.clear();  // the hooks went with the old engine
  site_nodes_.clear();
  clear_atomic_tlb();
  redirect_pending_ = false;
  mode64_ = arch() == GuestArch::X86_64;
  counter_slot_ = &process_.counters().slot(slot_);
  if (!open_engine(&error)) {
    process_.kill_by_signal(SIGKILL, error);
    return false;
  }
  start.regs.restore(uc_, arch());
  if (start.i386_tls_descriptor) {
    tls_descriptor = start.i386_tls_descriptor;
    tls_entry = start.i386_tls_entry;
    process_.with_gdt_entry(slot_, start.i386_tls_entry, *start.i386_tls_descriptor, [&] {
      uint64_t gs = start.regs.gs;
      uc_reg_write(uc_, UC_X86_REG_GS, &gs);  // loads this thread's descriptor into GS
    });
  } else if (arch() == GuestArch::I386 && start.regs.gs) {
    uint64_t gs = start.regs.gs;
    uc_reg_write(uc_, UC_X86_REG_GS, &gs);
  }
  return true;
}

void Vcpu::run(const VcpuStart& start) {
  host_tid_.store(static_cast<int>(::gettid()), std::memory_order_release);
  int exit_code = 0;
  signals_.mask.store(start.signal_mask & ~kUnblockable, std::memory_order_release);
  signals_.altstack = start.altstack;
  if (!start_engine(start)) {
    stop_counting_hookless();
    process_.thread_finished(*this, 128 + SIGKILL);
    return;
  }
  while (!stop_) {
    // Added here, before any guest code runs: whatever stopped the engine (a syscall that
    // made the process multi-vCPU, a handler, memory running short) and whatever path led
    // back to this loop.
    if (block_hook_due() && !install_block_hook(/*fresh=*/false)) {
      process_.kill_by_signal(SIGKILL, "unicorn: cannot add the block hook");
      break;
    }
    if (signal_work()) {
      take_signals();
      if (stop_) break;
    }
    enter_guest();
    if (stop_) break;
    if (process_.signals().deliverable(signals_)) {  // arrived since: take it first
      leave_guest();
      continue;
    }
    const uint64_t pc = reg(arch() == GuestArch::I386 ? UC_X86_REG_EIP : UC_X86_REG_RIP);
    in_emulation_ = true;
    const uc_err err = uc_emu_start(uc_, pc, kNoStopAddress, 0, 0);
    in_emulation_ = false;
    end_redirect();  // a fault on the scratch copy: the register goes back before anyone reads it
    // Stopped on our own request, Unicorn still fetches at the `until` address (the fill
    // refuses it) and reports UC_ERR_EXCEPTION; the guest is fine and resumes where it was.
    const bool we_stopped = stopping_;
    stopping_ = false;
    end_exclusive();
    leave_guest();
    if (stop_) break;
    if (exec_start_) {
      // execve: a new image, maybe of the other architecture, in a new address space.
      const VcpuStart next = *exec_start_;
      exec_start_.reset();
      if (!start_engine(next)) break;
      continue;
    }
    // A fault or CPU exception: the guest's handler for it runs at the faulting instruction
    // (the engine stopped precisely there), else the process dies with one line on stderr.
    if (fault_) {
      // No frame while this vCPU ran without the block hook: the reclaimer had to pass its
      // space over (a shootdown could not have reached it). With the hook added the same
      // instruction faults again, and this time the space's pages can go.
      if (fault_->outcome == mmu::FaultOutcome::OutOfMemory && !block_hook_installed_ &&
          process_.machine().reclaim_reaches_vcpus()) {
        counter_slot_->add(EmuCounter::HookedForReclaim);
        fault_.reset();
        continue;
      }
      // No frame because a swap write failed (the reclaimer stopped, and is ending every
      // process with SIGBUS): this fault ends the same way, for the same reason, not as an
      // out-of-memory kill that a race with that ending would otherwise report.
      const bool swap_failed = fault_->outcome == mmu::FaultOutcome::OutOfMemory && process_.machine().reclaimer() &&
                               process_.machine().reclaimer()->failed();
      if (swap_failed) fault_->outcome = mmu::FaultOutcome::SigBus;
      const int sig = fault_signal(fault_->outcome);
      const int32_t code = fault_->outcome == mmu::FaultOutcome::SegvAccessError ? kSegvAccErr
                           : fault_->outcome == mmu::FaultOutcome::SigBus        ? kBusAdrErr
                                                                                 : kSegvMapErr;
      if (sig != SIGKILL && !swap_failed && raise_for_handler(sig, code, exact_fault_address(*this, fault_->address))) {
        fault_.reset();
        continue;
      }
      process_.kill_by_signal(sig, describe_fault(*this, *fault_));
      break;
    }
    if (err == UC_ERR_INSN_INVALID && !pending_signal_) pending_signal_ = SIGILL;
    if (pending_signal_) {
      const int sig = pending_signal_;
      const int32_t code = sig == SIGILL ? kIllIllOpn : sig == SIGFPE ? kFpeIntDiv : sig == SIGTRAP ? kTrapBrkpt : kSiKernel;
      if (raise_for_handler(sig, code, reg(arch() == GuestArch::I386 ? UC_X86_REG_EIP : UC_X86_REG_RIP))) {
        pending_signal_ = 0;
        continue;
      }
      process_.kill_by_signal(sig, describe_signal(*this, sig));
      break;
    }
    if (err != UC_ERR_OK && !we_stopped) {
      process_.kill_by_signal(SIGSEGV, std::string("unicorn stopped: ") + uc_strerror(err) + " (" +
                                           describe_signal(*this, SIGSEGV) + ")");
      break;
    }
    // Stopped by a mailbox request or to add the block hook (at the top): go on.
  }
  stop_counting_hookless();
  leave_guest();
  if (thread_exit_) exit_code = exit_code_;
  process_.thread_finished(*this, exit_code);
}

void Vcpu::enter_guest() {
  where_.store(VcpuWhere::Running, std::memory_order_seq_cst);
  if (attention_.load(std::memory_order_seq_cst) != 0 || process_.gate().owned_by_other(*this)) serve_attention();
}

void Vcpu::leave_guest() { where_.store(VcpuWhere::Outside, std::memory_order_seq_cst); }

void Vcpu::request_flush(uint64_t generation) {
  uint64_t current = flush_requested_.load(std::memory_order_relaxed);
  while (current < generation && !flush_requested_.compare_exchange_weak(current, generation)) {
  }
  post(kAttnFlushTlb);
}

void Vcpu::serve_flushes() {
  if (!(attention_.load(std::memory_order_acquire) & kAttnFlushTlb)) return;
  attention_.fetch_and(~uint32_t{kAttnFlushTlb}, std::memory_order_acq_rel);
  const uint64_t generation = flush_requested_.load(std::memory_order_acquire);
  if (uc_) uc_ctl_flush_tlb(uc_);
  clear_atomic_tlb();
  flush_done_.store(generation, std::memory_order_release);
  process_.counters().slot(slot_).add(EmuCounter::TlbFlushesServed);
}

bool Vcpu::serve_attention() {
  serve_flushes();
  const uint32_t bits = attention_.fetch_and(kAttnFlushTlb, std::memory_order_acq_rel) & ~uint32_t{kAttnFlushTlb};
  if (bits & kAttnFlushCode) {
    if (in_emulation_) {
      // Never from inside a hook: the block being run lives in the code buffer a flush
      // resets (measured: the vCPU went on into zeroed code). Stop, and flush in between.
      post(kAttnFlushCode);
      stopping_ = true;
      stop_engine();
    } else {
      drop_atomic_sites();
      if (uc_) uc_ctl_flush_tb(uc_);
      detector_->invalidate();
      process_.counters().slot(slot_).add(EmuCounter::CodeFlushesServed);
    }
  }
  if ((bits & kAttnStop) || process_.exiting()) {
    stop_ = true;
    stop_engine();
    return true;
  }
  // A signal: handlers run from between engine runs (a frame is built from every register).
  if ((bits & kAttnSignal) && in_emulation_ && process_.signals().deliverable(signals_)) {
    stopping_ = true;
    stop_engine();
  }
  // Exclusive requests need no bit to be served: the gate's owner is what matters.
  const uint64_t parked = process_.gate().park_while_owned(*this);
  if (parked) process_.counters().slot(slot_).add(EmuCounter::ParkedNs, parked);
  serve_flushes();
  if (process_.exiting()) {
    stop_ = true;
    stop_engine();
    return true;
  }
  return false;
}

void Vcpu::end_exclusive() {
  if (!exclusive_owner_) return;
  process_.gate().end(*this);
  exclusive_owner_ = false;
}

bool Vcpu::on_tlb_fill(uc_engine*, uint64_t vaddr, uc_mem_type type, uc_tlb_entry* e, void* user) {
  auto* self = static_cast<Vcpu*>(user);
  const mmu::Access access = type == UC_MEM_WRITE ? mmu::Access::Write
                             : type == UC_MEM_FETCH ? mmu::Access::Fetch
                                                    : mmu::Access::Read;
  if (self->arch() == GuestArch::I386) vaddr &= 0xffffffffu;
  // Once the engine is stopping (a fault, a CPU exception, uc_emu_stop) Unicorn may probe
  // once more (a fetch at -4096 was seen): refuse it without replacing the first cause.
  if (self->fault_ || self->pending_signal_ || self->stop_ || self->stopping_) return false;
  if (vaddr >= self->process_.space().virt_limit()) {
    self->fault_ = GuestFault{vaddr, access, mmu::FaultOutcome::SegvMapError};
    return false;
  }
  Tracer* tracer = self->process_.tracer();
  const mmu::Translation t =
      tracer && (tracer->on(TraceEvent::Faults) || tracer->on(TraceEvent::Locks)) && tracer->wants_vcpu(self->slot_) &&
              tracer->wants_address(vaddr)
          ? traced_translate(*self, *tracer, vaddr, access)
          : self->process_.space().translate(self->slot_, vaddr, access);
  if (!t.ok()) {
    self->fault_ = GuestFault{vaddr, access, t.outcome};
    return false;
  }
  e->paddr = t.page;
  // mmu Perm bits are Unicorn's UC_PROT bits (read 1, write 2, exec 4).
  e->perms = static_cast<uc_prot>(t.perms);
  return true;
}

// Runs before every translated block while the hook is installed (a process with signal
// handlers, several vCPUs or a reclaimer): the common case, nothing to do, must stay a few
// instructions (measured: with the slow path inlined, its prologue alone took 18% of a
// python3.11 loop).
void Vcpu::on_block(uc_engine*, uint64_t address, uint32_t size, void* user) {
  auto* self = static_cast<Vcpu*>(user);
  if (!self->exclusive_owner_ && !self->redirect_pending_ && self->attention_.load(std::memory_order_relaxed) == 0 &&
      !self->process_.atomics_needed())
    return;
  self->on_block_slow(address, size);
}

void Vcpu::on_block_slow(uint64_t address, uint32_t size) {
  end_redirect();
  end_exclusive();
  in_block_hook_ = true;
  block_pc_ = address;
  const bool stop = attention_.load(std::memory_order_relaxed) != 0 && serve_attention();
  in_block_hook_ = false;
  if (stop || stopping_) return;
  if (!process_.atomics_needed() || size == 0) return;  // a lone vCPU pays nothing for atomics
  switch (block_atomics(address, size)) {
    case BlockAtomics::None: break;
    case BlockAtomics::Gate: begin_exclusive(address, size, "block"); break;
    case BlockAtomics::Restart:
      in_block_hook_ = true;
      stopping_ = true;
      stop_engine();
      in_block_hook_ = false;
      break;
  }
}

void Vcpu::do_syscall() {
  end_exclusive();
  leave_guest();
  // Memory ran short while this vCPU ran without the hook: it adds the hook before it runs
  // guest code again (the engine stops at the end of this syscall), so from now on it counts
  // as reachable, and this syscall's own waits for memory can see its space's pages reclaimed.
  if (!block_hook_installed_ && hookless_counted_ && process_.needs_block_hook()) {
    if (process_.machine().reclaim_reaches_vcpus() && !process_.machine().swap())
      counter_slot_->add(EmuCounter::HookedForReclaim);
    stop_counting_hookless();
  }
  process_.counters().slot(slot_).add(EmuCounter::Syscalls);
  const SyscallOutcome outcome = handle_syscall(*this);
  if (stop_ || thread_exit_) {
    stop_ = true;
    uc_emu_stop(uc_);
    return;
  }
  if (is_restart_code(outcome.result)) restart_ = InterruptedSyscall{outcome.nr, outcome.result};
  // execve, sigreturn, a signal to take: all are done between engine runs (in this hook the
  // x86_64 RIP has not yet moved past `syscall`).
  if (exec_start_ || signal_work()) {
    stopping_ = true;
    uc_emu_stop(uc_);
    return;
  }
  // The first clone makes this process multi-vCPU: this vCPU needs the block hook (the sync
  // point for mailboxes and exclusive blocks), added between uc_emu_start calls.
  if (block_hook_due()) {
    stopping_ = true;
    uc_emu_stop(uc_);
  }
  enter_guest();
}

void Vcpu::on_syscall(uc_engine*, void* user) { static_cast<Vcpu*>(user)->do_syscall(); }

bool Vcpu::on_invalid_instruction(uc_engine*, void* user) {
  static_cast<Vcpu*>(user)->pending_signal_ = SIGILL;
  return false;  // not handled: the engine stops
}

void Vcpu::on_interrupt(uc_engine* uc, uint32_t intno, void* user) {
  auto* self = static_cast<Vcpu*>(user);
  if (intno == 0x80 && self->arch() == GuestArch::I386) {
    self->do_syscall();
    return;
  }
  // A CPU exception: Linux would deliver a signal; emu makes it fatal.
  switch (intno) {
    case 0: self->pending_signal_ = SIGFPE; break;   // #DE
    case 1: case 3: self->pending_signal_ = SIGTRAP; break;
    case 6: self->pending_signal_ = SIGILL; break;   // #UD
    case 16: case 19: self->pending_signal_ = SIGFPE; break;
    case 17: self->pending_signal_ = SIGBUS; break;  // #AC
    default: self->pending_signal_ = SIGSEGV; break; // #GP, #PF, #SS, ...
  }
  uc_emu_stop(uc);
}

bool Vcpu::raise_for_handler(int sig, int32_t code, uint64_t addr) {
  // Linux's force_sig: blocked or without a handler, the default action (death) is taken.
  const SigAction action = process_.signals().action(sig);
  if (!action.is_handler() || (signals_.mask.load(std::memory_order_acquire) & signal_bit(sig))) return false;
  SigInfo info;
  info.signo = sig;
  info.code = code;
  info.has_addr = true;
  info.addr = addr;
  process_.signals().queue(&signals_, sig, info);
  return true;
}

bool Vcpu::signal_work() const {
  return load_regs_ || restart_ || signals_.saved_mask || process_.signals().deliverable(signals_);
}

void Vcpu::take_signals() {
  const bool i386 = arch() == GuestArch::I386;
  CpuRegisters regs;
  regs.save(uc_, arch());
  bool changed = false;
  if (load_regs_) {
    regs = *load_regs_;
    load_regs_.reset();
    changed = true;
  }
  drain_wake_fd();
  ProcessSignals& signals = process_.signals();
  const std::optional<Dequeued> taken = signals.dequeue(signals_);
  const bool handler = taken && !taken->fatal();
  if (restart_) {
    // Linux's rules: EINTR when a handler runs, unless the call may go on (SA_RESTART, or a
    // call that always restarts); without a handler the call simply runs again.
    const int64_t r = restart_->result;
    const bool again = !handler || r == -kErestartNoIntr || (r == -kErestartSys && (taken->action.flags & kSaRestart));
    if (again) {
      regs.general[16] -= 2;  // `syscall` and `int 0x80` are both two bytes
      regs.general[0] = restart_->nr;
      process_.counters().slot(slot_).add(EmuCounter::SyscallsRestarted);
    } else {
      regs.general[0] = i386 ? uint64_t{static_cast<uint32_t>(-EINTR)} : static_cast<uint64_t>(-EINTR);
    }
    restart_.reset();
    changed = true;
  }
  if (taken && taken->fatal()) {
    process_.kill_by_signal(taken->signo, "");
    stop_ = true;
    return;
  }
  const uint64_t mask = signals_.mask.load(std::memory_order_acquire);
  if (handler) {
    SignalDelivery d;
    d.signo = taken->signo;
    d.info = taken->info;
    d.action = taken->action;
    d.saved_mask = signals_.saved_mask.value_or(mask);  // sigsuspend's caller gets its own mask back
    d.altstack = signals_.altstack;
    signals_.saved_mask.reset();
    if (!push_signal_frame(process_.memory(), slot_, arch(), d, regs)) {
      process_.kill_by_signal(SIGSEGV, fmt::format("cannot build the frame for signal {} on the guest stack (sp {:#x})",
                                                   taken->signo, regs.general[7]));
      stop_ = true;
      return;
    }
    // The handler runs with its sa_mask, and its own signal blocked unless SA_NODEFER.
    uint64_t blocked = mask | taken->action.mask;
    if (!(taken->action.flags & kSaNoDefer)) blocked |= signal_bit(taken->signo);
    signals.set_mask(signals_, blocked);
    if (blocked & ~mask) process_.retarget_shared_signals(*this);
    process_.counters().slot(slot_).add(EmuCounter::SignalsDelivered);
    changed = true;
  } else if (signals_.saved_mask) {
    signals.set_mask(signals_, *signals_.saved_mask);
    signals_.saved_mask.reset();
  }
  if (changed) regs.restore(uc_, arch());
}

}  // namespace emu
