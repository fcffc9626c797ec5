// One guest process: its address space over the frame pool, its threads (each a Vcpu in its
// own host thread), and what they share: futexes, signal dispositions, the i386 GDT, the
// exclusive gate for atomics, the exit status. It is also the TlbShootdown the MMU calls:
// flush requests go to every vCPU's mailbox and are acknowledged at their sync points.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "emu/loader/initial_stack.h"
#include "emu/loader/program.h"
#include "emu/observe/emu_counters.h"
#include "emu/cpu/exclusive_gate.h"
#include "emu/process/fd_table.h"
#include "emu/process/guest_timers.h"
#include "emu/process/futex_table.h"
#include "emu/signals/guest_signals.h"
#include "emu/observe/tracer.h"
#include "emu/process/guest_memory.h"
#include "emu/process/process_controls.h"
#include "emu/process/process_usage.h"
#include "emu/cpu/vcpu.h"
#include "mmu/address_space.h"
#include "mmu/frame_pool.h"
#include "mmu/reclaimer.h"
#include "mmu/swap_device.h"
#include "mmu/tlb_shootdown.h"

namespace emu {

struct EmulatorConfig {
  mmu::SchemeKind scheme = mmu::SchemeKind::Split;
  std::optional<mmu::PagingMode> paging;  // nullopt: i386 2-level for 32-bit, 4-level for 64-bit
  mmu::RssMode rss = mmu::RssMode::PerVcpu;
  uint64_t mem_bytes = uint64_t{1} << 30;
  uint32_t max_vcpus = 64;
  // Guest processes alive or waiting to be reaped (--max-processes): a fork beyond is EAGAIN,
  // like Linux's RLIMIT_NPROC, so a fork bomb cannot take the host's memory.
  uint32_t max_processes = 256;
  // fork: page tables shared with the child until first changed (--pt-share on), or copied.
  mmu::ForkTables fork_tables = mmu::ForkTables::Share;
  // Swap for the reclaimer; 0: none (a guest that outgrows mem_bytes is killed).
  uint64_t swap_bytes = 0;
  // Where the swap goes: a file or a directory; empty: a temporary file under $TMPDIR.
  std::string swap_file;
  // --inject-swap-errors: the swap's writes (reads) after the first `skip` fail, `count` of
  // them, as a failing disk's would (soak tests and the study of the error paths).
  struct SwapErrors {
    uint64_t skip = 0, count = 0;
  };
  SwapErrors swap_write_errors, swap_read_errors;
  // --trace: no events bit set means no tracer at all.
  TraceConfig trace;
  // -L / EMU_LD_PREFIX: the root the guest's absolute paths are looked up in first.
  Sysroot sysroot;
  // PIE executables at a random offset from ELF_ET_DYN_BASE (--no-aslr / EMU_NO_ASLR=1: not).
  bool aslr = true;
  // Private file mappings (ELF segments, ld.so's libraries, mmap MAP_PRIVATE) map the file's
  // page-cache pages until written (--file-pages shared), or copy every page (private).
  bool shared_file_pages = true;
  // What exec passes on (Linux: the mask and the ignored signals survive execve): the first
  // guest process starts with the mask and SIG_IGN dispositions emu itself was started with.
  uint64_t inherited_signal_mask = 0;
  uint64_t inherited_ignored_signals = 0;
};

// Where the i386 GDT lives in the guest's address space (the last page of the 32-bit space),
// and the TLS entries set_thread_area hands out (Linux: GDT_ENTRY_TLS_MIN..MAX).
inline constexpr uint64_t kI386GdtAddress = 0xfffff000;
inline constexpr uint32_t kI386TlsFirstEntry = 6;
inline constexpr uint32_t kI386TlsEntries = 3;
// Flat 4 GiB segments written into the GDT at start (Unicorn runs guest code at CPL 0, so the
// stack segment must be a DPL 0 one); user code/data sit where Linux has them (0x23, 0x2b).
inline constexpr uint64_t kI386KernelDataSelector = 0x10;
inline constexpr std::array<std::pair<uint32_t, std::array<uint32_t, 2>>, 4> kI386FlatSegments = {{
    {1, {0x0000ffff, 0x00cf9b00}},  // kernel code
    {2, {0x0000ffff, 0x00cf9300}},  // kernel data (SS)
    {4, {0x0000ffff, 0x00cffb00}},  // user code
    {5, {0x0000ffff, 0x00cff300}},  // user data
}};

class Machine;

// How a process ended, as wait4 reports it.
struct ExitInfo {
  int code = 0;    // exit status (when signal == 0)
  int signal = 0;  // the signal that killed it, or 0
  // The status word of wait4 (WEXITSTATUS / WTERMSIG), and what a shell shows: 128+signal.
  int wait_status() const { return signal ? signal : (code & 0xff) << 8; }
  int shell_status() const { return signal ? 128 + signal : code & 0xff; }
};

// What SIGCHLD and waitid say of child `pid` that ended as `how`.
SigInfo child_siginfo(int pid, const ExitInfo& how);

class GuestProcess final : public mmu::TlbShootdown,
                           public HostAccessTracker,
                           public std::enable_shared_from_this<GuestProcess> {
 public:
  // A process with an empty address space for `arch` (the loader fills it).
  static std::shared_ptr<GuestProcess> create(Machine& machine, GuestArch arch, int pid, std::string* error);
  ~GuestProcess() override;

  // Loads `program` into the (empty) address space and starts the first thread on slot
  // `slot`. False and *error when the program cannot be loaded.
  bool start(const Program& program, const std::vector<std::string>& envp, mmu::VcpuId slot, std::string* error);

  Machine& machine() { return machine_; }
  GuestArch arch() const { return arch_; }
  // The process's memory: its own space, or its vfork parent's while it borrows that.
  mmu::AddressSpace& space() { return borrowed_ ? *borrowed_ : *space_; }
  bool has_space() const { return space_ != nullptr || borrowed_ != nullptr; }
  mmu::FramePool& pool();
  GuestMemory& memory() { return memory_; }
  FutexTable& futexes() { return futexes_; }
  ExclusiveGate& gate() { return gate_; }
  EmuCounters& counters();
  const EmulatorConfig& config() const;
  int pid() const { return pid_; }
  // The parent's pid; once the parent ended, the reaper's (a subreaper, else 1), as on Linux.
  int ppid() const { return ppid_.load(std::memory_order_acquire); }
  // Process group and session, in guest pids (setpgid, setsid). The first process is in
  // emu's own; a child starts in its parent's.
  int pgid() const { return pgid_.load(std::memory_order_acquire); }
  int sid() const { return sid_.load(std::memory_order_acquire); }
  void set_pgid(int pgid) { pgid_.store(pgid, std::memory_order_release); }
  void set_sid(int sid) { sid_.store(sid, std::memory_order_release); }
  // Has called execve since fork (a parent's setpgid on it then answers EACCES).
  bool execed() const { return execed_.load(std::memory_order_acquire); }
  // The guest program's absolute path (what /proc/self/exe names for the guest).
  const std::string& exe_path() const { return exe_path_; }
  // The same program's file on the host (sysroot included): what /proc/self/exe opens.
  const std::string& exe_host_path() const { return exe_host_path_; }
  // The arguments and auxiliary vector the program started with (/proc/self/cmdline, auxv).
  const std::vector<std::string>& argv() const { return argv_; }
  // The program and its arguments, copied under a lock: for another process's /proc/PID
  // (this process's execve may replace them meanwhile).
  struct Identity {
    std::string exe;
    std::vector<std::string> argv;
  };
  Identity identity() const;
  const Auxv& auxv() const { return auxv_; }
  // The guest's file descriptors and current directory (not emu's: see fd_table.h).
  FdTable& files() { return *files_; }

  // Threads.
  bool multi_vcpu() const { return live_vcpus_.load(std::memory_order_relaxed) > 1; }
  // The process has mapped shared memory (MAP_SHARED), or inherited such a mapping: another
  // process may change that memory while this one's only vCPU runs.
  bool shares_memory() const { return shares_memory_.load(std::memory_order_relaxed); }
  void note_shared_memory() { shares_memory_.store(true, std::memory_order_relaxed); }
  // What prctl sets (the parent-death signal, no_new_privs, thread names, ...).
  ProcessControls& controls() { return controls_; }
  const ProcessControls& controls() const { return controls_; }
  // Guest atomics must be real atomics: another vCPU, of this process or of another process
  // sharing memory with it, may touch the same word at the same time.
  bool atomics_needed() const { return multi_vcpu() || shares_memory(); }
  // vCPUs need the block hook (their sync point) when another vCPU or the reclaimer may ask
  // them to flush while they run guest code.
  bool needs_block_hook() const;
  // A vCPU of this process opened an engine without the block hook (+1), or added the hook to
  // it or closed it (-1). Counted before the vCPU reads needs_block_hook(): a reclaimer that
  // found the count at 0 after memory ran short knows that any vCPU it missed saw the
  // shortage and runs with the hook.
  void count_hookless_vcpu(int delta) { hookless_vcpus_.fetch_add(delta, std::memory_order_seq_cst); }
  mmu::SwapDevice* swap() const;
  // Null unless --trace was given (and always null with tracing compiled out).
  Tracer* tracer() const;
  const mmu::Reclaimer* reclaimer() const;
  // 0 or -errno; the new thread's tid in *tid. `before_start(tid)` runs before the thread
  // does (the parent stores the tid where clone was asked to).
  int spawn_thread(const VcpuStart& start, uint64_t clear_child_tid, int* tid,
                   const std::function<void(int)>& before_start);
  void for_each_other_vcpu(const Vcpu& self, const std::function<void(Vcpu&)>& fn);
  // The live thread `tid`, or null.
  std::shared_ptr<Vcpu> find_thread(int tid);
  // CPU time the process's threads have used, in ns: user time only (ITIMER_VIRTUAL's
  // clock) or user and system (ITIMER_PROF's). The live threads' from their host threads'
  // clocks, the ended ones' as they left it.
  int64_t cpu_time_ns(bool user_only);
  // setitimer's and timer_create's timers (guest_timers.h).
  ProcessTimers& timers() { return timers_; }
  // Called by a vCPU's thread as it ends (after its clear_child_tid handling).
  void thread_finished(Vcpu& vcpu, int exit_code);

  // Processes. fork/vfork/clone without CLONE_VM: a child with a copy-on-write copy of this
  // address space (page tables shared or copied, --pt-share), the same open files, the
  // same signal dispositions, one thread starting from `start`. The child's pid, or -errno.
  // `before_start(child)` runs before the child does (CLONE_CHILD_SETTID and the like).
  // With `vfork` the caller waits until the child has called execve or ended.
  // With `share_vm` too (vfork, posix_spawn's CLONE_VM | CLONE_VFORK) the child runs in this
  // process's address space, as on Linux, until it calls execve or ends: what it writes
  // (posix_spawn's error code, say) the parent sees.
  int fork(Vcpu& parent, const VcpuStart& start, bool vfork,
           const std::function<void(GuestProcess& child, int pid)>& before_start, bool share_vm = false);
  // execve from `vcpu`, the process's only thread: a fresh address space with `image`
  // (either architecture), close-on-exec files closed, handled signals back to default.
  // On success the vCPU resumes at *start (its engine reopened for the new arch); 0 or
  // -errno, the old image intact on failure.
  int exec(Vcpu& vcpu, const Program& program,
           const std::vector<std::string>& envp, VcpuStart* start);
  // wait4/waitid: a child matching `pid` (-1: any, 0: of this process group, < -1: of group
  // -pid) that has ended, reaped unless
  // `keep`. Its pid and how it ended; 0 when none has ended and `block` is false; -ECHILD
  // when there is no such child; -EINTR when this process is ending meanwhile.
  // -ERESTARTSYS when a signal for `waiter` interrupts the wait.
  // `usage`, when given, gets what the child used, its reaped children included (wait4's
  // rusage).
  int wait_child(int pid, bool block, bool keep, ExitInfo* info, Vcpu* waiter = nullptr,
                 ResourceUsage* usage = nullptr);
  // Sends `sig` to the process (`thread` null: whichever thread does not block it, the main
  // one first) or to one of its threads, as Linux generates signals: SIGKILL and unblocked
  // fatal defaults end the process now, ignored ones are dropped, the rest are queued and
  // the chosen thread is woken from any interruptible wait (it takes the signal on its own
  // thread, between engine runs). Signal 0 does nothing. *queue_full is set when a
  // real-time signal finds the queue full (sigqueue's EAGAIN).
  void send_signal(int sig, const SigInfo& info, Vcpu* thread = nullptr, bool* queue_full = nullptr);
  // send_signal in two steps, for a sender that must queue under a lock of its own (the
  // process tree, for SIGCHLD) and wake outside it: true when queued, and then
  // wake_taker(sig, thread) must follow. May not be called under the tree lock for signals
  // whose default is fatal (it may end the process).
  bool generate_signal(int sig, const SigInfo& info, Vcpu* thread, bool* queue_full = nullptr);
  void wake_taker(int sig, Vcpu* thread);
  ProcessSignals& signals() { return signals_; }
  // CPU time and peak size, for getrusage and times (process_usage.h).
  ProcessUsage& usage() { return usage_; }
  // setrlimit's values, per resource (RLIMIT_*, 0..15): nullopt until the guest sets one (it
  // sees the host's until then). Inherited by fork, kept across execve. RLIMIT_NOFILE's
  // soft limit is also the fd table's.
  struct Limit {
    uint64_t cur = 0, max = 0;
  };
  static constexpr int kLimits = 16;
  std::optional<Limit> limit(int resource) const;
  void set_limit(int resource, const Limit& l);
  // personality(2)'s persona: inherited by fork, kept across execve.
  std::atomic<uint32_t>& persona() { return persona_; }
  // membarrier(2)'s registrations (MEMBARRIER_CMD_REGISTER_* bits): a property of the
  // address space, so a fork child and a new image start with none.
  std::atomic<uint32_t>& membarrier_registrations() { return membarrier_registrations_; }
  // `from` has just blocked signals (or is ending): process-wide ones pending that it will not
  // take go to another thread that can, which is woken (Linux: retarget_shared_pending).
  void retarget_shared_signals(const Vcpu& from);
  bool ended() const { return ended_.load(std::memory_order_acquire); }
  // What the last address space was like when it went (for --stats after the end).
  struct SpaceSummary {
    mmu::PagingMode paging = mmu::PagingMode::X86_64;
    mmu::SchemeKind scheme = mmu::SchemeKind::Split;
    mmu::RssMode rss = mmu::RssMode::PerVcpu;
    int64_t rss_pages = 0;
  };
  SpaceSummary space_summary() const { return last_space_; }
  ExitInfo exit_info() const { return exit_info_; }

  // Ending the process: exit_group, or death by a signal (with one line on stderr).
  void exit_group(int status);
  void kill_by_signal(int signal, const std::string& message);
  bool exiting() const { return exiting_.load(std::memory_order_acquire); }
  // Readable once the process is ending: host calls that may wait for another process (a
  // pipe read) poll it too, so that a kill is not held up by them.
  int ending_fd() const { return ending_fd_; }
  // Sleeps until the deadline (nullopt: none), the process exits, or (with `waiter`) a signal
  // arrives that `waiter` would take.
  enum class SleepEnd { Deadline, Exiting, Signal };
  SleepEnd sleep_until(std::optional<std::chrono::steady_clock::time_point> deadline, Vcpu* waiter = nullptr);

  // i386 TLS: writes GDT entry `entry` (under the GDT lock) and runs `load` while still
  // holding it, so the vCPU loads its own descriptor, not another thread's.
  void with_gdt_entry(mmu::VcpuId v, uint32_t entry, const std::array<uint32_t, 2>& descriptor,
                      const std::function<void()>& load);
  // Logs an unknown syscall once per number and ABI for the whole run (Machine).
  void note_unknown_syscall(uint64_t nr);

  // mmu::TlbShootdown
  void flush(const mmu::AddressSpace& space, std::span<const mmu::VirtRange> ranges, mmu::VcpuId requester) override;
  // Executable memory changed: every vCPU drops its translated blocks at its next sync point.
  void flush_code();
  void invalidate_code(const mmu::AddressSpace&) override { flush_code(); }
  // A vCPU without the block hook acknowledges a flush only at its next syscall.
  bool can_flush_now(const mmu::AddressSpace&) const override {
    return hookless_vcpus_.load(std::memory_order_seq_cst) == 0;
  }
  // HostAccessTracker
  void begin_host_access(mmu::VcpuId v) override;
  void end_host_access(mmu::VcpuId v) override;

  // The slot the reclaimer uses (one past the vCPUs').
  mmu::VcpuId reclaimer_slot() const;

 private:
  friend class Machine;
  GuestProcess(Machine& machine, GuestArch arch, int pid, int ppid, std::unique_ptr<FdTable> files);
  // A fresh, empty address space for a program of `arch`, its root taken through slot `v`.
  std::unique_ptr<mmu::AddressSpace> new_space(GuestArch arch, std::string* error, mmu::VcpuId v = 0);
  // Loads `image` into `space` (the ELF, the i386 GDT, the initial stack) through `slot`;
  // the first thread's registers in *start.
  bool load(const Program& program, const std::vector<std::string>& envp,
            mmu::VcpuId slot, mmu::AddressSpace& space, VcpuStart* start, std::string* error);
  // exit_group and death by a signal: every thread is told to stop.
  void end_all(ExitInfo info);
  void serve_flushes_while_waiting(mmu::AddressSpace& space);
  // Gives the process `space` (attached to the reclaimer, flushes routed here).
  void adopt_space(std::unique_ptr<mmu::AddressSpace> space);
  // Detaches and destroys the space through `slot` (the caller's), folding its counters in;
  // a borrowed space is given back instead. A space lent to vfork children is destroyed
  // by the last of them to give it back.
  void drop_space(mmu::VcpuId slot);
  // Lending the space to a vfork child's vCPU: its shootdowns, code flushes and host-access
  // tracking then reach that vCPU too (it is looked up by slot like this process's own).
  void lend_space_to(const std::shared_ptr<Vcpu>& vcpu);
  void take_space_back(mmu::VcpuId slot);
  void destroy_space(std::unique_ptr<mmu::AddressSpace> space, mmu::VcpuId slot);
  // Registers a vCPU for `slot`, tid `tid`, and starts its host thread.
  int start_vcpu(mmu::VcpuId slot, int tid, const VcpuStart& start, uint64_t clear_child_tid,
                 const std::function<void(int)>& before_start);
  // The last thread has gone: files closed, memory given back, parent told.
  void end(mmu::VcpuId slot);
  // The vfork parent may go on (child exec'd or ended).
  void release_vfork_parent();
  // Wakes `vcpu` for a signal: its mailbox, its wake fd, and every wait it may sleep in.
  void kick(Vcpu& vcpu);
  // The thread to take `sig` (`thread`, or any; the main one first) that does not block it.
  std::shared_ptr<Vcpu> taker_for(int sig, Vcpu* thread);

  Machine& machine_;
  GuestArch arch_;
  std::unique_ptr<mmu::AddressSpace> space_;
  // vfork: the parent's space, used until execve or the end; the parent stays alive meanwhile.
  mmu::AddressSpace* borrowed_ = nullptr;
  std::shared_ptr<GuestProcess> lender_;
  // On the parent: the vfork children's vCPUs running in its space (under vcpus_lock_).
  std::vector<std::shared_ptr<Vcpu>> borrowers_;
  // This process's space after it ended while vfork children still ran in it (vcpus_lock_).
  std::unique_ptr<mmu::AddressSpace> lent_out_;
  GuestMemory memory_;
  FutexTable futexes_;
  std::atomic<bool> shares_memory_{false};
  ExclusiveGate gate_;
  const int pid_;
  std::atomic<int> ppid_;
  std::atomic<int> pgid_;
  std::atomic<int> sid_;
  std::atomic<bool> execed_{false};
  ProcessTimers timers_;
  mutable std::mutex identity_lock_;  // writes of exe_path_ and argv_; reads by other processes
  std::string exe_path_;
  std::string exe_host_path_;
  std::vector<std::string> argv_;
  Auxv auxv_;
  std::unique_ptr<FdTable> files_;
  SpaceSummary last_space_;
  ProcessSignals signals_;
  ProcessUsage usage_;
  std::atomic<uint32_t> persona_{0};
  mutable std::mutex limits_lock_;
  std::array<std::optional<Limit>, kLimits> limits_;
  std::atomic<uint32_t> membarrier_registrations_{0};

  std::mutex vcpus_lock_;
  std::vector<std::shared_ptr<Vcpu>> vcpus_;          // live, by slot (nullptr: free)
  // The same, readable without the lock by the slot's own thread (the MMU's wait hook).
  std::unique_ptr<std::atomic<Vcpu*>[]> by_slot_;
  std::atomic<int> live_vcpus_{0};
  std::atomic<int> hookless_vcpus_{0};

  std::mutex exit_lock_;
  std::mutex fatal_lock_;  // one fatal message and status when several vCPUs die together
  std::condition_variable exit_cv_;
  std::atomic<bool> exiting_{false};
  ExitInfo exit_info_;
  int ending_fd_ = -1;  // an eventfd

  // The process tree, under machine_.tree_lock.
  std::weak_ptr<GuestProcess> parent_;
  std::vector<std::shared_ptr<GuestProcess>> children_;
  std::atomic<bool> ended_{false};
  // pidfds naming this process (Machine::watch_exit), told when it ends; under tree_lock.
  std::vector<std::weak_ptr<HostFile>> exit_watchers_;
  bool vfork_pending_ = false;

  std::mutex gdt_lock_;
  ProcessControls controls_;
};

}  // namespace emu
