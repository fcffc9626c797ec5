#include "emu/process/process_usage.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

namespace emu {

void ResourceUsage::add(const ResourceUsage& o) {
  user_us += o.user_us;
  system_us += o.system_us;
  max_rss_kb = std::max(max_rss_kb, o.max_rss_kb);
  minor_faults += o.minor_faults;
  major_faults += o.major_faults;
  in_blocks += o.in_blocks;
  out_blocks += o.out_blocks;
  voluntary_switches += o.voluntary_switches;
  involuntary_switches += o.involuntary_switches;
}

ResourceUsage calling_thread_usage() {
  struct rusage ru {};
  ResourceUsage u;
  if (::getrusage(RUSAGE_THREAD, &ru) != 0) return u;
  u.user_us = int64_t{ru.ru_utime.tv_sec} * 1000000 + ru.ru_utime.tv_usec;
  u.system_us = int64_t{ru.ru_stime.tv_sec} * 1000000 + ru.ru_stime.tv_usec;
  // Not the host's peak size: that is emu's (its frame pool), not the guest's.
  u.minor_faults = ru.ru_minflt;
  u.major_faults = ru.ru_majflt;
  u.in_blocks = ru.ru_inblock;
  u.out_blocks = ru.ru_oublock;
  u.voluntary_switches = ru.ru_nvcsw;
  u.involuntary_switches = ru.ru_nivcsw;
  return u;
}

ResourceUsage host_thread_usage(int tid) {
  ResourceUsage u;
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return u;
  // "tid (comm) state ppid ...": the name may hold anything, so count fields after its ')'.
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return u;
  std::istringstream fields(line.substr(close + 1));
  std::string f[13];
  for (auto& s : f) fields >> s;  // fields 3 to 15 of proc(5)
  const long tick = ::sysconf(_SC_CLK_TCK);
  const auto to_us = [&](const std::string& ticks) { return std::stoll(ticks.empty() ? "0" : ticks) * 1000000 / tick; };
  try {
    u.minor_faults = std::stoll(f[7]);   // 10: minflt
    u.major_faults = std::stoll(f[9]);   // 12: majflt
    u.user_us = to_us(f[11]);            // 14: utime
    u.system_us = to_us(f[12]);          // 15: stime
  } catch (const std::exception&) {
    return {};
  }
  return u;
}

void ProcessUsage::thread_ended(const ResourceUsage& u) {
  mmu::MutexGuard guard(lock_);
  ended_.add(u);
}

void ProcessUsage::child_reaped(const ResourceUsage& u) {
  mmu::MutexGuard guard(lock_);
  children_.add(u);
}

void ProcessUsage::note_rss_kb(int64_t kb) {
  mmu::MutexGuard guard(lock_);
  max_rss_kb_ = std::max(max_rss_kb_, kb);
}

ResourceUsage ProcessUsage::ended_threads() const {
  mmu::MutexGuard guard(lock_);
  return ended_;
}

ResourceUsage ProcessUsage::children() const {
  mmu::MutexGuard guard(lock_);
  return children_;
}

int64_t ProcessUsage::max_rss_kb() const {
  mmu::MutexGuard guard(lock_);
  return max_rss_kb_;
}

ResourceUsage ProcessUsage::lifetime() const {
  mmu::MutexGuard guard(lock_);
  ResourceUsage u = ended_;
  // Linux adds a reaped child's own cutime/cstime into its parent's, and its peak size
  // (cmaxrss) is the larger of its own and its children's.
  u.add(children_);
  u.max_rss_kb = std::max(u.max_rss_kb, max_rss_kb_);
  return u;
}

}  // namespace emu
