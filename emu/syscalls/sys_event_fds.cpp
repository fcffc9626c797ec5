// Descriptors that carry events rather than data: eventfd, timerfd, inotify and memfd are the
// host's own behind the guest's fd table (their reads and writes are plain ones, and a
// blocking one waits in wait_ready like a pipe's). signalfd cannot be: guest signals are
// emu's, not the host's. A guest signalfd is a host eventfd that ProcessSignals keeps
// readable while a signal of its mask is pending (guest_signals.h: SignalWatch), so that
// poll and epoll see it; reading it takes the signals from the guest's pending sets.
//
// Known difference: a signalfd inherited over fork is kept readable by the process that
// made it only (a read in the child still takes the child's own signals).
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>

#include <cerrno>
#include <cstring>

#include "emu/cpu/vcpu.h"
#include "emu/process/guest_process.h"
#include "emu/syscalls/sys_handlers.h"
#include "emu/syscalls/sys_paths.h"

namespace emu::sys {

namespace {

int64_t install(Call& c, int host_fd, bool cloexec, std::unique_ptr<GuestView> view = nullptr) {
  if (host_fd < 0) return -errno;
  return c.proc.files().install(std::make_shared<HostFile>(host_fd, std::move(view)), cloexec);
}

class SignalFdView final : public GuestView {
 public:
  explicit SignalFdView(std::shared_ptr<SignalWatch> watch) : watch_(std::move(watch)) {}
  std::string link_target() const override { return "anon_inode:[signalfd]"; }
  SignalWatch& watch() const { return *watch_; }

