// epoll: a guest epoll instance is a host one behind the guest's fd table. Registrations name
// host fds (the guest fd's HostFile), and what comes back is the guest's own epoll_data, so no
// number needs translating on the way out. struct epoll_event is packed on x86_64 (12 bytes)
// and i386 aligns its 64-bit field to 4: one layout for both ABIs and the host.
//
// A wait is never left to the host's epoll_wait alone: it would not end when the guest
// process is killed or a guest signal comes. It waits in wait_host_fds on the epoll fd
// (readable when an event is ready), then collects with a zero timeout.
//
// Known difference: Linux keys a registration by (file, fd number); the host sees one host
// fd for guest fds that dup shares, so adding two duplicates of one description answers EEXIST.
#include <sys/epoll.h>

#include <cerrno>
#include <climits>
#include <vector>

#include "emu/process/guest_process.h"
#include "emu/syscalls/sys_handlers.h"
#include "emu/syscalls/sys_paths.h"

namespace emu::sys {

namespace {

static_assert(sizeof(epoll_event) == 12, "the guest's packed epoll_event");

// A host call collects at most this many events; Linux may also return fewer than maxevents.
constexpr int kMaxBatch = 1024;

int64_t create(Call& c, int flags) {
  const int fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) return -errno;
  return c.proc.files().install(std::make_shared<HostFile>(fd), (flags & EPOLL_CLOEXEC) != 0);
}

int64_t wait(Call& c, int epfd, uint64_t events, int maxevents, const timespec* timeout) {
  if (maxevents <= 0 || maxevents > static_cast<int>(INT_MAX / sizeof(epoll_event))) return -EINVAL;
  const auto ep = c.proc.files().get(epfd);
  if (!ep) return -EBADF;
  std::vector<epoll_event> got(std::min(maxevents, kMaxBatch));
  const Deadline deadline = timeout ? deadline_after(timeout->tv_sec, timeout->tv_nsec) : Deadline{};
  for (;;) {
    // A zero-timeout collect first: it also answers EINVAL for a fd that is not an epoll one.
    // After a wake it may find nothing (another thread took the events): the wait goes on.
    const int n = ::epoll_wait(ep->fd(), got.data(), static_cast<int>(got.size()), 0);
    if (n < 0 && errno != EINTR) return -errno;
    if (n > 0) return c.mem.write(c.v, events, got.data(), n * sizeof(epoll_event)) ? n : -EFAULT;
    std::optional<timespec> left;
    if (timeout && deadline) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= *deadline) return 0;
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(*deadline - now).count();
      left = timespec{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
    }
    std::vector<pollfd> p{{ep->fd(), POLLIN, 0}};
    if (const int64_t r = wait_host_fds(c, p, left ? &*left : nullptr); r < 0) return r;
  }
}

}  // namespace

int64_t epoll_create(Call& c, int size) { return size <= 0 ? -EINVAL : create(c, 0); }

int64_t epoll_create1(Call& c, int flags) { return (flags & ~EPOLL_CLOEXEC) ? -EINVAL : create(c, flags); }

int64_t epoll_ctl(Call& c, int epfd, int op, int fd, uint64_t event) {
  epoll_event e{};
  // Linux copies the event first (for every op but DEL), then looks at the fds.
  if (op != EPOLL_CTL_DEL && !c.mem.read(c.v, event, &e, sizeof e)) return -EFAULT;
  const auto ep = c.proc.files().get(epfd);
  if (!ep) return -EBADF;
  const auto target = c.proc.files().get(fd);
  if (!target) return -EBADF;
  // The same HostFile for both: Linux answers EINVAL for an epoll fd watching itself.
  if (ep == target) return -EINVAL;
  return host_result(::epoll_ctl(ep->fd(), op, target->fd(), op == EPOLL_CTL_DEL ? nullptr : &e));
}

int64_t epoll_wait(Call& c, int epfd, uint64_t events, int maxevents, int timeout_ms) {
  if (timeout_ms < 0) return wait(c, epfd, events, maxevents, nullptr);
  const timespec t{timeout_ms / 1000, (timeout_ms % 1000) * 1000000L};
  return wait(c, epfd, events, maxevents, &t);
}

int64_t epoll_pwait(Call& c, int epfd, uint64_t events, int maxevents, int timeout_ms, uint64_t sigmask, uint64_t size) {
  if (const int64_t e = install_wait_mask(c, sigmask, size); e < 0) return e;
  return finish_wait_mask(c, epoll_wait(c, epfd, events, maxevents, timeout_ms));
}

int64_t epoll_pwait2(Call& c, int epfd, uint64_t events, int maxevents, uint64_t timeout, uint64_t sigmask, uint64_t size) {
  std::optional<timespec> t;
  if (timeout) {
    int64_t sec = 0, nsec = 0;
    if (!read_timespec(c, timeout, true, sec, nsec)) return -EFAULT;
    if (!valid_timespec(sec, nsec)) return -EINVAL;
    t = timespec{static_cast<time_t>(sec), static_cast<long>(nsec)};
  }
  if (const int64_t e = install_wait_mask(c, sigmask, size); e < 0) return e;
  return finish_wait_mask(c, wait(c, epfd, events, maxevents, t ? &*t : nullptr));
}

}  // namespace emu::sys
