// Page-cache fault benchmark (MMU only, issue 17): what a fault costs when its page comes
// from the page cache, next to an anonymous zero-fill fault and a private file fault, in the
// same run and on the same pool. Per scheme and repetition, each over its own fresh space:
//   zero-fill      write faults on fresh anonymous pages (a zeroed frame each);
//   cache miss     read faults on a file mapped MAP_SHARED, first mapper: the page is read
//                  from the file (pread of 4 KiB) into a Shared frame;
//   cache hit      the same file mapped by a second space: the frame is found and mapped;
//   private copy   read faults on the same file mapped MAP_PRIVATE (today's path for ELF
//                  segments and private file mappings: a copy of the file's bytes per space).
// Numbers, not a test: faults per second, median of the repetitions.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <vector>

#include "mmu/address_space.h"
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

std::unique_ptr<AddressSpace> new_space(FramePool& pool, SchemeKind scheme, uint32_t id) {
  AddressSpaceConfig c;
  c.paging = PagingMode::X86_64;
  c.scheme = scheme;
  c.id = id;
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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"page-cache-bench: page-cache faults against zero-fill and private file faults"};
  uint64_t pages = 16384;
  int reps = 5;
  std::string json_out;
  std::vector<std::string> schemes = {"global", "split", "atomic", "ptebit"};
  app.add_option("--pages", pages, "pages per region (default 16384 = 64 MiB)")->check(CLI::Range(1, 1 << 20));
  app.add_option("--reps", reps, "repetitions per scheme")->check(CLI::Range(1, 100));
  app.add_option("--schemes", schemes, "schemes to run");
  app.add_option("--json", json_out, "also write the medians here");
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
  if (!json_out.empty()) std::ofstream(json_out) << out.dump(2) << "\n";
  ::close(fd);
  return 0;
}
