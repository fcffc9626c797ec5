// Sockets: host sockets behind the guest's fd table, for both ABIs. What crosses the
// boundary: socket addresses (one layout for both ABIs, at most a sockaddr_storage), data
// buffers, option values (i386's timeval options are 32-bit), and for sendmsg/recvmsg the
// ABI's msghdr, iovec and cmsghdr with SCM_RIGHTS descriptors translated between the guest's
// fd table and the host's. Blocking calls wait interruptibly (wait_ready), as reads do.
// Credentials (SO_PEERCRED, SO_PEERPIDFD, SCM_CREDENTIALS) name guest processes: the host
// names emu for all of them, so socketpair, connect, listen, accept and the sends tell the
// run's UnixSocketOwners who is behind each AF_UNIX socket.
#include <fcntl.h>
#include <linux/net.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "emu/process/guest_process.h"
#include "emu/process/machine.h"
#include "emu/process/unix_diag.h"
#include "emu/syscalls/sys_handlers.h"

namespace emu::sys {

namespace {

constexpr size_t kMaxData = size_t{8} << 20;  // one host call moves at most this much
constexpr size_t kMaxControl = 64 * 1024;
constexpr size_t kMaxIov = 1024;               // UIO_MAXIOV

// The guest fd's file, which must be a socket: Linux answers ENOTSOCK for any other before
// it could block (a blocking recv on an epoll fd waited forever; found by fuzz/syscalls).
// `ino`, when asked for, is the socket's inode (what UnixSocketOwners and sock_diag name it by).
std::shared_ptr<HostFile> socket_of(Call& c, int fd, int64_t& err, ino_t* ino = nullptr) {
  auto f = c.proc.files().get(fd);
  err = f ? 0 : -EBADF;
  struct stat st {};
  if (f && (::fstat(f->fd(), &st) != 0 || !S_ISSOCK(st.st_mode))) {
    err = -ENOTSOCK;
    return nullptr;
  }
  if (ino) *ino = st.st_ino;
  return f;
}

ino_t inode_of(int host_fd) {
  struct stat st {};
  return ::fstat(host_fd, &st) == 0 ? st.st_ino : 0;
}

bool is_unix_socket(int host_fd) {
  int domain = 0;
  socklen_t len = sizeof domain;
  return ::getsockopt(host_fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && domain == AF_UNIX;
}

// The host reports emu's own pid for a peer (or sender) in any guest process of the run:
// that pid becomes the guest's whom `ino`'s peer belongs to. Other pids (host processes
// outside emu) pass as they are, as under qemu-user.
void to_guest_pid(Call& c, ino_t ino, int32_t& pid, bool sender) {
  if (pid != ::getpid() || !ino) return;
  UnixSocketOwners& owners = c.proc.machine().unix_sockets();
  if (const auto guest = sender ? owners.peer_sender(ino) : owners.peer_credentials(ino)) pid = *guest;
}


// A guest socket address (len bytes) into `out`; Linux's EINVAL for a bad length.
int64_t read_addr(Call& c, uint64_t addr, uint64_t len, sockaddr_storage& out) {
  if (static_cast<int64_t>(static_cast<int32_t>(len)) < 0 || len > sizeof out) return -EINVAL;
  std::memset(&out, 0, sizeof out);
  if (len && !c.mem.read(c.v, addr, &out, len)) return -EFAULT;
  return 0;
}

// Writes `addr` (actual `len`) to a guest buffer of *lenp bytes and the actual length back,
// as move_addr_to_user does.
int64_t write_addr(Call& c, const sockaddr_storage& addr, socklen_t len, uint64_t out, uint64_t lenp) {
  if (!out || !lenp) return 0;
  int32_t room = 0;
  if (!c.mem.read_value(c.v, lenp, room)) return -EFAULT;
  if (room < 0) return -EINVAL;
  const size_t n = std::min<size_t>(static_cast<size_t>(room), len);
  if (n && !c.mem.write(c.v, out, &addr, n)) return -EFAULT;
  return c.mem.write_value(c.v, lenp, static_cast<int32_t>(len)) ? 0 : -EFAULT;
}

int64_t install_socket(Call& c, int host_fd, int flags) {
  if (host_fd < 0) return -errno;
  const int fd = c.proc.files().install(std::make_shared<HostFile>(host_fd), (flags & SOCK_CLOEXEC) != 0);
  return fd;
}

// Guest iovecs (ABI layout) to (address, length) pairs, at most kMaxIov, lengths summed.
int64_t read_iovecs(Call& c, uint64_t iov, uint64_t count, std::vector<std::pair<uint64_t, uint64_t>>& out) {
  if (count > kMaxIov) return -EMSGSIZE;
  const size_t word = c.i386 ? 4 : 8;
  std::vector<uint8_t> raw(count * 2 * word);
  if (count && !c.mem.read(c.v, iov, raw.data(), raw.size())) return -EFAULT;
  uint64_t total = 0;
  for (size_t i = 0; i < count; ++i) {
    uint64_t base = 0, len = 0;
    std::memcpy(&base, raw.data() + 2 * i * word, word);
    std::memcpy(&len, raw.data() + (2 * i + 1) * word, word);
    if (static_cast<int64_t>(len) < 0) return -EINVAL;
    total += len;
    out.emplace_back(base, len);
  }
  return total > (uint64_t{1} << 31) ? -EINVAL : 0;
}

// The guest's msghdr, in its ABI's layout.
struct GuestMsg {
  uint64_t name = 0, namelen = 0, iov = 0, iovlen = 0, control = 0, controllen = 0;
  int32_t flags = 0;
};

int64_t read_msghdr(Call& c, uint64_t msg, GuestMsg& m) {
  if (c.i386) {
    uint32_t w[7];
    if (!c.mem.read(c.v, msg, w, sizeof w)) return -EFAULT;
    m = {w[0], w[1], w[2], w[3], w[4], w[5], static_cast<int32_t>(w[6])};
    return 0;
  }
  uint64_t w[7];
  if (!c.mem.read(c.v, msg, w, sizeof w)) return -EFAULT;
  m = {w[0], w[1] & 0xffffffffu, w[2], w[3], w[4], w[5], static_cast<int32_t>(w[6])};
  return 0;
}

// The msghdr and its iovecs, both in the guest ABI's layout.
int64_t read_msg(Call& c, uint64_t msg, GuestMsg& m, std::vector<std::pair<uint64_t, uint64_t>>& iov) {
  if (const int64_t r = read_msghdr(c, msg, m)) return r;
  return read_iovecs(c, m.iov, m.iovlen, iov);
}

// Field offsets of msghdr's namelen, controllen and flags in the guest ABI (recvmsg writes them).
struct MsgOffsets {
  uint64_t namelen, controllen, flags;
};
MsgOffsets msg_offsets(bool i386) { return i386 ? MsgOffsets{4, 20, 24} : MsgOffsets{8, 40, 48}; }

// cmsghdr in each ABI: the header's size and the alignment of lengths and data.
size_t cmsg_align(bool i386, size_t n) { return i386 ? (n + 3) & ~size_t{3} : (n + 7) & ~size_t{7}; }
size_t cmsg_header(bool i386) { return i386 ? 12 : 16; }

// Guest control messages to host ones: SCM_RIGHTS names guest fds, which become host fds
// (kept open by `keep` until the call is over); SCM_CREDENTIALS's guest pid, which the host
// must see as emu's, is kept in `sender`; other messages are copied as they are.
int64_t control_to_host(Call& c, const std::vector<uint8_t>& guest, std::vector<uint8_t>& host,
                        std::vector<std::shared_ptr<HostFile>>& keep, int& sender) {
  size_t at = 0;
  const size_t gh = cmsg_header(c.i386);
  while (at + gh <= guest.size()) {
    uint64_t len = 0;
    std::memcpy(&len, guest.data() + at, c.i386 ? 4 : 8);
    int32_t level = 0, type = 0;
    std::memcpy(&level, guest.data() + at + (c.i386 ? 4 : 8), 4);
    std::memcpy(&type, guest.data() + at + (c.i386 ? 8 : 12), 4);
    if (len < gh || at + len > guest.size()) return -EINVAL;
    const uint8_t* data = guest.data() + at + gh;
    size_t data_len = len - gh;
    std::vector<uint8_t> payload(data, data + data_len);
    if (level == SOL_SOCKET && type == SCM_RIGHTS) {
      if (data_len % sizeof(int) != 0) return -EINVAL;
      for (size_t i = 0; i < data_len / sizeof(int); ++i) {
        int gfd = 0;
        std::memcpy(&gfd, data + i * sizeof(int), sizeof(int));
        auto f = c.proc.files().get(gfd);
        if (!f) return -EBADF;
        const int hfd = f->fd();
        std::memcpy(payload.data() + i * sizeof(int), &hfd, sizeof(int));
        keep.push_back(std::move(f));
      }
    }
    if (level == SOL_SOCKET && type == SCM_CREDENTIALS) {
      // struct ucred {pid, uid, gid}. The host kernel checks the pid against the sender's
      // host tgid, which is emu's for every guest process: the guest's own pid (or, for a
      // privileged guest, another guest's) is sent as emu's; another is refused as Linux
      // refuses it without CAP_SYS_ADMIN.
      if (data_len < sizeof(ucred)) return -EINVAL;
      ucred cred;
      std::memcpy(&cred, data, sizeof cred);
      const bool ours = cred.pid == c.proc.pid() || (::geteuid() == 0 && c.proc.machine().find_process(cred.pid));
      if (!ours && ::geteuid() != 0) return -EPERM;
      if (ours) {
        sender = cred.pid;
        cred.pid = ::getpid();
      }
      std::memcpy(payload.data(), &cred, sizeof cred);
    }
    const size_t start = host.size();
    host.resize(start + CMSG_SPACE(payload.size()), 0);
    auto* h = reinterpret_cast<cmsghdr*>(host.data() + start);
    h->cmsg_len = CMSG_LEN(payload.size());
    h->cmsg_level = level;
    h->cmsg_type = type;
    if (!payload.empty()) std::memcpy(CMSG_DATA(h), payload.data(), payload.size());
    at += cmsg_align(c.i386, len);
  }
  return 0;
}

// Host control messages back to the guest's layout: received host fds are installed in the
// guest's table. What does not fit the guest's buffer sets MSG_CTRUNC (and the fds that did
// not fit are closed, as Linux's scm_detach_fds does).
// `ino`: the receiving socket, whose peer sent what carries credentials.
void control_to_guest(Call& c, msghdr& hm, ino_t ino, std::vector<uint8_t>& out, size_t room, int flags, int& msg_flags) {
  const size_t gh = cmsg_header(c.i386);
  for (cmsghdr* h = CMSG_FIRSTHDR(&hm); h; h = CMSG_NXTHDR(&hm, h)) {
    const size_t data_len = h->cmsg_len - CMSG_LEN(0);
    std::vector<uint8_t> payload(CMSG_DATA(h), CMSG_DATA(h) + data_len);
    if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS) {
      const size_t n = data_len / sizeof(int);
      const size_t fit = out.size() + gh <= room ? std::min(n, (room - out.size() - gh) / sizeof(int)) : 0;
      for (size_t i = 0; i < n; ++i) {
        int hfd = -1;
        std::memcpy(&hfd, payload.data() + i * sizeof(int), sizeof(int));
        if (i >= fit) {
          ::close(hfd);
          msg_flags |= MSG_CTRUNC;
          continue;
        }
        const int gfd = c.proc.files().install(std::make_shared<HostFile>(hfd), (flags & MSG_CMSG_CLOEXEC) != 0);
        std::memcpy(payload.data() + i * sizeof(int), &gfd, sizeof(int));
      }
      payload.resize(fit * sizeof(int));
    }
    if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_CREDENTIALS && data_len >= sizeof(ucred)) {
      ucred cred;
      std::memcpy(&cred, payload.data(), sizeof cred);
      to_guest_pid(c, ino, cred.pid, true);
      std::memcpy(payload.data(), &cred, sizeof cred);
    }
    const size_t len = gh + payload.size();
    if (out.size() + len > room) {
      msg_flags |= MSG_CTRUNC;
      break;
    }
    const size_t start = out.size();
    out.resize(start + std::min(cmsg_align(c.i386, len), room - start), 0);
    const uint64_t glen = len;
    std::memcpy(out.data() + start, &glen, c.i386 ? 4 : 8);
    const int32_t level = h->cmsg_level, type = h->cmsg_type;
    std::memcpy(out.data() + start + (c.i386 ? 4 : 8), &level, 4);
    std::memcpy(out.data() + start + (c.i386 ? 8 : 12), &type, 4);
    std::memcpy(out.data() + start + gh, payload.data(), payload.size());
  }
}

constexpr int kSoPeerPidfd = 77;  // SO_PEERPIDFD (Linux 6.5), not in every libc's headers

bool timeval_option(int level, int name) {
  return level == SOL_SOCKET && (name == SO_RCVTIMEO_OLD || name == SO_SNDTIMEO_OLD);
}

}  // namespace

