#include "emu/cli_options.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <sys/stat.h>

namespace emu {

void add_cli_options(CLI::App& app, CliOptions& opt) {
  app.add_option("--scheme", opt.scheme, "page-table locking scheme")
      ->check(CLI::IsMember({"global", "split", "atomic", "ptebit"}))
      ->capture_default_str();
  app.add_option("--paging", opt.paging, "paging format (auto: i386 2-level for 32-bit guests, 4-level for 64-bit)")
      ->check(CLI::IsMember({"auto", "i386", "pae", "x86_64", "la57"}))
      ->capture_default_str();
  app.add_option("--mem", opt.mem, "guest-physical memory (K, M, G suffixes)")->capture_default_str();
  app.add_option("--swap", opt.swap,
                 "swap for the reclaimer (K, M, G suffixes; 0: none, and a guest that outgrows --mem is killed)")
      ->capture_default_str();
  app.add_option("--swap-file", opt.swap_file,
                 "where the swap goes: a file, or a directory for a temporary one (default: a temporary file in "
                 "$TMPDIR; files emu creates are removed at exit, also when the guest crashes)");
  app.add_option("--inject-swap-errors", opt.inject_swap_errors,
                 "make swap I/O fail as a failing disk would, for testing the error paths: write:SKIP:COUNT and/or "
                 "read:SKIP:COUNT (comma list), the COUNT writes (reads) after the first SKIP fail")
      ->type_name("SPEC");
  app.add_option("--rss", opt.rss, "RSS counter: shared atomic or per-vCPU")
      ->check(CLI::IsMember({"shared", "per-vcpu"}))
      ->capture_default_str();
  app.add_option("--pt-share", opt.pt_share,
                 "on fork, share page-table pages with the child until one side changes them (seed 004), or copy them")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  app.add_option("--file-pages", opt.file_pages,
                 "private file mappings (program and library text, MAP_PRIVATE): map the page cache's frames until "
                 "written, one copy for every process, or give each process its own copy")
      ->check(CLI::IsMember({"shared", "private"}))
      ->capture_default_str();
  app.add_option("--max-vcpus,--max-threads", opt.max_vcpus,
                 "most guest threads at once, all processes together (one vCPU each): a clone or fork beyond answers EAGAIN")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--max-processes", opt.max_processes,
                 "most guest processes at once, zombies included: a fork beyond answers EAGAIN")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();
  app.add_flag("--stats", opt.stats, "print a summary of what the MMU and the emulator counted (stderr)");
  app.add_option("--stats-json", opt.stats_json, "write every counter as JSON to this file");
  app.add_option("--trace", opt.trace,
                 "trace events: faults, syscalls, reclaim, locks, shootdown, atomics (comma list) or all");
  app.add_option("--trace-file", opt.trace_file, "trace as text, one event per line (default with --trace: stderr)");
  app.add_option("--trace-json", opt.trace_json,
                 "trace as Chrome trace-event JSON (a track per vCPU and one for the reclaimer; open in Perfetto)");
  app.add_option("--trace-addr", opt.trace_addr, "trace fault and lock events only for guest addresses LO-HI (hex or decimal)");
  app.add_option("--trace-vcpu", opt.trace_vcpus, "trace only these vCPUs (comma list of vCPU numbers, 0 first)");
  app.add_option("-L,--sysroot", opt.sysroot,
                 "root of the guest's system: absolute paths the loader and the guest use are looked up under DIR "
                 "first, then on the host (default: $EMU_LD_PREFIX, else the host's root)")
      ->type_name("DIR");
  app.add_flag("--no-aslr", opt.no_aslr, "load PIE executables at Linux's fixed base (also EMU_NO_ASLR=1)");
  app.add_option("--log-level", opt.log_level, "trace, debug, info, warn, error, critical, off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
}

std::optional<uint64_t> parse_size(const std::string& text) {
  uint64_t value = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || ptr == begin) return std::nullopt;
  unsigned shift = 0;
  if (ptr != end) {
    switch (*ptr) {
      case 'k': case 'K': shift = 10; break;
      case 'm': case 'M': shift = 20; break;
      case 'g': case 'G': shift = 30; break;
      default: return std::nullopt;
    }
    ++ptr;
    if (ptr != end && (*ptr == 'i' || *ptr == 'B' || *ptr == 'b')) ++ptr;  // "MiB", "MB"
    if (ptr != end && (*ptr == 'B' || *ptr == 'b')) ++ptr;
    if (ptr != end) return std::nullopt;
  }
  if (shift && value > (~uint64_t{0} >> shift)) return std::nullopt;
  return value << shift;
}

