// What all guest processes of one emu run share: the frame pool their address spaces live
// in, the swap and reclaimer, the tracer, the vCPU slots (machine-wide: a slot indexes the
// pool's frame caches and every per-vCPU counter, so no two threads may hold the same one),
// the numbers given out as pids and tids, and the process tree fork builds and wait4 walks.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "emu/loader/program.h"
#include "emu/observe/emu_counters.h"
#include "emu/process/file_locks.h"
#include "emu/process/futex_table.h"
#include "emu/process/space_directory.h"
#include "emu/process/guest_timers.h"
#include "emu/process/unix_socket_owners.h"
#include "emu/observe/tracer.h"
#include "mmu/address_space.h"
#include "mmu/frame_pool.h"
#include "mmu/reclaimer.h"
#include "mmu/shared_memory.h"
#include "mmu/spin_lock.h"
#include "mmu/thread_annotations.h"
#include "mmu/swap_device.h"

namespace emu {

struct EmulatorConfig;
class GuestProcess;
class HostFile;

// fork's own numbers, for --stats.
struct ForkStats {
  uint64_t forks = 0;
  uint64_t total_ns = 0;
  uint64_t max_ns = 0;
  uint64_t execs = 0;
};

class Machine {
 public:
  static std::unique_ptr<Machine> create(const EmulatorConfig& config, std::string* error);
  // Stops what still runs, then checks that every frame and swap slot came back.
  ~Machine();
  // How many machines of this host process found frames or swap slots still in use as they
  // went (each also says so on stderr): the fuzzers' leak check (fuzz/syscalls.cpp).
  static uint64_t leaked_teardowns();
  Machine(const Machine&) = delete;
  Machine& operator=(const Machine&) = delete;

  // Runs `image` as the first guest process and returns its exit status (128+signal if a
  // signal ended it) once it has ended; processes still running then are stopped. -1 and
  // *error when it could not be started, -2 when the configuration does not suit it.
  int run(const Program& program, const std::vector<std::string>& envp, std::string* error);
  // The first guest process, with an empty address space (tests drive it directly).
  std::shared_ptr<GuestProcess> new_first_process(GuestArch arch, std::string* error);
  // False when run() returned while a guest thread was still blocked in a host call: the
  // caller must then leave with _exit instead of destroying the machine.
  bool clean_exit() const { return clean_exit_; }
  // The first process (for --stats): its arch and space as they were when it ended.
  GuestProcess* first() const { return first_.get(); }

  const EmulatorConfig& config() const { return *config_; }
  mmu::FramePool& pool() { return *pool_; }
  mmu::SwapDevice* swap() const { return swap_.get(); }
  // Always there: with swap it takes any page; without, only file pages (clean ones dropped,
  // dirty ones written back), as Linux reclaims its page cache with no swap.
  mmu::Reclaimer* reclaimer() const { return reclaimer_.get(); }
  // Whether every vCPU must be reachable by the reclaimer's shootdowns (the block hook): from
  // the start with swap; without, from the first time memory runs short, so that a run that
  // never fills --mem pays nothing for a reclaimer it does not use.
  bool reclaim_reaches_vcpus() const { return swap_ != nullptr || memory_short_.load(std::memory_order_seq_cst); }
  Tracer* tracer() const { return kTracingCompiledIn ? tracer_.get() : nullptr; }
  EmuCounters& counters() { return counters_; }
  // Every guest process's file locks (one host process holds them all: file_locks.h). Shared
  // so that the hooks descriptions and fd tables carry keep it alive as long as they live.
  const std::shared_ptr<FileLockTable>& file_locks() const { return file_locks_; }
  mmu::ForkTables fork_tables() const;
  mmu::VcpuId reclaimer_slot() const;
  // The page cache of MAP_SHARED file mappings, one per run: every process maps the same
  // frames for the same file.
  mmu::SharedMemoryRegistry& shared_memory() { return *shared_memory_; }
  // Futexes on shared memory (not FUTEX_PRIVATE_FLAG), keyed by where the word lives, so
  // that processes mapping it at different addresses meet (Linux's shared futex keys).
  FutexTable& shared_futexes() { return shared_futexes_; }
  // The guest process behind each AF_UNIX socket (SO_PEERCRED, SCM_CREDENTIALS).
  UnixSocketOwners& unix_sockets() { return unix_sockets_; }
  // True the first time this run meets syscall `nr` of `arch` that emu does not know (it is
  // logged once, however many processes call it).
  bool first_unknown_syscall(GuestArch arch, uint64_t nr);
  // Every live address space and its process (a truncated file leaves all of them).
  SpaceDirectory& spaces() { return spaces_; }