int64_t socket(Call& c, int domain, int type, int protocol) {
  return install_socket(c, ::socket(domain, type, protocol), type);
}

int64_t socketpair(Call& c, int domain, int type, int protocol, uint64_t sv) {
  int host[2];
  if (::socketpair(domain, type, protocol, host) != 0) return -errno;
  auto a = std::make_shared<HostFile>(host[0]);
  auto b = std::make_shared<HostFile>(host[1]);
  const bool cloexec = (type & SOCK_CLOEXEC) != 0;
  if (domain == AF_UNIX) c.proc.machine().unix_sockets().record_pair(inode_of(host[0]), inode_of(host[1]), c.proc.pid());
  const int guest[2] = {c.proc.files().install(a, cloexec), c.proc.files().install(b, cloexec)};
  if (guest[0] < 0 || guest[1] < 0 || !c.mem.write(c.v, sv, guest, sizeof guest)) {
    for (const int g : guest)
      if (g >= 0) c.proc.files().close(g);
    return guest[0] < 0 ? guest[0] : guest[1] < 0 ? guest[1] : -EFAULT;
  }
  return 0;
}

int64_t bind(Call& c, int fd, uint64_t addr, uint64_t len) {
  int64_t err = 0;
  const auto f = socket_of(c, fd, err);
  if (!f) return err;
  sockaddr_storage sa;
  if (const int64_t r = read_addr(c, addr, len, sa)) return r;
  return ::bind(f->fd(), reinterpret_cast<sockaddr*>(&sa), static_cast<socklen_t>(len)) == 0 ? 0 : -errno;
}

