// fcntl's record locks (F_GETLK/F_SETLK/F_SETLKW, i386's *LK64 forms, the OFD commands) and
// flock(2), in the guest's layouts, over the Machine's FileLockTable (emu/process/file_locks.h
// says why the host's own locks cannot be used): here the guest's request is checked in
// Linux's order, turned into a lock on the file's host inode, and F_SETLKW and flock wait,
// interruptibly, until the table grants it.
#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

#include "emu/process/guest_process.h"
#include "emu/process/machine.h"
#include "emu/syscalls/sys_handlers.h"
#include "emu/syscalls/sys_paths.h"

namespace emu::sys {

namespace {

using Table = FileLockTable;

// i386 fcntl64's commands for struct flock64 (on x86_64 F_GETLK64 is F_GETLK).
constexpr int kI386GetLk64 = 12, kI386SetLkW64 = 14;

// The i386 struct flock (16 bytes) and flock64 (24, packed: long long is 4-byte aligned).
struct I386Flock {
  int16_t type, whence;
  int32_t start, len, pid;
};
#pragma pack(push, 4)
struct I386Flock64 {
  int16_t type, whence;
  int64_t start, len;
  int32_t pid;
};
#pragma pack(pop)
static_assert(sizeof(I386Flock) == 16 && sizeof(I386Flock64) == 24);

// The kernel's struct flock, whatever the layout it came in.
struct GuestFlock {
  int16_t type = 0, whence = 0;
  int64_t start = 0, len = 0;
  int32_t pid = 0;
};

enum class Layout { Native, I386, I386Wide };

bool read_flock(Call& c, uint64_t arg, Layout layout, GuestFlock& out) {
  switch (layout) {
    case Layout::Native: {
      struct flock fl {};
      if (!c.mem.read_value(c.v, arg, fl)) return false;
      out = {fl.l_type, fl.l_whence, fl.l_start, fl.l_len, fl.l_pid};
      return true;
    }
    case Layout::I386Wide: {
      I386Flock64 g;
      if (!c.mem.read_value(c.v, arg, g)) return false;
      out = {g.type, g.whence, g.start, g.len, g.pid};
      return true;
    }
    case Layout::I386: {
      I386Flock g;
      if (!c.mem.read_value(c.v, arg, g)) return false;
      out = {g.type, g.whence, g.start, g.len, g.pid};  // sign-extended, as compat_flock is
      return true;
    }
  }
  return false;
}

bool write_flock(Call& c, uint64_t arg, Layout layout, const GuestFlock& in) {
  switch (layout) {
    case Layout::Native: {
      struct flock fl {};
      fl.l_type = in.type;
      fl.l_whence = in.whence;
      fl.l_start = in.start;
      fl.l_len = in.len;
      fl.l_pid = in.pid;
      return c.mem.write_value(c.v, arg, fl);
    }
    case Layout::I386Wide: return c.mem.write_value(c.v, arg, I386Flock64{in.type, in.whence, in.start, in.len, in.pid});
    case Layout::I386:
      return c.mem.write_value(c.v, arg, I386Flock{in.type, in.whence, static_cast<int32_t>(in.start),
                                                   static_cast<int32_t>(in.len), in.pid});
  }
  return false;
}

std::optional<Table::Inode> inode_of(int host_fd) {
  struct stat st {};
  if (::fstat(host_fd, &st) != 0) return std::nullopt;
  return Table::Inode{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
}

// Linux's flock64_to_posix_lock: the range as absolute offsets [start, end].
int64_t to_range(int host_fd, const GuestFlock& g, Table::Lock& lock) {
  int64_t base = 0;
  switch (g.whence) {
    case SEEK_SET: break;
    case SEEK_CUR: {
      const off_t pos = ::lseek(host_fd, 0, SEEK_CUR);  // a pipe's position is 0 in Linux
      base = pos < 0 ? 0 : pos;
      break;
    }
    case SEEK_END: {
      struct stat st {};
      base = ::fstat(host_fd, &st) == 0 ? st.st_size : 0;
      break;
    }
    default: return -EINVAL;
  }
  if (g.start > Table::kToEnd - base) return -EOVERFLOW;
  lock.start = base + g.start;
  if (lock.start < 0) return -EINVAL;
  if (g.len > 0) {
    if (g.len - 1 > Table::kToEnd - lock.start) return -EOVERFLOW;
    lock.end = lock.start + (g.len - 1);
  } else if (g.len < 0) {
    if (lock.start + g.len < 0) return -EINVAL;
    lock.end = lock.start - 1;
    lock.start += g.len;
  } else {
    lock.end = Table::kToEnd;
  }
  switch (g.type) {
    case F_RDLCK: lock.type = Table::Type::Read; break;
    case F_WRLCK: lock.type = Table::Type::Write; break;
    case F_UNLCK: lock.type = Table::Type::Unlock; break;
    default: return -EINVAL;
  }
  return 0;
}

uint64_t description_id(const HostFile& f) { return reinterpret_cast<uintptr_t>(&f); }

// Whatever a description takes, it lets go of as it goes.
void release_with_description(Call& c, HostFile& f) {
  f.on_release([table = c.proc.machine().file_locks()](HostFile& gone) { table->release_description(description_id(gone)); });
}

// A process's POSIX locks on a file go when it closes any descriptor of the file.
void release_on_close(Call& c) {
  c.proc.files().on_drop([table = c.proc.machine().file_locks(), pid = c.proc.pid()](const HostFile& f) {
    if (!table->holds_posix_locks(pid)) return;
    if (const auto inode = inode_of(f.fd())) table->release_process(*inode, pid);
  });
}

// Until `attempt()` (a table call with a waiter) stops answering -EAGAIN: waits on the table's
// wake-up, a signal for this thread (-ERESTARTSYS: EINTR, or the call again under
// SA_RESTART) or the process's end (-EINTR). A conflict with a process outside emu has no
// wake-up: it is asked again every 10 ms.
template <typename Attempt>
int64_t wait_for_lock(Call& c, Attempt attempt) {
  Table& table = *c.proc.machine().file_locks();
  Table::Waiter waiter;
  if (waiter.fd() < 0) return -ENOLCK;
  int64_t r;
  for (;;) {
    r = attempt(&waiter);
    if (r != -EAGAIN) break;
    if (c.proc.signals().deliverable(c.vcpu.signals())) {
      r = -kErestartSys;
      break;
    }
    pollfd p[3] = {{waiter.fd(), POLLIN, 0}, {c.proc.ending_fd(), POLLIN, 0}, {c.vcpu.wake_fd(), POLLIN, 0}};
    if (::poll(p, 3, waiter.external() ? 10 : -1) < 0 && errno != EINTR) {
      r = -errno;
      break;
    }
    if (p[1].revents & POLLIN) {
      r = -EINTR;
      break;
    }
    if (p[2].revents) c.vcpu.drain_wake_fd();  // a signal: looked at above, on the next turn
    waiter.drain();
  }
  table.finish(waiter);
  return r;
}

}  // namespace

int64_t record_lock(Call& c, const std::shared_ptr<HostFile>& f, int cmd, uint64_t arg) {
  // O_PATH descriptors take no lock commands (Linux's check_fcntl_cmd).
  const int fl = ::fcntl(f->fd(), F_GETFL);
  if (fl < 0) return -errno;
  if (fl & O_PATH) return -EBADF;
  // i386 (Linux's compat fcntl64, which x86_64 kernels also run for i386's plain fcntl):
  // F_GETLK/F_SETLK/F_SETLKW take the 32-bit struct flock, the *64 and OFD commands flock64.
  Layout layout = Layout::Native;
  int op = cmd;
  if (c.i386) {
    layout = Layout::I386;
    if (cmd >= kI386GetLk64 && cmd <= kI386SetLkW64) op = cmd - kI386GetLk64 + F_GETLK;
    if (op != cmd || cmd == F_OFD_GETLK || cmd == F_OFD_SETLK || cmd == F_OFD_SETLKW) layout = Layout::I386Wide;
  } else if (cmd >= kI386GetLk64 && cmd <= kI386SetLkW64) {
    return -EINVAL;
  }
  GuestFlock g;
  if (!read_flock(c, arg, layout, g)) return -EFAULT;
  const bool ofd = op == F_OFD_GETLK || op == F_OFD_SETLK || op == F_OFD_SETLKW;
  const bool get = op == F_GETLK || op == F_OFD_GETLK;
  Table::Lock lock;
  lock.owner = ofd ? Table::Owner{Table::Kind::Ofd, description_id(*f)}
                   : Table::Owner{Table::Kind::Posix, static_cast<uint64_t>(c.proc.pid())};
  lock.pid = c.proc.pid();
  if (get && !ofd && g.type != F_RDLCK && g.type != F_WRLCK) return -EINVAL;
  if (const int64_t r = to_range(f->fd(), g, lock)) return r;
  const auto inode = inode_of(f->fd());
  if (!inode) return -errno;
  Table& table = *c.proc.machine().file_locks();
  if (get) {
    if (ofd && g.pid != 0) return -EINVAL;
    const auto held = table.test(*inode, lock, f->fd());
    if (!held) {
      g.type = F_UNLCK;
    } else {
      g.type = static_cast<int16_t>(held->type == Table::Type::Read ? F_RDLCK : F_WRLCK);
      g.whence = SEEK_SET;
      g.start = held->start;
      g.len = held->end == Table::kToEnd ? 0 : held->end - held->start + 1;
      g.pid = held->owner.kind == Table::Kind::Ofd ? -1 : held->pid;
    }
    if (layout == Layout::I386) {
      // What fits the 32-bit struct (Linux's fixup_compat_flock): a start past it fails, a
      // length past it is cut.
      if (g.start > INT32_MAX) return -EOVERFLOW;
      if (g.len > INT32_MAX) g.len = INT32_MAX;
    }
    return write_flock(c, arg, layout, g) ? 0 : -EFAULT;
  }
  // F_SETLK(W): the descriptor must be open for the access the lock claims.
  const int access = fl & O_ACCMODE;
  if (lock.type == Table::Type::Read && access != O_RDONLY && access != O_RDWR) return -EBADF;
  if (lock.type == Table::Type::Write && access != O_WRONLY && access != O_RDWR) return -EBADF;
  if (ofd && g.pid != 0) return -EINVAL;
  if (ofd) release_with_description(c, *f);
  else release_on_close(c);  // before the lock exists, so no close can miss it
  if (op != F_SETLKW && op != F_OFD_SETLKW) return table.set_record(*inode, lock, f->fd(), nullptr);
  return wait_for_lock(c, [&](Table::Waiter* w) { return table.set_record(*inode, lock, f->fd(), w); });
}

int64_t flock(Call& c, int fd, unsigned cmd) {
  // LOCK_MAND never worked and Linux now ignores it, before looking at anything else.
  if (cmd & LOCK_MAND) return 0;
  Table::Lock lock;
  switch (cmd & ~static_cast<unsigned>(LOCK_NB)) {
    case LOCK_SH: lock.type = Table::Type::Read; break;
    case LOCK_EX: lock.type = Table::Type::Write; break;
    case LOCK_UN: lock.type = Table::Type::Unlock; break;
    default: return -EINVAL;
  }
  const auto f = c.proc.files().get(fd);
  if (!f) return -EBADF;
  const int fl = ::fcntl(f->fd(), F_GETFL);
  if (fl < 0 || (fl & O_PATH)) return -EBADF;
  if (lock.type != Table::Type::Unlock && (fl & O_ACCMODE) == 3) return -EBADF;  // neither read nor write
  const auto inode = inode_of(f->fd());
  if (!inode) return -errno;
  lock.owner = {Table::Kind::Flock, description_id(*f)};
  lock.pid = c.proc.pid();
  release_with_description(c, *f);
  Table& table = *c.proc.machine().file_locks();
  if (cmd & LOCK_NB || lock.type == Table::Type::Unlock) return table.set_flock(*inode, lock, f->fd(), nullptr);
  return wait_for_lock(c, [&](Table::Waiter* w) { return table.set_flock(*inode, lock, f->fd(), w); });
}

}  // namespace emu::sys
