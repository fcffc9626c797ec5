// MMU-only fault benchmark: host threads drive the fault handler directly (no emulator).
//
//  page_fault1  each thread maps its own region, write-faults every page (and writes a byte
//               through the returned frame), unmaps, repeats: will-it-scale's page_fault1 in
//               threads mode, so munmap's mmap-lock writes and frame frees are included.
//  shared       all threads write-fault interleaved pages of one mapping, so neighbouring
//               pages (and their page tables) belong to different threads.
//  memset       each thread memsets 4 KiB per page over the same amount of already-faulted
//               memory: the floor a zero-fill fault cannot beat, measured in the same run.
//
// Every configuration is repeated and the median printed; schemes are interleaved within a
// repetition so that machine noise hits them alike. Numbers, not a pass/fail test.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <thread>
#include <vector>

#include "mmu/address_space.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace mmu;

struct Result {
  std::string workload;
  std::string scheme;
  unsigned threads = 0;
  std::vector<double> pages_per_sec;  // one per repetition
  MmuCounters::Snapshot counters{};
  double median() const {
    auto v = pages_per_sec;
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
  }
  double min() const { return *std::min_element(pages_per_sec.begin(), pages_per_sec.end()); }
  double max() const { return *std::max_element(pages_per_sec.begin(), pages_per_sec.end()); }
};

// The workers wait at the line; the timing thread starts the clock and only then lets them go.
// (Starting it after the release timed only part of the run whenever the timing thread was
// preempted in between: on a busy 2-core machine one run in ten reported thousands of times
// the real rate.)
class StartLine {
 public:
  explicit StartLine(unsigned workers) : workers_(workers) {}
  void arrive() {
    ready_.fetch_add(1, std::memory_order_acq_rel);
    while (!go_.load(std::memory_order_acquire)) std::this_thread::yield();
  }
  Clock::time_point start_clock_and_release() {
    while (ready_.load(std::memory_order_acquire) != workers_) std::this_thread::yield();
    const auto t0 = Clock::now();
    go_.store(true, std::memory_order_release);
    return t0;
  }

 private:
  unsigned workers_;
  std::atomic<unsigned> ready_{0};
  std::atomic<bool> go_{false};
};

// Progress on stderr: a live counter on a terminal, a line per tenth in a log.
void progress(size_t done, size_t total) {
  static const bool tty = isatty(STDERR_FILENO);
  if (tty)
    std::fprintf(stderr, "\rmmu-bench: %zu/%zu measurements", done, total);
  else if (done * 10 / total != (done - 1) * 10 / total)
    std::fprintf(stderr, "mmu-bench: %zu/%zu measurements\n", done, total);
}

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "mmu-bench: %s\n", msg.c_str());
  std::exit(1);
}

template <class Body>
double run_threads(unsigned threads, uint64_t pages_total, Body body) {
  StartLine start(threads);
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < threads; ++t) ts.emplace_back([&, t] { start.arrive(), body(t); });
  const auto t0 = start.start_clock_and_release();
  for (auto& t : ts) t.join();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  return double(pages_total) / secs;
}

void touch_region(AddressSpace& as, VcpuId v, VirtAddr start, uint64_t pages, uint64_t stride = 1,
                  uint64_t first = 0) {
  for (uint64_t i = first; i < pages; i += stride) {
    const Translation t = as.translate(v, start + i * kPageSize, Access::Write);
    if (!t.ok()) die("fault failed: " + std::string(to_string(t.outcome)));
    as.pool().host(t.page)[i & 0xFFF] = 1;
  }
}

double page_fault1(AddressSpace& as, unsigned threads, uint64_t region, unsigned iterations) {
  const uint64_t pages = region / kPageSize;
  return run_threads(threads, pages * threads * iterations, [&](unsigned t) {
    for (unsigned it = 0; it < iterations; ++it) {
      MapRequest r;
      r.length = region;
      const MmResult m = as.map(t, r);
      if (!m.ok()) die("mmap failed");
      touch_region(as, t, m.value, pages);
      if (!as.unmap(t, m.value, region).ok()) die("munmap failed");
    }
  });
}