  // A free vCPU slot, or nullopt when all --max-vcpus are in use (EAGAIN to the guest).
  std::optional<mmu::VcpuId> take_slot();
  void give_slot(mmu::VcpuId slot);
  // pids and tids come from one sequence, as in Linux; the first process has emu's pid.
  int next_id() { return next_id_.fetch_add(1); }
  // Owner tags of address spaces (the reclaimer finds a frame's space by it): a process has
  // two spaces for a moment during execve, so these are not pids.
  uint32_t next_space_id() { return next_space_id_.fetch_add(1); }
  // Shootdown generations, one sequence for the whole machine: a vfork child's vCPU takes
  // its parent's shootdowns and then its own process's, and a vCPU's "flushed up to" must
  // mean the same whichever process asked.
  uint64_t next_flush_generation() { return flush_generation_.fetch_add(1) + 1; }

  // Host threads of guest threads: kept until they end, joined later by whoever comes by.
  void adopt_thread(std::thread thread, std::shared_ptr<std::atomic<bool>> ended);
  void join_ended_threads();

  // The process tree. `tree_lock` guards every process's parent/children links and zombie
  // state; `tree_changed` is signalled when a process ends or is reaped.
  std::mutex tree_lock;
  std::condition_variable tree_changed;
  void add_process(const std::shared_ptr<GuestProcess>& p);
  std::shared_ptr<GuestProcess> find_process(int pid);
  void remove_process(int pid);  // called with tree_lock held
  std::vector<std::shared_ptr<GuestProcess>> processes();
  size_t process_count();

  // The terminal's foreground process group as guests see it (tcgetpgrp/tcsetpgrp): guest
  // groups are not host ones, so the host terminal keeps emu in its foreground while the
  // guests move their own. Until a guest sets one, the host's (`host_tty_fd`'s) answer.
  int foreground_pgrp(int host_tty_fd);
  void set_foreground_pgrp(int pgid) { foreground_pgrp_.store(pgid, std::memory_order_release); }
  // The one thread behind every guest timer (guest_timers.h).
  TimerService& timer_service() { return *timer_service_; }

  // MMU counters: those of spaces gone (processes ended, images replaced by execve) are
  // folded in here, so --stats covers the whole run.
  void retire(const mmu::AddressSpace& space);
  mmu::MmuCounters::Snapshot mmu_totals();
  void record_fork(uint64_t ns);
  void record_exec();
  ForkStats fork_stats();

  // Called by a process as its last thread ends.
  void process_ended(GuestProcess& p);
  // A pidfd (its host fd an eventfd) naming `p`: made readable when `p` ends, at once if it
  // has (Linux's pidfd poll).
  void watch_exit(GuestProcess& p, const std::shared_ptr<HostFile>& pidfd);

 private:
  explicit Machine(const EmulatorConfig& config);

  std::unique_ptr<EmulatorConfig> config_;
  std::unique_ptr<mmu::FramePool> pool_;
  // After the pool: goes before it (only weak references; objects die with their mappings).
  std::unique_ptr<mmu::SharedMemoryRegistry> shared_memory_;
  FutexTable shared_futexes_;
  UnixSocketOwners unix_sockets_;
  SpaceDirectory spaces_;
  mmu::Mutex unknown_lock_;
  std::set<std::pair<GuestArch, uint64_t>> unknown_syscalls_ EMU_GUARDED_BY(unknown_lock_);
  std::unique_ptr<Tracer> tracer_;
  std::unique_ptr<mmu::SwapDevice> swap_;
  std::unique_ptr<mmu::Reclaimer> reclaimer_;
  EmuCounters counters_;
  std::shared_ptr<FileLockTable> file_locks_ = std::make_shared<FileLockTable>();
  std::atomic<int> next_id_;
  std::atomic<uint32_t> next_space_id_{1};
  std::atomic<int> foreground_pgrp_{0};
  // Stopped first as the machine goes: it sends signals to processes.
  std::unique_ptr<TimerService> timer_service_ = std::make_unique<TimerService>();
  std::atomic<uint64_t> flush_generation_{0};
  std::atomic<bool> memory_short_{false};  // set by the reclaimer's first round, never cleared

  mmu::Mutex slots_lock_;
  std::vector<bool> slot_used_ EMU_GUARDED_BY(slots_lock_);

  mmu::Mutex threads_lock_;
  struct HostThread {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> ended;
  };
  std::vector<HostThread> threads_ EMU_GUARDED_BY(threads_lock_);

  mmu::Mutex processes_lock_;
  std::vector<std::shared_ptr<GuestProcess>> processes_ EMU_GUARDED_BY(processes_lock_);
  std::shared_ptr<GuestProcess> first_;

  mmu::Mutex stats_lock_;
  mmu::MmuCounters::Snapshot retired_ EMU_GUARDED_BY(stats_lock_){};
  ForkStats fork_stats_ EMU_GUARDED_BY(stats_lock_);

  std::mutex end_lock_;
  std::condition_variable end_cv_;
  bool first_ended_ = false;
  bool clean_exit_ = true;
};

}  // namespace emu