bool resolve_cli_options(const CliOptions& opt, EmulatorConfig& config, std::string* error) {
  config.scheme = *mmu::parse_scheme(opt.scheme);
  if (opt.paging != "auto") config.paging = mmu::parse_paging_mode(opt.paging);
  config.rss = opt.rss == "shared" ? mmu::RssMode::SharedAtomic : mmu::RssMode::PerVcpu;
  const auto mem = parse_size(opt.mem);
  if (!mem || *mem < (uint64_t{16} << 20)) {
    *error = "--mem " + opt.mem + ": expected a size of at least 16M, like 64M or 2G";
    return false;
  }
  config.mem_bytes = *mem;
  const auto swap = parse_size(opt.swap);
  if (!swap || (*swap != 0 && *swap < mmu::kPageSize)) {
    *error = "--swap " + opt.swap + ": expected a size, like 0, 256M or 2G";
    return false;
  }
  config.swap_bytes = *swap;
  if (!opt.swap_file.empty() && !*swap) {
    *error = "--swap-file needs --swap SIZE";
    return false;
  }
  config.swap_file = opt.swap_file;
  if (!opt.inject_swap_errors.empty()) {
    if (!*swap) {
      *error = "--inject-swap-errors needs --swap SIZE";
      return false;
    }
    for (size_t start = 0; start < opt.inject_swap_errors.size();) {
      const size_t comma = std::min(opt.inject_swap_errors.find(',', start), opt.inject_swap_errors.size());
      const std::string part = opt.inject_swap_errors.substr(start, comma - start);
      const size_t c1 = part.find(':'), c2 = c1 == std::string::npos ? c1 : part.find(':', c1 + 1);
      const std::string kind = part.substr(0, c1);
      const auto skip = c2 == std::string::npos ? std::nullopt : parse_size(part.substr(c1 + 1, c2 - c1 - 1));
      const auto count = c2 == std::string::npos ? std::nullopt : parse_size(part.substr(c2 + 1));
      if ((kind != "write" && kind != "read") || !skip || !count) {
        *error = "--inject-swap-errors " + opt.inject_swap_errors + ": expected write:SKIP:COUNT or read:SKIP:COUNT, like write:500:10";
        return false;
      }
      (kind == "write" ? config.swap_write_errors : config.swap_read_errors) = {*skip, *count};
      start = comma + 1;
    }
  }
  const bool trace_output = !opt.trace_file.empty() || !opt.trace_json.empty() || !opt.trace_addr.empty() ||
                            !opt.trace_vcpus.empty();
  if (opt.trace.empty() && trace_output) {
    *error = "--trace-file, --trace-json, --trace-addr and --trace-vcpu need --trace EVENTS";
    return false;
  }
  if (!opt.trace.empty()) {
    if (!kTracingCompiledIn) {
      *error = "--trace: this emu was built with -DEMU_TRACING=OFF";
      return false;
    }
    if (!TraceConfig::parse_events(opt.trace, &config.trace.events, error)) return false;
    if (!opt.trace_addr.empty() && !TraceConfig::parse_range(opt.trace_addr, &config.trace.addr_lo, &config.trace.addr_hi)) {
      *error = "--trace-addr " + opt.trace_addr + ": expected LO-HI, like 0x400000-0x4fffff";
      return false;
    }
    config.trace.text_path = opt.trace_file;
    config.trace.json_path = opt.trace_json;
    for (size_t start = 0; start < opt.trace_vcpus.size();) {
      const size_t comma = std::min(opt.trace_vcpus.find(',', start), opt.trace_vcpus.size());
      const auto n = parse_size(opt.trace_vcpus.substr(start, comma - start));
      if (!n || *n >= opt.max_vcpus) {
        *error = "--trace-vcpu " + opt.trace_vcpus + ": expected vCPU numbers below --max-vcpus, like 0,2";
        return false;
      }
      config.trace.vcpus.insert(static_cast<uint32_t>(*n));
      start = comma + 1;
    }
  }
  std::string root = opt.sysroot;
  if (root.empty())
    if (const char* env = std::getenv("EMU_LD_PREFIX")) root = env;
  if (!root.empty()) {
    struct stat st {};
    if (::stat(root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      *error = (opt.sysroot.empty() ? "EMU_LD_PREFIX " : "-L ") + root + ": not a directory";
      return false;
    }
  }
  config.sysroot = Sysroot(root);
  const char* no_aslr = std::getenv("EMU_NO_ASLR");
  config.aslr = !opt.no_aslr && !(no_aslr && *no_aslr && std::string(no_aslr) != "0");
  config.max_vcpus = opt.max_vcpus;
  config.max_processes = opt.max_processes;
  config.fork_tables = opt.pt_share == "on" ? mmu::ForkTables::Share : mmu::ForkTables::Copy;
  config.shared_file_pages = opt.file_pages == "shared";
  return true;
}

}  // namespace emu
