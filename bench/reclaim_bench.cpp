// Reclaim interference benchmark (MMU only): how much do faults in one part of an address
// space suffer while the reclaimer swaps out another part? Seed 003's claim for split locks
// is that they should not suffer at all; under `global` every reclaim step takes the same
// page_table_lock the faults need.
//
// Per scheme and repetition, two runs side by side:
//   idle        only the workers run: nothing is reclaimed;
//   reclaiming  a hog thread streams writes through a region 4x guest memory, so the
//               reclaimer thread swaps continuously (to a file in $TMPDIR). On a machine
//               with few cores the hog and the reclaimer also take CPU time from the
//               workers; compare schemes with each other, not only with idle.
// Meanwhile worker threads measure, on regions of their own:
//   zero-page faults  read faults on fresh pages (the shared zero frame is mapped: a table
//                     lock taken per fault, and no frame needed, so memory pressure itself
//                     does not slow them, only interference does);
//   resident walks    translations of resident pages (an emulated TLB miss each).
// The medians of the reclaiming/idle ratios are what to look at. Numbers, not a test.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <thread>
#include <vector>

#include "mmu/address_space.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace mmu;

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "reclaim-bench: %s\n", msg.c_str());
  std::exit(1);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

struct Sample {
  double zero_page_per_sec = 0;
  double walks_per_sec = 0;
  uint64_t reclaimed = 0;
  uint64_t lock_acquisitions = 0;
  uint64_t lock_contended = 0;
};

struct Setup {
  uint64_t pool_bytes;
  unsigned workers;
  uint64_t worker_region;
  unsigned rounds;
};

