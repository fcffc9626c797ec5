#include "emu/observe/stats_report.h"

#include <fmt/format.h>

#include "emu/process/machine.h"

namespace emu {

namespace {
template <typename Enum, typename Counters>
nlohmann::json counters_json(const Counters& counters) {
  nlohmann::json j = nlohmann::json::object();
  const auto sum = counters.sum();
  for (size_t i = 0; i < static_cast<size_t>(Enum::kCount); ++i)
    j[std::string(counter_name(static_cast<Enum>(i)))] = sum[i];
  return j;
}
}  // namespace

nlohmann::json stats_json(Machine& m, const RunSummary& run) {
  GuestProcess& p = *m.first();
  const auto space = p.space_summary();
  nlohmann::json j;
  j["program"] = run.program;
  j["arch"] = std::string(to_string(p.arch()));
  j["exit_status"] = run.exit_status;
  j["wall_seconds"] = run.wall_seconds;
  j["scheme"] = std::string(mmu::to_string(space.scheme));
  j["paging"] = std::string(mmu::to_string(space.paging));
  j["rss_mode"] = std::string(mmu::to_string(space.rss));
  j["guest_memory_bytes"] = m.pool().bytes();
  j["rss_pages_at_exit"] = space.rss_pages;
  j["free_frames_at_exit"] = m.pool().free_frames();
  // The run's high-water mark of guest memory in use (FramePool::peak_used_frames).
  j["peak_used_frames"] = m.pool().peak_used_frames();
  nlohmann::json mmu_counters = nlohmann::json::object();
  const auto totals = m.mmu_totals();
  for (size_t i = 0; i < totals.size(); ++i)
    mmu_counters[std::string(mmu::counter_name(static_cast<mmu::MmuCounter>(i)))] = totals[i];
  j["mmu"] = mmu_counters;
  j["frame_pool"] = counters_json<mmu::PoolCounter>(m.pool().counters());
  j["emulator"] = counters_json<EmuCounter>(m.counters());
  const auto& sm = m.shared_memory().stats();
  j["page_cache"] = {{"misses", sm.misses.load()}, {"hits", sm.hits.load()}, {"writebacks", sm.writebacks.load()},
                     {"refreshes", sm.refreshes.load()}, {"rmap_walks", sm.rmap_walks.load()},
                     {"swapped_out", sm.swapped_out.load()}, {"swapped_in", sm.swapped_in.load()},
                     {"dropped", sm.dropped.load()}, {"evict_written", sm.evict_written.load()},
                     {"evict_aborted", sm.evict_aborted.load()}};
  const ForkStats forks = m.fork_stats();
  j["processes"] = {{"forks", forks.forks},
                    {"execs", forks.execs},
                    {"fork_ns_total", forks.total_ns},
                    {"fork_ns_max", forks.max_ns},
                    {"pt_share", m.fork_tables() == mmu::ForkTables::Share}};
  nlohmann::json swap = nullptr;
  if (const mmu::SwapDevice* d = m.swap()) {
    swap = {{"bytes", d->slot_count() * mmu::kPageSize},
            {"where", d->description()},
            {"slots_used_at_exit", d->slots_used()},
            {"bytes_written", d->bytes_written()},
            {"bytes_read", d->bytes_read()},
            {"write_ns", d->write_ns()},
            {"read_ns", d->read_ns()},
            {"write_errors", d->write_errors()},
            {"read_errors", d->read_errors()},
            {"reclaimer_rounds", m.reclaimer()->rounds()},
            {"reclaimer_wakeups", m.reclaimer()->wakeups()}};
  }
  j["swap"] = swap;
  return j;
}

void print_stats(std::FILE* out, Machine& machine, const RunSummary& run) {
  GuestProcess& p = *machine.first();
  const auto space = p.space_summary();
  const auto m = machine.mmu_totals();
  const auto e = machine.counters().sum();
  auto mc = [&](mmu::MmuCounter c) { return m[static_cast<size_t>(c)]; };
  auto ec = [&](EmuCounter c) { return e[static_cast<size_t>(c)]; };
  const uint64_t faults = mc(mmu::MmuCounter::FaultZeroFill) + mc(mmu::MmuCounter::FaultZeroPage) +
                          mc(mmu::MmuCounter::FaultCopyOnWrite) + mc(mmu::MmuCounter::FaultWriteUpgrade) +
                          mc(mmu::MmuCounter::FaultFileFill) + mc(mmu::MmuCounter::FaultStackGrowth) +
                          mc(mmu::MmuCounter::FaultMajor) + mc(mmu::MmuCounter::FaultCowCopy) +
                          mc(mmu::MmuCounter::FaultCowReuse) + mc(mmu::MmuCounter::FaultSharedFill) +
                          mc(mmu::MmuCounter::FaultSharedHit);
  const uint64_t locks = mc(mmu::MmuCounter::LockAcquisitions);
  fmt::print(out, "--- emu stats: {} ({}, scheme {}, paging {}) exit {} in {:.3f} s\n", run.program, to_string(p.arch()),
             mmu::to_string(space.scheme), mmu::to_string(space.paging), run.exit_status,
             run.wall_seconds);
  fmt::print(out, "vCPUs started {:>10}   syscalls {:>12}   unknown syscalls {}   block hook added as memory ran short {}\n",
             ec(EmuCounter::VcpusStarted), ec(EmuCounter::Syscalls), ec(EmuCounter::UnknownSyscalls),
             ec(EmuCounter::HookedForReclaim));
  fmt::print(out, "faults        {:>10}   ({:.2f} M/s)   zero-fill {}  zero-page {}  cow {}  write-upgrade {}  file {}  stack {}\n",
             faults, run.wall_seconds > 0 ? faults / run.wall_seconds / 1e6 : 0.0, mc(mmu::MmuCounter::FaultZeroFill),
             mc(mmu::MmuCounter::FaultZeroPage), mc(mmu::MmuCounter::FaultCopyOnWrite),
             mc(mmu::MmuCounter::FaultWriteUpgrade), mc(mmu::MmuCounter::FaultFileFill),
             mc(mmu::MmuCounter::FaultStackGrowth));
  fmt::print(out, "segv faults   {:>10}   TLB fills (translations that were hits) {}\n",
             mc(mmu::MmuCounter::FaultSegvMap) + mc(mmu::MmuCounter::FaultSegvAccess), mc(mmu::MmuCounter::TranslateHit));
  fmt::print(out, "pt locks      {:>10}   contended {} ({:.2f}%)   wait {:.3f} ms   cmpxchg failures {}   populate races lost {}\n",
             locks, mc(mmu::MmuCounter::LockContended),
             locks ? 100.0 * mc(mmu::MmuCounter::LockContended) / locks : 0.0, mc(mmu::MmuCounter::LockWaitNs) / 1e6,
             mc(mmu::MmuCounter::CmpxchgFailures), mc(mmu::MmuCounter::PopulateRacesLost));
  fmt::print(out, "tables        {:>10} allocated, {} freed   mmap {}  munmap {}  mprotect {}\n",
             mc(mmu::MmuCounter::TablesAllocated), mc(mmu::MmuCounter::TablesFreed), mc(mmu::MmuCounter::MmapCalls),
             mc(mmu::MmuCounter::MunmapCalls), mc(mmu::MmuCounter::MprotectCalls));
  fmt::print(out, "shootdowns    {:>10}   acknowledgement wait {:.3f} ms   flushes served {}   code flushes {}\n",
             ec(EmuCounter::ShootdownsRequested), ec(EmuCounter::ShootdownWaitNs) / 1e6,
             ec(EmuCounter::TlbFlushesServed), ec(EmuCounter::CodeFlushesServed));
  fmt::print(out, "atomics       {:>10} host atomics ({} on a scratch copy)   {} gated (split locks {}, page crossings {})   sites hooked {}\n",
             ec(EmuCounter::AtomicsHost), ec(EmuCounter::AtomicsRedirected), ec(EmuCounter::AtomicsGated),
             ec(EmuCounter::AtomicSplitLocks), ec(EmuCounter::AtomicPageCrossings), ec(EmuCounter::AtomicSitesHooked));
  fmt::print(out, "exclusive     {:>10} blocks   getting exclusive {:.3f} ms   parked {:.3f} ms   blocks scanned {}\n",
             ec(EmuCounter::ExclusiveSections), ec(EmuCounter::ExclusiveWaitNs) / 1e6, ec(EmuCounter::ParkedNs) / 1e6,
             ec(EmuCounter::AtomicBlockScans));
  fmt::print(out, "futex         {:>10} waits, {} wakes   rss at exit {} pages   guest memory {} MiB, at most {:.1f} MiB used\n",
             ec(EmuCounter::FutexWaits), ec(EmuCounter::FutexWakes), space.rss_pages, machine.pool().bytes() >> 20,
             machine.pool().peak_used_frames() * mmu::kPageSize / 1048576.0);
  if (mc(mmu::MmuCounter::FaultSharedFill) || mc(mmu::MmuCounter::FaultSharedHit)) {
    const auto& sm = machine.shared_memory().stats();
    fmt::print(out, "shared memory {:>10} faults   filled {}   found mapped elsewhere {}   page cache: misses {} hits {} writebacks {} refreshed by write() {}\n",
               mc(mmu::MmuCounter::FaultSharedFill) + mc(mmu::MmuCounter::FaultSharedHit),
               mc(mmu::MmuCounter::FaultSharedFill), mc(mmu::MmuCounter::FaultSharedHit), sm.misses.load(),
               sm.hits.load(), sm.writebacks.load(), sm.refreshes.load());
    if (sm.rmap_walks.load())
      fmt::print(out, "shared reclaim{:>10} rmap walks   to swap {}   back from swap {}   file pages dropped {}   written back {}   kept (pte left) {}\n",
                 sm.rmap_walks.load(), sm.swapped_out.load(), sm.swapped_in.load(), sm.dropped.load(),
                 sm.evict_written.load(), sm.evict_aborted.load());
  }
  if (ec(EmuCounter::SignalsDelivered) || ec(EmuCounter::SyscallsRestarted))
    fmt::print(out, "signals       {:>10} handlers run   syscalls restarted {}\n", ec(EmuCounter::SignalsDelivered),
               ec(EmuCounter::SyscallsRestarted));
  const ForkStats forks = machine.fork_stats();
  if (forks.forks || forks.execs) {
    fmt::print(out, "processes     {:>10} forks ({:.1f} us mean, {:.1f} us max)   execs {}   page tables {} ({} shared, {} copied at fork; unshared {} by copy, {} in place; {} dropped whole)   cow {} copied, {} reused\n",
               forks.forks, forks.forks ? forks.total_ns / 1e3 / forks.forks : 0.0, forks.max_ns / 1e3, forks.execs,
               machine.fork_tables() == mmu::ForkTables::Share ? "shared" : "copied",
               mc(mmu::MmuCounter::ForkTablesShared), mc(mmu::MmuCounter::ForkTablesCopied),
               mc(mmu::MmuCounter::UnsharesCopied), mc(mmu::MmuCounter::UnsharesExclusive),
               mc(mmu::MmuCounter::SharedTablesDropped), mc(mmu::MmuCounter::FaultCowCopy),
               mc(mmu::MmuCounter::FaultCowReuse));
  }
  if (const mmu::SwapDevice* d = machine.swap()) {
    fmt::print(out, "reclaim       {:>10} scanned   aged {}   reclaimed {} (clean, no write: {})   faults waiting for memory {}\n",
               mc(mmu::MmuCounter::ReclaimScanned), mc(mmu::MmuCounter::ReclaimAged), mc(mmu::MmuCounter::Reclaimed),
               mc(mmu::MmuCounter::ReclaimCleanDropped), mc(mmu::MmuCounter::FaultMemoryWaits));
    fmt::print(out, "swap          {:>10} pages written ({:.1f} MiB), {} read back (major faults)   {} MiB of {} used at exit   errors w/r {}/{}   swap full {}   on {}\n",
               mc(mmu::MmuCounter::SwapOuts), d->bytes_written() / 1048576.0, mc(mmu::MmuCounter::FaultMajor),
               d->slots_used() * mmu::kPageSize >> 20, d->slot_count() * mmu::kPageSize >> 20, d->write_errors(),
               d->read_errors(), mc(mmu::MmuCounter::SwapFull), d->description());
  }
}

}  // namespace emu
