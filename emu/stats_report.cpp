#include "emu/stats_report.h"

#include <fmt/format.h>

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

nlohmann::json stats_json(GuestProcess& p, const RunSummary& run) {
  nlohmann::json j;
  j["program"] = run.program;
  j["arch"] = std::string(to_string(p.arch()));
  j["exit_status"] = run.exit_status;
  j["wall_seconds"] = run.wall_seconds;
  j["scheme"] = std::string(mmu::to_string(p.space().scheme()));
  j["paging"] = std::string(mmu::to_string(p.space().paging_mode()));
  j["rss_mode"] = std::string(mmu::to_string(p.space().rss_mode()));
  j["guest_memory_bytes"] = p.pool().bytes();
  j["rss_pages_at_exit"] = p.space().rss_pages();
  j["free_frames_at_exit"] = p.pool().free_frames();
  j["mmu"] = counters_json<mmu::MmuCounter>(p.space().counters());
  j["frame_pool"] = counters_json<mmu::PoolCounter>(p.pool().counters());
  j["emulator"] = counters_json<EmuCounter>(p.counters());
  nlohmann::json swap = nullptr;
  if (const mmu::SwapDevice* d = p.swap()) {
    swap = {{"bytes", d->slot_count() * mmu::kPageSize},
            {"where", d->description()},
            {"slots_used_at_exit", d->slots_used()},
            {"bytes_written", d->bytes_written()},
            {"bytes_read", d->bytes_read()},
            {"write_ns", d->write_ns()},
            {"read_ns", d->read_ns()},
            {"write_errors", d->write_errors()},
            {"read_errors", d->read_errors()},
            {"reclaimer_rounds", p.reclaimer()->rounds()},
            {"reclaimer_wakeups", p.reclaimer()->wakeups()}};
  }
  j["swap"] = swap;
  return j;
}

void print_stats(std::FILE* out, GuestProcess& p, const RunSummary& run) {
  const auto m = p.space().counters().sum();
  const auto e = p.counters().sum();
  auto mc = [&](mmu::MmuCounter c) { return m[static_cast<size_t>(c)]; };
  auto ec = [&](EmuCounter c) { return e[static_cast<size_t>(c)]; };
  const uint64_t faults = mc(mmu::MmuCounter::FaultZeroFill) + mc(mmu::MmuCounter::FaultZeroPage) +
                          mc(mmu::MmuCounter::FaultCopyOnWrite) + mc(mmu::MmuCounter::FaultWriteUpgrade) +
                          mc(mmu::MmuCounter::FaultFileFill) + mc(mmu::MmuCounter::FaultStackGrowth) +
                          mc(mmu::MmuCounter::FaultMajor);
  const uint64_t locks = mc(mmu::MmuCounter::LockAcquisitions);
  fmt::print(out, "--- emu stats: {} ({}, scheme {}, paging {}) exit {} in {:.3f} s\n", run.program, to_string(p.arch()),
             mmu::to_string(p.space().scheme()), mmu::to_string(p.space().paging_mode()), run.exit_status,
             run.wall_seconds);
  fmt::print(out, "vCPUs started {:>10}   syscalls {:>12}   unknown syscalls {}\n", ec(EmuCounter::VcpusStarted),
             ec(EmuCounter::Syscalls), ec(EmuCounter::UnknownSyscalls));
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
  fmt::print(out, "atomics       {:>10} exclusive blocks   getting exclusive {:.3f} ms   parked {:.3f} ms   blocks scanned {}\n",
             ec(EmuCounter::ExclusiveSections), ec(EmuCounter::ExclusiveWaitNs) / 1e6, ec(EmuCounter::ParkedNs) / 1e6,
             ec(EmuCounter::AtomicBlockScans));
  fmt::print(out, "futex         {:>10} waits, {} wakes   rss at exit {} pages   guest memory {} MiB\n",
             ec(EmuCounter::FutexWaits), ec(EmuCounter::FutexWakes), p.space().rss_pages(), p.pool().bytes() >> 20);
  if (const mmu::SwapDevice* d = p.swap()) {
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
