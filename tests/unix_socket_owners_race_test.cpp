// UnixSocketOwners (emu/process/unix_socket_owners.h) under threads that make, connect,
// accept, send on and close AF_UNIX sockets at once, as guest processes of one run do: every
// socket names the right peer, before and after the peer is gone, and the records of closed
// sockets do not pile up.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "emu/process/unix_diag.h"
#include "emu/process/unix_socket_owners.h"

namespace {

ino_t inode(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? st.st_ino : 0;
}

TEST(UnixSocketOwnersRace, SocketpairsNameTheirCreatorAndLastSender) {
  if (!emu::unix_socket_inodes()) GTEST_SKIP() << "sock_diag for AF_UNIX is not available on this host";
  constexpr int kThreads = 6, kRounds = 700;  // 8400 records: pruned several times
  emu::UnixSocketOwners owners;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const int pid = 1000 + t, other = 2000 + t;
      for (int i = 0; i < kRounds; ++i) {
        int sv[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        const ino_t a = inode(sv[0]), b = inode(sv[1]);
        owners.record_pair(a, b, pid);
        if (owners.peer_credentials(a) != pid || owners.peer_credentials(b) != pid) wrong++;
        if (owners.peer_sender(b) != pid) wrong++;  // nobody sent yet: the owner
        owners.sent(a, other);
        if (owners.peer_sender(b) != other || owners.peer_sender(a) != pid) wrong++;
        ::close(sv[0]);
        // The peer's record outlives its socket, as Linux keeps the peer's credentials.
        if (owners.peer_credentials(b) != pid || owners.peer_sender(b) != other) wrong++;
        ::close(sv[1]);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  // Every socket is closed: what is left is what came in since the last prune.
  EXPECT_LT(owners.size(), 2u * 1024 + 2 * kThreads);
}

TEST(UnixSocketOwnersRace, ConnectorsAndAcceptedSocketsNameEachOther) {
  if (!emu::unix_socket_inodes()) GTEST_SKIP() << "sock_diag for AF_UNIX is not available on this host";
  constexpr int kClients = 4, kRounds = 150, kListenerPid = 7;
  emu::UnixSocketOwners owners;
  const int listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string name = "emu-owners-race-" + std::to_string(::getpid());
  std::memcpy(addr.sun_path + 1, name.data(), name.size());
  const auto alen = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), alen), 0);
  owners.record_listener(inode(listener), kListenerPid, emu::socket_address(listener, false));
  ASSERT_EQ(::listen(listener, 64), 0);
  std::atomic<int> wrong{0}, accepted_count{0};
  // The server: accepts, checks its peer is the connector (whose pid it reads from the
  // stream), and checks it again after the client has closed.
  std::thread server([&] {
    for (int i = 0; i < kClients * kRounds; ++i) {
      const int conn = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
      ASSERT_GE(conn, 0);
      const ino_t ino = inode(conn);
      owners.accepted(inode(listener), ino, emu::unix_peer_inode(ino).value_or(0));
      int pid = 0;
      ASSERT_EQ(::recv(conn, &pid, sizeof pid, MSG_WAITALL), static_cast<ssize_t>(sizeof pid));
      if (owners.peer_credentials(ino) != pid) wrong++;
      if (owners.peer_sender(ino) != pid) wrong++;
      owners.sent(ino, kListenerPid);
      ASSERT_EQ(::send(conn, "k", 1, MSG_NOSIGNAL), 1);
      char eof;
      ASSERT_EQ(::recv(conn, &eof, 1, 0), 0);  // the client has closed
      if (owners.peer_credentials(ino) != pid) wrong++;
      ::close(conn);
      accepted_count++;
    }
  });
  std::vector<std::thread> clients;
  for (int t = 0; t < kClients; ++t) {
    clients.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        const int pid = 100 + t * kRounds + i;
        const int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const ino_t ino = inode(s);
        owners.record_connector(ino, pid);
        ASSERT_EQ(::connect(s, reinterpret_cast<sockaddr*>(&addr), alen), 0);
        owners.connected(ino, emu::socket_address(s, true));
        // A second connect of a connected socket (EISCONN) changes nothing.
        owners.record_connector(ino, pid + 100000);
        owners.connected(ino, emu::socket_address(s, true));
        // Before or after the accept, the connector sees the listener.
        if (owners.peer_credentials(ino) != kListenerPid) wrong++;
        owners.sent(ino, pid);
        ASSERT_EQ(::send(s, &pid, sizeof pid, MSG_NOSIGNAL), static_cast<ssize_t>(sizeof pid));
        char k;
        ASSERT_EQ(::recv(s, &k, 1, 0), 1);
        if (owners.peer_credentials(ino) != kListenerPid || owners.peer_sender(ino) != kListenerPid) wrong++;
        ::close(s);
      }
    });
  }
  for (auto& th : clients) th.join();
  server.join();
  ::close(listener);
  EXPECT_EQ(accepted_count.load(), kClients * kRounds);
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
