#include "emu/process/unix_socket_owners.h"

#include <sys/socket.h>

#include <algorithm>

#include "emu/process/unix_diag.h"

namespace emu {

UnixSocketOwners::Entry& UnixSocketOwners::entry(ino_t ino) {
  prune_if_grown();
  return sockets_[ino];
}

void UnixSocketOwners::record_pair(ino_t a, ino_t b, int pid) {
  mmu::MutexGuard g(lock_);
  auto sa = std::make_shared<Speaker>(pid), sb = std::make_shared<Speaker>(pid);
  entry(a) = Entry{sa, sb};
  entry(b) = Entry{sb, sa};
}

void UnixSocketOwners::record_connector(ino_t ino, int pid) {
  mmu::MutexGuard g(lock_);
  Entry& e = entry(ino);
  // A socket already connected keeps what it has (its connect fails with EISCONN).
  if (!e.peer) e = Entry{std::make_shared<Speaker>(pid), nullptr};
}

void UnixSocketOwners::connected(ino_t ino, const std::string& address) {
  mmu::MutexGuard g(lock_);
  Entry& e = entry(ino);
  if (e.peer) return;  // accept came first and linked it
  if (const auto l = listeners_.find(address); l != listeners_.end())
    e.peer = std::make_shared<Speaker>(l->second.speaker->pid);
}

void UnixSocketOwners::record_listener(ino_t ino, int pid, const std::string& address) {
  mmu::MutexGuard g(lock_);
  auto speaker = std::make_shared<Speaker>(pid);
  entry(ino) = Entry{speaker, nullptr};
  // An unnamed listener cannot be connected to: nothing to find it by.
  if (address.size() > sizeof(sa_family_t)) listeners_[address] = Listener{ino, std::move(speaker)};
}

void UnixSocketOwners::accepted(ino_t listener, ino_t ino, ino_t connector) {
  mmu::MutexGuard g(lock_);
  const auto l = sockets_.find(listener);
  if (l == sockets_.end()) return;
  const auto c = connector ? sockets_.find(connector) : sockets_.end();
  Entry accepted;
  if (c != sockets_.end()) {
    // The connector's view of its peer is the accepted socket (made at connect when that
    // returned first; the same speaker from now on).
    if (!c->second.peer) c->second.peer = std::make_shared<Speaker>(l->second.self->pid);
    accepted = Entry{c->second.peer, c->second.self};
  } else {
    accepted = Entry{std::make_shared<Speaker>(l->second.self->pid), nullptr};
  }
  entry(ino) = std::move(accepted);
}

void UnixSocketOwners::sent(ino_t ino, int pid) {
  mmu::MutexGuard g(lock_);
  const auto it = sockets_.find(ino);
  if (it != sockets_.end() && it->second.self) it->second.self->last_sender.store(pid, std::memory_order_relaxed);
}

std::optional<int> UnixSocketOwners::peer_credentials(ino_t ino) {
  mmu::MutexGuard g(lock_);
  const auto it = sockets_.find(ino);
  if (it == sockets_.end() || !it->second.peer) return std::nullopt;
  return it->second.peer->pid;
}

std::optional<int> UnixSocketOwners::peer_sender(ino_t ino) {
  mmu::MutexGuard g(lock_);
  const auto it = sockets_.find(ino);
  if (it == sockets_.end() || !it->second.peer) return std::nullopt;
  const int last = it->second.peer->last_sender.load(std::memory_order_relaxed);
  return last ? last : it->second.peer->pid;
}

size_t UnixSocketOwners::size() {
  mmu::MutexGuard g(lock_);
  return sockets_.size();
}

void UnixSocketOwners::prune_if_grown() {
  if (sockets_.size() < prune_at_) return;
  // Inodes of closed sockets are not reused soon (sockfs counts them up), but the records
  // would pile up on a server accepting without end. One dump of the namespace's sockets
  // (under the lock: rare, and nothing here waits for a guest).
  if (const auto alive = unix_socket_inodes()) {
    std::erase_if(sockets_, [&](const auto& e) { return !alive->contains(e.first); });
    for (auto it = listeners_.begin(); it != listeners_.end();)
      it = sockets_.contains(it->second.ino) ? std::next(it) : listeners_.erase(it);
  }
  prune_at_ = std::max<size_t>(1024, sockets_.size() * 2);
}

}  // namespace emu
