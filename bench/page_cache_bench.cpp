// Page-cache fault benchmark (MMU only, issue 17): what a fault costs when its page comes
// from the page cache, next to an anonymous zero-fill fault and a private file fault, in the
// same run and on the same pool. Per scheme and repetition, each over its own fresh space:
//   zero-fill      write faults on fresh anonymous pages (a zeroed frame each);
//   cache miss     read faults on a file mapped MAP_SHARED, first mapper: the page is read
//                  from the file (pread of 4 KiB) into a Shared frame;
//   cache hit      the same file mapped by a second space: the frame is found and mapped;
//   private copy   read faults on the same file mapped MAP_PRIVATE (today's path for ELF
//                  segments and private file mappings: a copy of the file's bytes per space).
// A second table measures reclaim with a working set 3x the memory (--reclaim-mib, swap on a
// temporary file, the reclaimer thread running): every page written, then every page read
// back and checked, once for private anonymous memory in one space and once for anonymous
// shared memory mapped by two spaces (written through one, read through the other, so every
// page leaves through the reverse map and comes back through the object). It prints faults
// per second over both passes and pages written to swap per second.
// Numbers, not a test: faults per second, median of the repetitions.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <map>
#include <vector>

#include "mmu/address_space.h"
#include "mmu/reclaimer.h"
#include "mmu/swap_device.h"
#include "mmu/shared_memory.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace mmu;

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "page-cache-bench: %s\n", msg.c_str());
  std::exit(1);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

