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
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "emu/elf_image.h"
#include "emu/emu_counters.h"
#include "emu/exclusive_gate.h"
#include "emu/fd_table.h"
#include "emu/futex_table.h"
#include "emu/tracer.h"
#include "emu/guest_memory.h"
#include "emu/vcpu.h"
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
  // Swap for the reclaimer; 0: none (a guest that outgrows mem_bytes is killed).
  uint64_t swap_bytes = 0;
  // Where the swap goes: a file or a directory; empty: a temporary file under $TMPDIR.
  std::string swap_file;
  // --trace: no events bit set means no tracer at all.
  TraceConfig trace;
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

class GuestProcess final : public mmu::TlbShootdown, public HostAccessTracker {
 public:
  static std::unique_ptr<GuestProcess> create(const EmulatorConfig& config, GuestArch arch, std::string* error);
  ~GuestProcess() override;

  // Loads the program, starts its first thread and waits for the process to end; returns
  // the exit status a shell would see (128+signal for a fatal signal). -1 and *error when
  // the program could not be started.
  int run(const ElfImage& image, const std::vector<std::string>& argv, const std::vector<std::string>& envp,
          std::string* error);

  GuestArch arch() const { return arch_; }
  // False when run() returned while a thread was still blocked in a host call: the caller
  // must then leave with _exit instead of destroying the process.
  bool clean_exit() const { return clean_exit_; }
  mmu::AddressSpace& space() { return *space_; }
  mmu::FramePool& pool() { return *pool_; }
  GuestMemory& memory() { return memory_; }
  FutexTable& futexes() { return futexes_; }
  ExclusiveGate& gate() { return gate_; }
  EmuCounters& counters() { return counters_; }
  const EmulatorConfig& config() const { return config_; }
  int pid() const { return pid_; }
  // The guest program's absolute path (what /proc/self/exe names for the guest).
  const std::string& exe_path() const { return exe_path_; }
  // The guest's file descriptors and current directory (not emu's: see fd_table.h).
  FdTable& files() { return files_; }

  // Threads.
  bool multi_vcpu() const { return live_vcpus_.load(std::memory_order_relaxed) > 1; }
  // vCPUs need the block hook (their sync point) when another vCPU or the reclaimer may ask
  // them to flush while they run guest code.
  bool needs_block_hook() const { return multi_vcpu() || reclaimer_ != nullptr; }
  mmu::SwapDevice* swap() const { return swap_.get(); }
  // Null unless --trace was given (and always null with tracing compiled out).
  Tracer* tracer() const { return kTracingCompiledIn ? tracer_.get() : nullptr; }
  const mmu::Reclaimer* reclaimer() const { return reclaimer_.get(); }
  // 0 or -errno; the new thread's tid in *tid. `before_start(tid)` runs before the thread
  // does (the parent stores the tid where clone was asked to).
  int spawn_thread(const VcpuStart& start, uint64_t clear_child_tid, int* tid,
                   const std::function<void(int)>& before_start);
  void for_each_other_vcpu(const Vcpu& self, const std::function<void(Vcpu&)>& fn);
  // Called by a vCPU's thread as it ends (after its clear_child_tid handling).
  void thread_finished(Vcpu& vcpu, int exit_code);

  // Ending the process: exit_group, or death by a signal (with one line on stderr).
  void exit_group(int status);
  void kill_by_signal(int signal, const std::string& message);
  bool exiting() const { return exiting_.load(std::memory_order_acquire); }
  // Sleeps until the deadline (nullopt: none) or the process exits; false if it exits.
  bool sleep_until(std::optional<std::chrono::steady_clock::time_point> deadline);

  // i386 TLS: writes GDT entry `entry` (under the GDT lock) and runs `load` while still
  // holding it, so the vCPU loads its own descriptor, not another thread's.
  void with_gdt_entry(mmu::VcpuId v, uint32_t entry, const std::array<uint32_t, 2>& descriptor,
                      const std::function<void()>& load);
  // Signal dispositions, as raw guest sigaction bytes (they are only stored and returned).
  std::mutex signal_lock;
  std::array<std::array<uint8_t, 32>, 65> sigactions{};
  // Logs an unknown syscall once per number.
  void note_unknown_syscall(uint64_t nr);

  // mmu::TlbShootdown
  void flush(const mmu::AddressSpace& space, std::span<const mmu::VirtRange> ranges, mmu::VcpuId requester) override;
  // Executable memory changed: every vCPU drops its translated blocks at its next sync point.
  void flush_code();
  void invalidate_code(const mmu::AddressSpace&) override { flush_code(); }
  // HostAccessTracker
  void begin_host_access(mmu::VcpuId v) override;
  void end_host_access(mmu::VcpuId v) override;

  // The slot the reclaimer uses (one past the vCPUs').
  mmu::VcpuId reclaimer_slot() const { return config_.max_vcpus; }
  // Counters summed over all vCPU slots (for --stats).
  mmu::MmuCounters::Snapshot mmu_totals() const { return space_->counters().sum(); }

 private:
  // A guest thread's host thread. `ended` is set as its function returns, after the vCPU
  // has let go of its engine, so joining it then does not wait.
  struct HostThread {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> ended;
  };

  GuestProcess(const EmulatorConfig& config, GuestArch arch, std::unique_ptr<mmu::FramePool> pool);
  // Starts the host thread of a vCPU registered in its slot. False when the host cannot
  // create one; the slot is then released as if the vCPU had never been registered.
  bool start_thread(std::shared_ptr<Vcpu> vcpu, VcpuStart start);
  void release_slot(mmu::VcpuId slot);
  // Takes the host threads whose guest threads are gone out of threads_, for joining
  // outside vcpus_lock_ (called with it held).
  std::vector<HostThread> take_ended_threads_locked();
  void finish(int status);

  const EmulatorConfig config_;
  const GuestArch arch_;
  std::unique_ptr<mmu::FramePool> pool_;
  std::unique_ptr<Tracer> tracer_;
  std::unique_ptr<mmu::SwapDevice> swap_;
  std::unique_ptr<mmu::Reclaimer> reclaimer_;
  std::unique_ptr<mmu::AddressSpace> space_;
  GuestMemory memory_;
  FutexTable futexes_;
  ExclusiveGate gate_;
  EmuCounters counters_;
  const int pid_;
  std::string exe_path_;
  FdTable files_ = FdTable::with_stdio();

  std::mutex vcpus_lock_;
  std::vector<std::shared_ptr<Vcpu>> vcpus_;          // live, by slot (nullptr: free)
  // The same, readable without the lock by the slot's own thread (the MMU's wait hook).
  std::unique_ptr<std::atomic<Vcpu*>[]> by_slot_;
  // Under vcpus_lock_. Joined as new threads are spawned (each keeps its host stack, 8 MiB
  // of address space, until joined), the rest when the process is destroyed.
  std::vector<HostThread> threads_;
  std::atomic<int> live_vcpus_{0};
  std::atomic<int> next_tid_;
  std::atomic<uint64_t> flush_generation_{0};

  std::mutex exit_lock_;
  std::mutex fatal_lock_;  // one fatal message and status when several vCPUs die together
  std::condition_variable exit_cv_;
  std::atomic<bool> exiting_{false};
  int exit_status_ = 0;
  bool all_threads_done_ = false;
  bool clean_exit_ = true;

  std::mutex gdt_lock_;
  std::mutex unknown_lock_;
  std::set<uint64_t> unknown_logged_;
};

}  // namespace emu
