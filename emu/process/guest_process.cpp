#include "emu/process/guest_process.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <climits>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <system_error>

#include "emu/loader/elf_loader.h"
#include "emu/process/machine.h"
#include "emu/process/page_cache_sync.h"
#include "emu/loader/initial_stack.h"

namespace emu {

namespace {
uint64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

namespace {
// The paging the user asked for when it suits `arch`, else the format's own.
mmu::PagingMode paging_for(const EmulatorConfig& config, GuestArch arch) {
  const mmu::PagingMode native = arch == GuestArch::I386 ? mmu::PagingMode::I386 : mmu::PagingMode::X86_64;
  if (!config.paging) return native;
  const bool wide = *config.paging == mmu::PagingMode::X86_64 || *config.paging == mmu::PagingMode::La57;
  return (arch == GuestArch::X86_64) == wide ? *config.paging : native;
}
}  // namespace

SigInfo child_siginfo(int pid, const ExitInfo& how) {
  SigInfo info;
  info.signo = SIGCHLD;
  info.code = how.signal ? kCldKilled : kCldExited;
  info.pid = pid;
  info.uid = static_cast<int32_t>(::getuid());
  info.status = how.signal ? how.signal : how.code;
  return info;
}

std::shared_ptr<GuestProcess> GuestProcess::create(Machine& machine, GuestArch arch, int pid, std::string* error) {
  const EmulatorConfig& config = machine.config();
  if (arch == GuestArch::X86_64 && config.paging &&
      (*config.paging == mmu::PagingMode::I386 || *config.paging == mmu::PagingMode::Pae)) {
    *error = "an x86_64 guest needs x86_64 or la57 paging (it addresses more than 32 bits)";
    return nullptr;
  }
  std::shared_ptr<GuestProcess> p(
      new GuestProcess(machine, arch, pid, static_cast<int>(::getppid()), std::make_unique<FdTable>(FdTable::with_stdio())));
  auto space = p->new_space(arch, error);
  if (!space) return nullptr;
  p->adopt_space(std::move(space));
  return p;
}

GuestProcess::GuestProcess(Machine& machine, GuestArch arch, int pid, int ppid, std::unique_ptr<FdTable> files)
    : machine_(machine),
      arch_(arch),
      pid_(pid),
      ppid_(ppid),
      pgid_(static_cast<int>(::getpgrp())),
      sid_(static_cast<int>(::getsid(0))),
      files_(std::move(files)),
      vcpus_(machine.config().max_vcpus),
      by_slot_(new std::atomic<Vcpu*>[machine.config().max_vcpus + 1]) {
  for (uint32_t i = 0; i <= machine.config().max_vcpus; ++i) by_slot_[i].store(nullptr);
  ending_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

GuestProcess::~GuestProcess() {
  drop_space(0);
  if (ending_fd_ >= 0) ::close(ending_fd_);
}

mmu::FramePool& GuestProcess::pool() { return machine_.pool(); }
EmuCounters& GuestProcess::counters() { return machine_.counters(); }
const EmulatorConfig& GuestProcess::config() const { return machine_.config(); }
mmu::SwapDevice* GuestProcess::swap() const { return machine_.swap(); }
Tracer* GuestProcess::tracer() const { return machine_.tracer(); }
const mmu::Reclaimer* GuestProcess::reclaimer() const { return machine_.reclaimer(); }
mmu::VcpuId GuestProcess::reclaimer_slot() const { return machine_.reclaimer_slot(); }
bool GuestProcess::needs_block_hook() const {
  // A handler may have to run while the only vCPU computes: the block boundary is where it can.
  // A vfork child shares its parent's space: it must answer that space's shootdowns.
  // One that shares memory with other processes runs its atomics as host atomics (hooked at
  // the block boundary).
  // The reclaimer's shootdowns reach every space once memory has run short (from the start
  // with swap).
  return multi_vcpu() || machine_.reclaim_reaches_vcpus() || signals_.any_handler() || borrowed_ != nullptr ||
         shares_memory();
}

std::unique_ptr<mmu::AddressSpace> GuestProcess::new_space(GuestArch arch, std::string* error, mmu::VcpuId v) {
  mmu::AddressSpaceConfig ac;
  ac.paging = paging_for(config(), arch);
  ac.scheme = config().scheme;
  ac.rss = config().rss;
  ac.tlbs = this;
  ac.swap = machine_.swap();
  ac.reclaimer = machine_.reclaimer();
  ac.id = machine_.next_space_id();
  auto space = mmu::make_address_space(machine_.pool(), ac, error, v);
  // From the start: execve loads the new image, which may wait for memory, before adopting it.
  if (space) serve_flushes_while_waiting(*space);
  return space;
}

void GuestProcess::serve_flushes_while_waiting(mmu::AddressSpace& space) {
  // Every wait loop in the MMU serves the waiting vCPU's TLB flushes (DESIGN.md decision 5).
  space.set_wait_hook([this](mmu::VcpuId slot) {
    if (Vcpu* vcpu = by_slot_[slot].load(std::memory_order_acquire)) vcpu->serve_flushes();
  });
}

void GuestProcess::adopt_space(std::unique_ptr<mmu::AddressSpace> space) {
  space_ = std::move(space);
  memory_ = GuestMemory(*space_, this);
  serve_flushes_while_waiting(*space_);  // a forked space comes without the hook
  if (mmu::Reclaimer* r = machine_.reclaimer()) r->attach(*space_);
  machine_.spaces().add(*space_, *this);
}

void GuestProcess::drop_space(mmu::VcpuId slot) {
  if (borrowed_) {
    lender_->take_space_back(slot);  // by slot: the vCPU may have unregistered itself already
    borrowed_ = nullptr;
    memory_ = GuestMemory();
    lender_.reset();
    return;
  }
  if (!space_) return;
  memory_ = GuestMemory();
  {
    // A vfork child still runs in it (this process execs or ends first): as on Linux, the
    // memory lives on while the child uses it; the last child to give it back destroys it.
    std::lock_guard lk(vcpus_lock_);
    if (!borrowers_.empty()) {
      last_space_ = {space_->paging_mode(), space_->scheme(), space_->rss_mode(), space_->rss_pages()};
      lent_out_ = std::move(space_);
      return;
    }
  }
  destroy_space(std::move(space_), slot);
}

void GuestProcess::destroy_space(std::unique_ptr<mmu::AddressSpace> space, mmu::VcpuId slot) {
  machine_.spaces().remove(*space);
  if (mmu::Reclaimer* r = machine_.reclaimer()) r->detach(*space);
  machine_.retire(*space);
  last_space_ = {space->paging_mode(), space->scheme(), space->rss_mode(), space->rss_pages()};
  space->set_teardown_slot(slot);
  space.reset();
}

bool GuestProcess::load(const Program& program, const std::vector<std::string>& envp, mmu::VcpuId slot,
                        mmu::AddressSpace& space, VcpuStart* start, std::string* error) {
  const ElfImage& image = program.exe;
  LoadedImage loaded;
  PageCacheOf page_cache;
  if (config().shared_file_pages)
    page_cache = [this](const FileSource& file) { return page_cache_object(machine_, file.fd(), file.name()); };
  if (!load_program(program, space, slot, config().aslr, loaded, error, page_cache)) return false;
  GuestMemory memory(space, this);
  if (image.arch() == GuestArch::I386) {
    mmu::MapRequest gdt;
    gdt.addr = kI386GdtAddress;
    gdt.length = mmu::kPageSize;
    gdt.prot = mmu::kProtRead | mmu::kProtWrite;
    gdt.placement = mmu::MapPlacement::FixedNoReplace;
    gdt.name = "[gdt]";
    if (!space.map(slot, gdt).ok()) {
      *error = "cannot map the GDT page";
      return false;
    }
    for (const auto& [entry, descriptor] : kI386FlatSegments)
      (void)memory.write(slot, kI386GdtAddress + entry * 8, descriptor.data(), 8);
  }
  Auxv auxv;
  const uint64_t sp = build_initial_stack(memory, slot, image.arch(), loaded, program.execfn, program.argv, envp,
                                          error, &auxv);
  if (sp == 0) return false;
  *start = VcpuStart{};
  const auto& ids = general_register_ids(image.arch());
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] == UC_X86_REG_RSP || ids[i] == UC_X86_REG_ESP) start->regs.general[i] = sp;
    if (ids[i] == UC_X86_REG_RIP || ids[i] == UC_X86_REG_EIP) start->regs.general[i] = loaded.start;
    if (ids[i] == UC_X86_REG_EFLAGS) start->regs.general[i] = 0x202;
  }
  {
    std::lock_guard lk(identity_lock_);
    exe_path_ = program.guest_exe;
    exe_host_path_ = program.host_exe;
    argv_ = program.argv;
  }
  auxv_ = std::move(auxv);
  return true;
}

