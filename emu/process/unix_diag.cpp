#include "emu/process/unix_diag.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

namespace emu {

namespace {

// One sock_diag request for AF_UNIX sockets (`ino` 0 with `dump` for all of them); `each`
// sees every answering socket's message and its attributes. False when the kernel did not
// answer (no sock_diag, or unix_diag not built in).
template <typename Each>
bool ask(ino_t ino, uint32_t show, bool dump, Each each) {
  const int s = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (s < 0) return false;
  struct {
    nlmsghdr h;
    unix_diag_req r;
  } req{};
  req.h.nlmsg_len = sizeof req;
  req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req.h.nlmsg_flags = NLM_F_REQUEST | (dump ? NLM_F_DUMP : 0);
  req.r.sdiag_family = AF_UNIX;
  req.r.udiag_states = ~0u;
  req.r.udiag_ino = static_cast<uint32_t>(ino);
  req.r.udiag_show = show;
  req.r.udiag_cookie[0] = req.r.udiag_cookie[1] = ~0u;  // INET_DIAG_NOCOOKIE
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  bool answered = false;
  // emu kicks its own threads with host signals: an interrupted call is asked again.
  ssize_t sent;
  do sent = ::sendto(s, &req, sizeof req, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel);
  while (sent < 0 && errno == EINTR);
  if (sent == sizeof req) {
    alignas(nlmsghdr) char buf[32768];
    for (bool more = true; more;) {
      ssize_t n;
      do n = ::recv(s, buf, sizeof buf, 0);
      while (n < 0 && errno == EINTR);
      if (n <= 0) break;
      more = dump;
      // The NLMSG_OK/RTA_OK macros compare signed with unsigned; walked by hand instead.
      const size_t total = static_cast<size_t>(n);
      for (size_t at = 0; at + sizeof(nlmsghdr) <= total;) {
        const auto* h = reinterpret_cast<const nlmsghdr*>(buf + at);
        const size_t len = h->nlmsg_len;
        if (len < sizeof(nlmsghdr) || at + len > total) break;
        at += NLMSG_ALIGN(len);
        if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
          more = false;
          break;
        }
        if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || len < NLMSG_LENGTH(sizeof(unix_diag_msg))) continue;
        const auto* msg = static_cast<const unix_diag_msg*>(NLMSG_DATA(h));
        answered = true;
        std::vector<const rtattr*> attrs;
        for (size_t pos = NLMSG_LENGTH(sizeof *msg); pos + sizeof(rtattr) <= len;) {
          const auto* a = reinterpret_cast<const rtattr*>(reinterpret_cast<const char*>(h) + pos);
          if (a->rta_len < sizeof(rtattr) || pos + a->rta_len > len) break;
          attrs.push_back(a);
          pos += RTA_ALIGN(a->rta_len);
        }
        each(*msg, attrs);
      }
    }
  }
  ::close(s);
  return answered;
}

}  // namespace

std::optional<ino_t> unix_peer_inode(ino_t ino) {
  std::optional<ino_t> peer;
  ask(ino, UDIAG_SHOW_PEER, false, [&](const unix_diag_msg&, const std::vector<const rtattr*>& attrs) {
    for (const rtattr* a : attrs)
      if (a->rta_type == UNIX_DIAG_PEER && RTA_PAYLOAD(a) >= sizeof(uint32_t)) {
        uint32_t v = 0;
        std::memcpy(&v, RTA_DATA(a), sizeof v);
        if (v) peer = v;
      }
  });
  return peer;
}

std::string socket_address(int fd, bool peer) {
  sockaddr_storage sa{};
  socklen_t len = sizeof sa;
  const int r = peer ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&sa), &len)
                     : ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  return r == 0 ? std::string(reinterpret_cast<const char*>(&sa), len) : std::string();
}

std::optional<std::unordered_set<ino_t>> unix_socket_inodes() {
  std::unordered_set<ino_t> all;
  if (!ask(0, 0, true, [&](const unix_diag_msg& m, const std::vector<const rtattr*>&) { all.insert(m.udiag_ino); }))
    return std::nullopt;
  return all;
}

}  // namespace emu