int64_t connect(Call& c, int fd, uint64_t addr, uint64_t len) {
  int64_t err = 0;
  ino_t ino = 0;
  const auto f = socket_of(c, fd, err, &ino);
  if (!f) return err;
  sockaddr_storage sa;
  if (const int64_t r = read_addr(c, addr, len, sa)) return r;
  // The connector is known before the connection exists: the listener's side may accept
  // and ask for its peer before connect returns here.
  const bool unix_socket = is_unix_socket(f->fd());
  if (unix_socket) c.proc.machine().unix_sockets().record_connector(ino, c.proc.pid());
  // A blocking connect waits in the host; on a non-blocking socket EINPROGRESS comes back.
  if (::connect(f->fd(), reinterpret_cast<sockaddr*>(&sa), static_cast<socklen_t>(len)) != 0) return -errno;
  if (unix_socket) c.proc.machine().unix_sockets().connected(ino, socket_address(f->fd(), true));
  return 0;
}

int64_t listen(Call& c, int fd, int backlog) {
  int64_t err = 0;
  ino_t ino = 0;
  const auto f = socket_of(c, fd, err, &ino);
  if (!f) return err;
  // Linux takes the listener's credentials here; its connections' peers see them.
  if (is_unix_socket(f->fd())) c.proc.machine().unix_sockets().record_listener(ino, c.proc.pid(), socket_address(f->fd(), false));
  return ::listen(f->fd(), backlog) == 0 ? 0 : -errno;
}

