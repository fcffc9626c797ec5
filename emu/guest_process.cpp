#include "emu/guest_process.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <system_error>

#include "emu/elf_loader.h"
#include "emu/initial_stack.h"

namespace emu {

namespace {
uint64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

std::unique_ptr<GuestProcess> GuestProcess::create(const EmulatorConfig& config, GuestArch arch, std::string* error) {
  const mmu::PagingMode paging =
      config.paging.value_or(arch == GuestArch::I386 ? mmu::PagingMode::I386 : mmu::PagingMode::X86_64);
  if (arch == GuestArch::X86_64 && (paging == mmu::PagingMode::I386 || paging == mmu::PagingMode::Pae)) {
    *error = "an x86_64 guest needs x86_64 or la57 paging (it addresses more than 32 bits)";
    return nullptr;
  }
  mmu::FramePoolConfig pc;
  pc.bytes = config.mem_bytes;
  pc.vcpu_slots = config.max_vcpus + 1;  // the vCPUs, and the reclaimer
  // Pre-fault in small steps: a 32 MiB first chunk cost 45 ms, most of a small guest's run.
  pc.populate_chunk_bytes = uint64_t{4} << 20;
  auto pool = mmu::FramePool::create(pc, error);
  if (!pool) return nullptr;
  std::unique_ptr<GuestProcess> p(new GuestProcess(config, arch, std::move(pool)));
  if (kTracingCompiledIn && config.trace.events) {
    p->tracer_ = Tracer::create(config.trace, config.max_vcpus, error);
    if (!p->tracer_) return nullptr;
  }
  if (config.swap_bytes) {
    p->swap_ = config.swap_file.empty() ? mmu::SwapDevice::open_temporary(config.swap_bytes, error)
                                        : mmu::SwapDevice::open(config.swap_file, config.swap_bytes, error);
    if (!p->swap_) return nullptr;
    mmu::ReclaimerConfig rc;
    rc.slot = p->reclaimer_slot();
    p->reclaimer_ = std::make_unique<mmu::Reclaimer>(*p->pool_, p->swap_.get(), rc);
    // A failed swap write: the page stayed resident, nothing is lost, but the guest cannot
    // go on with less memory than it needs. It ends with SIGBUS, as the users expect.
    p->reclaimer_->set_fatal_hook([raw = p.get()](const std::string& why) { raw->kill_by_signal(SIGBUS, "guest killed by SIGBUS: " + why); });
    if (Tracer* tracer = p->tracer(); tracer && tracer->on(TraceEvent::Reclaim)) {
      p->reclaimer_->set_batch_observer([tracer](const mmu::ReclaimBatchReport& r) {
        tracer->record(TraceEvent::Reclaim, tracer->reclaimer_track(), r.start_ns, r.end_ns - r.start_ns, "reclaim batch",
                       fmt::format("frames={} freed={} swap-full={} io-error={} {:.3f}us", r.frames, r.outcome.freed,
                                   r.outcome.swap_full, r.outcome.io_error, double(r.end_ns - r.start_ns) / 1000.0),
                       {{"frames", r.frames}, {"freed", r.outcome.freed}, {"swap_full", r.outcome.swap_full},
                        {"io_error", r.outcome.io_error}});
      });
    }
  }
  mmu::AddressSpaceConfig ac;
  ac.paging = paging;
  ac.scheme = config.scheme;
  ac.rss = config.rss;
  ac.tlbs = p.get();
  ac.swap = p->swap_.get();
  ac.reclaimer = p->reclaimer_.get();
  p->space_ = mmu::make_address_space(*p->pool_, ac, error);
  if (!p->space_) return nullptr;
  p->memory_ = GuestMemory(*p->space_, p.get());
  // Every wait loop in the MMU serves the waiting vCPU's TLB flushes (DESIGN.md decision 5).
  p->space_->set_wait_hook([raw = p.get()](mmu::VcpuId v) {
    if (Vcpu* vcpu = raw->by_slot_[v].load(std::memory_order_acquire)) vcpu->serve_flushes();
  });
  if (p->reclaimer_) p->reclaimer_->attach(*p->space_);  // started by run(), once the loader is done
  return p;
}

GuestProcess::GuestProcess(const EmulatorConfig& config, GuestArch arch, std::unique_ptr<mmu::FramePool> pool)
    : config_(config),
      arch_(arch),
      pool_(std::move(pool)),
      counters_(config.max_vcpus + 1),
      pid_(static_cast<int>(::getpid())),
      vcpus_(config.max_vcpus),
      by_slot_(new std::atomic<Vcpu*>[config.max_vcpus + 1]),
      next_tid_(pid_ + 1) {
  for (uint32_t i = 0; i <= config.max_vcpus; ++i) by_slot_[i].store(nullptr);
}

GuestProcess::~GuestProcess() {
  for (auto& t : threads_)
    if (t.thread.joinable()) t.thread.join();
  if (reclaimer_) {
    reclaimer_->stop();
    if (space_) reclaimer_->detach(*space_);
  }
  if (tracer_) {
    std::string error;
    if (!tracer_->finish(&error)) std::fprintf(stderr, "emu: %s\n", error.c_str());
    tracer_.reset();  // the teardown below is emu's, not the guest's: not traced
  }
  space_.reset();  // tables, frames and swap slots go back before the pool and swap do
  reclaimer_.reset();
  // Exact accounting: with the space gone, no frame but the zero frame is in use and no
  // swap slot is taken. Anything else is a bug worth a loud line (the tests look for it).
  const auto by_state = pool_->count_by_state();
  const uint64_t in_use = pool_->frame_count() - by_state[static_cast<size_t>(mmu::FrameState::Free)] - 1;
  if (in_use != 0 || (swap_ && swap_->slots_used() != 0)) {
    std::fprintf(stderr, "emu: internal error: %llu frames and %llu swap slots leaked\n",
                 static_cast<unsigned long long>(in_use),
                 static_cast<unsigned long long>(swap_ ? swap_->slots_used() : 0));
  }
}

int GuestProcess::run(const ElfImage& image, const std::vector<std::string>& argv, const std::vector<std::string>& envp,
                      std::string* error) {
  constexpr mmu::VcpuId kLoader = 0;  // the first vCPU's slot, used before it exists
  char resolved[PATH_MAX];
  exe_path_ = ::realpath(image.path().c_str(), resolved) ? resolved : image.path();
  LoadedImage loaded;
  if (!load_elf(image, *space_, kLoader, loaded, error)) return -1;
  if (arch_ == GuestArch::I386) {
    mmu::MapRequest gdt;
    gdt.addr = kI386GdtAddress;
    gdt.length = mmu::kPageSize;
    gdt.prot = mmu::kProtRead | mmu::kProtWrite;
    gdt.placement = mmu::MapPlacement::FixedNoReplace;
    gdt.name = "[gdt]";
    if (!space_->map(kLoader, gdt).ok()) {
      *error = "cannot map the GDT page";
      return -1;
    }
    for (const auto& [entry, descriptor] : kI386FlatSegments)
      (void)memory_.write(kLoader, kI386GdtAddress + entry * 8, descriptor.data(), 8);
  }
  const uint64_t sp = build_initial_stack(memory_, kLoader, arch_, loaded, argv.empty() ? image.path() : argv[0],
                                          argv, envp, error);
  if (sp == 0) return -1;
  // The loader writes guest memory from no vCPU's slot, which no shootdown waits for: the
  // reclaimer may only run once that is over.
  if (reclaimer_) reclaimer_->start();

  VcpuStart start;
  const auto& ids = general_register_ids(arch_);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] == UC_X86_REG_RSP || ids[i] == UC_X86_REG_ESP) start.regs.general[i] = sp;
    if (ids[i] == UC_X86_REG_RIP || ids[i] == UC_X86_REG_EIP) start.regs.general[i] = loaded.entry;
    if (ids[i] == UC_X86_REG_EFLAGS) start.regs.general[i] = 0x202;
  }
  std::shared_ptr<Vcpu> first;
  {
    std::lock_guard lk(vcpus_lock_);
    first = std::make_shared<Vcpu>(*this, 0, pid_);
    vcpus_[0] = first;
    by_slot_[0].store(first.get(), std::memory_order_release);
    live_vcpus_.store(1);
  }
  if (!start_thread(std::move(first), start)) {
    *error = "cannot create a host thread for the guest";
    return -1;
  }

  std::unique_lock lk(exit_lock_);
  exit_cv_.wait(lk, [&] { return all_threads_done_ || exiting_.load(); });
  // After exit_group, threads blocked in host calls (a read of a terminal, say) cannot be
  // interrupted; give the others a moment to reach a sync point, then stop waiting.
  exit_cv_.wait_for(lk, std::chrono::seconds(2), [&] { return all_threads_done_; });
  clean_exit_ = all_threads_done_;
  return exit_status_;
}