GuestProcess::Identity GuestProcess::identity() const {
  std::lock_guard lk(identity_lock_);
  return {exe_path_, argv_};
}

void GuestProcess::lend_space_to(const std::shared_ptr<Vcpu>& vcpu) {
  std::lock_guard lk(vcpus_lock_);
  borrowers_.push_back(vcpu);
  by_slot_[vcpu->slot()].store(vcpu.get(), std::memory_order_release);
}

void GuestProcess::take_space_back(mmu::VcpuId slot) {
  std::unique_ptr<mmu::AddressSpace> orphan;
  {
    std::lock_guard lk(vcpus_lock_);
    if (std::erase_if(borrowers_, [&](const std::shared_ptr<Vcpu>& v) { return v->slot() == slot; }) == 0) return;
    by_slot_[slot].store(nullptr, std::memory_order_release);
    if (borrowers_.empty()) orphan = std::move(lent_out_);  // this process has ended meanwhile
  }
  if (orphan) destroy_space(std::move(orphan), slot);  // through the returning vCPU's slot
}

std::optional<GuestProcess::Limit> GuestProcess::limit(int resource) const {
  if (resource < 0 || resource >= kLimits) return std::nullopt;
  std::lock_guard lk(limits_lock_);
  return limits_[resource];
}

void GuestProcess::set_limit(int resource, const Limit& l) {
  if (resource < 0 || resource >= kLimits) return;
  std::lock_guard lk(limits_lock_);
  limits_[resource] = l;
}