int64_t accept4(Call& c, int fd, uint64_t addr, uint64_t lenp, int flags) {
  if (flags & ~(SOCK_CLOEXEC | SOCK_NONBLOCK)) return -EINVAL;
  int64_t err = 0;
  ino_t ino = 0;
  const auto f = socket_of(c, fd, err, &ino);
  if (!f) return err;
  if (const int64_t r = wait_ready(c, *f, POLLIN); r < 0) return r;
  sockaddr_storage sa{};
  socklen_t len = sizeof sa;
  const int host = ::accept4(f->fd(), reinterpret_cast<sockaddr*>(&sa), &len, flags | SOCK_CLOEXEC);
  if (host < 0) return -errno;
  if (is_unix_socket(host)) {
    const ino_t accepted = inode_of(host);
    c.proc.machine().unix_sockets().accepted(ino, accepted, unix_peer_inode(accepted).value_or(0));
  }
  const int64_t gfd = install_socket(c, host, flags);
  if (gfd < 0) return gfd;
  if (const int64_t r = write_addr(c, sa, len, addr, lenp); r < 0) {
    c.proc.files().close(static_cast<int>(gfd));
    return r;
  }
  return gfd;
}

int64_t sockname(Call& c, int fd, uint64_t addr, uint64_t lenp, bool peer) {
  int64_t err = 0;
  const auto f = socket_of(c, fd, err);
  if (!f) return err;
  sockaddr_storage sa{};
  socklen_t len = sizeof sa;
  const int r = peer ? ::getpeername(f->fd(), reinterpret_cast<sockaddr*>(&sa), &len)
                     : ::getsockname(f->fd(), reinterpret_cast<sockaddr*>(&sa), &len);
  if (r != 0) return -errno;
  if (!lenp) return -EFAULT;
  return write_addr(c, sa, len, addr, lenp);
}

