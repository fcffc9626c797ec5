#include "emu/cli_options.h"

#include <charconv>

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
  app.add_option("--rss", opt.rss, "RSS counter: shared atomic or per-vCPU")
      ->check(CLI::IsMember({"shared", "per-vcpu"}))
      ->capture_default_str();
  app.add_option("--max-vcpus", opt.max_vcpus, "most guest threads at once")->check(CLI::Range(1, 1024))->capture_default_str();
  app.add_flag("--stats", opt.stats, "print a summary of what the MMU and the emulator counted (stderr)");
  app.add_option("--stats-json", opt.stats_json, "write every counter as JSON to this file");
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
  config.max_vcpus = opt.max_vcpus;
  return true;
}

}  // namespace emu