// page_fault1 in will-it-scale's processes mode: each thread has an address space of its own,
// so only the frame pool is shared.
double private_spaces(FramePool& pool, const AddressSpaceConfig& ac, unsigned threads, uint64_t region,
                      unsigned iterations, MmuCounters::Snapshot& counters) {
  std::vector<std::unique_ptr<AddressSpace>> spaces;
  for (unsigned t = 0; t < threads; ++t) {
    std::string err;
    spaces.push_back(make_address_space(pool, ac, &err));
    if (!spaces.back()) die(err);
  }
  const uint64_t pages = region / kPageSize;
  const double rate = run_threads(threads, pages * threads * iterations, [&](unsigned t) {
    for (unsigned it = 0; it < iterations; ++it) {
      MapRequest r;
      r.length = region;
      const MmResult m = spaces[t]->map(t, r);
      if (!m.ok()) die("mmap failed");
      touch_region(*spaces[t], t, m.value, pages);
      if (!spaces[t]->unmap(t, m.value, region).ok()) die("munmap failed");
    }
  });
  for (auto& s : spaces) {
    const auto c = s->counters().sum();
    for (size_t k = 0; k < c.size(); ++k) counters[k] += c[k];
  }
  return rate;
}

double shared_region(AddressSpace& as, unsigned threads, uint64_t region, unsigned iterations) {
  const uint64_t pages = region / kPageSize * threads;
  double total_secs = 0;
  for (unsigned it = 0; it < iterations; ++it) {
    MapRequest r;
    r.length = pages * kPageSize;
    const MmResult m = as.map(0, r);
    if (!m.ok()) die("mmap failed");
    const double rate = run_threads(threads, pages, [&](unsigned t) { touch_region(as, t, m.value, pages, threads, t); });
    total_secs += double(pages) / rate;
    if (!as.unmap(0, m.value, r.length).ok()) die("munmap failed");
  }
  return double(pages) * iterations / total_secs;
}