int64_t sendto(Call& c, int fd, uint64_t buf, uint64_t len, int flags, uint64_t addr, uint64_t alen) {
  int64_t err = 0;
  ino_t ino = 0;
  const auto f = socket_of(c, fd, err, &ino);
  if (!f) return err;
  std::vector<uint8_t> data(std::min<uint64_t>(len, kMaxData));
  if (!data.empty() && !c.mem.read(c.v, buf, data.data(), data.size())) return -EFAULT;
  sockaddr_storage sa;
  if (addr)
    if (const int64_t r = read_addr(c, addr, alen, sa)) return r;
  if (!(flags & MSG_DONTWAIT))
    if (const int64_t r = wait_ready(c, *f, POLLOUT); r < 0) return r;
  c.proc.machine().unix_sockets().sent(ino, c.proc.pid());
  const ssize_t n = ::sendto(f->fd(), data.data(), data.size(), flags | MSG_NOSIGNAL,
                             addr ? reinterpret_cast<sockaddr*>(&sa) : nullptr, addr ? static_cast<socklen_t>(alen) : 0);
  if (flags & MSG_NOSIGNAL) c.no_sigpipe = true;  // EPIPE without the signal, as asked
  return n < 0 ? -errno : n;
}

int64_t recvfrom(Call& c, int fd, uint64_t buf, uint64_t len, int flags, uint64_t addr, uint64_t lenp) {
  int64_t err = 0;
  const auto f = socket_of(c, fd, err);
  if (!f) return err;
  if (!(flags & MSG_DONTWAIT))
    if (const int64_t r = wait_ready(c, *f, POLLIN); r < 0) return r;
  std::vector<uint8_t> data(std::min<uint64_t>(len, kMaxData));
  sockaddr_storage sa{};
  socklen_t alen = sizeof sa;
  const ssize_t n = ::recvfrom(f->fd(), data.data(), data.size(), flags, reinterpret_cast<sockaddr*>(&sa), &alen);
  if (n < 0) return -errno;
  // MSG_TRUNC reports the datagram's real length, which may exceed the buffer.
  const size_t copy = std::min<size_t>(static_cast<size_t>(n), data.size());
  if (copy && !c.mem.write(c.v, buf, data.data(), copy)) return -EFAULT;
  if (addr && alen) {
    if (const int64_t r = write_addr(c, sa, alen, addr, lenp); r < 0) return r;
  } else if (addr && lenp && !c.mem.write_value(c.v, lenp, int32_t{0})) {
    return -EFAULT;
  }
  return n;
}

int64_t sendmsg(Call& c, int fd, uint64_t msg, int flags) {
  int64_t err = 0;
  ino_t ino = 0;
  const auto f = socket_of(c, fd, err, &ino);
  if (!f) return err;
  GuestMsg m;
  std::vector<std::pair<uint64_t, uint64_t>> iov;
  if (const int64_t r = read_msg(c, msg, m, iov)) return r;
  std::vector<uint8_t> data;
  for (const auto& [base, len] : iov) {
    const size_t at = data.size();
    if (at + len > kMaxData) return -EMSGSIZE;
    data.resize(at + len);
    if (len && !c.mem.read(c.v, base, data.data() + at, len)) return -EFAULT;
  }
  sockaddr_storage sa;
  if (m.name)
    if (const int64_t r = read_addr(c, m.name, m.namelen, sa)) return r;
  if (m.controllen > kMaxControl) return -ENOBUFS;
  std::vector<uint8_t> guest_control(m.controllen), host_control;
  if (m.controllen && !c.mem.read(c.v, m.control, guest_control.data(), guest_control.size())) return -EFAULT;
  std::vector<std::shared_ptr<HostFile>> keep;
  int sender = c.proc.pid();
  if (const int64_t r = control_to_host(c, guest_control, host_control, keep, sender)) return r;
  iovec one{data.data(), data.size()};
  msghdr hm{};
  hm.msg_name = m.name ? &sa : nullptr;
  hm.msg_namelen = m.name ? static_cast<socklen_t>(m.namelen) : 0;
  hm.msg_iov = &one;
  hm.msg_iovlen = 1;
  hm.msg_control = host_control.empty() ? nullptr : host_control.data();
  hm.msg_controllen = host_control.size();
  if (!(flags & MSG_DONTWAIT))
    if (const int64_t r = wait_ready(c, *f, POLLOUT); r < 0) return r;
  c.proc.machine().unix_sockets().sent(ino, sender);
  const ssize_t n = ::sendmsg(f->fd(), &hm, flags | MSG_NOSIGNAL);
  if (flags & MSG_NOSIGNAL) c.no_sigpipe = true;  // EPIPE without the signal, as asked
  return n < 0 ? -errno : n;
}