bool GuestProcess::start(const Program& program, const std::vector<std::string>& envp, mmu::VcpuId slot,
                         std::string* error) {
  VcpuStart start;
  if (!load(program, envp, slot, *space_, &start, error)) return false;
  start.signal_mask = config().inherited_signal_mask & ~kUnblockable;
  for (int sig = 1; sig <= kMaxSignal; ++sig)
    if ((config().inherited_ignored_signals & signal_bit(sig)) && !(kUnblockable & signal_bit(sig)))
      signals_.set_action(sig, SigAction{.handler = kSigIgnore});
  // The loader wrote guest memory from a slot no shootdown waits for (no vCPU yet): the
  // reclaimer may only run once that is over.
  if (mmu::Reclaimer* r = machine_.reclaimer()) r->start();
  if (start_vcpu(slot, pid_, start, 0, {}) < 0) {
    *error = "cannot create a host thread for the guest";
    return false;
  }
  return true;
}

int GuestProcess::start_vcpu(mmu::VcpuId slot, int tid, const VcpuStart& start, uint64_t clear_child_tid,
                             const std::function<void(int)>& before_start) {
  auto vcpu = std::make_shared<Vcpu>(*this, slot, tid);
  vcpu->clear_child_tid = clear_child_tid;
  if (lender_) lender_->lend_space_to(vcpu);  // before it runs: the parent's shootdowns reach it
  {
    // Registered but Outside until it runs: flushes and the exclusive gate need not wait for it.
    std::lock_guard lk(vcpus_lock_);
    vcpus_[slot] = vcpu;
    by_slot_[slot].store(vcpu.get(), std::memory_order_release);
    live_vcpus_.fetch_add(1);
    // end_all posts the stop under this lock to the vCPUs it finds: one registered after it
    // must be told here, or it would run on in a process that has ended.
    if (exiting()) vcpu->post(kAttnStop);
  }
  // Guest writes may fault and shoot down, which takes vcpus_lock_: outside it.
  if (before_start) before_start(tid);
  auto ended = std::make_shared<std::atomic<bool>>(false);
  std::thread thread;
  try {
    // The thread holds the process: it lives until its last thread is gone.
    thread = std::thread([self = shared_from_this(), vcpu, start, ended]() mutable {
      self->counters().slot(vcpu->slot()).add(EmuCounter::VcpusStarted);  // by the slot's own thread
      if (Tracer* tracer = self->tracer())
        tracer->name_track(vcpu->slot(), fmt::format("vCPU {} (tid {}, pid {})", vcpu->slot(), vcpu->tid(), self->pid()));
      vcpu->run(start);
      vcpu.reset();  // usually the last reference: the engine is closed here
      ended->store(true, std::memory_order_release);
    });
  } catch (const std::system_error& e) {
    spdlog::warn("cannot create a host thread for a guest thread: {}", e.what());
    std::lock_guard lk(vcpus_lock_);
    by_slot_[slot].store(nullptr, std::memory_order_release);
    vcpus_[slot].reset();
    live_vcpus_.fetch_sub(1);
    return -EAGAIN;
  }
  machine_.adopt_thread(std::move(thread), std::move(ended));
  return 0;
}

