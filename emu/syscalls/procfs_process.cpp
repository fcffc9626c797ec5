#include "emu/syscalls/procfs_process.h"

#include <elf.h>
#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <optional>

namespace emu::procfs {

namespace {

// status as Linux 6.1 writes it (proc_pid_status), for a host whose own cannot be read: the
// keys and their order; the values are emu's placeholders, the guest's go in over them.
constexpr std::string_view kStatusLayout =
    "Name:\t\nUmask:\t0022\nState:\t\nTgid:\t\nNgid:\t0\nPid:\t\nPPid:\t\nTracerPid:\t\n"
    "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nFDSize:\t\nGroups:\t \nNStgid:\t\nNSpid:\t\nNSpgid:\t0\nNSsid:\t0\n"
    "VmPeak:\t\nVmSize:\t\nVmLck:\t\nVmPin:\t\nVmHWM:\t\nVmRSS:\t\nRssAnon:\t\nRssFile:\t\nRssShmem:\t\n"
    "VmData:\t\nVmStk:\t\nVmExe:\t\nVmLib:\t\nVmPTE:\t\nVmSwap:\t\nHugetlbPages:\t\nCoreDumping:\t\n"
    "THP_enabled:\t1\nThreads:\t\nSigQ:\t0/0\nSigPnd:\t\nShdPnd:\t\nSigBlk:\t\nSigIgn:\t\nSigCgt:\t\n"
    "CapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n"
    "CapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\nNoNewPrivs:\t0\nSeccomp:\t0\n"
    "Seccomp_filters:\t0\nSpeculation_Store_Bypass:\tthread vulnerable\n"
    "SpeculationIndirectBranch:\tconditional enabled\nCpus_allowed:\t1\nCpus_allowed_list:\t0\n"
    "Mems_allowed:\t00000000,00000001\nMems_allowed_list:\t0\nvoluntary_ctxt_switches:\t0\n"
    "nonvoluntary_ctxt_switches:\t0\n";

constexpr size_t kStatFields = 52;

uint64_t kib(uint64_t bytes) { return bytes >> 10; }

// "VmSize:\t    5640 kB": seq_put_decimal_ull_width(m, key, kB, 8) and " kB".
std::string kb_value(uint64_t kb) { return fmt::format("{:>8} kB", kb); }

// Name: is escaped as Linux's proc_task_name(m, p, true) escapes it: only '\n' and '\\'.
std::string escaped_comm(const std::string& comm) {
  std::string out;
  for (const char ch : comm) {
    if (ch == '\n') {
      out += "\\n";
    } else if (ch == '\\') {
      out += "\\\\";
    } else {
      out += ch;
    }
  }
  return out;
}

// stat after the comm: fields 3.. as the host wrote them (split on single spaces).
std::vector<std::string> stat_fields(std::string_view host) {
  std::vector<std::string> fields(kStatFields + 1, "0");  // [0] unused, [2] the comm
  const size_t close = host.rfind(')');
  if (close == std::string_view::npos || close + 2 > host.size()) return fields;
  std::string_view rest = host.substr(close + 2);
  while (!rest.empty() && (rest.back() == '\n' || rest.back() == ' ')) rest.remove_suffix(1);
  size_t i = 3;
  while (!rest.empty()) {
    const size_t sp = rest.find(' ');
    const std::string_view field = rest.substr(0, sp);
    if (i < fields.size()) {
      fields[i] = std::string(field);
    } else {
      fields.emplace_back(field);  // a newer kernel's fields: kept
    }
    ++i;
    if (sp == std::string_view::npos) break;
    rest.remove_prefix(sp + 1);
  }
  return fields;
}

}  // namespace

VmFacts vm_facts(const std::vector<mmu::Vma>& vmas, const std::string& exe_path) {
  VmFacts f;
  std::optional<uint64_t> code_lo, data_lo;
  for (const mmu::Vma& vma : vmas) {
    if (vma.name == "[gdt]") continue;  // emu's (procfs_maps.h hides it too)
    const uint64_t len = vma.length();
    const bool stack = vma.flags & mmu::kVmaGrowsDown;
    const bool write = vma.prot & mmu::kProtWrite, exec = vma.prot & mmu::kProtExec;
    f.size += len;
    if (stack) f.stack += len;
    if (write && !stack) f.data += len;  // Linux's is_data_mapping (emu maps nothing shared)
    if (exec && !write && !stack) f.exec += len;
    if (vma.flags & mmu::kVmaHeap) f.start_brk = vma.start;
    if (vma.kind != mmu::VmaKind::FilePrivate || exe_path.empty() || vma.name != exe_path) continue;
    if (exec) {
      code_lo = std::min(code_lo.value_or(vma.start), vma.start);
      f.end_code = std::max(f.end_code, vma.end);
    }
    if (write) {
      data_lo = std::min(data_lo.value_or(vma.start), vma.start);
      f.end_data = std::max(f.end_data, vma.end);
    }
  }
  f.start_code = code_lo.value_or(0);
  f.start_data = data_lo.value_or(0);
  return f;
}

std::string comm_of(std::string_view exe_path) {
  const size_t slash = exe_path.rfind('/');
  const std::string_view base = slash == std::string_view::npos ? exe_path : exe_path.substr(slash + 1);
  return std::string(base.substr(0, 15));
}

std::string format_comm(const std::string& comm) { return comm + "\n"; }

std::string format_cmdline(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& a : argv) {
    out += a;
    out += '\0';
  }
  return out;
}

