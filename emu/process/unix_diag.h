// Questions about the host's AF_UNIX sockets that only the kernel can answer, asked through
// sock_diag (NETLINK_SOCK_DIAG, the interface `ss -x` uses): which socket is a socket's peer,
// which sockets exist at all. Unprivileged, for any socket of the network namespace. emu
// needs them to tell which guest process is behind
// the other end of a connection (unix_socket_owners.h).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <unordered_set>

namespace emu {

// The inode of the socket connected to socket `ino` (a socketpair's other end, an accepted
// connection's connector, a connector's accepted or still queued socket); nullopt for one
// not connected, or where sock_diag cannot answer.
std::optional<ino_t> unix_peer_inode(ino_t ino);

// Every AF_UNIX socket's inode in emu's network namespace; nullopt where unanswerable.
std::optional<std::unordered_set<ino_t>> unix_socket_inodes();

// A socket's address as the kernel keeps it, as bytes (getsockname, or getpeername with
// `peer`); empty when the call fails. What UnixSocketOwners finds listeners by.
std::string socket_address(int fd, bool peer);

}  // namespace emu