int GuestProcess::spawn_thread(const VcpuStart& start, uint64_t clear_child_tid, int* tid,
                               const std::function<void(int)>& before_start) {
  if (exiting()) return -EAGAIN;
  const auto slot = machine_.take_slot();
  if (!slot) return -EAGAIN;  // as Linux does past RLIMIT_NPROC
  machine_.join_ended_threads();
  *tid = machine_.next_id();
  const int r = start_vcpu(*slot, *tid, start, clear_child_tid, before_start);
  if (r < 0) machine_.give_slot(*slot);
  return r;
}

int GuestProcess::fork(Vcpu& parent, const VcpuStart& start, bool vfork,
                       const std::function<void(GuestProcess& child, int pid)>& before_start, bool share_vm) {
  const uint64_t t0 = now_ns();
  if (exiting()) return -EAGAIN;
  // Checked before the child is added: forks racing on several vCPUs may pass it together,
  // going past the limit by at most the number of vCPUs.
  if (machine_.process_count() >= config().max_processes) return -EAGAIN;
  const auto slot = machine_.take_slot();
  if (!slot) return -EAGAIN;
  machine_.join_ended_threads();
  const int pid = machine_.next_id();
  std::shared_ptr<GuestProcess> child(
      new GuestProcess(machine_, arch_, pid, pid_, std::unique_ptr<FdTable>(new FdTable(files_->clone()))));
  child->exe_path_ = exe_path_;
  child->exe_host_path_ = exe_host_path_;
  child->argv_ = argv_;
  child->auxv_ = auxv_;
  child->signals_.copy_actions_from(signals_);
  child->controls_.inherit(controls_, parent.tid(), pid);
  child->pgid_.store(pgid(), std::memory_order_release);
  child->sid_.store(sid(), std::memory_order_release);
  child->persona_.store(persona_.load());
  if (shares_memory()) child->note_shared_memory();
  {
    std::lock_guard lk(limits_lock_);
    child->limits_ = limits_;
  }
  if (share_vm && vfork) {
    // The space this process uses (its own, or the one it borrows itself).
    GuestProcess* owner = lender_ ? lender_.get() : this;
    child->lender_ = owner->shared_from_this();
    child->borrowed_ = &owner->space();
    child->memory_ = GuestMemory(*child->borrowed_, owner);  // host accesses tracked by the owner
  } else {
    mmu::AddressSpaceConfig ac;
    ac.paging = space().paging_mode();
    ac.scheme = space().scheme();
    ac.rss = space().rss_mode();
    ac.tlbs = child.get();
    ac.swap = machine_.swap();
    ac.reclaimer = machine_.reclaimer();
    ac.id = machine_.next_space_id();
    std::string error;
    auto space = this->space().fork(parent.slot(), ac, machine_.fork_tables(), &error);
    // Tables to copy need frames: under pressure wait for the reclaimer, as exec does.
    while (!space && machine_.reclaimer() && machine_.reclaimer()->wait_for_frames([&] { parent.serve_flushes(); }))
      space = this->space().fork(parent.slot(), ac, machine_.fork_tables(), &error);
    if (!space) {
      spdlog::debug("fork: {}", error);
      machine_.give_slot(*slot);
      return -ENOMEM;
    }
    child->adopt_space(std::move(space));
  }
  {
    std::lock_guard lk(machine_.tree_lock);
    child->parent_ = weak_from_this();
    child->vfork_pending_ = vfork;
    children_.push_back(child);
  }
  machine_.add_process(child);
  if (before_start) before_start(*child, pid);
  if (child->start_vcpu(*slot, pid, start, 0, {}) < 0) {
    // No host thread: the child never was, as far as the parent can tell (EAGAIN).
    {
      std::lock_guard lk(machine_.tree_lock);
      std::erase(children_, child);
      child->parent_.reset();
    }
    child->exiting_.store(true);
    child->end(*slot);
    machine_.remove_process(pid);
    return -EAGAIN;
  }
  machine_.record_fork(now_ns() - t0);
  if (vfork) {
    std::unique_lock lk(machine_.tree_lock);
    machine_.tree_changed.wait(lk, [&] { return !child->vfork_pending_ || exiting(); });
  }
  return pid;
}

