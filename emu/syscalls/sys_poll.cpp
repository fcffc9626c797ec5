// Waiting on many descriptors: poll, ppoll, select, pselect6. Each becomes one host ppoll on
// the host fds behind the guest's, with two more entries that end the wait the way a guest
// kernel would: the process ending, and a signal for the calling thread.
#include <poll.h>
#include <sys/select.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <vector>

#include "emu/cpu/vcpu.h"
#include "emu/process/guest_process.h"
#include "emu/syscalls/sys_handlers.h"

namespace emu::sys {

namespace {

using Clock = std::chrono::steady_clock;

// Linux's select sets (fs/select.c): what counts as readable, writable and exceptional.
constexpr short kSelectIn = POLLIN | POLLRDNORM | POLLRDBAND | POLLHUP | POLLERR;
constexpr short kSelectOut = POLLOUT | POLLWRNORM | POLLWRBAND | POLLERR;
constexpr short kSelectEx = POLLPRI;

std::optional<timespec> remaining(const Deadline& deadline) {
  if (!deadline) return std::nullopt;
  const auto left = std::max(*deadline - Clock::now(), Clock::duration::zero());
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
  return timespec{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
}

Deadline deadline_of(const timespec* timeout) {
  if (!timeout) return std::nullopt;
  return deadline_after(timeout->tv_sec, timeout->tv_nsec);
}

// poll and ppoll: the guest's pollfd array (one layout on both ABIs) in and out around the
// wait, with each guest fd the host's for the call and the guest's again in what is written back.
int64_t poll_fds(Call& c, uint64_t fds, uint64_t n, const timespec* timeout) {
  if (n > static_cast<uint64_t>(c.proc.files().limit())) return -EINVAL;  // Linux: more than RLIMIT_NOFILE
  std::vector<pollfd> guest(n);
  if (n && !c.mem.read(c.v, fds, guest.data(), n * sizeof(pollfd))) return -EFAULT;
  std::vector<pollfd> host = guest;
  std::vector<std::shared_ptr<HostFile>> held(n);
  int not_open = 0;
  for (uint64_t i = 0; i < n; ++i) {
    host[i].revents = 0;
    if (guest[i].fd < 0) continue;  // ignored, as on Linux (and on the host)
    held[i] = c.proc.files().get(guest[i].fd);
    host[i].fd = held[i] ? held[i]->fd() : -1;
    not_open += !held[i];
  }
  // A fd that is not open is POLLNVAL, and counts as ready: Linux then does not wait.
  static constexpr timespec kNoWait{0, 0};
  const int64_t r = wait_host_fds(c, host, not_open ? &kNoWait : timeout);
  if (r < 0) return r;
  for (uint64_t i = 0; i < n; ++i) {
    guest[i].revents = host[i].revents;
    if (guest[i].fd >= 0 && !held[i]) guest[i].revents = POLLNVAL;
  }
  return (n == 0 || c.mem.write(c.v, fds, guest.data(), n * sizeof(pollfd))) ? r + not_open : -EFAULT;
}

// A guest fd_set of `n` bits: Linux copies whole longs of the guest's size. With fd_set
// being a little-endian bitmap, the bytes mean the same whatever the word size.
size_t fd_set_bytes(Call& c, int n) {
  const size_t word = c.i386 ? 4 : 8;
  return (static_cast<size_t>(n) + word * 8 - 1) / (word * 8) * word;
}

bool bit(const std::vector<uint8_t>& set, int fd) { return !set.empty() && (set[fd / 8] >> (fd % 8)) & 1; }

// select's core. `timeout` is updated to what is left, as Linux does (the caller writes it back).
int64_t select_fds(Call& c, int n, uint64_t inp, uint64_t outp, uint64_t exp, timespec* timeout) {
  if (n < 0) return -EINVAL;
  n = std::min(n, c.proc.files().limit());  // Linux: beyond the table's size nothing can be set
  const size_t bytes = fd_set_bytes(c, n);
  std::vector<uint8_t> sets[3];
  const uint64_t addrs[3] = {inp, outp, exp};
  for (int k = 0; k < 3; ++k) {
    if (!addrs[k]) continue;
    sets[k].resize(bytes);
    if (bytes && !c.mem.read(c.v, addrs[k], sets[k].data(), bytes)) return -EFAULT;
  }
  std::vector<pollfd> host;
  std::vector<int> guest_fd;
  std::vector<std::shared_ptr<HostFile>> held;
  static constexpr short kWant[3] = {kSelectIn, kSelectOut, kSelectEx};
  for (int fd = 0; fd < n; ++fd) {
    short events = 0;
    for (int k = 0; k < 3; ++k) events |= bit(sets[k], fd) ? kWant[k] : 0;
    if (!events) continue;
    auto f = c.proc.files().get(fd);
    if (!f) return -EBADF;
    host.push_back({f->fd(), events, 0});
    guest_fd.push_back(fd);
    held.push_back(std::move(f));
  }
  const Deadline deadline = deadline_of(timeout);
  const int64_t r = wait_host_fds(c, host, timeout);
  if (timeout) {
    if (auto left = remaining(deadline)) *timeout = *left;
  }
  if (r < 0) return r;
  int64_t count = 0;
  std::vector<uint8_t> out[3];
  for (int k = 0; k < 3; ++k) out[k].assign(sets[k].size(), 0);
  for (size_t i = 0; i < host.size(); ++i) {
    const int fd = guest_fd[i];
    for (int k = 0; k < 3; ++k) {
      if (!bit(sets[k], fd) || !(host[i].revents & (kWant[k] | (k == 2 ? 0 : POLLNVAL)))) continue;
      out[k][fd / 8] |= static_cast<uint8_t>(1u << (fd % 8));
      ++count;
    }
  }
  for (int k = 0; k < 3; ++k) {
    if (addrs[k] && bytes && !c.mem.write(c.v, addrs[k], out[k].data(), bytes)) return -EFAULT;
  }
  return count;
}

// A guest timeval (select) or timespec (pselect6): 0 without one, -EFAULT, -EINVAL.
int64_t read_select_timeout(Call& c, uint64_t addr, bool timeval, bool time64, std::optional<timespec>& out) {
  if (!addr) return 0;
  int64_t sec = 0, frac = 0;
  if (timeval) {
    if (!read_timeval(c, addr, sec, frac)) return -EFAULT;
    // Linux carries whole seconds out of tv_usec; what is left negative is invalid.
    if (frac < 0) return -EINVAL;
    sec += frac / 1000000;
    frac = frac % 1000000 * 1000;
  } else if (!read_timespec(c, addr, time64, sec, frac)) {
    return -EFAULT;
  }
  if (!valid_timespec(sec, frac)) return -EINVAL;
  out = timespec{static_cast<time_t>(sec), static_cast<long>(frac)};
  return 0;
}

// Linux writes the time left back into the caller's timeval/timespec; a failure to do so is
// not reported (the call's result stands).
void write_select_timeout(Call& c, uint64_t addr, bool timeval, bool time64, const timespec& left) {
  if (timeval) {
    (void)write_timeval(c, addr, left.tv_sec, left.tv_nsec / 1000);
  } else {
    (void)write_timespec(c, addr, left, time64);
  }
}

int64_t select_with(Call& c, int n, uint64_t inp, uint64_t outp, uint64_t exp, uint64_t tp, bool timeval, bool time64) {
  std::optional<timespec> timeout;
  if (const int64_t e = read_select_timeout(c, tp, timeval, time64, timeout); e < 0) return e;
  const int64_t r = select_fds(c, n, inp, outp, exp, timeout ? &*timeout : nullptr);
  if (timeout) write_select_timeout(c, tp, timeval, time64, *timeout);
  return r;
}

}  // namespace

int64_t wait_host_fds(Call& c, std::vector<pollfd>& fds, const timespec* timeout) {
  const size_t n = fds.size();
  const Deadline deadline = deadline_of(timeout);
  fds.push_back({c.proc.ending_fd(), POLLIN, 0});
  fds.push_back({c.vcpu.wake_fd(), POLLIN, 0});
  struct Trim {
    std::vector<pollfd>& v;
    size_t n;
    ~Trim() { v.resize(n); }
  } trim{fds, n};
  for (;;) {
    if (c.proc.signals().deliverable(c.vcpu.signals())) return -kErestartNoHand;
    const std::optional<timespec> left = remaining(deadline);
    int r = ::ppoll(fds.data(), fds.size(), left ? &*left : nullptr, nullptr);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    const bool ending = fds[n].revents, woken = fds[n + 1].revents;
    if (ending) return -EINTR;
    if (!woken) return r;
    c.vcpu.drain_wake_fd();
    r -= 1;
    if (r > 0) return r;
    // Woken with nothing ready: a signal to take interrupts; a wake for a signal another
    // thread took meanwhile is stale, and the wait goes on for the time left.
    if (c.proc.signals().deliverable(c.vcpu.signals())) return -kErestartNoHand;
    if (deadline && Clock::now() >= *deadline) return 0;
  }
}

int64_t install_wait_mask(Call& c, uint64_t set, uint64_t size) {
  if (!set) return 0;
  if (size != 8) return -EINVAL;
  uint64_t mask = 0;
  if (!c.mem.read_value(c.v, set, mask)) return -EFAULT;
  ThreadSignals& t = c.vcpu.signals();
  t.saved_mask = t.mask.load(std::memory_order_acquire);
  c.proc.signals().set_mask(t, mask & ~kUnblockable);
  return 0;
}

int64_t finish_wait_mask(Call& c, int64_t result) {
  ThreadSignals& t = c.vcpu.signals();
  // Interrupted: the vCPU delivers the signal with the caller's mask in the handler's frame
  // (or puts it back itself). Otherwise the caller's mask is back before the call returns,
  // and a signal the temporary mask let through stays pending (Linux:
  // restore_saved_sigmask_unless).
  if (t.saved_mask && result != -EINTR && !is_restart_code(result)) {
    c.proc.signals().set_mask(t, *t.saved_mask);
    t.saved_mask.reset();
  }
  return result;
}

int64_t poll(Call& c, uint64_t fds, uint64_t n, int timeout_ms) {
  if (timeout_ms < 0) return poll_fds(c, fds, n, nullptr);
  const timespec timeout{timeout_ms / 1000, (timeout_ms % 1000) * 1000000L};
  return poll_fds(c, fds, n, &timeout);
}

int64_t ppoll(Call& c, uint64_t fds, uint64_t n, uint64_t timeout, uint64_t sigmask, uint64_t sigsetsize, bool time64) {
  std::optional<timespec> ts;
  if (timeout) {
    int64_t sec = 0, nsec = 0;
    if (!read_timespec(c, timeout, time64, sec, nsec)) return -EFAULT;
    if (!valid_timespec(sec, nsec)) return -EINVAL;
    // The host's ppoll takes the timespec as it is: no rounding a sub-millisecond timeout down
    // to a busy 0, no overflow converting a far one to milliseconds (the kernel saturates).
    ts = timespec{static_cast<time_t>(sec), static_cast<long>(nsec)};
  }
  if (const int64_t e = install_wait_mask(c, sigmask, sigsetsize); e < 0) return e;
  return finish_wait_mask(c, poll_fds(c, fds, n, ts ? &*ts : nullptr));
}

int64_t select(Call& c, int n, uint64_t inp, uint64_t outp, uint64_t exp, uint64_t tvp) {
  return select_with(c, n, inp, outp, exp, tvp, true, false);
}

int64_t old_select(Call& c, uint64_t args) {
  uint32_t a[5];
  if (!c.mem.read(c.v, args, a, sizeof a)) return -EFAULT;
  return select(c, static_cast<int32_t>(a[0]), a[1], a[2], a[3], a[4]);
}

int64_t pselect6(Call& c, int n, uint64_t inp, uint64_t outp, uint64_t exp, uint64_t tsp, uint64_t sig, bool time64) {
  // The sixth argument points at {const sigset_t *ss; size_t ss_len}, words of the guest's size.
  uint64_t set = 0, size = 0;
  if (sig) {
    if (c.i386) {
      uint32_t pair[2];
      if (!c.mem.read(c.v, sig, pair, sizeof pair)) return -EFAULT;
      set = pair[0], size = pair[1];
    } else {
      uint64_t pair[2];
      if (!c.mem.read(c.v, sig, pair, sizeof pair)) return -EFAULT;
      set = pair[0], size = pair[1];
    }
  }
  std::optional<timespec> timeout;
  if (const int64_t e = read_select_timeout(c, tsp, false, time64, timeout); e < 0) return e;
  if (const int64_t e = install_wait_mask(c, set, size); e < 0) return e;
  const int64_t r = select_fds(c, n, inp, outp, exp, timeout ? &*timeout : nullptr);
  if (timeout) write_select_timeout(c, tsp, false, time64, *timeout);
  return finish_wait_mask(c, r);
}

}  // namespace emu::sys