Sample measure(const Setup& s, SchemeKind scheme, bool reclaiming) {
  FramePoolConfig pc;
  pc.bytes = s.pool_bytes;
  pc.vcpu_slots = s.workers + 2;
  pc.populate_all = true;
  std::string err;
  auto pool = FramePool::create(pc, &err);
  if (!pool) die(err);
  auto swap = SwapDevice::open_temporary(s.pool_bytes * 8, &err);
  if (!swap) die(err);
  const VcpuId hog = s.workers, reclaimer_slot = s.workers + 1;
  ReclaimerConfig rc;
  rc.slot = reclaimer_slot;
  Reclaimer reclaimer(*pool, swap.get(), rc);
  AddressSpaceConfig ac;
  ac.scheme = scheme;
  ac.swap = swap.get();
  ac.reclaimer = &reclaimer;
  auto as = make_address_space(*pool, ac, &err);
  if (!as) die(err);
  reclaimer.attach(*as);
  reclaimer.start();

  MapRequest r;
  r.length = 4 * s.pool_bytes;
  const VirtAddr hog_region = as->map(hog, r).value;
  std::atomic<bool> stop{!reclaiming};
  std::thread hog_thread([&] {
    const uint64_t pages = r.length / kPageSize;
    for (uint64_t i = 0; !stop.load(std::memory_order_relaxed); i = (i + 1) % pages) {
      const Translation t = as->translate(hog, hog_region + i * kPageSize, Access::Write);
      if (!t.ok()) die("hog fault failed: " + std::string(to_string(t.outcome)));
      as->pool().host(t.page)[0] = uint8_t(i);
    }
  });
  // Let the reclaimer reach its steady state before measuring.
  if (reclaiming) std::this_thread::sleep_for(std::chrono::milliseconds(300));

  const auto before = as->counters().sum();
  std::atomic<uint64_t> zero_ns{0}, walk_ns{0};
  std::vector<std::thread> workers;
  const uint64_t pages = s.worker_region / kPageSize;
  for (unsigned w = 0; w < s.workers; ++w) {
    workers.emplace_back([&, w] {
      for (unsigned round = 0; round < s.rounds; ++round) {
        MapRequest m;
        m.length = s.worker_region;
        const MmResult region = as->map(w, m);
        if (!region.ok()) die("worker mmap failed");
        auto t0 = Clock::now();
        for (uint64_t i = 0; i < pages; ++i)
          if (!as->translate(w, region.value + i * kPageSize, Access::Read).ok()) die("zero-page fault failed");
        auto t1 = Clock::now();
        zero_ns += uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
        t0 = Clock::now();
        for (uint64_t i = 0; i < pages; ++i)
          if (!as->translate(w, region.value + i * kPageSize, Access::Read).ok()) die("walk failed");
        t1 = Clock::now();
        walk_ns += uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
        if (!as->unmap(w, region.value, s.worker_region).ok()) die("worker munmap failed");
      }
    });
  }
  for (auto& t : workers) t.join();
  const auto after = as->counters().sum();
  stop = true;
  hog_thread.join();
  reclaimer.stop();
  reclaimer.detach(*as);

  const double total = double(pages) * s.rounds * s.workers;
  Sample out;
  out.zero_page_per_sec = total / (double(zero_ns.load()) * 1e-9 / s.workers);
  out.walks_per_sec = total / (double(walk_ns.load()) * 1e-9 / s.workers);
  const auto delta = [&](MmuCounter c) { return after[size_t(c)] - before[size_t(c)]; };
  out.reclaimed = delta(MmuCounter::Reclaimed);
  out.lock_acquisitions = delta(MmuCounter::LockAcquisitions);
  out.lock_contended = delta(MmuCounter::LockContended);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"emu reclaim interference benchmark: faults in one region while the reclaimer swaps another"};
  std::vector<std::string> schemes{"global", "split", "atomic", "ptebit"};
  Setup s{uint64_t{64} << 20, 1, uint64_t{16} << 20, 300};
  uint64_t pool_mb = 64, region_mb = 16;
  unsigned repetitions = 5;
  std::string json_path;
  app.add_option("--scheme", schemes, "locking schemes")->check(CLI::IsMember({"global", "split", "atomic", "ptebit"}));
  app.add_option("--mem-mb", pool_mb, "guest memory (the hog's region is 4x this when reclaiming)")->check(CLI::Range(16, 4096));
  app.add_option("--workers", s.workers, "measuring threads")->check(CLI::Range(1u, 64u));
  app.add_option("--region-mb", region_mb, "MiB each worker faults per round")->check(CLI::Range(1, 1024));
  app.add_option("--rounds", s.rounds, "rounds per measurement")->check(CLI::Range(1u, 1000u));
  app.add_option("--repetitions", repetitions, "measurements per configuration (median reported)")->check(CLI::Range(1u, 100u));
  app.add_option("--json", json_path, "also write the results as JSON here");
  CLI11_PARSE(app, argc, argv);
  s.pool_bytes = pool_mb << 20;
  s.worker_region = region_mb << 20;

  const unsigned cores = std::thread::hardware_concurrency();
  std::printf("# reclaim-bench: %lu MiB memory, %u worker(s) x %lu MiB x %u rounds, median of %u; busy threads: "
              "%u workers (+ hog + reclaimer when reclaiming) on %u cores\n",
              (unsigned long)pool_mb, s.workers, (unsigned long)region_mb, s.rounds, repetitions, s.workers, cores);
  std::map<std::pair<std::string, bool>, std::vector<Sample>> samples;
  const size_t total = size_t(repetitions) * schemes.size() * 2;
  size_t done = 0;
  for (unsigned rep = 0; rep < repetitions; ++rep) {
    for (const auto& name : schemes) {
      for (bool reclaiming : {false, true}) {  // side by side, so noise hits both alike
        samples[{name, reclaiming}].push_back(measure(s, *parse_scheme(name), reclaiming));
        std::fprintf(stderr, "reclaim-bench: %zu/%zu measurements\n", ++done, total);
      }
    }
  }
  std::printf("\n%-7s %-10s %12s %12s %12s %12s %12s %10s\n", "scheme", "mode", "zero-page/s", "vs-idle", "walks/s",
              "vs-idle", "reclaimed", "contended");
  nlohmann::json out;
  for (const auto& name : schemes) {
    std::vector<double> zero_ratio, walk_ratio;
    for (unsigned i = 0; i < repetitions; ++i) {
      zero_ratio.push_back(samples[{name, true}][i].zero_page_per_sec / samples[{name, false}][i].zero_page_per_sec);
      walk_ratio.push_back(samples[{name, true}][i].walks_per_sec / samples[{name, false}][i].walks_per_sec);
    }
    for (bool reclaiming : {false, true}) {
      const auto& v = samples[{name, reclaiming}];
      std::vector<double> zero, walks, reclaimed, contended;
      for (const auto& x : v) {
        zero.push_back(x.zero_page_per_sec);
        walks.push_back(x.walks_per_sec);
        reclaimed.push_back(double(x.reclaimed));
        contended.push_back(x.lock_acquisitions ? 100.0 * double(x.lock_contended) / double(x.lock_acquisitions) : 0);
      }
      std::printf("%-7s %-10s %10.3f M %11s %10.3f M %11s %12.0f %9.2f%%\n", name.c_str(),
                  reclaiming ? "reclaiming" : "idle", median(zero) / 1e6,
                  reclaiming ? (std::to_string(median(zero_ratio)).substr(0, 5) + "x").c_str() : "-",
                  median(walks) / 1e6, reclaiming ? (std::to_string(median(walk_ratio)).substr(0, 5) + "x").c_str() : "-",
                  median(reclaimed), median(contended));
      out["results"].push_back({{"scheme", name}, {"mode", reclaiming ? "reclaiming" : "idle"},
                                {"zero_page_faults_per_sec", zero}, {"resident_walks_per_sec", walks},
                                {"reclaimed_during_measurement", reclaimed}, {"lock_contended_pct", contended}});
    }
    out["ratios"][name] = {{"zero_page_reclaiming_vs_idle", median(zero_ratio)},
                           {"walks_reclaiming_vs_idle", median(walk_ratio)}};
  }
  std::fflush(stdout);
  if (!json_path.empty()) {
    std::ofstream f(json_path);
    if (!f) die("cannot write " + json_path);
    f << out.dump(2) << "\n";
  }
  return 0;
}
