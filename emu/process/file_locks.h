// Advisory file locks between guest processes: POSIX record locks (fcntl F_SETLK, owned by a
// process), OFD record locks (F_OFD_SETLK, owned by an open file description) and flock(2)
// locks (owned by a description), kept per host inode for the whole Machine.
//
// Why emulated rather than passed to the host: every guest process lives inside the one emu
// host process. A host POSIX lock belongs to that host process, so two guest processes'
// locks would never conflict, and any guest closing any fd of a file would drop every other
// guest's locks on it. Host OFD and flock locks belong to the host description, which fork
// shares exactly as Linux shares a description, so they would be right for OFD and flock
// locks but cannot express a POSIX lock, which must conflict between a parent and the child
// it forked although the two share their descriptions. So this table owns the semantics, with
// Linux's owners (the guest process for POSIX locks: the same for all its threads, none
// inherited by fork; the HostFile for OFD and flock locks), Linux's merging and splitting of
// one owner's ranges (what F_GETLK reports depends on it), l_pid as the guest pid, EDEADLK
// for a F_SETLKW that would close a cycle of waiting POSIX owners, and waits that a guest
// signal or the end of the process interrupts: a waiter polls its own eventfd (written
// whenever a lock on its inode goes or weakens) beside the vCPU's wake fd and the process's
// ending fd, as every other interruptible wait in emu does.
//
// Other host processes: for regular files the table also holds, on a description of its own
// per inode (a "mirror"), host OFD locks and a host flock lock covering what the guests hold,
// so a program outside emu (or under another emu) sees the guests' locks and its own locks
// hold the guests off (a conflict on the mirror is a conflict, and a wait for one polls).
// Best effort: the mirror is opened with the access of the guest's description that locked
// the file first, so a write lock it cannot take, or a file it cannot open, is locked between
// the guests only.
#pragma once

#include <sys/types.h>

#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "mmu/spin_lock.h"
#include "mmu/thread_annotations.h"

namespace emu {

class FileLockTable {
 public:
  // The host file a lock is on.
  struct Inode {
    uint64_t dev = 0, ino = 0;
    auto operator<=>(const Inode&) const = default;
  };
  enum class Kind : uint8_t { Posix, Ofd, Flock };
  enum class Type : uint8_t { Read, Write, Unlock };  // F_RDLCK, F_WRLCK, F_UNLCK (LOCK_SH, LOCK_EX, LOCK_UN)
  // Posix: `id` is the guest pid. Ofd and Flock: the description (a HostFile's address).
  struct Owner {
    Kind kind = Kind::Posix;
    uint64_t id = 0;
    bool operator==(const Owner&) const = default;
    auto operator<=>(const Owner&) const = default;
  };
  static constexpr int64_t kToEnd = INT64_MAX;  // Linux's OFFSET_MAX: "to the end of the file"
  struct Lock {
    Owner owner;
    int pid = 0;  // the guest process that took it (F_GETLK's l_pid for a POSIX lock)
    Type type = Type::Write;
    int64_t start = 0, end = kToEnd;  // inclusive
  };

  // A wait in progress. Between calls that answer -EAGAIN the caller polls fd() (with
  // whatever else may end its wait), drain()s it, and asks again; finish() when done.
  class Waiter {
   public:
    Waiter();
    ~Waiter();
    Waiter(const Waiter&) = delete;
    Waiter& operator=(const Waiter&) = delete;
    int fd() const { return fd_; }
    void drain() const;
    // A conflict with a process outside emu: nothing will write fd(), poll with a timeout.
    bool external() const { return external_; }

   private:
    friend class FileLockTable;
    int fd_ = -1;
    bool external_ = false;
    std::optional<Inode> inode_;  // where it is registered
    std::optional<Owner> owner_;  // who waits (a POSIX owner is in blocked_on_)
  };

  FileLockTable() = default;
  ~FileLockTable();
  FileLockTable(const FileLockTable&) = delete;
  FileLockTable& operator=(const FileLockTable&) = delete;