std::string encode_auxv(const Auxv& auxv, bool i386) {
  std::string out;
  const size_t word = i386 ? 4 : 8;
  auto put = [&](uint64_t v) {
    char bytes[8];
    for (size_t i = 0; i < 8; ++i) bytes[i] = static_cast<char>(v >> (8 * i));  // little-endian
    out.append(bytes, word);
  };
  for (const auto& [type, value] : auxv) {
    put(type);
    put(value);
    if (type == AT_NULL) return out;
  }
  put(AT_NULL);
  put(0);
  return out;
}

int fd_size_for(int highest_fd) {
  // alloc_fdtable: the first table holds BITS_PER_LONG fds; a larger one is a power of two
  // times 1024 / sizeof(struct file *) entries.
  if (highest_fd < 64) return 64;
  return static_cast<int>(std::bit_ceil(static_cast<unsigned>(highest_fd / 128 + 1)) * 128);
}

std::string format_stat(std::string_view host_stat, const ProcessFacts& f) {
  std::vector<std::string> s = stat_fields(host_stat);
  auto set = [&](size_t field, auto value) { s[field] = fmt::format("{}", value); };
  // Fields the guest does not share with emu (the rest, process group, session, terminal,
  // times, priority, start time, are emu's and so the guest's too).
  set(1, f.tid);  // /proc/PID/stat describes the thread group leader, task/TID/stat the thread
  s[3].assign(1, 'R');  // it is running: it is reading this (assign: GCC 12 -O3 warns on = "R")
  set(4, f.ppid);
  set(20, f.threads);
  set(21, 0);                                  // itrealvalue: always 0 since 2.6.17
  set(23, f.vm.size);                          // vsize, bytes
  set(24, f.rss_pages);                        // rss, pages
  set(26, f.vm.start_code);
  set(27, f.vm.end_code);
  set(28, 0);  // startstack: emu does not keep the initial stack pointer
  set(29, 0);  // kstkesp, kstkeip: 0 unless the task is dumping core
  set(30, 0);
  // The old signal fields are decimal and only the first 31 signals (do_task_stat).
  set(31, (f.sig_pending | f.shared_pending) & 0x7fffffffu);
  set(32, f.sig_blocked & 0x7fffffffu);
  set(33, f.sig_ignored & 0x7fffffffu);
  set(34, f.sig_caught & 0x7fffffffu);
  set(38, f.tid == f.pid ? 17 : -1);  // exit_signal: SIGCHLD, none for a non-leader thread
  set(45, f.vm.start_data);
  set(46, f.vm.end_data);
  set(47, f.vm.start_brk);
  for (size_t i = 48; i <= 51; ++i) set(i, 0);  // arg/env ranges: not kept by emu's loader
  set(52, 0);                                    // exit_code: it has not exited
  std::string out = fmt::format("{} ({})", s[1], f.comm);
  for (size_t i = 3; i < s.size(); ++i) {
    out += ' ';
    out += s[i];
  }
  out += '\n';
  return out;
}