 private:
  std::shared_ptr<SignalWatch> watch_;
};

SignalFdView* signalfd_view(const HostFile& f) { return dynamic_cast<SignalFdView*>(f.view()); }

// struct signalfd_siginfo (128 bytes, one layout on both ABIs) for a taken signal.
void fill_signalfd_siginfo(const SigInfo& info, signalfd_siginfo& out) {
  std::memset(&out, 0, sizeof out);
  out.ssi_signo = static_cast<uint32_t>(info.signo);
  out.ssi_code = info.code;
  out.ssi_pid = static_cast<uint32_t>(info.pid);
  out.ssi_uid = static_cast<uint32_t>(info.uid);
  out.ssi_status = info.status;
  out.ssi_addr = info.has_addr ? info.addr : 0;
  if (info.code == kSiTimer) {
    out.ssi_tid = static_cast<uint32_t>(info.timer_id);
    out.ssi_overrun = static_cast<uint32_t>(info.overrun);
  }
  out.ssi_int = static_cast<int32_t>(info.value);
  out.ssi_ptr = info.value;
}

uint64_t signalfd_mask(Call& c, uint64_t mask_addr, uint64_t size, int64_t* error) {
  uint64_t mask = 0;
  if (size != 8) {
    *error = -EINVAL;
  } else if (!c.mem.read_value(c.v, mask_addr, mask)) {
    *error = -EFAULT;
  }
  return mask & ~kUnblockable;
}

}  // namespace

int64_t eventfd2(Call& c, unsigned count, int flags) {
  if (flags & ~(EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE)) return -EINVAL;
  return install(c, ::eventfd(count, flags | EFD_CLOEXEC), flags & EFD_CLOEXEC);
}

int64_t timerfd_create(Call& c, int clock, int flags) {
  if (flags & ~(TFD_CLOEXEC | TFD_NONBLOCK)) return -EINVAL;
  return install(c, ::timerfd_create(clock, flags | TFD_CLOEXEC), flags & TFD_CLOEXEC);
}

int64_t timerfd_settime(Call& c, int fd, int flags, uint64_t fresh, uint64_t old, bool time64) {
  itimerspec v{}, prev{};
  if (!read_itimerspec(c, fresh, time64, v)) return -EFAULT;
  const auto f = c.proc.files().get(fd);
  if (!f) return -EBADF;
  if (::timerfd_settime(f->fd(), flags, &v, old ? &prev : nullptr) != 0) return -errno;
  return (!old || write_itimerspec(c, old, time64, prev)) ? 0 : -EFAULT;
}

int64_t timerfd_gettime(Call& c, int fd, uint64_t cur, bool time64) {
  const auto f = c.proc.files().get(fd);
  if (!f) return -EBADF;
  itimerspec v{};
  if (::timerfd_gettime(f->fd(), &v) != 0) return -errno;
  return write_itimerspec(c, cur, time64, v) ? 0 : -EFAULT;
}

int64_t inotify_init1(Call& c, int flags) {
  if (flags & ~(IN_CLOEXEC | IN_NONBLOCK)) return -EINVAL;
  return install(c, ::inotify_init1(flags | IN_CLOEXEC), flags & IN_CLOEXEC);
}

int64_t inotify_add_watch(Call& c, int fd, uint64_t path, uint32_t mask) {
  const auto f = c.proc.files().get(fd);
  if (!f) return -EBADF;
  HostPath hp;
  if (const int64_t r = host_path(c, AT_FDCWD, path, hp)) return r;
  // inotify takes no dirfd: a path relative to the guest's directory is made absolute
  // through the host's view of that directory fd.
  std::string p = hp.path;
  if (hp.dirfd != AT_FDCWD && (p.empty() || p[0] != '/')) p = "/proc/self/fd/" + std::to_string(hp.dirfd) + "/" + p;
  return host_result(::inotify_add_watch(f->fd(), p.c_str(), mask));
}

int64_t inotify_rm_watch(Call& c, int fd, int wd) {
  const auto f = c.proc.files().get(fd);
  if (!f) return -EBADF;
  return host_result(::inotify_rm_watch(f->fd(), wd));
}

int64_t memfd_create(Call& c, uint64_t name, unsigned flags) {
  std::string n;
  // Linux: at most 249 bytes (NAME_MAX less "memfd:"), EINVAL beyond, EFAULT unreadable.
  constexpr size_t kMaxName = 249;
  if (!c.mem.read_string(c.v, name, kMaxName + 1, n)) {
    // Unreadable, or no end within the limit: which one decides the errno.
    char probe[kMaxName + 1];
    return c.mem.read(c.v, name, probe, sizeof probe) ? -EINVAL : -EFAULT;
  }
  if (n.size() > kMaxName) return -EINVAL;
  const int fd = ::memfd_create(n.c_str(), flags | MFD_CLOEXEC);
  return install(c, fd, flags & MFD_CLOEXEC);
}

int64_t signalfd4(Call& c, int fd, uint64_t mask_addr, uint64_t size, int flags) {
  if (flags & ~(SFD_CLOEXEC | SFD_NONBLOCK)) return -EINVAL;
  int64_t error = 0;
  const uint64_t mask = signalfd_mask(c, mask_addr, size, &error);
  if (error) return error;
  if (fd != -1) {
    // A new mask for an existing signalfd.
    const auto f = c.proc.files().get(fd);
    if (!f) return -EBADF;
    SignalFdView* view = signalfd_view(*f);
    if (!view) return -EINVAL;
    view->watch().mask.store(mask, std::memory_order_release);
    c.proc.signals().rearm_watch(view->watch(), c.vcpu.signals());
    return fd;
  }
  const int host = ::eventfd(0, EFD_CLOEXEC | ((flags & SFD_NONBLOCK) ? EFD_NONBLOCK : 0));
  if (host < 0) return -errno;
  // The watch writes through its own descriptor, non-blocking, so the HostFile's may close
  // while a sender still holds the watch.
  const int own = ::fcntl(host, F_DUPFD_CLOEXEC, 0);
  if (own < 0 || ::fcntl(own, F_SETFL, O_NONBLOCK) != 0) {
    const int e = errno;
    ::close(host);
    if (own >= 0) ::close(own);
    return -e;
  }
  auto watch = std::make_shared<SignalWatch>(own, mask);
  c.proc.signals().add_watch(watch);
  c.proc.signals().rearm_watch(*watch, c.vcpu.signals());
  return install(c, host, flags & SFD_CLOEXEC, std::make_unique<SignalFdView>(std::move(watch)));
}

std::optional<int64_t> signalfd_read(Call& c, const HostFile& f, uint64_t buf, uint64_t n) {
  SignalFdView* view = signalfd_view(f);
  if (!view) return std::nullopt;
  if (n < sizeof(signalfd_siginfo)) return -EINVAL;
  SignalWatch& w = view->watch();
  ProcessSignals& signals = c.proc.signals();
  for (;;) {
    uint64_t done = 0;
    while (done + sizeof(signalfd_siginfo) <= n) {
      SigInfo info;
      const int sig = signals.take(c.vcpu.signals(), w.mask.load(std::memory_order_acquire), &info);
      if (!sig) break;
      info.signo = sig;
      signalfd_siginfo out;
      fill_signalfd_siginfo(info, out);
      if (!c.mem.write(c.v, buf + done, &out, sizeof out)) {
        signals.rearm_watch(w, c.vcpu.signals());
        return done ? static_cast<int64_t>(done) : -EFAULT;
      }
      done += sizeof out;
    }
    signals.rearm_watch(w, c.vcpu.signals());
    if (done) return static_cast<int64_t>(done);
    const int fl = ::fcntl(f.fd(), F_GETFL);
    if (fl >= 0 && (fl & O_NONBLOCK)) return -EAGAIN;
    std::vector<pollfd> p{{f.fd(), POLLIN, 0}};
    if (const int64_t r = wait_host_fds(c, p, nullptr); r < 0) return r == -kErestartNoHand ? -kErestartSys : r;
  }
}

}  // namespace emu::sys