  // F_GETLK / F_OFD_GETLK: the first lock that conflicts with `request` (Linux's list order),
  // or nullopt. An Unlock request (F_OFD_GETLK with F_UNLCK) asks for the owner's own. A
  // lock of a process outside emu comes as a Posix (or, l_pid -1, Ofd) lock of `pid` 0 owner
  // with the host's l_pid.
  std::optional<Lock> test(const Inode& inode, const Lock& request, int host_fd);
  // F_SETLK(W) / F_OFD_SETLK(W). `host_fd` is the caller's descriptor of the file (the
  // mirror is opened from it). 0; -EAGAIN on a conflict (with `waiter`: it is woken when a
  // lock on the inode goes); -EDEADLK when a POSIX owner's wait would close a cycle.
  int set_record(const Inode& inode, const Lock& request, int host_fd, Waiter* waiter);
  // flock: as set_record. Converting a lock drops the old one first, as Linux does: a
  // conversion that has to wait (or fails) holds nothing meanwhile.
  int set_flock(const Inode& inode, const Lock& request, int host_fd, Waiter* waiter);
  // The wait is over (taken, failed or interrupted).
  void finish(Waiter& waiter);

  // A guest process closed a descriptor of `inode` (or ended): its POSIX locks on it go.
  void release_process(const Inode& inode, int pid);
  // A description went (its last guest fd closed): its OFD and flock locks go.
  void release_description(uint64_t description);
  // Whether `pid` holds any POSIX lock (a close by a process without any costs no fstat).
  bool holds_posix_locks(int pid);

 private:
  struct InodeState {
    // Record locks (POSIX and OFD) in Linux's order: each owner's locks together, sorted by
    // start, owners in the order they first locked.
    std::vector<Lock> records;
    std::vector<Lock> flocks;
    std::vector<Waiter*> waiters;
    // The host side for other processes (-1: none yet, or not possible).
    int mirror_fd = -1;
    bool mirror_tried = false;
  };

  InodeState& state_locked(const Inode& inode) EMU_REQUIRES(lock_);
  // Drops the state of an inode nothing is held or awaited on.
  void prune_locked(const Inode& inode) EMU_REQUIRES(lock_);
  static void wake_locked(InodeState& s);
  static void register_waiter(const Inode& inode, InodeState& s, Waiter* waiter, const Owner& owner, bool external);
  // EDEADLK check: whether `blocker`'s chain of waiting POSIX owners leads back to `owner`.
  bool would_deadlock_locked(const Owner& owner, const Owner& blocker) const EMU_REQUIRES(lock_);
  // Keeps posix_locks_by_pid_ right as `owner` goes from `before` to `after` locks.
  void count_posix_locked(const Owner& owner, size_t before, size_t after) EMU_REQUIRES(lock_);
  // Replaces `owner`'s record locks with `mine` (sorted), keeping Linux's list order.
  static void replace_owner_records(std::vector<Lock>& records, const Owner& owner, std::vector<Lock> mine);
  // The mirror: acquire on it first (false: a process outside emu holds a conflicting lock),
  // and let go of what no guest holds any more after a release.
  static int mirror_fd(InodeState& s, int host_fd);
  static bool mirror_acquire_record(InodeState& s, int host_fd, const Lock& request);
  static void mirror_release_records(InodeState& s, int64_t start, int64_t end);
  static bool mirror_acquire_flock(InodeState& s, int host_fd, Type type);
  static void mirror_sync_flock(InodeState& s);

  mmu::Mutex lock_;
  std::map<Inode, InodeState> inodes_ EMU_GUARDED_BY(lock_);
  // POSIX owners waiting in F_SETLKW, and the owner of the lock each waits for.
  std::map<Owner, Owner> blocked_on_ EMU_GUARDED_BY(lock_);
  std::map<int, size_t> posix_locks_by_pid_ EMU_GUARDED_BY(lock_);
};

}  // namespace emu
