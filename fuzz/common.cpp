#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "fuzz/harness.h"

namespace emu::fuzz {

namespace {

// What a guest may write to one file: enough for every size the syscall harness can ask
// for, small enough that a run cannot fill /dev/shm.
constexpr rlim_t kFileSizeLimit = rlim_t{64} << 20;
// The no-Machine harnesses' guest memory.
constexpr uint64_t kSmallPoolBytes = uint64_t{16} << 20;

std::string g_scratch;

int remove_entry(const char* path, const struct stat*, int, struct FTW*) { return ::remove(path) == 0 ? 0 : 0; }

void remove_tree(const std::string& dir) { (void)::nftw(dir.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

// Scratch directories of fuzzers that are gone (libFuzzer may end with _exit).
void remove_stale_scratch(const std::string& parent) {
  DIR* d = ::opendir(parent.c_str());
  if (!d) return;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (!name.starts_with("emu-fuzz-")) continue;
    const long pid = std::strtol(name.c_str() + 9, nullptr, 10);
    if (pid > 0 && pid != ::getpid() && ::kill(static_cast<pid_t>(pid), 0) != 0) remove_tree(parent + "/" + name);
  }
  ::closedir(d);
}

void make_scratch() {
  std::string parent = "/dev/shm";
  if (::access(parent.c_str(), W_OK) != 0) {
    const char* tmp = std::getenv("TMPDIR");
    parent = tmp && *tmp ? tmp : "/tmp";
  }
  remove_stale_scratch(parent);
  g_scratch = parent + "/emu-fuzz-" + std::to_string(::getpid());
  remove_tree(g_scratch);
  if (::mkdir(g_scratch.c_str(), 0700) != 0) {
    std::perror(("emu-fuzz: mkdir " + g_scratch).c_str());
    std::abort();
  }
  std::atexit([] { remove_tree(g_scratch); });
}

}  // namespace

void fail(const char* harness, const std::string& what) {
  std::fflush(stdout);
  std::fprintf(stderr, "emu-fuzz: %s: %s\n", harness, what.c_str());
  std::abort();
}

void init_process() {
  static std::once_flag once;
  std::call_once(once, [] {
    spdlog::set_level(spdlog::level::off);
    ::signal(SIGPIPE, SIG_IGN);
    ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit r {};
    if (::getrlimit(RLIMIT_FSIZE, &r) == 0 && (r.rlim_cur == RLIM_INFINITY || r.rlim_cur > kFileSizeLimit)) {
      r.rlim_cur = kFileSizeLimit;
      (void)::setrlimit(RLIMIT_FSIZE, &r);
    }
    make_scratch();
  });
}

const std::vector<HarnessInfo>& harnesses() {
  static const std::vector<HarnessInfo> all = {
      {"elf_loader", elf_loader}, {"initial_stack", initial_stack}, {"syscalls", syscalls},
      {"sigreturn", sigreturn},   {"procfs_maps", procfs_maps},
  };
  return all;
}

MemFile::MemFile(std::string_view bytes, const char* name) {
  fd_ = ::memfd_create(name, MFD_CLOEXEC);
  if (fd_ < 0) fail("common", "memfd_create failed");
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (w <= 0) fail("common", "cannot write the input to a memfd");
    done += static_cast<size_t>(w);
  }
  path_ = "/proc/self/fd/" + std::to_string(fd_);
}

MemFile::~MemFile() {
  if (fd_ >= 0) ::close(fd_);
}

mmu::FramePool& small_pool() {
  static const std::unique_ptr<mmu::FramePool> pool = [] {
    mmu::FramePoolConfig pc;
    pc.bytes = kSmallPoolBytes;
    pc.vcpu_slots = 2;
    pc.populate_chunk_bytes = uint64_t{4} << 20;
    std::string error;
    auto p = mmu::FramePool::create(pc, &error);
    if (!p) fail("common", "cannot create the frame pool: " + error);
    return p;
  }();
  return *pool;
}

void check_pool_empty(const char* harness, const mmu::FramePool& pool) {
  const auto by_state = pool.count_by_state();
  const uint64_t in_use = pool.frame_count() - by_state[static_cast<size_t>(mmu::FrameState::Free)] - 1;
  if (in_use != 0) fail(harness, std::to_string(in_use) + " frames still in use after the input (leaked)");
}

std::unique_ptr<mmu::AddressSpace> new_space(GuestArch arch) {
  mmu::AddressSpaceConfig ac;
  ac.paging = arch == GuestArch::I386 ? mmu::PagingMode::I386 : mmu::PagingMode::X86_64;
  std::string error;
  auto space = mmu::make_address_space(small_pool(), ac, &error, 0);
  if (!space) fail("common", "cannot make an address space: " + error);
  return space;
}

int count_host_fds() {
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) return -1;
  int n = 0;
  while (const dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') ++n;
  ::closedir(d);
  return n - 1;  // the directory's own fd
}

const std::string& scratch_dir() {
  init_process();
  return g_scratch;
}

void reset_scratch() {
  const std::string& dir = scratch_dir();
  remove_tree(dir);
  if (::mkdir(dir.c_str(), 0700) != 0) fail("common", "cannot make " + dir + " again");
}

}  // namespace emu::fuzz