size_t pread_all(int fd, uint8_t* dst, size_t len, uint64_t offset) {
  size_t done = 0;
  while (done < len) {
    const ssize_t n = ::pread(fd, dst + done, len - done, static_cast<off_t>(offset + done));
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

// The benchmark's file, for both kinds of mapping.
class BenchFile final : public SharedBacking, public PageSource {
 public:
  BenchFile(int fd, uint64_t size) : fd_(fd), size_(size) {}
  size_t read(uint64_t offset, uint8_t* dst, size_t len) override { return pread_all(fd_, dst, len, offset); }
  size_t read(uint64_t offset, uint8_t* dst, size_t len) const override { return pread_all(fd_, dst, len, offset); }
  bool write(uint64_t, const uint8_t*, size_t) override { return true; }
  uint64_t size() override { return size_; }
  std::string name() const override { return "bench file"; }

 private:
  int fd_;
  uint64_t size_;
};

std::unique_ptr<AddressSpace> new_space(FramePool& pool, SchemeKind scheme, uint32_t id, SwapDevice* swap = nullptr,
                                        Reclaimer* reclaimer = nullptr) {
  AddressSpaceConfig c;
  c.paging = PagingMode::X86_64;
  c.scheme = scheme;
  c.id = id;
  c.swap = swap;
  c.reclaimer = reclaimer;
  std::string err;
  auto as = make_address_space(pool, c, &err);
  if (!as) die(err);
  return as;
}

// Faults every page of [base, base + pages) once; returns faults per second.
double fault_all(AddressSpace& as, VirtAddr base, uint64_t pages, Access access) {
  const auto t0 = Clock::now();
  for (uint64_t i = 0; i < pages; ++i)
    if (!as.translate(0, base + i * kPageSize, access).ok()) die("a fault failed");
  return pages / std::chrono::duration<double>(Clock::now() - t0).count();
}

struct ReclaimRate {
  double faults_per_s = 0;
  double swapouts_per_s = 0;
  uint64_t wrong = 0;  // pages that read back wrong (must be 0)
};

// Writes a page-unique word into every page through `writer`, then reads every page back
// through `reader` (the same space, or another mapping the same object).
ReclaimRate write_then_read(AddressSpace& writer, VirtAddr wbase, AddressSpace& reader, VirtAddr rbase,
                            uint64_t pages, SwapDevice& swap) {
  FramePool& pool = writer.pool();
  const uint64_t writes_before = swap.bytes_written() / kPageSize;
  const auto t0 = Clock::now();
  for (uint64_t i = 0; i < pages; ++i) {
    const Translation t = writer.translate(0, wbase + i * kPageSize, Access::Write);
    if (!t.ok()) die("a write fault failed");
    const uint64_t word = i * 0x9E3779B97F4A7C15ull + 1;
    std::memcpy(pool.host(t.page) + (i % 512) * 8, &word, sizeof word);
  }
  ReclaimRate r;
  for (uint64_t i = 0; i < pages; ++i) {
    const Translation t = reader.translate(0, rbase + i * kPageSize, Access::Read);
    if (!t.ok()) die("a read fault failed");
    uint64_t word;
    std::memcpy(&word, pool.host(t.page) + (i % 512) * 8, sizeof word);
    r.wrong += word != i * 0x9E3779B97F4A7C15ull + 1;
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  r.faults_per_s = 2.0 * pages / secs;
  r.swapouts_per_s = static_cast<double>(swap.bytes_written() / kPageSize - writes_before) / secs;
  return r;
}

// One repetition of the reclaim table for `scheme`: {private, shared}.
std::pair<ReclaimRate, ReclaimRate> reclaim_rep(SchemeKind scheme, uint64_t mem_bytes) {
  FramePoolConfig pc;
  pc.bytes = mem_bytes;
  pc.vcpu_slots = 2;
  std::string err;
  auto pool = FramePool::create(pc, &err);
  if (!pool) die(err);
  const uint64_t pages = 3 * mem_bytes / kPageSize;
  auto swap = SwapDevice::open_temporary(2 * pages * kPageSize, &err);
  if (!swap) die(err);
  ReclaimerConfig rc;
  rc.slot = 1;
  Reclaimer reclaimer(*pool, swap.get(), rc);
  SharedMemoryRegistry registry(*pool, swap.get());
  reclaimer.set_shared_memory(&registry);
  std::pair<ReclaimRate, ReclaimRate> out;
  {
    auto a = new_space(*pool, scheme, 1, swap.get(), &reclaimer);
    reclaimer.attach(*a);
    reclaimer.start();
    MapRequest anon;
    anon.length = pages * kPageSize;
    const VirtAddr base = a->map(0, anon).value;
    out.first = write_then_read(*a, base, *a, base, pages, *swap);
    reclaimer.stop();
    reclaimer.detach(*a);
  }
  {
    auto a = new_space(*pool, scheme, 2, swap.get(), &reclaimer);
    auto b = new_space(*pool, scheme, 3, swap.get(), &reclaimer);
    reclaimer.attach(*a);
    reclaimer.attach(*b);
    reclaimer.start();
    MapRequest shared;
    shared.kind = VmaKind::Shared;
    shared.shared = registry.create_anonymous(pages * kPageSize, "bench shared");
    shared.length = pages * kPageSize;
    const VirtAddr in_a = a->map(0, shared).value;
    const VirtAddr in_b = b->map(0, shared).value;
    shared.shared.reset();
    out.second = write_then_read(*a, in_a, *b, in_b, pages, *swap);
    reclaimer.stop();
    reclaimer.detach(*a);
    reclaimer.detach(*b);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"page-cache-bench: page-cache faults against zero-fill and private file faults"};
  uint64_t pages = 16384;
  int reps = 5;
  std::string json_out;
  uint64_t reclaim_mib = 16;
  std::vector<std::string> schemes = {"global", "split", "atomic", "ptebit"};
  app.add_option("--pages", pages, "pages per region (default 16384 = 64 MiB)")->check(CLI::Range(1, 1 << 20));
  app.add_option("--reps", reps, "repetitions per scheme")->check(CLI::Range(1, 100));
  app.add_option("--schemes", schemes, "schemes to run");
  app.add_option("--json", json_out, "also write the medians here");
  app.add_option("--reclaim-mib", reclaim_mib, "guest memory of the reclaim table (working set 3x; 0: skip it)")
      ->check(CLI::Range(0, 4096));
  CLI11_PARSE(app, argc, argv);

  const uint64_t bytes = pages * kPageSize;
  char path[] = "/tmp/page-cache-bench-XXXXXX";
  const int fd = ::mkstemp(path);
  if (fd < 0) die("cannot create a file in /tmp");
  ::unlink(path);
  std::vector<uint8_t> chunk(1 << 20, 0x5a);
  for (uint64_t off = 0; off < bytes; off += chunk.size())
    if (::pwrite(fd, chunk.data(), std::min<uint64_t>(chunk.size(), bytes - off), static_cast<off_t>(off)) <= 0)
      die("cannot write the file");
  auto file = std::make_shared<BenchFile>(fd, bytes);

  FramePoolConfig pc;
  pc.bytes = 4 * bytes + (uint64_t{64} << 20);
  pc.vcpu_slots = 2;
  std::string err;
  auto pool = FramePool::create(pc, &err);
  if (!pool) die(err);

  std::printf("%-8s %14s %14s %14s %14s   (faults/s, median of %d, %llu pages each)\n", "scheme", "zero-fill",
              "cache miss", "cache hit", "private copy", reps, static_cast<unsigned long long>(pages));
  nlohmann::json out = nlohmann::json::object();
  for (const std::string& name : schemes) {
    const auto scheme = parse_scheme(name);
    if (!scheme) die("unknown scheme " + name);
    std::map<std::string, std::vector<double>> rates;
    for (int r = 0; r < reps; ++r) {
      std::fprintf(stderr, "\r%s: repetition %d of %d", name.c_str(), r + 1, reps);
      auto a = new_space(*pool, *scheme, 1);
      auto b = new_space(*pool, *scheme, 2);
      auto c = new_space(*pool, *scheme, 3);
      MapRequest anon;
      anon.length = bytes;
      rates["zero_fill"].push_back(fault_all(*a, a->map(0, anon).value, pages, Access::Write));
      auto object = std::make_shared<SharedMemory>(*pool, file, 0, "bench file");
      MapRequest shared;
      shared.kind = VmaKind::Shared;
      shared.shared = object;
      shared.length = bytes;
      rates["cache_miss"].push_back(fault_all(*b, b->map(0, shared).value, pages, Access::Read));
      rates["cache_hit"].push_back(fault_all(*c, c->map(0, shared).value, pages, Access::Read));
      object.reset();
      c.reset();
      b.reset();
      MapRequest priv;
      priv.kind = VmaKind::FilePrivate;
      priv.source = file;
      priv.source_length = bytes;
      priv.length = bytes;
      rates["private_copy"].push_back(fault_all(*a, a->map(0, priv).value, pages, Access::Read));
    }
    std::fprintf(stderr, "\r%*s\r", 40, "");
    std::printf("%-8s %14.0f %14.0f %14.0f %14.0f\n", name.c_str(), median(rates["zero_fill"]),
                median(rates["cache_miss"]), median(rates["cache_hit"]), median(rates["private_copy"]));
    for (auto& [k, v] : rates) out[name][k] = median(v);
  }
  if (reclaim_mib) {
    std::printf("\n%-8s %14s %14s %14s %14s   (working set %llu MiB in %llu MiB, median of %d)\n", "scheme",
                "private flt/s", "private out/s", "shared flt/s", "shared out/s",
                static_cast<unsigned long long>(3 * reclaim_mib), static_cast<unsigned long long>(reclaim_mib), reps);
    for (const std::string& name : schemes) {
      const auto scheme = parse_scheme(name);
      std::map<std::string, std::vector<double>> rates;
      uint64_t wrong = 0;
      for (int r = 0; r < reps; ++r) {
        std::fprintf(stderr, "\r%s reclaim: repetition %d of %d", name.c_str(), r + 1, reps);
        const auto [priv, shared] = reclaim_rep(*scheme, reclaim_mib << 20);
        rates["private_faults"].push_back(priv.faults_per_s);
        rates["private_swapouts"].push_back(priv.swapouts_per_s);
        rates["shared_faults"].push_back(shared.faults_per_s);
        rates["shared_swapouts"].push_back(shared.swapouts_per_s);
        wrong += priv.wrong + shared.wrong;
      }
      std::fprintf(stderr, "\r%*s\r", 40, "");
      if (wrong) die(std::to_string(wrong) + " pages read back wrong under " + name);
      std::printf("%-8s %14.0f %14.0f %14.0f %14.0f\n", name.c_str(), median(rates["private_faults"]),
                  median(rates["private_swapouts"]), median(rates["shared_faults"]), median(rates["shared_swapouts"]));
      for (auto& [k, v] : rates) out[name]["reclaim"][k] = median(v);
    }
  }
  if (!json_out.empty()) std::ofstream(json_out) << out.dump(2) << "\n";
  ::close(fd);
  return 0;
}
