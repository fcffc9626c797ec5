#include "emu/syscalls/sys_procfs.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <vector>

#include "emu/cpu/emulated_cpu.h"
#include "emu/process/machine.h"
#include "emu/process/guest_process.h"
#include "emu/syscalls/procfs_cpuinfo.h"
#include "emu/syscalls/procfs_fd_dir.h"
#include "emu/syscalls/procfs_maps.h"
#include "emu/syscalls/procfs_process.h"

namespace emu::procfs {

namespace {

// A canonical number as /proc spells pids (no sign, no leading zero: name_to_int).
std::optional<int> proc_number(std::string_view s) {
  if (s.empty() || s.size() > 9 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  int n = 0;
  for (const char ch : s) {
    if (ch < '0' || ch > '9') return std::nullopt;
    n = n * 10 + (ch - '0');
  }
  return n;
}

std::vector<std::string_view> components(std::string_view path) {
  std::vector<std::string_view> parts;
  while (!path.empty()) {
    const size_t slash = path.find('/');
    const std::string_view part = path.substr(0, slash);
    path.remove_prefix(slash == std::string_view::npos ? path.size() : slash + 1);
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  return parts;
}

}  // namespace

std::string normalize_path(std::string_view path) {
  std::string out;
  for (const std::string_view part : components(path)) {
    out += '/';
    out += part;
  }
  return out.empty() ? "/" : out;
}

std::optional<ProcPath> parse_proc_path(std::string_view path) {
  if (!path.starts_with('/')) return std::nullopt;
  const auto parts = components(path);
  if (parts.size() < 2 || parts[0] != "proc") return std::nullopt;
  ProcPath p;
  if (parts.size() == 2 && parts[1] == "cpuinfo") {
    p.kind = ProcPath::Kind::CpuInfo;
    return p;
  }
  size_t next = 2;
  if (parts[1] == "self") {
    p.kind = ProcPath::Kind::SelfLink;
    if (parts.size() == 2) return p;
    p.kind = ProcPath::Kind::Process;
    p.who = ProcPath::Who::Self;
  } else if (parts[1] == "thread-self") {
    p.kind = ProcPath::Kind::ThreadSelfLink;
    if (parts.size() == 2) return p;
    p.kind = ProcPath::Kind::Process;
    p.who = ProcPath::Who::ThreadSelf;
  } else if (const auto pid = proc_number(parts[1])) {
    p.who = ProcPath::Who::Pid;
    p.pid = *pid;
  } else {
    return std::nullopt;
  }
  // /proc/PID/task/TID/...: a thread's own directory (thread-self is one already).
  if (p.who != ProcPath::Who::ThreadSelf && parts.size() >= 4 && parts[2] == "task") {
    const auto tid = proc_number(parts[3]);
    if (!tid) return std::nullopt;
    p.tid = *tid;
    next = 4;
  }
  for (size_t i = next; i < parts.size(); ++i) {
    if (i > next) p.file += '/';
    p.file += parts[i];
  }
  return p;
}

}  // namespace emu::procfs

namespace emu::sys {

namespace {

// The files emu makes up for a process (or one of its threads).
enum class ProcFile : uint8_t { Maps, Auxv, Cmdline, Comm, Stat, Status, FdDir, Exe };

std::optional<ProcFile> proc_file(const std::string& name) {
  if (name == "maps") return ProcFile::Maps;
  if (name == "auxv") return ProcFile::Auxv;
  if (name == "cmdline") return ProcFile::Cmdline;
  if (name == "comm") return ProcFile::Comm;
  if (name == "stat") return ProcFile::Stat;
  if (name == "status") return ProcFile::Status;
  if (name == "fd") return ProcFile::FdDir;
  if (name == "exe") return ProcFile::Exe;
  return std::nullopt;
}

// The guest process (the caller's: see sys_procfs.h) and thread a path describes.
struct Subject {
  int pid = 0;
  int tid = 0;          // the leader's (pid) for /proc/PID itself
  bool task = false;    // a thread's directory: thread-self, task/TID
  std::string dir() const { return task ? fmt::format("/proc/{}/task/{}", pid, tid) : fmt::format("/proc/{}", pid); }
};

bool is_thread(Call& c, int tid) {
  bool found = tid == c.vcpu.tid();
  if (!found) c.proc.for_each_other_vcpu(c.vcpu, [&](Vcpu& v) { found = found || v.tid() == tid; });
  return found;
}

std::optional<Subject> subject(Call& c, const procfs::ProcPath& p) {
  using Who = procfs::ProcPath::Who;
  const int pid = c.proc.pid();
  if (p.who == Who::ThreadSelf) return Subject{pid, c.vcpu.tid(), true};
  if (p.who == Who::Pid && p.pid != pid) return std::nullopt;  // another process: the host's
  if (p.tid == 0) return Subject{pid, pid, false};
  if (!is_thread(c, p.tid)) return std::nullopt;
  return Subject{pid, p.tid, true};
}

// Another guest process of this run named by /proc/PID (guest pids are not the host's: the
// host's /proc/PID is some other process, or none). Only its identity is answered for it.
std::shared_ptr<GuestProcess> other_guest(Call& c, const procfs::ProcPath& p) {
  if (p.who != procfs::ProcPath::Who::Pid || p.pid == c.proc.pid() || p.tid != 0) return nullptr;
  return c.proc.machine().find_process(p.pid);
}

// A whole host file ("" when it cannot be read).
std::string read_host_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string text;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return text;
}

std::vector<mmu::Vma> guest_vmas(Call& c) {
  return c.proc.has_space() ? c.proc.space().vmas(c.v) : std::vector<mmu::Vma>{};
}

procfs::ProcessFacts process_facts(Call& c, const Subject& s) {
  procfs::ProcessFacts f;
  f.pid = s.pid;
  f.tid = s.tid;
  f.ppid = c.proc.ppid();
  f.comm = c.proc.controls().thread_name(s.tid, procfs::comm_of(c.proc.exe_path()));
  const auto vmas = guest_vmas(c);
  f.vm = procfs::vm_facts(vmas, c.proc.exe_path());
  f.rss_pages = c.proc.has_space() ? c.proc.space().rss_pages() : 0;
  const auto fds = c.proc.files().open_fds();
  f.fd_size = procfs::fd_size_for(fds.empty() ? 0 : fds.back());
  // The thread described: its own pending set and mask (the leader's for /proc/PID; none
  // when the leader has already ended, as for Linux's zombie leader).
  auto take = [&](Vcpu& v) {
    f.sig_pending = v.signals().pending.load(std::memory_order_acquire);
    f.sig_blocked = v.signals().mask.load(std::memory_order_acquire);
  };
  if (s.tid == c.vcpu.tid()) take(c.vcpu);
  c.proc.for_each_other_vcpu(c.vcpu, [&](Vcpu& v) {
    ++f.threads;
    if (v.tid() == s.tid) take(v);
  });
  ProcessSignals& signals = c.proc.signals();
  f.shared_pending = signals.shared_pending();
  for (int sig = 1; sig <= kMaxSignal; ++sig) {
    const SigAction a = signals.action(sig);
    if (a.handler == kSigIgnore) f.sig_ignored |= signal_bit(sig);
    if (a.is_handler()) f.sig_caught |= signal_bit(sig);
  }
  return f;
}

// Emu's own stat or status for the caller's host thread when it is the one described, else
// for emu's process (credentials, times, terminal, affinity: the guest shares them).
std::string host_proc_file(Call& c, const Subject& s, const char* name) {
  return read_host_file(std::string(s.task && s.tid == c.vcpu.tid() ? "/proc/thread-self/" : "/proc/self/") + name);
}

std::string process_text(Call& c, const Subject& s, ProcFile file) {
  switch (file) {
    case ProcFile::Maps: return procfs::format_maps(procfs::maps_entries(guest_vmas(c)));
    case ProcFile::Auxv: return procfs::encode_auxv(c.proc.auxv(), c.proc.arch() == GuestArch::I386);
    case ProcFile::Cmdline: return procfs::format_cmdline(c.proc.argv());
    case ProcFile::Comm: return procfs::format_comm(c.proc.controls().thread_name(s.tid, procfs::comm_of(c.proc.exe_path())));
    case ProcFile::Stat: return procfs::format_stat(host_proc_file(c, s, "stat"), process_facts(c, s));
    case ProcFile::Status: return procfs::format_status(host_proc_file(c, s, "status"), process_facts(c, s));
    case ProcFile::FdDir: case ProcFile::Exe: break;
  }
  return {};
}

std::string cpuinfo_text(Call& c) {
  // One processor per host CPU online: the guest's threads run on them (each vCPU is a host
  // thread), and the guest's other views of the CPU count are the host's too
  // (sched_getaffinity, /sys/devices/system/cpu/online), so nproc and cpuinfo agree.
  const long online = ::sysconf(_SC_NPROCESSORS_ONLN);
  return procfs::format_cpuinfo(emulated_cpu(c.proc.arch()), online > 0 ? static_cast<int>(online) : 1,
                                procfs::host_clock());
}

// What readlink of /proc/self/fd/N shows for a made-up file: the /proc path it was opened as.
class ProcTextView final : public GuestView {
 public:
  explicit ProcTextView(std::string path) : path_(std::move(path)) {}
  std::string link_target() const override { return path_; }