bool GuestProcess::start_thread(std::shared_ptr<Vcpu> vcpu, VcpuStart start) {
  const mmu::VcpuId slot = vcpu->slot();
  HostThread host{{}, std::make_shared<std::atomic<bool>>(false)};
  // Not under vcpus_lock_: creating a thread takes a while, and can throw.
  try {
    host.thread = std::thread([this, vcpu = std::move(vcpu), start = std::move(start), ended = host.ended]() mutable {
      counters_.slot(vcpu->slot()).add(EmuCounter::VcpusStarted);  // by the slot's own thread
      if (Tracer* tracer = this->tracer())
        tracer->name_track(vcpu->slot(), fmt::format("vCPU {} (tid {})", vcpu->slot(), vcpu->tid()));
      vcpu->run(start);
      vcpu.reset();  // usually the last reference: the engine is closed here
      ended->store(true, std::memory_order_release);
    });
  } catch (const std::system_error& e) {
    spdlog::warn("cannot create a host thread for a guest thread: {}", e.what());
    release_slot(slot);
    return false;
  }
  std::lock_guard lk(vcpus_lock_);
  threads_.push_back(std::move(host));
  return true;
}

void GuestProcess::release_slot(mmu::VcpuId slot) {
  std::lock_guard lk(vcpus_lock_);
  by_slot_[slot].store(nullptr, std::memory_order_release);
  vcpus_[slot].reset();
  live_vcpus_.fetch_sub(1);
}