int GuestProcess::exec(Vcpu& vcpu, const Program& program, const std::vector<std::string>& envp,
                       VcpuStart* start) {
  const ElfImage& image = program.exe;
  if (multi_vcpu()) {
    // Linux ends the other threads first; they are told to stop and given a moment.
    for_each_other_vcpu(vcpu, [](Vcpu& other) { other.post(kAttnStop); });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (multi_vcpu() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (multi_vcpu()) return -EAGAIN;
  }
  std::string error;
  // The new space's root table needs a frame: under memory pressure wait for the reclaimer as
  // a fault would (Linux reclaims rather than failing exec), serving shootdowns meanwhile.
  auto space = new_space(image.arch(), &error, vcpu.slot());
  while (!space && machine_.reclaimer() && machine_.reclaimer()->wait_for_frames([&] { vcpu.serve_flushes(); }))
    space = new_space(image.arch(), &error, vcpu.slot());
  if (!space) return -ENOMEM;
  const std::string old_exe = exe_path_;
  const std::string old_exe_host = exe_host_path_;
  auto old_argv = argv_;
  auto old_auxv = auxv_;
  if (!load(program, envp, vcpu.slot(), *space, start, &error)) {
    spdlog::debug("execve {}: {}", image.path(), error);
    {
      std::lock_guard lk(identity_lock_);
      exe_path_ = old_exe;
      exe_host_path_ = old_exe_host;
      argv_ = std::move(old_argv);
    }
    auxv_ = std::move(old_auxv);
    space->set_teardown_slot(vcpu.slot());
    return -ENOEXEC;
  }
  // The point of no return: the old image goes (the vCPU reopens its engine before it runs
  // again, so nothing of the old translations survives).
  drop_space(vcpu.slot());
  adopt_space(std::move(space));
  membarrier_registrations_.store(0);
  files_->close_on_exec();
  // Handlers are code of the old image: back to the default action (ignored stays ignored;
  // the mask and pending signals stay, as on Linux).
  signals_.reset_handlers();
  controls_.exec();
  arch_ = image.arch();
  execed_.store(true, std::memory_order_release);
  // POSIX timers are the old image's (Linux deletes them); ITIMER_REAL and alarm stay.
  for (auto& t : timers_.take_posix())
    if (t) machine_.timer_service().set(t, std::nullopt, {});
  machine_.record_exec();
  release_vfork_parent();
  return 0;
}

int GuestProcess::wait_child(int pid, bool block, bool keep, ExitInfo* info, Vcpu* waiter, ResourceUsage* usage) {
  std::unique_lock lk(machine_.tree_lock);
  for (;;) {
    bool any = false;
    for (auto it = children_.begin(); it != children_.end(); ++it) {
      GuestProcess& c = **it;
      if (pid > 0 && c.pid() != pid) continue;
      if (pid == 0 && c.pgid() != pgid()) continue;
      if (pid < -1 && c.pgid() != -pid) continue;
      any = true;
      if (!c.ended()) continue;
      *info = c.exit_info();
      if (usage) *usage = c.usage().lifetime();
      const int found = c.pid();
      if (!keep) {
        usage_.child_reaped(c.usage().lifetime());  // RUSAGE_CHILDREN counts reaped children only
        machine_.remove_process(found);
        children_.erase(it);
      }
      return found;
    }
    if (!any) return -ECHILD;
    if (!block) return 0;
    if (exiting()) return -EINTR;
    if (waiter && signals_.deliverable(waiter->signals())) return -kErestartSys;
    machine_.tree_changed.wait(lk);
  }
}

void GuestProcess::release_vfork_parent() {
  {
    std::lock_guard lk(machine_.tree_lock);
    if (!vfork_pending_) return;
    vfork_pending_ = false;
  }
  machine_.tree_changed.notify_all();
}

void GuestProcess::send_signal(int sig, const SigInfo& info, Vcpu* thread, bool* queue_full) {
  if (generate_signal(sig, info, thread, queue_full)) wake_taker(sig, thread);
}

std::shared_ptr<Vcpu> GuestProcess::find_thread(int tid) {
  std::lock_guard lk(vcpus_lock_);
  for (auto& v : vcpus_)
    if (v && v->tid() == tid) return v;
  return nullptr;
}

std::shared_ptr<Vcpu> GuestProcess::taker_for(int sig, Vcpu* thread) {
  std::vector<std::shared_ptr<Vcpu>> takers;
  {
    std::lock_guard lk(vcpus_lock_);
    for (auto& v : vcpus_)
      if (v && (!thread || v.get() == thread)) takers.push_back(v);
  }
  std::shared_ptr<Vcpu> chosen;
  for (auto& v : takers) {
    if (v->signals().mask.load(std::memory_order_acquire) & signal_bit(sig)) continue;
    if (!chosen || v->tid() == pid_) chosen = v;  // the main thread first, as Linux does
  }
  return chosen;
}

bool GuestProcess::generate_signal(int sig, const SigInfo& info, Vcpu* thread, bool* queue_full) {
  if (sig < 1 || sig > kMaxSignal || exiting()) return false;
  if (sig == SIGKILL) {
    kill_by_signal(SIGKILL, "");
    return false;
  }
  // Blocked everywhere, it waits in the pending set even when ignored (the disposition may
  // change before it is unblocked); otherwise it is dropped or ends the process at once.
  if (auto taker = taker_for(sig, thread)) {
    // A thread in sigtimedwait for it takes it there, whatever its default (Linux:
    // real_blocked); an ignored one is still dropped.
    const bool awaited = taker->signals().awaiting.load(std::memory_order_acquire) & signal_bit(sig);
    if (signals_.ignored(sig) && !awaited) return false;
    if (signals_.fatal_by_default(sig) && !awaited) {
      kill_by_signal(sig, "");
      return false;
    }
  }
  // A thread-directed signal: the thread is held while its pending set is written (it may
  // be ending; `thread` only names it).
  std::shared_ptr<Vcpu> held;
  if (thread) {
    std::lock_guard lk(vcpus_lock_);
    for (auto& v : vcpus_)
      if (v.get() == thread) held = v;
  }
  if (thread && !held) return false;  // that thread has gone
  if (!signals_.queue(held ? &held->signals() : nullptr, sig, info)) {
    if (queue_full) *queue_full = true;
    return false;
  }
  return true;
}

void GuestProcess::wake_taker(int sig, Vcpu* thread) {
  // The taker is chosen after queueing: masks change under the same lock as the queue, so a
  // thread unblocking it after this look finds it pending itself, and one that unblocked it
  // before is seen here and woken. (Chosen before queueing, a thread entering sigsuspend in
  // between would sleep on with the signal pending.)
  if (const auto chosen = taker_for(sig, thread)) kick(*chosen);
}

void GuestProcess::retarget_shared_signals(const Vcpu& from) {
  const uint64_t shared = signals_.shared_pending();
  if (!shared) return;
  std::vector<std::shared_ptr<Vcpu>> others;
  {
    std::lock_guard lk(vcpus_lock_);
    for (auto& v : vcpus_)
      if (v && v.get() != &from) others.push_back(v);
  }
  for (auto& v : others)
    if (shared & ~v->signals().mask.load(std::memory_order_acquire)) {
      kick(*v);
      return;
    }
}

void GuestProcess::kick(Vcpu& vcpu) {
  vcpu.post(kAttnSignal);  // running guest code: its next block boundary
  vcpu.wake();             // in a host poll (pipes, terminals, poll)
  // In a wait on a condition: each rechecks `deliverable` under its lock once woken.
  { std::lock_guard lk(machine_.tree_lock); }
  machine_.tree_changed.notify_all();
  { std::lock_guard lk(exit_lock_); }
  exit_cv_.notify_all();
  futexes_.interrupt();
  machine_.shared_futexes().interrupt();
}

void GuestProcess::thread_finished(Vcpu& vcpu, int exit_code) {
  const mmu::VcpuId slot = vcpu.slot();
  // On the ending thread itself: what it used stays with the process (getrusage, times).
  usage_.thread_ended(calling_thread_usage());
  if (has_space()) usage_.note_rss_kb(space().rss_pages() * 4);
  signals_.thread_gone(vcpu.signals());  // its own real-time signals no longer count
  controls_.forget_thread(vcpu.tid(), pid_);
  bool last = false;
  std::shared_ptr<GuestProcess> lender;  // read before the last thread's end() may drop it
  {
    std::lock_guard lk(vcpus_lock_);
    lender = lender_;
    by_slot_[slot].store(nullptr, std::memory_order_release);
    vcpus_[slot].reset();
    last = live_vcpus_.fetch_sub(1) == 1;
  }
  if (!last) retarget_shared_signals(vcpu);  // it may have been the one woken for them
  // A thread of a vfork child that ends before the others: its vCPU leaves the parent's space
  // (every borrowing vCPU deregisters before its slot is given back).
  if (!last && lender) lender->take_space_back(slot);
  if (last) {
    {
      std::lock_guard lk(exit_lock_);
      if (!exiting_.load()) exit_info_ = {exit_code & 0xff, 0};
      exiting_.store(true, std::memory_order_release);
      exit_cv_.notify_all();
    }
    end(slot);  // gives the slot back
    return;
  }
  machine_.give_slot(slot);
}

void GuestProcess::end(mmu::VcpuId slot) {
  futexes_.shut_down();
  drop_space(slot);
  // Nothing uses the slot after the space is gone: back before the parent hears of the end
  // (a parent woken by wait4 may fork at once).
  machine_.give_slot(slot);
  files_->close_all();  // a pipe's readers see end-of-file once every writer is gone
  release_vfork_parent();
  machine_.process_ended(*this);
}

int64_t GuestProcess::cpu_time_ns(bool user_only) {
  const ResourceUsage ended = usage_.ended_threads();
  int64_t ns = (ended.user_us + (user_only ? 0 : ended.system_us)) * 1000;
  std::vector<int> tids;
  {
    std::lock_guard lk(vcpus_lock_);
    for (auto& v : vcpus_)
      if (v && v->host_tid()) tids.push_back(v->host_tid());
  }
  for (int tid : tids) {
    // Linux's clock id for another thread's CPU clock (MAKE_THREAD_CPUCLOCK): VIRT (user) is
    // 1, PROF (user and system) 0, with the per-thread bit 4.
    const clockid_t clock = static_cast<clockid_t>((~static_cast<unsigned>(tid) << 3) | (user_only ? 1u : 0u) | 4u);
    timespec t{};
    if (::clock_gettime(clock, &t) == 0) ns += int64_t{t.tv_sec} * 1000000000 + t.tv_nsec;
  }
  return ns;
}

void GuestProcess::for_each_other_vcpu(const Vcpu& self, const std::function<void(Vcpu&)>& fn) {
  std::vector<std::shared_ptr<Vcpu>> others;
  {
    std::lock_guard lk(vcpus_lock_);
    for (auto& v : vcpus_)
      if (v && v.get() != &self) others.push_back(v);
  }
  for (auto& v : others) fn(*v);
}

void GuestProcess::exit_group(int status) { end_all({status & 0xff, 0}); }

void GuestProcess::end_all(ExitInfo info) {
  {
    std::lock_guard lk(exit_lock_);
    if (exiting_.load()) return;
    exit_info_ = info;
    exiting_.store(true, std::memory_order_release);
    exit_cv_.notify_all();
  }
  {
    // Under the tree lock: a wait4 that has just seen exiting() false is asleep before this.
    std::lock_guard lk(machine_.tree_lock);
  }
  machine_.tree_changed.notify_all();  // a wait4 in this process returns
  if (ending_fd_ >= 0) (void)::eventfd_write(ending_fd_, 1);  // and a pipe read
  futexes_.shut_down();
  machine_.shared_futexes().interrupt();  // its waiters there see exiting() and leave
  std::lock_guard lk(vcpus_lock_);
  for (auto& v : vcpus_)
    if (v) v->post(kAttnStop);
}

void GuestProcess::kill_by_signal(int signal, const std::string& message) {
  // Several vCPUs can die at once (all out of memory, say): one line, from the first, whose
  // signal is also the exit status.
  std::lock_guard lk(fatal_lock_);
  if (exiting()) return;
  if (!message.empty()) {
    std::fflush(stdout);
    std::fprintf(stderr, "emu: %s\n", message.c_str());
  }
  end_all({0, signal});
}

GuestProcess::SleepEnd GuestProcess::sleep_until(std::optional<std::chrono::steady_clock::time_point> deadline,
                                                 Vcpu* waiter) {
  std::unique_lock lk(exit_lock_);
  const auto signalled = [&] { return waiter && signals_.deliverable(waiter->signals()); };
  const auto done = [&] { return exiting_.load() || signalled(); };
  if (!deadline)
    exit_cv_.wait(lk, done);
  else if (!exit_cv_.wait_until(lk, *deadline, done))
    return SleepEnd::Deadline;
  return exiting_.load() ? SleepEnd::Exiting : SleepEnd::Signal;
}

void GuestProcess::with_gdt_entry(mmu::VcpuId v, uint32_t entry, const std::array<uint32_t, 2>& descriptor,
                                  const std::function<void()>& load) {
  // A vfork child writes the GDT page of its parent's space: under the parent's lock.
  std::lock_guard lk(lender_ ? lender_->gdt_lock_ : gdt_lock_);
  (void)memory_.write(v, kI386GdtAddress + entry * 8, descriptor.data(), 8);
  load();
}

void GuestProcess::note_unknown_syscall(uint64_t nr) {
  if (machine_.first_unknown_syscall(arch_, nr))
    spdlog::warn("unsupported {} syscall {} answered ENOSYS (logged once)", to_string(arch_), nr);
}

void GuestProcess::flush(const mmu::AddressSpace&, std::span<const mmu::VirtRange> ranges, mmu::VcpuId requester) {
  const uint64_t generation = machine_.next_flush_generation();
  Vcpu* self = by_slot_[requester].load(std::memory_order_acquire);  // null: the reclaimer
  // A requester in a syscall flushes its own TLB before it re-enters guest code; one in the
  // fault path is refilling the only entry it changed.
  if (self && self->where() != VcpuWhere::Running) self->request_flush(generation);
  bool lent = false;
  {
    std::lock_guard lk(vcpus_lock_);
    lent = !borrowers_.empty();
  }
  if (self && !multi_vcpu() && !lent) return;
  const uint64_t start = now_ns();
  std::vector<std::shared_ptr<Vcpu>> others;
  {
    std::lock_guard lk(vcpus_lock_);
    for (auto& v : vcpus_)
      if (v && v.get() != self) others.push_back(v);
    for (auto& v : borrowers_)
      if (v.get() != self) others.push_back(v);  // vfork children running in this space
  }
  for (auto& v : others) v->request_flush(generation);
  // vCPUs waiting for the reclaimer to free a frame acknowledge from that wait: wake them.
  if (mmu::Reclaimer* r = machine_.reclaimer()) r->nudge_waiters();
  // Quiescent vCPUs (Outside) flush before they run guest code again; the others answer at
  // their next sync point: a block boundary, a wait loop, the end of a host access.
  for (auto& v : others) {
    unsigned spins = 0;
    while (v->flushes_done() < generation && v->where() != VcpuWhere::Outside) {
      if (self) self->serve_flushes();
      if (++spins > 64) sched_yield();
    }
  }
  const uint64_t end = now_ns();
  counters().slot(requester).add(EmuCounter::ShootdownsRequested);
  counters().slot(requester).add(EmuCounter::ShootdownWaitNs, end - start);
  if (Tracer* tracer = this->tracer(); tracer && tracer->on(TraceEvent::Shootdown) && tracer->wants_vcpu(requester)) {
    tracer->record(TraceEvent::Shootdown, requester, start, end - start, "shootdown",
                   fmt::format("{} range(s){} to {} vCPU(s), acknowledged in {:.3f}us", ranges.size(),
                               ranges.empty() ? " (everything)" : "", others.size(), double(end - start) / 1000.0),
                   {{"ranges", ranges.size()}, {"vcpus", others.size()}, {"wait_ns", end - start}});
  }
}

void GuestProcess::begin_host_access(mmu::VcpuId v) {
  if (v > config().max_vcpus) return;
  if (Vcpu* vcpu = by_slot_[v].load(std::memory_order_acquire)) vcpu->begin_host_access();
}

void GuestProcess::end_host_access(mmu::VcpuId v) {
  if (v > config().max_vcpus) return;
  if (Vcpu* vcpu = by_slot_[v].load(std::memory_order_acquire)) vcpu->end_host_access();
}

void GuestProcess::flush_code() {
  // Code changed in a space shared with a vfork parent is the parent's code too.
  if (lender_) lender_->flush_code();
  std::lock_guard lk(vcpus_lock_);
  for (auto& v : vcpus_)
    if (v) v->post(kAttnFlushCode);
  for (auto& v : borrowers_) v->post(kAttnFlushCode);
}

}  // namespace emu