 private:
  const std::string path_;
};

// `text` in a memfd as the guest fd: read-only unless `flags` ask for writing (comm), at
// offset 0. Linux generates these files as they are read; here they are what they were at
// open, which a reader that opens, reads and closes cannot tell apart.
int64_t install_text(Call& c, const std::string& text, std::string link, int flags) {
  const int mfd = ::memfd_create("emu-procfs", MFD_CLOEXEC);
  if (mfd < 0) return -errno;
  for (size_t done = 0; done < text.size();) {
    const ssize_t n = ::write(mfd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      ::close(mfd);
      return -err;
    }
    done += static_cast<size_t>(n);
  }
  int fd = mfd;
  if ((flags & O_ACCMODE) == O_RDONLY) {
    // A description of its own that cannot write (EBADF for a guest write, as Linux's).
    fd = ::open(fmt::format("/proc/self/fd/{}", mfd).c_str(), O_RDONLY | O_CLOEXEC);
    const int err = errno;
    ::close(mfd);
    if (fd < 0) return -err;
  } else if (::lseek(fd, 0, SEEK_SET) < 0) {
    const int err = errno;
    ::close(fd);
    return -err;
  }
  return c.proc.files().install(std::make_shared<HostFile>(fd, std::make_unique<ProcTextView>(std::move(link))),
                                (flags & O_CLOEXEC) != 0);
}

int64_t install_fd_dir(Call& c, const Subject& s, int flags) {
  const int fd = procfs::open_fd_dir_standin();
  if (fd < 0) return fd;
  auto view = std::make_unique<procfs::FdDirView>(c.proc.weak_from_this(), s.dir() + "/fd");
  return c.proc.files().install(std::make_shared<HostFile>(fd, std::move(view)), (flags & O_CLOEXEC) != 0);
}

// Open flags against a made-up regular file, in the order Linux's open checks them.
int64_t check_file_flags(int flags, bool writable) {
  if ((flags & O_CREAT) && (flags & O_EXCL)) return -EEXIST;
  if (flags & O_DIRECTORY) return -ENOTDIR;
  if ((flags & O_ACCMODE) != O_RDONLY && !writable) return -EACCES;
  return 0;
}

std::optional<procfs::ProcPath> guest_proc_path(Call& c, uint64_t path) {
  std::string p;
  if (path == 0 || !c.mem.read_string(c.v, path, PATH_MAX, p) || !p.starts_with("/proc/")) return std::nullopt;
  return procfs::parse_proc_path(p);
}

}  // namespace

std::optional<int64_t> procfs_openat(Call& c, uint64_t path, int flags) {
  const auto p = guest_proc_path(c, path);
  if (!p) return std::nullopt;
  if (p->kind == procfs::ProcPath::Kind::CpuInfo) {
    if (const int64_t r = check_file_flags(flags, false)) return r;
    return install_text(c, cpuinfo_text(c), "/proc/cpuinfo", flags);
  }
  if (p->kind != procfs::ProcPath::Kind::Process) return std::nullopt;
  const auto s = subject(c, *p);
  const auto file = proc_file(p->file);
  if (!s && file && (*file == ProcFile::Cmdline || *file == ProcFile::Comm)) {
    if (const auto other = other_guest(c, *p)) {
      if (const int64_t r = check_file_flags(flags, false)) return r;
      const auto id = other->identity();
      const std::string text = *file == ProcFile::Cmdline ? procfs::format_cmdline(id.argv)
                                                           : procfs::format_comm(other->controls().thread_name(p->pid, procfs::comm_of(id.exe)));
      return install_text(c, text, "/proc/" + std::to_string(p->pid) + "/" + p->file, flags);
    }
  }
  if (!s || !file || *file == ProcFile::Exe) return std::nullopt;  // exe: sys_paths opens the program
  if (*file == ProcFile::FdDir) {
    if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_CREAT)) return -EISDIR;
    return install_fd_dir(c, *s, flags);
  }
  if (const int64_t r = check_file_flags(flags, *file == ProcFile::Comm)) return r;  // comm is 0644
  return install_text(c, process_text(c, *s, *file), s->dir() + "/" + p->file, flags);
}