std::vector<GuestProcess::HostThread> GuestProcess::take_ended_threads_locked() {
  const auto running = std::partition(threads_.begin(), threads_.end(), [](const HostThread& t) {
    return !t.ended->load(std::memory_order_acquire);
  });
  std::vector<HostThread> ended(std::make_move_iterator(running), std::make_move_iterator(threads_.end()));
  threads_.erase(running, threads_.end());
  return ended;
}

int GuestProcess::spawn_thread(const VcpuStart& start, uint64_t clear_child_tid, int* tid,
                               const std::function<void(int)>& before_start) {
  std::shared_ptr<Vcpu> vcpu;
  std::vector<HostThread> ended;
  {
    std::lock_guard lk(vcpus_lock_);
    if (exiting()) return -EAGAIN;
    uint32_t slot = 0;
    while (slot < vcpus_.size() && vcpus_[slot]) ++slot;
    if (slot == vcpus_.size()) return -EAGAIN;  // as Linux does past RLIMIT_NPROC
    *tid = next_tid_.fetch_add(1);
    vcpu = std::make_shared<Vcpu>(*this, slot, *tid);
    vcpu->clear_child_tid = clear_child_tid;
    // Registered but Outside until it runs: flushes and the exclusive gate need not wait for it.
    vcpus_[slot] = vcpu;
    by_slot_[slot].store(vcpu.get(), std::memory_order_release);
    live_vcpus_.fetch_add(1);
    ended = take_ended_threads_locked();
  }
  for (auto& t : ended) t.thread.join();
  // Guest writes may fault and shoot down, which takes vcpus_lock_: outside it.
  before_start(*tid);
  // As Linux's clone when it has no memory for the thread.
  return start_thread(std::move(vcpu), start) ? 0 : -EAGAIN;
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

void GuestProcess::thread_finished(Vcpu& vcpu, int exit_code) {
  bool last = false;
  {
    std::lock_guard lk(vcpus_lock_);
    by_slot_[vcpu.slot()].store(nullptr, std::memory_order_release);
    vcpus_[vcpu.slot()].reset();
    last = live_vcpus_.fetch_sub(1) == 1;
  }
  if (last) finish(exit_code);
}

void GuestProcess::finish(int status) {
  std::lock_guard lk(exit_lock_);
  if (!exiting_.load()) exit_status_ = status;
  exiting_.store(true, std::memory_order_release);
  all_threads_done_ = true;
  exit_cv_.notify_all();
}

void GuestProcess::exit_group(int status) {
  {
    std::lock_guard lk(exit_lock_);
    if (exiting_.load()) return;
    exit_status_ = status;
    exiting_.store(true, std::memory_order_release);
    exit_cv_.notify_all();
  }
  futexes_.shut_down();
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
  exit_group(128 + signal);
}

bool GuestProcess::sleep_until(std::optional<std::chrono::steady_clock::time_point> deadline) {
  std::unique_lock lk(exit_lock_);
  const auto exiting = [&] { return exiting_.load(); };
  if (!deadline) {
    exit_cv_.wait(lk, exiting);
    return false;
  }
  return !exit_cv_.wait_until(lk, *deadline, exiting);
}

void GuestProcess::with_gdt_entry(mmu::VcpuId v, uint32_t entry, const std::array<uint32_t, 2>& descriptor,
                                  const std::function<void()>& load) {
  std::lock_guard lk(gdt_lock_);
  (void)memory_.write(v, kI386GdtAddress + entry * 8, descriptor.data(), 8);
  load();
}

void GuestProcess::note_unknown_syscall(uint64_t nr) {
  std::lock_guard lk(unknown_lock_);
  if (unknown_logged_.insert(nr).second)
    spdlog::warn("unsupported {} syscall {} answered ENOSYS (logged once)", to_string(arch_), nr);
}

void GuestProcess::flush(const mmu::AddressSpace&, std::span<const mmu::VirtRange> ranges, mmu::VcpuId requester) {
  const uint64_t generation = flush_generation_.fetch_add(1) + 1;
  Vcpu* self = by_slot_[requester].load(std::memory_order_acquire);  // null: the reclaimer
  // A requester in a syscall flushes its own TLB before it re-enters guest code; one in the
  // fault path is refilling the only entry it changed.
  if (self && self->where() != VcpuWhere::Running) self->request_flush(generation);
  if (self && !multi_vcpu()) return;
  const uint64_t start = now_ns();
  std::vector<std::shared_ptr<Vcpu>> others;
  {
    std::lock_guard lk(vcpus_lock_);
    for (auto& v : vcpus_)
      if (v && v.get() != self) others.push_back(v);
  }
  for (auto& v : others) v->request_flush(generation);
  // vCPUs waiting for the reclaimer to free a frame acknowledge from that wait: wake them.
  if (reclaimer_) reclaimer_->nudge_waiters();
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
  counters_.slot(requester).add(EmuCounter::ShootdownsRequested);
  counters_.slot(requester).add(EmuCounter::ShootdownWaitNs, end - start);
  if (Tracer* tracer = this->tracer(); tracer && tracer->on(TraceEvent::Shootdown) && tracer->wants_vcpu(requester)) {
    tracer->record(TraceEvent::Shootdown, requester, start, end - start, "shootdown",
                   fmt::format("{} range(s){} to {} vCPU(s), acknowledged in {:.3f}us", ranges.size(),
                               ranges.empty() ? " (everything)" : "", others.size(), double(end - start) / 1000.0),
                   {{"ranges", ranges.size()}, {"vcpus", others.size()}, {"wait_ns", end - start}});
  }
}

void GuestProcess::begin_host_access(mmu::VcpuId v) {
  if (v > config_.max_vcpus) return;
  if (Vcpu* vcpu = by_slot_[v].load(std::memory_order_acquire)) vcpu->begin_host_access();
}

void GuestProcess::end_host_access(mmu::VcpuId v) {
  if (v > config_.max_vcpus) return;
  if (Vcpu* vcpu = by_slot_[v].load(std::memory_order_acquire)) vcpu->end_host_access();
}

void GuestProcess::flush_code() {
  std::lock_guard lk(vcpus_lock_);
  for (auto& v : vcpus_)
    if (v) v->post(kAttnFlushCode);
}

}  // namespace emu
