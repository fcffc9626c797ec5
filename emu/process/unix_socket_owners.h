// Which guest process stands behind each AF_UNIX socket of the run, so that SO_PEERCRED and
// SCM_CREDENTIALS name guest pids. Every guest process is a part of one host process, so the
// host kernel reports emu's own pid for all of them; the guest pid has to come from emu.
//
// Linux's rules, kept here: a socket's peer credentials are fixed when the connection is
// made (socketpair: the caller's, for both ends; an accepted socket: the connector's; a
// connector: the listener's, taken at listen), and a received SCM_CREDENTIALS names the
// process that sent the message. emu keeps, per socket inode, who speaks for the socket and
// who for its peer, linked as the guest calls socketpair, connect, listen and accept:
//  - connect finds its listener by the address the connection went to (its getpeername,
//    which the kernel gives the accepted side too), and each listener is kept by its address;
//  - accept finds its connector with sock_diag (unix_diag.h), while the connector still
//    exists (the usual case: a client waits for its server);
//  - the sender of a message is the last guest process that sent on the peer socket through
//    send, sendto, sendmsg or sendmmsg, or the peer's owner: exact unless a reader is behind
//    messages of two processes on one socket, or the peer wrote with write().
// What emu cannot tell (a connection whose connector closed before the accept) keeps the
// host's answer: emu's pid, which is the first guest process's.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "mmu/spin_lock.h"
#include "mmu/thread_annotations.h"

namespace emu {

class UnixSocketOwners {
 public:
  // `pid` made both ends of a socketpair.
  void record_pair(ino_t a, ino_t b, int pid);
  // `pid` connects socket `ino`; called before the connection exists, since the listener's
  // side may accept and ask before connect returns. A socket connected already is left as
  // it is.
  void record_connector(ino_t ino, int pid);
  // Socket `ino` is connected to `address` (its getpeername's bytes): its peer is the
  // listener there.
  void connected(ino_t ino, const std::string& address);
  // `pid` listens on socket `ino`, bound to `address` (its getsockname's bytes).
  void record_listener(ino_t ino, int pid, const std::string& address);
  // Socket `ino` was accepted from `listener`; `connector` is its peer (0: unknown).
  void accepted(ino_t listener, ino_t ino, ino_t connector);
  // `pid` sends on socket `ino` (a socket recorded here; others are ignored).
  void sent(ino_t ino, int pid);

  // The guest pid for SO_PEERCRED of socket `ino`; nullopt when emu does not know it.
  std::optional<int> peer_credentials(ino_t ino);
  // The guest pid that sent what socket `ino` received (SCM_CREDENTIALS).
  std::optional<int> peer_sender(ino_t ino);

  size_t size();

 private:
  // Who speaks for one socket: its owner (whose credentials its peer sees), and the last
  // guest process to send on it.
  struct Speaker {
    explicit Speaker(int pid) : pid(pid) {}
    const int pid;
    std::atomic<int> last_sender{0};
  };
  struct Entry {
    std::shared_ptr<Speaker> self;
    std::shared_ptr<Speaker> peer;  // kept after the peer's socket is gone, as Linux keeps it
  };
  Entry& entry(ino_t ino) EMU_REQUIRES(lock_);
  // Drops the records of sockets that no longer exist, once the table has doubled.
  void prune_if_grown() EMU_REQUIRES(lock_);

  mmu::Mutex lock_;
  std::unordered_map<ino_t, Entry> sockets_ EMU_GUARDED_BY(lock_);
  struct Listener {
    ino_t ino;
    std::shared_ptr<Speaker> speaker;
  };
  std::unordered_map<std::string, Listener> listeners_ EMU_GUARDED_BY(lock_);  // by address, the latest to listen there
  size_t prune_at_ EMU_GUARDED_BY(lock_) = 1024;
};

}  // namespace emu