std::optional<std::string> procfs_readlink(Call& c, uint64_t path, const HostFile* named) {
  if (named && named->view()) return named->view()->link_target();
  const auto p = guest_proc_path(c, path);
  if (!p) return std::nullopt;
  // Linux names them in the reader's pid namespace: the guest's numbers.
  if (p->kind == procfs::ProcPath::Kind::SelfLink) return std::to_string(c.proc.pid());
  if (p->kind == procfs::ProcPath::Kind::ThreadSelfLink) return fmt::format("{}/task/{}", c.proc.pid(), c.vcpu.tid());
  if (p->kind != procfs::ProcPath::Kind::Process || proc_file(p->file) != ProcFile::Exe) return std::nullopt;
  if (subject(c, *p)) return c.proc.exe_path();  // the guest program, not emu
  if (const auto other = other_guest(c, *p)) return other->identity().exe;
  return std::nullopt;
}

std::optional<int64_t> procfs_getdents64(Call& c, const HostFile& f, uint64_t buf, uint64_t n) {
  auto* dir = dynamic_cast<procfs::FdDirView*>(f.view());
  if (!dir) return std::nullopt;
  std::vector<uint8_t> tmp;
  const int64_t r = dir->read(f, tmp, std::min<uint64_t>(n, 1 << 20));
  if (r <= 0) return r;
  return c.mem.write(c.v, buf, tmp.data(), static_cast<size_t>(r)) ? r : -EFAULT;
}

std::optional<int64_t> procfs_lseek(const HostFile& f, int64_t offset, int whence) {
  auto* dir = dynamic_cast<procfs::FdDirView*>(f.view());
  if (!dir) return std::nullopt;
  return dir->seek(offset, whence);
}

}  // namespace emu::sys
