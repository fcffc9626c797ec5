#include "emu/syscalls/procfs_cpuinfo.h"

#include <fmt/format.h>

#include <fstream>
#include <string_view>

namespace emu::procfs {

namespace {

// "key\t\t: value" -> value, for the host's first processor.
HostClock read_host_clock() {
  HostClock clock;
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) break;  // the first processor's block ends here
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string_view key(line.data(), colon);
    while (!key.empty() && (key.back() == '\t' || key.back() == ' ')) key.remove_suffix(1);
    const std::string value = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
    if (key == "cpu MHz") clock.mhz = value;
    if (key == "bogomips") clock.bogomips = value;
  }
  return clock;
}

}  // namespace

const HostClock& host_clock() {
  static const HostClock clock = read_host_clock();
  return clock;
}

std::string format_cpuinfo(const EmulatedCpu& cpu, int cpus, const HostClock& clock) {
  // CPUID.1:EBX[15:8] is the CLFLUSH line size in 8-byte units (Linux's x86_clflush_size;
  // its cache_alignment is the same on x86_64).
  const unsigned clflush_units = (cpu.leaf1.ebx >> 8) & 0xff;
  const unsigned clflush = clflush_units ? clflush_units * 8 : 64;
  const bool tsc = cpu.leaf1.edx & (1u << 4);
  const std::string flags = cpu.flags();
  std::string out;
  for (int i = 0; i < cpus; ++i) {
    out += fmt::format("processor\t: {}\nvendor_id\t: {}\ncpu family\t: {}\nmodel\t\t: {}\nmodel name\t: {}\n"
                       "stepping\t: {}\n",
                       i, cpu.vendor.empty() ? "unknown" : cpu.vendor, cpu.family, cpu.model,
                       cpu.model_name.empty() ? "unknown" : cpu.model_name, cpu.stepping);
    // Linux prints the clock for a CPU with a TSC; the guest's clock is the host's.
    if (tsc) out += fmt::format("cpu MHz\t\t: {}\n", clock.mhz.empty() ? "0.000" : clock.mhz);
    // One package of `cpus` cores, one thread each. No "cpuid level" line: EmulatedCpu does
    // not keep CPUID leaf 0's maximum.
    out += fmt::format("physical id\t: 0\nsiblings\t: {}\ncore id\t\t: {}\ncpu cores\t: {}\napicid\t\t: {}\n"
                       "initial apicid\t: {}\nfpu\t\t: yes\nfpu_exception\t: yes\nwp\t\t: yes\n",
                       cpus, i, cpus, i, i);
    out += flags.empty() ? "flags\t\t:\n" : "flags\t\t: " + flags + "\n";
    out += "bugs\t\t:\n";  // an emulated CPU has none of the host's speculation bugs
    out += fmt::format("bogomips\t: {}\n", clock.bogomips.empty() ? "0.00" : clock.bogomips);
    // Address sizes: what Unicorn's CPU model answers for CPUID 0x80000008 (EAX 0x3028),
    // which EmulatedCpu does not keep.
    out += fmt::format("clflush size\t: {}\ncache_alignment\t: {}\naddress sizes\t: 40 bits physical, 48 bits virtual\n"
                       "power management:\n\n",
                       clflush, clflush);
  }
  return out;
}

}  // namespace emu::procfs
