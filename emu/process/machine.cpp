#include "emu/process/machine.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>

#include "emu/process/guest_process.h"

namespace emu {

std::unique_ptr<Machine> Machine::create(const EmulatorConfig& config, std::string* error) {
  std::unique_ptr<Machine> m(new Machine(config));
  mmu::FramePoolConfig pc;
  pc.bytes = config.mem_bytes;
  pc.vcpu_slots = config.max_vcpus + 1;  // the vCPUs, and the reclaimer
  // Pre-fault in small steps: a 32 MiB first chunk cost 45 ms, most of a small guest's run.
  pc.populate_chunk_bytes = uint64_t{4} << 20;
  m->pool_ = mmu::FramePool::create(pc, error);
  if (!m->pool_) return nullptr;
  if (kTracingCompiledIn && config.trace.events) {
    m->tracer_ = Tracer::create(config.trace, config.max_vcpus, error);
    if (!m->tracer_) return nullptr;
  }
  if (config.swap_bytes) {
    m->swap_ = config.swap_file.empty() ? mmu::SwapDevice::open_temporary(config.swap_bytes, error)
                                        : mmu::SwapDevice::open(config.swap_file, config.swap_bytes, error);
    if (!m->swap_) return nullptr;
    if (config.swap_write_errors.count) m->swap_->inject_write_failures(config.swap_write_errors.skip, config.swap_write_errors.count);
    if (config.swap_read_errors.count) m->swap_->inject_read_failures(config.swap_read_errors.skip, config.swap_read_errors.count);
  }
  // The page cache and shared memory: anonymous shared pages go to the same swap.
  m->shared_memory_ = std::make_unique<mmu::SharedMemoryRegistry>(*m->pool_, m->swap_.get());
  {
    mmu::ReclaimerConfig rc;
    rc.slot = m->reclaimer_slot();
    m->reclaimer_ = std::make_unique<mmu::Reclaimer>(*m->pool_, m->swap_.get(), rc);
    m->reclaimer_->set_shared_memory(m->shared_memory_.get());
    // Before the round looks at any space: from now on vCPUs take the block hook (at their
    // next syscall, or at a fault that finds no frame), and spaces become reclaimable as the
    // last of their vCPUs does.
    m->reclaimer_->set_round_hook([raw = m.get()] { raw->memory_short_.store(true, std::memory_order_seq_cst); });
    // A failed swap write: the page stayed resident, nothing is lost, but the guest cannot
    // go on with less memory than it needs. Every process ends with SIGBUS.
    m->reclaimer_->set_fatal_hook([raw = m.get()](const std::string& why) {
      for (auto& p : raw->processes()) p->kill_by_signal(SIGBUS, "guest killed by SIGBUS: " + why);
    });
    if (Tracer* tracer = m->tracer(); tracer && tracer->on(TraceEvent::Reclaim)) {
      m->reclaimer_->set_batch_observer([tracer](const mmu::ReclaimBatchReport& r) {
        tracer->record(TraceEvent::Reclaim, tracer->reclaimer_track(), r.start_ns, r.end_ns - r.start_ns, "reclaim batch",
                       fmt::format("frames={} freed={} swap-full={} io-error={} {:.3f}us", r.frames, r.outcome.freed,
                                   r.outcome.swap_full, r.outcome.io_error, double(r.end_ns - r.start_ns) / 1000.0),
                       {{"frames", r.frames}, {"freed", r.outcome.freed}, {"swap_full", r.outcome.swap_full},
                        {"io_error", r.outcome.io_error}});
      });
    }
  }
  return m;
}

Machine::Machine(const EmulatorConfig& config)
    : config_(std::make_unique<EmulatorConfig>(config)),
      counters_(config.max_vcpus + 1),
      next_id_(static_cast<int>(::getpid())),
      slot_used_(config.max_vcpus, false) {}

namespace {
std::atomic<uint64_t> g_leaked_teardowns{0};
}  // namespace

uint64_t Machine::leaked_teardowns() { return g_leaked_teardowns.load(std::memory_order_relaxed); }

Machine::~Machine() {
  timer_service_.reset();
  join_ended_threads();
  {
    mmu::MutexGuard lk(threads_lock_);
    for (auto& t : threads_)
      if (t.thread.joinable()) t.thread.join();
    threads_.clear();
  }
  if (reclaimer_) reclaimer_->stop();
  if (tracer_) {
    std::string error;
    if (!tracer_->finish(&error)) std::fprintf(stderr, "emu: %s\n", error.c_str());
    tracer_.reset();  // the teardown below is emu's, not the guest's: not traced
  }
  {
    mmu::MutexGuard lk(processes_lock_);
    processes_.clear();
  }
  first_.reset();  // spaces, tables, frames and swap slots go back before the pool and swap do
  reclaimer_.reset();
  // Exact accounting: with every space gone, no frame but the zero frame is in use and no
  // swap slot is taken. Anything else is a bug worth a loud line (the tests look for it).
  const auto by_state = pool_->count_by_state();
  const uint64_t in_use = pool_->frame_count() - by_state[static_cast<size_t>(mmu::FrameState::Free)] - 1;
  if (in_use != 0 || (swap_ && swap_->slots_used() != 0)) {
    g_leaked_teardowns.fetch_add(1, std::memory_order_relaxed);
    std::fprintf(stderr, "emu: internal error: %llu frames and %llu swap slots leaked\n",
                 static_cast<unsigned long long>(in_use),
                 static_cast<unsigned long long>(swap_ ? swap_->slots_used() : 0));
  }
}

mmu::ForkTables Machine::fork_tables() const { return config_->fork_tables; }
mmu::VcpuId Machine::reclaimer_slot() const { return config_->max_vcpus; }

std::shared_ptr<GuestProcess> Machine::new_first_process(GuestArch arch, std::string* error) {
  auto p = GuestProcess::create(*this, arch, next_id(), error);
  if (!p) return nullptr;
  first_ = p;
  add_process(p);
  return p;
}

int Machine::run(const Program& program, const std::vector<std::string>& envp, std::string* error) {
  auto p = new_first_process(program.exe.arch(), error);
  if (!p) return -2;
  const auto slot = take_slot();
  if (!slot || !p->start(program, envp, *slot, error)) return -1;
  {
    std::unique_lock lk(end_lock_);
    end_cv_.wait(lk, [&] { return first_ended_; });
  }
  // The first process is what the user ran: once it has ended, so has the run. What it
  // left running (background jobs, orphans) is stopped. Threads blocked in host calls (a
  // read of a terminal, say) cannot be interrupted: give them a moment, then stop waiting.
  for (auto& other : processes()) other->kill_by_signal(SIGKILL, "");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (;;) {
    join_ended_threads();
    {
      mmu::MutexGuard lk(threads_lock_);
      if (threads_.empty()) break;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      clean_exit_ = false;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return p->exit_info().shell_status();
}

std::optional<mmu::VcpuId> Machine::take_slot() {
  mmu::MutexGuard lk(slots_lock_);
  for (mmu::VcpuId s = 0; s < slot_used_.size(); ++s) {
    if (slot_used_[s]) continue;
    slot_used_[s] = true;
    return s;
  }
  return std::nullopt;
}

void Machine::give_slot(mmu::VcpuId slot) {
  mmu::MutexGuard lk(slots_lock_);
  slot_used_[slot] = false;
}

void Machine::adopt_thread(std::thread thread, std::shared_ptr<std::atomic<bool>> ended) {
  mmu::MutexGuard lk(threads_lock_);
  threads_.push_back({std::move(thread), std::move(ended)});
}

void Machine::join_ended_threads() {
  std::vector<HostThread> ended;
  {
    mmu::MutexGuard lk(threads_lock_);
    const auto running = std::partition(threads_.begin(), threads_.end(), [](const HostThread& t) {
      return !t.ended->load(std::memory_order_acquire);
    });
    ended.assign(std::make_move_iterator(running), std::make_move_iterator(threads_.end()));
    threads_.erase(running, threads_.end());
  }
  // Each keeps its host stack (8 MiB of address space) until joined.
  for (auto& t : ended) t.thread.join();
}

void Machine::add_process(const std::shared_ptr<GuestProcess>& p) {
  mmu::MutexGuard lk(processes_lock_);
  processes_.push_back(p);
}

std::shared_ptr<GuestProcess> Machine::find_process(int pid) {
  mmu::MutexGuard lk(processes_lock_);
  for (auto& p : processes_)
    if (p->pid() == pid) return p;
  return nullptr;
}

void Machine::remove_process(int pid) {
  std::shared_ptr<GuestProcess> gone;  // destroyed outside the lock
  mmu::MutexGuard lk(processes_lock_);
  const auto it = std::find_if(processes_.begin(), processes_.end(), [&](auto& p) { return p->pid() == pid; });
  if (it == processes_.end()) return;
  gone = std::move(*it);
  processes_.erase(it);
}

size_t Machine::process_count() {
  mmu::MutexGuard lk(processes_lock_);
  return processes_.size();
}

std::vector<std::shared_ptr<GuestProcess>> Machine::processes() {
  mmu::MutexGuard lk(processes_lock_);
  return processes_;
}

int Machine::foreground_pgrp(int host_tty_fd) {
  const int set = foreground_pgrp_.load(std::memory_order_acquire);
  return set ? set : static_cast<int>(::tcgetpgrp(host_tty_fd));
}

bool Machine::first_unknown_syscall(GuestArch arch, uint64_t nr) {
  mmu::MutexGuard lk(unknown_lock_);
  return unknown_syscalls_.insert({arch, nr}).second;
}

void Machine::retire(const mmu::AddressSpace& space) {
  const auto sum = space.counters().sum();
  mmu::MutexGuard lk(stats_lock_);
  for (size_t i = 0; i < sum.size(); ++i) retired_[i] += sum[i];
}

mmu::MmuCounters::Snapshot Machine::mmu_totals() {
  mmu::MmuCounters::Snapshot total;
  {
    mmu::MutexGuard lk(stats_lock_);
    total = retired_;
  }
  for (auto& p : processes()) {
    if (!p->has_space()) continue;
    const auto sum = p->space().counters().sum();
    for (size_t i = 0; i < sum.size(); ++i) total[i] += sum[i];
  }
  return total;
}

void Machine::record_fork(uint64_t ns) {
  mmu::MutexGuard lk(stats_lock_);
  ++fork_stats_.forks;
  fork_stats_.total_ns += ns;
  fork_stats_.max_ns = std::max(fork_stats_.max_ns, ns);
}

void Machine::record_exec() {
  mmu::MutexGuard lk(stats_lock_);
  ++fork_stats_.execs;
}

ForkStats Machine::fork_stats() {
  mmu::MutexGuard lk(stats_lock_);
  return fork_stats_;
}

namespace {
void tell_pidfd(const HostFile& pidfd) {
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(pidfd.fd(), &one, sizeof one);
}
}  // namespace

void Machine::watch_exit(GuestProcess& p, const std::shared_ptr<HostFile>& pidfd) {
  {
    std::lock_guard lk(tree_lock);
    if (!p.ended()) {
      p.exit_watchers_.push_back(pidfd);
      return;
    }
  }
  tell_pidfd(*pidfd);
}

void Machine::process_ended(GuestProcess& p) {
  std::shared_ptr<GuestProcess> notify;
  std::vector<std::shared_ptr<GuestProcess>> reapers_to_wake;
  std::vector<std::pair<std::shared_ptr<GuestProcess>, int>> death_signals;  // PR_SET_PDEATHSIG
  std::vector<std::weak_ptr<HostFile>> pidfds;
  {
    std::lock_guard lk(tree_lock);
    p.ended_.store(true, std::memory_order_release);
    pidfds.swap(p.exit_watchers_);
    // Orphans go to the nearest live ancestor that made itself a child subreaper
    // (PR_SET_CHILD_SUBREAPER), which then waits for them; without one nobody will (Linux's
    // init would): those already ended go now, the others when they end.
    std::shared_ptr<GuestProcess> reaper;
    for (auto a = p.parent_.lock(); a && !reaper; a = a->parent_.lock())
      if (!a->ended() && a->controls().child_subreaper.load()) reaper = a;
    for (auto& child : p.children_) {
      if (const int sig = child->controls().pdeath_signal.load(); sig && !child->ended())
        death_signals.emplace_back(child, sig);
      if (!reaper) {
        child->parent_.reset();
        child->ppid_.store(1, std::memory_order_release);
        if (child->ended()) remove_process(child->pid());
        continue;
      }
      child->parent_ = reaper;
      child->ppid_.store(reaper->pid(), std::memory_order_release);
      if (!child->ended()) {
        reaper->children_.push_back(child);
        continue;
      }
      // A zombie handed over is announced to its new parent, as Linux's reparent_leader
      // does, or released at once when that parent does not wait.
      const SigAction on_child = reaper->signals().action(SIGCHLD);
      if (on_child.handler == kSigIgnore || (on_child.flags & kSaNoCldWait)) {
        remove_process(child->pid());
        continue;
      }
      reaper->children_.push_back(child);
      if (reaper->generate_signal(SIGCHLD, child_siginfo(child->pid(), child->exit_info()), nullptr))
        reapers_to_wake.push_back(reaper);
    }
    p.children_.clear();
    // A parent that ignores SIGCHLD (or is gone) does not wait: no zombie is kept.
    auto parent = p.parent_.lock();
    const SigAction on_child = parent ? parent->signals().action(SIGCHLD) : SigAction{};
    const bool reap_now =
        !parent || parent->ended() || on_child.handler == kSigIgnore || (on_child.flags & kSaNoCldWait);
    if (reap_now) {
      if (parent) std::erase_if(parent->children_, [&](auto& c) { return c.get() == &p; });
      if (&p != first_.get()) remove_process(p.pid());
    }
    // SIGCHLD is pending before the parent can see the child has ended, as Linux queues it
    // and wakes the waiter together: a wait4 that finds the child returns its pid and the
    // handler runs then (not EINTR, and not after a shell has looked for pending traps).
    if (parent && !parent->ended() && parent->generate_signal(SIGCHLD, child_siginfo(p.pid(), p.exit_info()), nullptr))
      notify = parent;
  }
  tree_changed.notify_all();
  for (const auto& w : pidfds)
    if (const auto f = w.lock()) tell_pidfd(*f);
  if (notify) notify->wake_taker(SIGCHLD, nullptr);  // outside the tree lock: waking takes it
  for (auto& r : reapers_to_wake) r->wake_taker(SIGCHLD, nullptr);
  // The parent-death signals, outside the tree lock (their default action may end a child).
  for (auto& [child, sig] : death_signals) {
    SigInfo info;
    info.signo = sig;
    info.code = kSiUser;
    info.pid = p.pid();
    child->send_signal(sig, info, nullptr);
  }
  if (&p == first_.get()) {
    std::lock_guard lk(end_lock_);
    first_ended_ = true;
    end_cv_.notify_all();
  }
}

}  // namespace emu