int64_t recvmsg(Call& c, int fd, uint64_t msg, int flags) {
  int64_t err = 0;
  ino_t ino = 0;
  const auto f = socket_of(c, fd, err, &ino);
  if (!f) return err;
  GuestMsg m;
  std::vector<std::pair<uint64_t, uint64_t>> iov;
  if (const int64_t r = read_msg(c, msg, m, iov)) return r;
  uint64_t total = 0;
  for (const auto& p : iov) total += p.second;
  std::vector<uint8_t> data(std::min<uint64_t>(total, kMaxData));
  sockaddr_storage sa{};
  std::vector<uint8_t> host_control(std::min<uint64_t>(m.controllen * 2 + 64, kMaxControl));
  iovec one{data.data(), data.size()};
  msghdr hm{};
  hm.msg_name = m.name ? &sa : nullptr;
  hm.msg_namelen = m.name ? sizeof sa : 0;
  hm.msg_iov = &one;
  hm.msg_iovlen = 1;
  hm.msg_control = m.controllen ? host_control.data() : nullptr;
  hm.msg_controllen = m.controllen ? host_control.size() : 0;
  if (!(flags & MSG_DONTWAIT))
    if (const int64_t r = wait_ready(c, *f, POLLIN); r < 0) return r;
  // Received descriptors are always close-on-exec on the host; the guest's flag is its own.
  const ssize_t n = ::recvmsg(f->fd(), &hm, (flags & ~MSG_CMSG_CLOEXEC) | MSG_CMSG_CLOEXEC);
  if (n < 0) return -errno;
  size_t left = std::min<size_t>(static_cast<size_t>(n), data.size());
  size_t at = 0;
  for (const auto& [base, len] : iov) {
    const size_t k = std::min<size_t>(len, left);
    if (k && !c.mem.write(c.v, base, data.data() + at, k)) return -EFAULT;
    at += k;
    left -= k;
  }
  int msg_flags = hm.msg_flags;
  std::vector<uint8_t> guest_control;
  if (m.controllen) control_to_guest(c, hm, ino, guest_control, m.controllen, flags, msg_flags);
  const MsgOffsets off = msg_offsets(c.i386);
  if (!guest_control.empty() && !c.mem.write(c.v, m.control, guest_control.data(), guest_control.size())) return -EFAULT;
  const uint64_t controllen = guest_control.size();
  if (!c.mem.write(c.v, msg + off.controllen, &controllen, c.i386 ? 4 : 8)) return -EFAULT;
  if (m.name) {
    const uint32_t room = static_cast<uint32_t>(m.namelen);
    const size_t k = std::min<size_t>(room, hm.msg_namelen);
    if (k && !c.mem.write(c.v, m.name, &sa, k)) return -EFAULT;
    if (!c.mem.write_value(c.v, msg + off.namelen, static_cast<uint32_t>(hm.msg_namelen))) return -EFAULT;
  }
  if (!c.mem.write_value(c.v, msg + off.flags, static_cast<int32_t>(msg_flags))) return -EFAULT;
  return n;
}

int64_t shutdown(Call& c, int fd, int how) {
  int64_t err = 0;
  const auto f = socket_of(c, fd, err);
  if (!f) return err;
  return ::shutdown(f->fd(), how) == 0 ? 0 : -errno;
}

int64_t setsockopt(Call& c, int fd, int level, int name, uint64_t val, uint64_t len) {
  int64_t err = 0;
  const auto f = socket_of(c, fd, err);
  if (!f) return err;
  if (static_cast<int32_t>(len) < 0) return -EINVAL;
  if (c.i386 && timeval_option(level, name)) {
    // i386's struct timeval: two 32-bit fields.
    if (len < 8) return -EINVAL;
    int32_t tv32[2];
    if (!c.mem.read(c.v, val, tv32, sizeof tv32)) return -EFAULT;
    const timeval tv{tv32[0], tv32[1]};
    return ::setsockopt(f->fd(), level, name, &tv, sizeof tv) == 0 ? 0 : -errno;
  }
  std::vector<uint8_t> v(std::min<uint64_t>(len, 4096));
  if (!v.empty() && !c.mem.read(c.v, val, v.data(), v.size())) return -EFAULT;
  return ::setsockopt(f->fd(), level, name, v.data(), static_cast<socklen_t>(len > 4096 ? 4096 : len)) == 0 ? 0 : -errno;
}

