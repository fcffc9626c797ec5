#include "emu/process/fd_table.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace emu {

namespace {

// Emu's own std fds stay below this; the guest's copies of them go at or above it.
constexpr int kFirstGuestHostFd = 10;

std::shared_ptr<HostFile> open_emu_cwd() {
  const int fd = ::open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  return fd < 0 ? nullptr : std::make_shared<HostFile>(fd);
}

}  // namespace

HostFile::HostFile(int host_fd, std::unique_ptr<GuestView> view) : fd_(host_fd), view_(std::move(view)) {
  struct stat st;
  may_block_ = host_fd >= 0 && ::fstat(host_fd, &st) == 0 &&
               (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || S_ISCHR(st.st_mode) ||
                // An anonymous inode (eventfd, timerfd, inotify, epoll) has no file type:
                // all of them are waited on.
                (st.st_mode & S_IFMT) == 0);
}

HostFile::~HostFile() {
  if (release_) release_(*this);
  if (fd_ >= 0) ::close(fd_);
}

void HostFile::on_release(std::function<void(HostFile&)> release) {
  std::call_once(release_once_, [&] { release_ = std::move(release); });
}

FdTable::FdTable(int limit) : FdTable(limit, {}, open_emu_cwd()) {}

FdTable::FdTable(int limit, std::vector<Entry> entries, std::shared_ptr<HostFile> cwd)
    : limit_(limit), entries_(std::move(entries)), cwd_(std::move(cwd)) {}

FdTable::FdTable(FdTable&& other) noexcept : limit_(other.limit()) {
  mmu::MutexGuard guard(other.lock_);
  entries_ = std::move(other.entries_);
  cwd_ = std::move(other.cwd_);
  on_drop_ = std::move(other.on_drop_);
}

FdTable FdTable::with_stdio(int limit) {
  std::vector<Entry> entries(3);
  for (int fd = 0; fd < 3; ++fd) {
    const int host = ::fcntl(fd, F_DUPFD_CLOEXEC, kFirstGuestHostFd);
    if (host >= 0) entries[fd].file = std::make_shared<HostFile>(host);
  }
  return FdTable(limit, std::move(entries), open_emu_cwd());
}

FdTable FdTable::clone() const {
  // The directory HostFile can be shared: chdir replaces a table's pointer, it never
  // changes the HostFile, so the two processes' directories stay independent.
  mmu::MutexGuard guard(lock_);
  return FdTable(limit(), entries_, cwd_);
}

bool FdTable::open_locked(int fd) const {
  return fd >= 0 && static_cast<size_t>(fd) < entries_.size() && entries_[fd].file;
}

std::shared_ptr<HostFile> FdTable::get(int fd) const {
  mmu::MutexGuard guard(lock_);
  return open_locked(fd) ? entries_[fd].file : nullptr;
}

std::vector<int> FdTable::open_fds() const {
  std::vector<int> fds;
  mmu::MutexGuard guard(lock_);
  for (size_t fd = 0; fd < entries_.size(); ++fd)
    if (entries_[fd].file) fds.push_back(static_cast<int>(fd));
  return fds;
}

int FdTable::install(std::shared_ptr<HostFile> file, bool cloexec, int min_fd) {
  const int most = limit();
  if (min_fd < 0 || min_fd >= most) return -EINVAL;
  mmu::MutexGuard guard(lock_);
  int fd = min_fd;
  while (open_locked(fd)) ++fd;
  if (fd >= most) return -EMFILE;
  if (static_cast<size_t>(fd) >= entries_.size()) entries_.resize(fd + 1);
  entries_[fd] = {std::move(file), cloexec};
  return fd;
}

int FdTable::install_at(int fd, std::shared_ptr<HostFile> file, bool cloexec) {
  if (fd < 0 || fd >= limit()) return -EBADF;
  std::vector<std::shared_ptr<HostFile>> replaced(1);  // closed after the lock is let go (a host close may block)
  {
    mmu::MutexGuard guard(lock_);
    if (static_cast<size_t>(fd) >= entries_.size()) entries_.resize(fd + 1);
    replaced[0] = std::exchange(entries_[fd].file, std::move(file));
    entries_[fd].cloexec = cloexec;
  }
  if (replaced[0]) dropped(replaced);
  return fd;
}

int FdTable::close(int fd) {
  std::vector<std::shared_ptr<HostFile>> closed(1);  // released after the guard, outside the lock
  {
    mmu::MutexGuard guard(lock_);
    if (!open_locked(fd)) return -EBADF;
    closed[0] = std::move(entries_[fd].file);
  }
  dropped(closed);
  return 0;
}

int FdTable::cloexec(int fd) const {
  mmu::MutexGuard guard(lock_);
  return open_locked(fd) ? entries_[fd].cloexec : -EBADF;
}

int FdTable::set_cloexec(int fd, bool on) {
  mmu::MutexGuard guard(lock_);
  if (!open_locked(fd)) return -EBADF;
  entries_[fd].cloexec = on;
  return 0;
}

void FdTable::close_on_exec() {
  std::vector<std::shared_ptr<HostFile>> closed;  // released outside the lock
  {
    mmu::MutexGuard guard(lock_);
    for (Entry& e : entries_)
      if (e.file && e.cloexec) closed.push_back(std::move(e.file));
  }
  dropped(closed);
}

void FdTable::close_all() {
  std::vector<std::shared_ptr<HostFile>> closed;  // released outside the lock
  {
    mmu::MutexGuard guard(lock_);
    for (Entry& e : entries_)
      if (e.file) closed.push_back(std::move(e.file));
  }
  dropped(closed);
}

void FdTable::on_drop(std::function<void(const HostFile&)> hook) {
  mmu::MutexGuard guard(lock_);
  on_drop_ = std::move(hook);
}

void FdTable::dropped(const std::vector<std::shared_ptr<HostFile>>& files) {
  if (files.empty()) return;
  std::function<void(const HostFile&)> hook;
  {
    mmu::MutexGuard guard(lock_);
    hook = on_drop_;
  }
  if (!hook) return;
  for (const auto& f : files)
    if (f) hook(*f);
}

std::shared_ptr<HostFile> FdTable::cwd() const {
  mmu::MutexGuard guard(lock_);
  return cwd_;
}

void FdTable::set_cwd(std::shared_ptr<HostFile> dir) {
  std::shared_ptr<HostFile> old;  // released outside the lock
  mmu::MutexGuard guard(lock_);
  old = std::exchange(cwd_, std::move(dir));
}

}  // namespace emu