double memset_floor(unsigned threads, uint64_t region, unsigned iterations) {
  std::vector<uint8_t*> bufs(threads);
  for (auto& b : bufs) {
    void* p = mmap(nullptr, region, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) die("cannot allocate the memset buffer");
    b = static_cast<uint8_t*>(p);
  }
  const uint64_t pages = region / kPageSize;
  // One untimed pass first: a virtual machine's host backs memory on first touch even after
  // MAP_POPULATE, and the frame pool's memory has been touched the same way.
  for (auto b : bufs) std::memset(b, 1, region);
  const double rate = run_threads(threads, pages * threads * iterations, [&](unsigned t) {
    for (unsigned it = 0; it < iterations; ++it)
      for (uint64_t i = 0; i < pages; ++i) {
        std::memset(bufs[t] + i * kPageSize, 0, kPageSize);
        bufs[t][i * kPageSize + (i & 0xFFF)] = 1;
        asm volatile("" ::: "memory");
      }
  });
  for (auto b : bufs) munmap(b, region);
  return rate;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"emu MMU-only fault benchmark (page_fault1, shared region, memset floor)"};
  std::vector<std::string> schemes{"global", "split", "atomic", "ptebit"};
  std::vector<unsigned> thread_counts{1, 2, 4};
  std::vector<std::string> workloads{"page_fault1", "processes", "shared"};
  std::string paging_name = "x86_64", rss_name = "per-vcpu", json_path;
  uint64_t region_mb = 128;
  unsigned iterations = 4, repetitions = 5;
  app.add_option("--scheme", schemes, "locking schemes to compare")->check(CLI::IsMember({"global", "split", "atomic", "ptebit"}));
  app.add_option("--threads", thread_counts, "thread counts")->check(CLI::Range(1u, 256u));
  app.add_option("--workload", workloads, "workloads: page_fault1 (threads share one address space), processes "
                 "(page_fault1 with an address space per thread), shared (one mapping, interleaved pages)")
      ->check(CLI::IsMember({"page_fault1", "processes", "shared"}));
  app.add_option("--paging", paging_name, "paging format")->check(CLI::IsMember({"i386", "pae", "x86_64", "la57"}));
  app.add_option("--rss", rss_name, "RSS counter mode")->check(CLI::IsMember({"shared", "per-vcpu"}));
  app.add_option("--region-mb", region_mb, "MiB each thread faults per iteration")->check(CLI::Range(1, 4096));
  app.add_option("--iterations", iterations, "map/touch/unmap rounds per measurement")->check(CLI::Range(1u, 1000u));
  app.add_option("--repetitions", repetitions, "measurements per configuration (median reported)")->check(CLI::Range(1u, 100u));
  app.add_option("--json", json_path, "also write all results as JSON here");
  CLI11_PARSE(app, argc, argv);

  const PagingMode paging = *parse_paging_mode(paging_name);
  const RssMode rss = *parse_rss_mode(rss_name);
  const uint64_t region = region_mb << 20;
  const unsigned max_threads = *std::max_element(thread_counts.begin(), thread_counts.end());
  const unsigned cores = std::thread::hardware_concurrency();

  FramePoolConfig pc;
  // Room for every thread's region, their page tables and the per-vCPU caches.
  pc.bytes = region * max_threads + region / 8 + (uint64_t{64} << 20);
  if (paging == PagingMode::I386 || paging == PagingMode::Pae)
    pc.bytes = std::min<uint64_t>(pc.bytes, uint64_t{4} << 30);
  pc.vcpu_slots = max_threads + 1;
  pc.populate_all = true;  // measure the MMU, not the host's first-touch faults
  std::string err;
  std::fprintf(stderr, "mmu-bench: pre-faulting %lu MiB of guest-physical memory...\n", (unsigned long)(pc.bytes >> 20));
  auto pool = FramePool::create(pc, &err);
  if (!pool) die(err);

  std::printf("# mmu-bench: paging %s, rss %s, %lu MiB per thread x %u iterations, median of %u\n",
              paging_name.c_str(), rss_name.c_str(), (unsigned long)region_mb, iterations, repetitions);
  std::printf("# host: %s, %u cores%s\n", cpu_model().c_str(), cores,
              max_threads > cores ? " (thread counts above the core count are oversubscribed: spinning locks suffer)" : "");

  std::map<std::tuple<std::string, std::string, unsigned>, Result> results;
  const size_t total = workloads.size() * (schemes.size() + 1) * thread_counts.size() * repetitions;
  size_t done = 0;
  for (unsigned rep = 0; rep < repetitions; ++rep) {
    for (unsigned threads : thread_counts) {
      auto& floor = results[{"memset", "-", threads}];
      floor.workload = "memset";
      floor.scheme = "-";
      floor.threads = threads;
      floor.pages_per_sec.push_back(memset_floor(threads, region, iterations));
      ++done;
      for (const auto& w : workloads) {
        for (const auto& s : schemes) {
          AddressSpaceConfig ac;
          ac.paging = paging;
          ac.scheme = *parse_scheme(s);
          ac.rss = rss;
          auto& res = results[{w, s, threads}];
          res.workload = w;
          res.scheme = s;
          res.threads = threads;
          if (w == "processes") {
            MmuCounters::Snapshot warm{};
            (void)private_spaces(*pool, ac, threads, region, 1, warm);
            res.pages_per_sec.push_back(private_spaces(*pool, ac, threads, region, iterations, res.counters));
            progress(++done, total);
            continue;
          }
          auto as = make_address_space(*pool, ac, &err);
          if (!as) die(err);
          // Warm-up: fills the per-vCPU frame caches the measured run recycles.
          (void)(w == "page_fault1" ? page_fault1(*as, threads, region, 1) : shared_region(*as, threads, region, 1));
          const auto before = as->counters().sum();
          const double rate = w == "page_fault1" ? page_fault1(*as, threads, region, iterations)
                                                 : shared_region(*as, threads, region, iterations);
          const auto after = as->counters().sum();
          res.pages_per_sec.push_back(rate);
          for (size_t c = 0; c < after.size(); ++c) res.counters[c] += after[c] - before[c];
          progress(++done, total);
        }
      }
    }
  }
  if (isatty(STDERR_FILENO)) std::fprintf(stderr, "\n");

  auto get = [&](const std::string& w, const std::string& s, unsigned t) -> const Result* {
    auto it = results.find({w, s, t});
    return it == results.end() ? nullptr : &it->second;
  };
  const double floor1 = get("memset", "-", thread_counts.front())->median() / thread_counts.front();
  std::printf("\n%-12s %-7s %3s %10s %10s %9s %8s %9s %9s %10s %9s\n", "workload", "scheme", "thr", "Mpages/s",
              "min-max", "per-thr", "vs-1thr", "vs-memset", "contended", "lock-wait%", "cas-fail");
  nlohmann::json out;
  out["machine"] = {{"cpu", cpu_model()}, {"cores", cores}, {"memory_bytes", uint64_t(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE)}};
  out["config"] = {{"paging", paging_name}, {"rss", rss_name}, {"region_mb", region_mb}, {"iterations", iterations},
                   {"repetitions", repetitions}};
  for (const auto& w : std::vector<std::string>{"memset", "page_fault1", "processes", "shared"}) {
    for (const auto& s : w == "memset" ? std::vector<std::string>{"-"} : schemes) {
      for (unsigned t : thread_counts) {
        const Result* r = get(w, s, t);
        if (!r) continue;
        const Result* one = get(w, s, thread_counts.front());
        const double med = r->median();
        const auto& c = r->counters;
        const auto at = [&](MmuCounter k) { return c[size_t(k)]; };
        const double acq = double(at(MmuCounter::LockAcquisitions));
        const double faults = double(at(MmuCounter::FaultZeroFill));
        // Share of the threads' time spent waiting for page-table locks.
        const double thread_secs = faults / (med / t);
        const double wait_pct = thread_secs > 0 ? 100.0 * double(at(MmuCounter::LockWaitNs)) * 1e-9 / (thread_secs * t) : 0;
        std::printf("%-12s %-7s %3u %10.3f %4.2f-%-5.2f %9.3f %7.2fx %8.1f%% %8.2f%% %9.2f%% %9lu\n", w.c_str(), s.c_str(), t,
                    med / 1e6, r->min() / 1e6, r->max() / 1e6, med / t / 1e6, med / one->median(), 100.0 * (med / t) / floor1,
                    acq > 0 ? 100.0 * double(at(MmuCounter::LockContended)) / acq : 0.0, wait_pct,
                    (unsigned long)at(MmuCounter::CmpxchgFailures));
        nlohmann::json j = {{"workload", w}, {"scheme", s}, {"threads", t}, {"pages_per_sec", r->pages_per_sec},
                            {"median_pages_per_sec", med}, {"speedup_vs_first", med / one->median()},
                            {"per_thread_vs_memset_1thread", (med / t) / floor1}};
        if (w != "memset")
          for (size_t k = 0; k < c.size(); ++k) j["counters"][std::string(counter_name(MmuCounter(k)))] = c[k];
        out["results"].push_back(j);
      }
    }
  }
  std::fflush(stdout);
  if (!json_path.empty()) {
    std::ofstream f(json_path);
    if (!f) die("cannot write " + json_path);
    f << out.dump(2) << "\n";
    std::fprintf(stderr, "mmu-bench: wrote %s\n", json_path.c_str());
  }
  return 0;
}
