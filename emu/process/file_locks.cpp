#include "emu/process/file_locks.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>

namespace emu {

namespace {

using Lock = FileLockTable::Lock;
using Type = FileLockTable::Type;
constexpr int64_t kToEnd = FileLockTable::kToEnd;

bool overlap(const Lock& a, const Lock& b) { return a.start <= b.end && b.start <= a.end; }

// Overlapping or adjacent (Linux merges a new lock with same-type locks of its owner that
// touch it, so one owner never holds two adjacent locks of one type).
bool touches(const Lock& a, const Lock& b) {
  return (b.end == kToEnd || a.start <= b.end + 1) && (a.end == kToEnd || b.start <= a.end + 1);
}

// Whether `held` keeps `request` from being granted (Linux's posix_locks_conflict and
// flock_locks_conflict: another owner, overlapping, one of the two a write lock).
bool conflicts(const Lock& held, const Lock& request) {
  return !(held.owner == request.owner) && overlap(held, request) &&
         (held.type == Type::Write || request.type == Type::Write);
}

struct flock host_flock(Type type, int64_t start, int64_t end) {
  struct flock fl {};
  fl.l_type = static_cast<short>(type == Type::Read ? F_RDLCK : type == Type::Write ? F_WRLCK : F_UNLCK);
  fl.l_whence = SEEK_SET;
  fl.l_start = start;
  fl.l_len = end == kToEnd ? 0 : end - start + 1;
  return fl;
}

}  // namespace

FileLockTable::Waiter::Waiter() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

FileLockTable::Waiter::~Waiter() {
  if (fd_ >= 0) ::close(fd_);
}

void FileLockTable::Waiter::drain() const {
  uint64_t n;
  (void)!::read(fd_, &n, sizeof n);
}

FileLockTable::~FileLockTable() {
  mmu::MutexGuard guard(lock_);
  for (auto& [inode, s] : inodes_)
    if (s.mirror_fd >= 0) ::close(s.mirror_fd);
}

FileLockTable::InodeState& FileLockTable::state_locked(const Inode& inode) { return inodes_[inode]; }

void FileLockTable::prune_locked(const Inode& inode) {
  const auto it = inodes_.find(inode);
  if (it == inodes_.end()) return;
  InodeState& s = it->second;
  if (!s.records.empty() || !s.flocks.empty() || !s.waiters.empty()) return;
  if (s.mirror_fd >= 0) ::close(s.mirror_fd);  // and with it every host lock it held
  inodes_.erase(it);
}

void FileLockTable::wake_locked(InodeState& s) {
  const uint64_t one = 1;
  for (Waiter* w : s.waiters) (void)!::write(w->fd_, &one, sizeof one);
}

void FileLockTable::register_waiter(const Inode& inode, InodeState& s, Waiter* waiter, const Owner& owner,
                                    bool external) {
  if (std::find(s.waiters.begin(), s.waiters.end(), waiter) == s.waiters.end()) s.waiters.push_back(waiter);
  waiter->inode_ = inode;
  waiter->owner_ = owner;
  waiter->external_ = external;
}

bool FileLockTable::would_deadlock_locked(const Owner& owner, const Owner& blocker) const {
  // Follows who the blocker waits for, and who that one waits for, as far as Linux does
  // (MAX_DEADLK_ITERATIONS).
  Owner at = blocker;
  for (int i = 0; i < 10; ++i) {
    const auto it = blocked_on_.find(at);
    if (it == blocked_on_.end()) return false;
    at = it->second;
    if (at == owner) return true;
  }
  return false;
}

void FileLockTable::replace_owner_records(std::vector<Lock>& records, const Owner& owner, std::vector<Lock> mine) {
  const auto first = std::find_if(records.begin(), records.end(), [&](const Lock& l) { return l.owner == owner; });
  // An owner's locks are kept together: where they were, or (a new owner) at the end.
  size_t at = static_cast<size_t>(first - records.begin());
  std::erase_if(records, [&](const Lock& l) { return l.owner == owner; });
  at = std::min(at, records.size());
  records.insert(records.begin() + static_cast<std::ptrdiff_t>(at), mine.begin(), mine.end());
}

void FileLockTable::count_posix_locked(const Owner& owner, size_t before, size_t after) {
  if (owner.kind != Kind::Posix || before == after) return;
  const int pid = static_cast<int>(owner.id);
  size_t& n = posix_locks_by_pid_[pid];
  n = n + after - before;
  if (n == 0) posix_locks_by_pid_.erase(pid);
}

std::optional<Lock> FileLockTable::test(const Inode& inode, const Lock& request, int host_fd) {
  mmu::MutexGuard guard(lock_);
  const auto it = inodes_.find(inode);
  if (it != inodes_.end()) {
    for (const Lock& held : it->second.records) {
      if (request.type == Type::Unlock) {
        if (held.owner == request.owner && overlap(held, request)) return held;
      } else if (conflicts(held, request)) {
        return held;
      }
    }
  }
  if (request.type == Type::Unlock) return std::nullopt;
  // Processes outside emu: what the host says of the range (the mirror's own locks are
  // ours, and a description never conflicts with itself).
  InodeState& s = state_locked(inode);
  const int fd = mirror_fd(s, host_fd);
  std::optional<Lock> found;
  struct flock fl = host_flock(request.type, request.start, request.end);
  if (fd >= 0 && ::fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK) {
    Lock outside;
    outside.owner = {fl.l_pid == -1 ? Kind::Ofd : Kind::Posix, 0};
    outside.pid = fl.l_pid;
    outside.type = fl.l_type == F_RDLCK ? Type::Read : Type::Write;
    outside.start = fl.l_start;
    outside.end = fl.l_len == 0 ? kToEnd : fl.l_start + fl.l_len - 1;
    found = outside;
  }
  prune_locked(inode);
  return found;
}

int FileLockTable::set_record(const Inode& inode, const Lock& request, int host_fd, Waiter* waiter) {
  mmu::MutexGuard guard(lock_);
  InodeState& s = state_locked(inode);
  if (request.type != Type::Unlock) {
    for (const Lock& held : s.records) {
      if (!conflicts(held, request)) continue;
      if (!waiter) {
        prune_locked(inode);
        return -EAGAIN;
      }
      // Only waits of POSIX owners for POSIX owners can deadlock (OFD locks are immune).
      const bool posix = request.owner.kind == Kind::Posix && held.owner.kind == Kind::Posix;
      if (posix && would_deadlock_locked(request.owner, held.owner)) return -EDEADLK;
      if (posix) blocked_on_[request.owner] = held.owner;
      register_waiter(inode, s, waiter, request.owner, false);
      return -EAGAIN;
    }
    if (!mirror_acquire_record(s, host_fd, request)) {
      if (waiter) register_waiter(inode, s, waiter, request.owner, true);
      else prune_locked(inode);
      return -EAGAIN;
    }
    // No longer waiting from here on: until the caller's finish(), a stale edge would make
    // the owner it waited for see a cycle through it and get EDEADLK (a flake of the race
    // test: an owner holding the lock still "waited" for the one now asking for it).
    blocked_on_.erase(request.owner);
  }
  // The owner's locks with `request` applied: what it covers is cut out of the others, and
  // same-type locks that touch it are merged into it (Linux's posix_lock_inode).
  std::vector<Lock> mine, next;
  for (const Lock& l : s.records)
    if (l.owner == request.owner) mine.push_back(l);
  Lock merged = request;
  bool weakened = false;
  for (const Lock& l : mine) {
    if (request.type != Type::Unlock && l.type == request.type && touches(l, request)) {
      merged.start = std::min(merged.start, l.start);
      merged.end = std::max(merged.end, l.end);
      continue;
    }
    if (!overlap(l, request)) {
      next.push_back(l);
      continue;
    }
    weakened = weakened || request.type == Type::Unlock || l.type == Type::Write;
    if (l.start < request.start) {
      Lock left = l;
      left.end = request.start - 1;
      next.push_back(left);
    }
    if (l.end > request.end) {
      Lock right = l;
      right.start = request.end + 1;
      next.push_back(right);
    }
  }
  if (request.type != Type::Unlock) next.push_back(merged);
  std::sort(next.begin(), next.end(), [](const Lock& a, const Lock& b) { return a.start < b.start; });
  count_posix_locked(request.owner, mine.size(), next.size());
  replace_owner_records(s.records, request.owner, std::move(next));
  if (request.type == Type::Unlock) mirror_release_records(s, request.start, request.end);
  if (weakened) wake_locked(s);
  prune_locked(inode);
  return 0;
}

int FileLockTable::set_flock(const Inode& inode, const Lock& request, int host_fd, Waiter* waiter) {
  mmu::MutexGuard guard(lock_);
  InodeState& s = state_locked(inode);
  const auto mine = std::find_if(s.flocks.begin(), s.flocks.end(), [&](const Lock& l) { return l.owner == request.owner; });
  if (mine != s.flocks.end()) {
    if (mine->type == request.type) return 0;
    // Unlocking, or converting: the old lock goes first, and whoever waited for it is woken.
    s.flocks.erase(mine);
    wake_locked(s);
    mirror_sync_flock(s);
  }
  if (request.type == Type::Unlock) {
    prune_locked(inode);
    return 0;
  }
  const bool taken = std::none_of(s.flocks.begin(), s.flocks.end(), [&](const Lock& l) { return conflicts(l, request); });
  const bool outside_ok = taken && mirror_acquire_flock(s, host_fd, request.type);
  if (!outside_ok) {
    if (taken) mirror_sync_flock(s);  // a failed conversion of the mirror may have dropped it
    if (waiter) register_waiter(inode, s, waiter, request.owner, taken);
    else prune_locked(inode);
    return -EAGAIN;
  }
  s.flocks.push_back(request);
  return 0;
}

void FileLockTable::finish(Waiter& waiter) {
  mmu::MutexGuard guard(lock_);
  if (waiter.owner_) blocked_on_.erase(*waiter.owner_);
  if (waiter.inode_) {
    const auto it = inodes_.find(*waiter.inode_);
    if (it != inodes_.end()) std::erase(it->second.waiters, &waiter);
    prune_locked(*waiter.inode_);
  }
  waiter.inode_.reset();
  waiter.owner_.reset();
}

void FileLockTable::release_process(const Inode& inode, int pid) {
  mmu::MutexGuard guard(lock_);
  const auto it = inodes_.find(inode);
  if (it == inodes_.end()) return;
  InodeState& s = it->second;
  const Owner owner{Kind::Posix, static_cast<uint64_t>(pid)};
  std::vector<Lock> gone;
  for (const Lock& l : s.records)
    if (l.owner == owner) gone.push_back(l);
  if (gone.empty()) return;
  count_posix_locked(owner, gone.size(), 0);
  replace_owner_records(s.records, owner, {});
  for (const Lock& l : gone) mirror_release_records(s, l.start, l.end);
  wake_locked(s);
  prune_locked(inode);
}

void FileLockTable::release_description(uint64_t description) {
  mmu::MutexGuard guard(lock_);
  std::vector<Inode> touched;
  for (auto& [inode, s] : inodes_) {
    std::vector<Lock> gone;
    for (const Lock& l : s.records)
      if (l.owner.kind == Kind::Ofd && l.owner.id == description) gone.push_back(l);
    const size_t flocks = s.flocks.size();
    std::erase_if(s.flocks, [&](const Lock& l) { return l.owner.id == description; });
    if (gone.empty() && flocks == s.flocks.size()) continue;
    replace_owner_records(s.records, {Kind::Ofd, description}, {});
    for (const Lock& l : gone) mirror_release_records(s, l.start, l.end);
    mirror_sync_flock(s);
    wake_locked(s);
    touched.push_back(inode);
  }
  for (const Inode& inode : touched) prune_locked(inode);
}

bool FileLockTable::holds_posix_locks(int pid) {
  mmu::MutexGuard guard(lock_);
  return posix_locks_by_pid_.contains(pid);
}

// The mirror: a description of the file opened by the table itself, whose host OFD locks
// cover what the guests' record locks cover and whose host flock is the strongest any guest
// holds. Only for regular files (a device or FIFO opened again could have side effects), and
// with the access of the guest's description that locked first: a file no guest has open for
// writing is not opened for writing by emu either (that would make an execve of it ETXTBSY).
// A write lock the mirror cannot take (EBADF) holds between the guests only.
int FileLockTable::mirror_fd(InodeState& s, int host_fd) {
  if (s.mirror_tried) return s.mirror_fd;
  s.mirror_tried = true;
  struct stat st {};
  if (host_fd < 0 || ::fstat(host_fd, &st) != 0 || !S_ISREG(st.st_mode)) return -1;
  const std::string path = "/proc/self/fd/" + std::to_string(host_fd);
  const int flags = ::fcntl(host_fd, F_GETFL);
  const int access = flags < 0 || (flags & O_ACCMODE) == 3 ? O_RDONLY : flags & O_ACCMODE;
  for (const int mode : {access, O_RDONLY}) {
    s.mirror_fd = ::open(path.c_str(), mode | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (s.mirror_fd >= 0) break;
  }
  return s.mirror_fd;
}

bool FileLockTable::mirror_acquire_record(InodeState& s, int host_fd, const Lock& request) {
  const int fd = mirror_fd(s, host_fd);
  if (fd < 0) return true;
  struct flock fl = host_flock(request.type, request.start, request.end);
  if (::fcntl(fd, F_OFD_SETLK, &fl) == 0) return true;
  // EBADF: the mirror was not opened for that access; the guests still exclude each other.
  return errno != EAGAIN && errno != EACCES;
}

void FileLockTable::mirror_release_records(InodeState& s, int64_t start, int64_t end) {
  if (s.mirror_fd < 0) return;
  // What no guest's record lock covers in [start, end] any more: the host lets go of it.
  // (Where guests still hold locks the mirror already has the right type: a write lock has
  // one owner, so a range that was released is either free now or still read-locked.)
  std::vector<std::pair<int64_t, int64_t>> held;
  for (const Lock& l : s.records)
    if (l.start <= end && start <= l.end) held.emplace_back(std::max(l.start, start), std::min(l.end, end));
  std::sort(held.begin(), held.end());
  int64_t at = start;
  bool done = false;
  const auto unlock = [&](int64_t from, int64_t to) {
    struct flock fl = host_flock(Type::Unlock, from, to);
    (void)::fcntl(s.mirror_fd, F_OFD_SETLK, &fl);
  };
  for (const auto& [from, to] : held) {
    if (from > at) unlock(at, from - 1);
    if (to >= end) {
      done = true;
      break;
    }
    at = std::max(at, to + 1);
  }
  if (!done && at <= end) unlock(at, end);
}

bool FileLockTable::mirror_acquire_flock(InodeState& s, int host_fd, Type type) {
  const int fd = mirror_fd(s, host_fd);
  if (fd < 0) return true;
  if (::flock(fd, (type == Type::Write ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0) return true;
  return errno != EWOULDBLOCK;
}

void FileLockTable::mirror_sync_flock(InodeState& s) {
  if (s.mirror_fd < 0) return;
  Type strongest = Type::Unlock;
  for (const Lock& l : s.flocks) {
    if (l.type == Type::Write) strongest = Type::Write;
    else if (strongest == Type::Unlock) strongest = Type::Read;
  }
  if (strongest == Type::Unlock) (void)::flock(s.mirror_fd, LOCK_UN);
  else if (strongest == Type::Read) (void)::flock(s.mirror_fd, LOCK_SH | LOCK_NB);
}

}  // namespace emu