std::string format_status(std::string_view host_status, const ProcessFacts& f) {
  if (host_status.empty()) host_status = kStatusLayout;
  const auto sig = [](uint64_t set) { return fmt::format("{:016x}", set); };
  const uint64_t rss_kb = kib(static_cast<uint64_t>(std::max<int64_t>(f.rss_pages, 0)) * mmu::kPageSize);
  const uint64_t text = f.vm.end_code - f.vm.start_code;
  std::string out;
  while (!host_status.empty()) {
    const size_t nl = host_status.find('\n');
    const std::string_view line = host_status.substr(0, nl);
    host_status.remove_prefix(nl == std::string_view::npos ? host_status.size() : nl + 1);
    const size_t colon = line.find(':');
    const std::string_view key = line.substr(0, colon);
    std::optional<std::string> value;
    if (key == "Name") value = escaped_comm(f.comm);
    else if (key == "State") value = "R (running)";
    else if (key == "Tgid") value = std::to_string(f.pid);
    else if (key == "Pid") value = std::to_string(f.tid);
    else if (key == "PPid") value = std::to_string(f.ppid);
    else if (key == "TracerPid") value = "0";  // a debugger of emu is not the guest's
    else if (key == "FDSize") value = std::to_string(f.fd_size);
    else if (key == "NStgid") value = std::to_string(f.pid);
    else if (key == "NSpid") value = std::to_string(f.tid);
    // No peak or high-water mark is kept: the current values stand for them.
    else if (key == "VmPeak" || key == "VmSize") value = kb_value(kib(f.vm.size));
    else if (key == "VmHWM" || key == "VmRSS" || key == "RssAnon") value = kb_value(rss_kb);
    // Private file pages are copies in anonymous frames; nothing is locked, pinned or huge;
    // page tables and swap are the MMU's, not counted per process here.
    else if (key == "VmLck" || key == "VmPin" || key == "RssFile" || key == "RssShmem" || key == "VmPTE" ||
             key == "VmSwap" || key == "HugetlbPages")
      value = kb_value(0);
    else if (key == "VmData") value = kb_value(kib(f.vm.data));
    else if (key == "VmStk") value = kb_value(kib(f.vm.stack));
    else if (key == "VmExe") value = kb_value(kib(text));
    else if (key == "VmLib") value = kb_value(kib(f.vm.exec > text ? f.vm.exec - text : 0));
    else if (key == "CoreDumping") value = "0";
    else if (key == "Threads") value = std::to_string(f.threads);
    else if (key == "SigQ") {
      // queued/limit: the limit is RLIMIT_SIGPENDING, the host's.
      const std::string_view was = colon == std::string_view::npos ? "" : line.substr(colon + 1);
      const size_t slash = was.find('/');
      value = fmt::format("{}{}", std::popcount(f.sig_pending | f.shared_pending),
                          slash == std::string_view::npos ? std::string_view("/0") : was.substr(slash));
    } else if (key == "SigPnd") value = sig(f.sig_pending);
    else if (key == "ShdPnd") value = sig(f.shared_pending);
    else if (key == "SigBlk") value = sig(f.sig_blocked);
    else if (key == "SigIgn") value = sig(f.sig_ignored);
    else if (key == "SigCgt") value = sig(f.sig_caught);
    if (value) {
      out += key;
      out += ":\t";
      out += *value;
    } else {
      out += line;
    }
    out += '\n';
  }
  return out;
}

}  // namespace emu::procfs