int64_t getsockopt(Call& c, int fd, int level, int name, uint64_t val, uint64_t lenp) {
  int64_t err = 0;
  ino_t ino = 0;
  const auto f = socket_of(c, fd, err, &ino);
  if (!f) return err;
  int32_t room = 0;
  if (!c.mem.read_value(c.v, lenp, room)) return -EFAULT;
  if (room < 0) return -EINVAL;
  std::vector<uint8_t> v(4096);
  socklen_t len = static_cast<socklen_t>(v.size());
  if (::getsockopt(f->fd(), level, name, v.data(), &len) != 0) return -errno;
  if (level == SOL_SOCKET && name == SO_PEERCRED && len >= sizeof(ucred)) {
    ucred cred;
    std::memcpy(&cred, v.data(), sizeof cred);
    to_guest_pid(c, ino, cred.pid, false);
    std::memcpy(v.data(), &cred, sizeof cred);
  }
  if (level == SOL_SOCKET && name == kSoPeerPidfd && len == sizeof(int)) {
    // The host made a pidfd (of emu, or of a host process outside): the guest gets one of
    // its own, for the guest process when the peer is one.
    int host_pidfd = -1;
    std::memcpy(&host_pidfd, v.data(), sizeof host_pidfd);
    int32_t pid = 0;
    {
      ucred cred{};
      socklen_t clen = sizeof cred;
      if (::getsockopt(f->fd(), SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0) pid = cred.pid;
    }
    int64_t gfd;
    if (pid == ::getpid()) {
      ::close(host_pidfd);
      to_guest_pid(c, ino, pid, false);
      gfd = pidfd_open(c, pid, 0);
    } else {
      gfd = c.proc.files().install(std::make_shared<HostFile>(host_pidfd), true);
    }
    if (gfd < 0) return gfd;
    const int32_t g = static_cast<int32_t>(gfd);
    std::memcpy(v.data(), &g, sizeof g);
  }
  if (c.i386 && timeval_option(level, name) && len == sizeof(timeval)) {
    timeval tv;
    std::memcpy(&tv, v.data(), sizeof tv);
    const int32_t tv32[2] = {static_cast<int32_t>(tv.tv_sec), static_cast<int32_t>(tv.tv_usec)};
    std::memcpy(v.data(), tv32, sizeof tv32);
    len = sizeof tv32;
  }
  const size_t k = std::min<size_t>(static_cast<size_t>(room), len);
  if (k && !c.mem.write(c.v, val, v.data(), k)) return -EFAULT;
  return c.mem.write_value(c.v, lenp, static_cast<int32_t>(k)) ? 0 : -EFAULT;
}

int64_t socketcall(Call& c, int call, uint64_t args) {
  // The number of 32-bit arguments each call takes (net/socket.c's nargs).
  static constexpr int kArgs[] = {0, 3, 3, 3, 2, 3, 3, 3, 4, 4, 4, 6, 6, 2, 5, 5, 3, 3, 4, 5, 4};
  if (call < SYS_SOCKET || call > SYS_SENDMMSG) return -EINVAL;
  uint32_t a[6] = {};
  if (!c.mem.read(c.v, args, a, kArgs[call] * sizeof(uint32_t))) return -EFAULT;
  const auto s = [](uint32_t v) { return static_cast<int>(static_cast<int32_t>(v)); };
  switch (call) {
    case SYS_SOCKET: return socket(c, s(a[0]), s(a[1]), s(a[2]));
    case SYS_BIND: return bind(c, s(a[0]), a[1], a[2]);
    case SYS_CONNECT: return connect(c, s(a[0]), a[1], a[2]);
    case SYS_LISTEN: return listen(c, s(a[0]), s(a[1]));
    case SYS_ACCEPT: return accept4(c, s(a[0]), a[1], a[2], 0);
    case SYS_GETSOCKNAME: return sockname(c, s(a[0]), a[1], a[2], false);
    case SYS_GETPEERNAME: return sockname(c, s(a[0]), a[1], a[2], true);
    case SYS_SOCKETPAIR: return socketpair(c, s(a[0]), s(a[1]), s(a[2]), a[3]);
    case SYS_SEND: return sendto(c, s(a[0]), a[1], a[2], s(a[3]), 0, 0);
    case SYS_RECV: return recvfrom(c, s(a[0]), a[1], a[2], s(a[3]), 0, 0);
    case SYS_SENDTO: return sendto(c, s(a[0]), a[1], a[2], s(a[3]), a[4], a[5]);
    case SYS_RECVFROM: return recvfrom(c, s(a[0]), a[1], a[2], s(a[3]), a[4], a[5]);
    case SYS_SHUTDOWN: return shutdown(c, s(a[0]), s(a[1]));
    case SYS_SETSOCKOPT: return setsockopt(c, s(a[0]), s(a[1]), s(a[2]), a[3], a[4]);
    case SYS_GETSOCKOPT: return getsockopt(c, s(a[0]), s(a[1]), s(a[2]), a[3], a[4]);
    case SYS_SENDMSG: return sendmsg(c, s(a[0]), a[1], s(a[2]));
    case SYS_RECVMSG: return recvmsg(c, s(a[0]), a[1], s(a[2]));
    case SYS_ACCEPT4: return accept4(c, s(a[0]), a[1], a[2], s(a[3]));
    case SYS_RECVMMSG: return recvmmsg(c, s(a[0]), a[1], a[2], s(a[3]), a[4], false);
    case SYS_SENDMMSG: return sendmmsg(c, s(a[0]), a[1], a[2], s(a[3]));
    default: return -EINVAL;
  }
}

namespace {

// struct mmsghdr: the ABI's msghdr, then the unsigned msg_len (x86_64 pads to 64 bytes).
struct MmsgLayout {
  uint64_t stride, len_at;
};
MmsgLayout mmsg_layout(bool i386) { return i386 ? MmsgLayout{32, 28} : MmsgLayout{64, 56}; }
constexpr uint64_t kUioMaxIov = 1024;  // Linux caps vlen here

}  // namespace

int64_t sendmmsg(Call& c, int fd, uint64_t vec, uint64_t vlen, int flags) {
  const MmsgLayout l = mmsg_layout(c.i386);
  vlen = std::min(vlen, kUioMaxIov);
  uint64_t sent = 0;
  for (; sent < vlen; ++sent) {
    const uint64_t at = vec + sent * l.stride;
    const int64_t r = sendmsg(c, fd, at, flags);
    // An error after some messages went is reported by the count (Linux keeps the error
    // for the socket's next call); a signal before any is the call's.
    if (r < 0) return sent ? static_cast<int64_t>(sent) : r;
    if (!c.mem.write_value(c.v, at + l.len_at, static_cast<uint32_t>(r))) return sent ? static_cast<int64_t>(sent) : -EFAULT;
  }
  return static_cast<int64_t>(sent);
}

int64_t recvmmsg(Call& c, int fd, uint64_t vec, uint64_t vlen, int flags, uint64_t timeout, bool time64) {
  const MmsgLayout l = mmsg_layout(c.i386);
  Deadline deadline;
  if (timeout) {
    int64_t sec = 0, nsec = 0;
    if (!read_timespec(c, timeout, time64, sec, nsec)) return -EFAULT;
    if (!valid_timespec(sec, nsec)) return -EINVAL;
    deadline = deadline_after(sec, nsec);
  }
  vlen = std::min(vlen, kUioMaxIov);
  uint64_t got = 0;
  for (; got < vlen; ++got) {
    const uint64_t at = vec + got * l.stride;
    // MSG_WAITFORONE: only the first may wait. Linux looks at the timeout only between
    // messages, as here.
    const int f = (got && (flags & MSG_WAITFORONE)) ? (flags | MSG_DONTWAIT) : flags;
    const int64_t r = recvmsg(c, fd, at, f & ~MSG_WAITFORONE);
    if (r < 0) return got ? static_cast<int64_t>(got) : r;
    if (!c.mem.write_value(c.v, at + l.len_at, static_cast<uint32_t>(r))) return got ? static_cast<int64_t>(got) : -EFAULT;
    if (deadline && std::chrono::steady_clock::now() >= *deadline) {
      ++got;
      break;
    }
  }
  if (timeout && got) {
    // Linux writes back the time left.
    const auto left = deadline ? std::max(*deadline - std::chrono::steady_clock::now(), std::chrono::steady_clock::duration::zero())
                               : std::chrono::steady_clock::duration::zero();
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    (void)write_timespec(c, timeout, timespec{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)}, time64);
  }
  return static_cast<int64_t>(got);
}

}  // namespace emu::sys
