// The syscall layer's argument decoding, both ABIs: a guest process with a small memory (a
// Machine of 4 or 2 MiB, no program, a vCPU object without an engine, as the unit tests make),
// a few pages of fuzz bytes and ready-made structures, and its own fds (/dev/null, a socket
// pair, a pipe, a memfd, files in a scratch directory), then a sequence of calls through
// sys::dispatch_x86_64 / sys::dispatch_i386 with fuzzed numbers and arguments.
//
// Only calls on an allow-list run, and some have arguments adjusted first, so that the
// fuzzer process itself is never at risk: nothing blocks (poll-like timeouts are zero, new
// fds non-blocking, wait4 WNOHANG), nothing exits, forks, execs or touches registers (the
// vCPU has no engine), and the host's files are only read, except inside the scratch
// directory (the guest's current directory: relative paths without "..", and nothing can
// make a link out of it). Sockets exist only as socket pairs, and bind/connect take abstract
// names only. See kSpecs64 / kSpecs32 for each call's rule.
//
// Checked after every call: the result is a value or -errno (-4095..-1), an i386 result
// fits 32 bits, the VMAs are sane (sorted, disjoint, inside the address space); after the
// input: no frame, swap slot or host fd leaked.
//
// Input: flags (bit 0: i386, bit 1: 2 MiB of memory instead of 4), a data blob for the fuzz
// pages, then operations: a byte below 0x10 writes bytes into guest memory, anything else is
// a call (a 16-bit index into the allow-list, then six arguments, each a selector byte and
// its operand).
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "emu/process/guest_process.h"
#include "emu/process/machine.h"
#include "emu/syscalls/syscalls.h"
#include "fuzz/harness.h"

namespace emu::fuzz {

namespace {

constexpr const char* kName = "syscalls";

// Guest memory the harness maps: fuzz bytes, its structures, and zero timeouts.
constexpr uint64_t kData = 0x10000, kDataBytes = 4 * mmu::kPageSize;
constexpr uint64_t kTable = 0x20000, kTableBytes = 2 * mmu::kPageSize;
constexpr uint64_t kZero = 0x30000;  // mapped afresh (zeros) before each call that takes a timeout
constexpr uint64_t kHints = 0x40000000;
constexpr int kMaxCalls = 48;
constexpr int kHarnessFds = 11;

// What has to happen to a call's arguments before it may run.
enum class Rule : uint8_t {
  Pass,        // no host file system writes, never blocks
  Open,        // idx: dirfd (-1: AT_FDCWD), path, flags
  PathWrite,   // changes the file system: idx: path, second path (-1), dirfds forced to AT_FDCWD
  Chdir,       // idx: path
  Fcntl,       // idx: cmd, arg
  Ioctl,       // idx: request
  ZeroMs,      // idx: a timeout in milliseconds, made 0
  ZeroPtr,     // idx: a timeout pointer, made kZero
  Futex,       // waits get a zero timeout
  OrFlags,     // idx: flags |= value (non-blocking fds, WNOHANG, GRND_NONBLOCK)
  Socketpair,  // idx: type: a non-blocking AF_UNIX stream pair only
  Sockaddr,    // idx: address, length: no path names (bind would create a socket file)
  Socketcall,  // i386 socketcall: the same rules for its calls
};

struct Spec {
  uint16_t nr;
  Rule rule = Rule::Pass;
  int8_t i0 = -1, i1 = -1, i2 = -1, i3 = -1;
  uint64_t value = 0;
};

constexpr Spec pass(uint16_t nr) { return {nr}; }
constexpr Spec rule(uint16_t nr, Rule r, int8_t i0 = -1, int8_t i1 = -1, int8_t i2 = -1, int8_t i3 = -1) {
  return {nr, r, i0, i1, i2, i3, 0};
}
constexpr Spec or_flags(uint16_t nr, int8_t idx, uint64_t value) { return {nr, Rule::OrFlags, idx, -1, -1, -1, value}; }

// x86_64 (arch/x86/entry/syscalls/syscall_64.tbl). Left out: pipe, eventfd, inotify_init,
// signalfd (blocking fds without a flags argument), socket, fchdir, fchmod, fsetxattr,
// fremovexattr (a read-only fd of any host file can still be changed through them),
// sigreturn, sigaltstack, arch_prctl (registers), pause, rt_sigsuspend, exit, exit_group,
// clone, clone3, fork, vfork, execve, execveat.
const Spec kSpecs64[] = {
    pass(0), pass(1), rule(2, Rule::Open, -1, 0, 1), pass(3), pass(4), pass(5), pass(6), rule(7, Rule::ZeroMs, 2),
    pass(8), pass(9), pass(10), pass(11), pass(12), pass(13), pass(14), rule(16, Rule::Ioctl, 1), pass(17), pass(18),
    pass(19), pass(20), pass(21), rule(23, Rule::ZeroPtr, 4), pass(24), pass(25), pass(28), pass(32), pass(33),
    rule(35, Rule::ZeroPtr, 0), pass(36), pass(37), pass(38), pass(39), pass(40), rule(42, Rule::Sockaddr, 1, 2),
    pass(43), pass(44), pass(45), pass(46), pass(47), pass(48), rule(49, Rule::Sockaddr, 1, 2), pass(50), pass(51),
    pass(52), rule(53, Rule::Socketpair, 1), pass(54), pass(55), or_flags(61, 2, WNOHANG), pass(62), pass(63),
    rule(72, Rule::Fcntl, 1, 2), pass(74), pass(75), pass(77), pass(79), rule(80, Rule::Chdir, 0),
    rule(82, Rule::PathWrite, 0, 1), rule(83, Rule::PathWrite, 0), rule(84, Rule::PathWrite, 0),
    rule(87, Rule::PathWrite, 0), pass(89), rule(90, Rule::PathWrite, 0), pass(95), pass(96), pass(97), pass(98),
    pass(99), pass(102), pass(104), pass(107), pass(108), pass(109), pass(110), pass(111), pass(112), pass(121),
    pass(124), pass(127), rule(128, Rule::ZeroPtr, 2), pass(129), pass(137), pass(138), pass(157), pass(186),
    rule(188, Rule::PathWrite, 0), rule(189, Rule::PathWrite, 0), pass(191), pass(192), pass(193), pass(194),
    pass(195), pass(196), rule(197, Rule::PathWrite, 0), rule(198, Rule::PathWrite, 0), pass(200), pass(201),
    rule(202, Rule::Futex), pass(204), pass(213), pass(217), pass(218), pass(221), pass(222), pass(223), pass(224),
    pass(225), pass(226), pass(228), pass(229), rule(230, Rule::ZeroPtr, 2), rule(232, Rule::ZeroMs, 3), pass(233),
    pass(234), or_flags(247, 3, WNOHANG), pass(254), pass(255), rule(257, Rule::Open, 0, 1, 2),
    rule(258, Rule::PathWrite, 1, -1, 0), pass(262), rule(263, Rule::PathWrite, 1, -1, 0),
    rule(264, Rule::PathWrite, 1, 3, 0, 2), pass(267), rule(268, Rule::PathWrite, 1, -1, 0), pass(269),
    rule(270, Rule::ZeroPtr, 4), rule(271, Rule::ZeroPtr, 2), pass(273), rule(281, Rule::ZeroMs, 3),
    or_flags(283, 1, TFD_NONBLOCK), pass(286), pass(287), or_flags(288, 3, SOCK_NONBLOCK),
    or_flags(289, 3, SFD_NONBLOCK), or_flags(290, 1, EFD_NONBLOCK), pass(291), pass(292),
    or_flags(293, 1, O_NONBLOCK), or_flags(294, 0, IN_NONBLOCK), pass(297), rule(299, Rule::ZeroPtr, 4), pass(302),
    pass(307), or_flags(318, 2, GRND_NONBLOCK), pass(319), pass(332), pass(334), pass(436), pass(439),
    rule(441, Rule::ZeroPtr, 3), pass(1000),
};

// i386 (syscall_32.tbl), the same rules. Also left out: old select (#82, its timeout is
// inside a structure), set_thread_area (registers).
const Spec kSpecs32[] = {
    pass(3), pass(4), rule(5, Rule::Open, -1, 0, 1), pass(6), or_flags(7, 2, WNOHANG), rule(10, Rule::PathWrite, 0),
    rule(12, Rule::Chdir, 0), pass(13), rule(15, Rule::PathWrite, 0), pass(19), pass(20), pass(24), pass(27),
    pass(33), pass(37), rule(38, Rule::PathWrite, 0, 1), rule(39, Rule::PathWrite, 0), rule(40, Rule::PathWrite, 0),
    pass(41), pass(45), pass(47), pass(49), pass(50), rule(54, Rule::Ioctl, 1), rule(55, Rule::Fcntl, 1, 2),
    pass(57), pass(60), pass(63), pass(64), pass(65), pass(66), pass(76), pass(77), pass(78), pass(85), pass(90),
    pass(91), pass(93), pass(99), pass(100), rule(102, Rule::Socketcall), pass(104), pass(105),
    or_flags(114, 2, WNOHANG), pass(116), pass(118), pass(122), pass(125), pass(132), pass(140),
    rule(142, Rule::ZeroPtr, 4), pass(145), pass(146), pass(147), pass(148), pass(158), rule(162, Rule::ZeroPtr, 0),
    pass(163), rule(168, Rule::ZeroMs, 2), pass(172), pass(174), pass(175), pass(176), rule(177, Rule::ZeroPtr, 2),
    pass(178), pass(180), pass(181), pass(183), pass(191), pass(192), pass(194), pass(195), pass(196), pass(197),
    pass(199), pass(200), pass(201), pass(202), pass(219), pass(220), rule(221, Rule::Fcntl, 1, 2), pass(224),
    rule(226, Rule::PathWrite, 0), rule(227, Rule::PathWrite, 0), pass(229), pass(230), pass(231), pass(232),
    pass(233), pass(234), rule(235, Rule::PathWrite, 0), rule(236, Rule::PathWrite, 0), pass(238), pass(239),
    rule(240, Rule::Futex), pass(242), pass(250), pass(254), pass(255), rule(256, Rule::ZeroMs, 3), pass(258),
    pass(259), pass(260), pass(261), pass(262), pass(263), pass(265), pass(266), rule(267, Rule::ZeroPtr, 2),
    pass(268), pass(269), pass(270), pass(272), or_flags(284, 3, WNOHANG), pass(292), pass(293),
    rule(295, Rule::Open, 0, 1, 2), rule(296, Rule::PathWrite, 1, -1, 0), pass(300),
    rule(301, Rule::PathWrite, 1, -1, 0), rule(302, Rule::PathWrite, 1, 3, 0, 2), pass(305),
    rule(306, Rule::PathWrite, 1, -1, 0), pass(307), rule(308, Rule::ZeroPtr, 4), rule(309, Rule::ZeroPtr, 2),
    pass(311), rule(319, Rule::ZeroMs, 3), or_flags(322, 1, TFD_NONBLOCK), pass(325), pass(326),
    or_flags(327, 3, SFD_NONBLOCK), or_flags(328, 1, EFD_NONBLOCK), pass(329), pass(330), or_flags(331, 1, O_NONBLOCK),
    or_flags(332, 0, IN_NONBLOCK), pass(335), rule(337, Rule::ZeroPtr, 4), pass(340), pass(345),
    or_flags(355, 2, GRND_NONBLOCK), pass(356), rule(360, Rule::Socketpair, 1), rule(361, Rule::Sockaddr, 1, 2),
    rule(362, Rule::Sockaddr, 1, 2), pass(363), or_flags(364, 3, SOCK_NONBLOCK), pass(365), pass(366), pass(367),
    pass(368), pass(369), pass(370), pass(371), pass(372), pass(373), pass(383), pass(386), pass(403), pass(406),
    rule(407, Rule::ZeroPtr, 2), pass(408), pass(409), pass(410), pass(411), rule(413, Rule::ZeroPtr, 4),
    rule(414, Rule::ZeroPtr, 2), rule(417, Rule::ZeroPtr, 4), rule(421, Rule::ZeroPtr, 2), rule(422, Rule::Futex),
    pass(436), pass(439), rule(441, Rule::ZeroPtr, 3), pass(1000),
};

bool trace_calls() {
  static const bool on = std::getenv("EMU_FUZZ_TRACE") != nullptr;
  return on;
}

int32_t s32(uint64_t v) { return static_cast<int32_t>(v); }

// The structures a call may be pointed at, laid out for the guest's ABI.
class Table {
 public:
  explicit Table(bool i386) : i386_(i386), bytes_(kTableBytes, 0) {
    for (const char* s : {"file0", "dir0", "dir0/file1", "new", "newdir", ".", "", "/proc/self/maps",
                          "/proc/self/status", "/proc/self/stat", "/proc/self/fd", "/proc/self/fd/3",
                          "/proc/self/exe", "/proc/self/auxv", "/proc/self/cmdline", "/proc/self/cwd",
                          "/proc/self/fdinfo/3", "/proc/self/task", "/proc/self/mem", "/proc/self/limits",
                          "/proc/self/mountinfo", "/dev/null", "/dev/zero", "/dev/urandom", "/dev/stdout",
                          "/proc/cpuinfo", "/proc/meminfo", "/etc/passwd", "user.fuzz", "new\nline"})
      add(s, std::strlen(s) + 1);
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    std::memcpy(un.sun_path, "\0emu-fuzz", 9);
    add(&un, offsetof(sockaddr_un, sun_path) + 9);
    words({kData, 64, kData + 64, 64});  // iovec[2]
    const uint64_t iov = objects_.back();
    // msghdr: name, namelen, iov, iovlen, control, controllen, flags; then its control
    // message: cmsg_len (a size_t), level, type, fds 3 and 4.
    const uint64_t cmsg_len = i386_ ? 20 : 24;
    const uint64_t control = kTable + ((at_ + 7) & ~uint64_t{7}) + 8 * word();
    words({0, 0, iov, 2, control, cmsg_len, 0, 0});  // padded to 8 words: `control` is next
    std::vector<uint8_t> cm = word_bytes(cmsg_len);
    for (const int32_t v : {int32_t{SOL_SOCKET}, int32_t{SCM_RIGHTS}, int32_t{3}, int32_t{4}})
      cm.insert(cm.end(), reinterpret_cast<const uint8_t*>(&v), reinterpret_cast<const uint8_t*>(&v) + 4);
    add(cm.data(), cm.size());
    const uint64_t all = ~uint64_t{0}, usr1 = uint64_t{1} << (SIGUSR1 - 1);
    add(&all, 8);
    add(&usr1, 8);
    words({0, 1000000, 0, 1000000});  // itimerspec / itimerval, 1 ms each way (word-sized fields)
    const int64_t ts64[4] = {0, 1000000, 0, 1000000};
    add(ts64, sizeof ts64);
    const pollfd pfd[2] = {{3, POLLIN, 0}, {5, POLLIN | POLLOUT, 0}};
    add(pfd, sizeof pfd);
    // sigaction: handler, flags, restorer, mask (the kernel's order for both ABIs).
    words({0x1000, kSaSigInfo | kSaRestorer, 0x1000});
    add(&usr1, 8);
    // sigevent: value, signo, notify (SIGEV_SIGNAL).
    words({0x1234});
    const int32_t ev[2] = {SIGUSR1, SIGEV_SIGNAL};
    add(ev, sizeof ev);
    const epoll_event ee{EPOLLIN, {.u64 = 7}};
    add(&ee, sizeof ee);
  }
  const std::string& bytes() const { return bytes_; }
  const std::vector<uint64_t>& objects() const { return objects_; }

 private:
  unsigned word() const { return i386_ ? 4 : 8; }
  void add(const void* p, size_t n) {
    at_ = (at_ + 7) & ~uint64_t{7};
    objects_.push_back(kTable + at_);
    std::memcpy(bytes_.data() + at_, p, n);
    at_ += n;
  }
  std::vector<uint8_t> word_bytes(uint64_t w) const {
    return {reinterpret_cast<const uint8_t*>(&w), reinterpret_cast<const uint8_t*>(&w) + word()};
  }
  void words(std::initializer_list<uint64_t> ws) {
    std::vector<uint8_t> b;
    for (const uint64_t w : ws) {
      const auto wb = word_bytes(w);
      b.insert(b.end(), wb.begin(), wb.end());
    }
    add(b.data(), b.size());
  }

  const bool i386_;
  std::string bytes_;
  uint64_t at_ = 0;
  std::vector<uint64_t> objects_;
};

class Session {
 public:
  Session(bool i386, std::string_view blob, bool tiny = false) : i386_(i386), table_(i386) {
    EmulatorConfig config;
    config.mem_bytes = uint64_t{tiny ? 2u : 4u} << 20;  // little: running out of frames is a path too
    config.max_vcpus = 2;
    config.aslr = false;
    std::string error;
    machine_ = Machine::create(config, &error);
    if (!machine_) fail(kName, "Machine::create: " + error);
    proc_ = machine_->new_first_process(i386 ? GuestArch::I386 : GuestArch::X86_64, &error);
    if (!proc_) fail(kName, "new_first_process: " + error);
    vcpu_ = std::make_unique<Vcpu>(*proc_, 0, proc_->pid());
    map(kData, kDataBytes);
    map(kTable, kTableBytes);
    map(kZero, mmu::kPageSize);
    std::string data(kDataBytes, '\0');
    if (!blob.empty()) std::memcpy(data.data(), blob.data(), std::min(blob.size(), data.size()));
    if (!mem().write(0, kData, data.data(), data.size()) ||
        !mem().write(0, kTable, table_.bytes().data(), table_.bytes().size()))
      fail(kName, "cannot fill the guest pages");
    open_files();
  }
  ~Session() {
    vcpu_.reset();
    proc_.reset();
    machine_.reset();
  }

  GuestMemory& mem() { return proc_->memory(); }
  GuestProcess& proc() { return *proc_; }
  const Table& table() const { return table_; }
  bool i386() const { return i386_; }

  int64_t call(uint64_t nr, const std::array<uint64_t, 6>& args, bool* known) {
    sys::Call c{*vcpu_, *proc_, proc_->memory(), 0, i386_, args};
    return i386_ ? sys::dispatch_i386(c, nr, known) : sys::dispatch_x86_64(c, nr, known);
  }

  // The zero page for timeouts: whatever the guest did to it, zeros again.
  void reset_zero_page() { map(kZero, mmu::kPageSize); }

 private:
  void map(uint64_t addr, uint64_t len) {
    mmu::MapRequest req;
    req.addr = addr;
    req.length = len;
    req.placement = mmu::MapPlacement::Fixed;
    if (!proc_->space().map(0, req).ok()) fail(kName, "cannot map the harness pages");
  }
  void install(int host_fd) {
    if (host_fd < 0) fail(kName, "cannot open a harness fd");
    if (proc_->files().install(std::make_shared<HostFile>(host_fd), false) < 0) fail(kName, "fd table full");
  }
  void open_files() {
    FdTable& files = proc_->files();
    for (int fd : files.open_fds()) files.close(fd);
    const std::string& dir = scratch_dir();
    const int cwd = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (cwd < 0) fail(kName, "cannot open the scratch directory");
    files.set_cwd(std::make_shared<HostFile>(cwd));
    install(::open("/dev/null", O_RDONLY | O_CLOEXEC));                       // 0
    install(::open("/dev/null", O_WRONLY | O_CLOEXEC));                       // 1
    install(::open((dir + "/log").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_APPEND, 0600));  // 2
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) fail(kName, "socketpair");
    install(sv[0]);  // 3
    install(sv[1]);  // 4
    int p[2];
    if (::pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) fail(kName, "pipe2");
    install(p[0]);  // 5
    install(p[1]);  // 6
    const int memfd = ::memfd_create("emu-fuzz-guest", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (memfd < 0 || ::write(memfd, "hello, guest\n", 13) != 13) fail(kName, "memfd");
    install(memfd);                                                               // 7
    install(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));             // 8
    install(::open((dir + "/file0").c_str(), O_RDWR | O_CLOEXEC));                // 9
    install(::eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC));                            // 10
  }

  const bool i386_;
  Table table_;
  std::unique_ptr<Machine> machine_;
  std::shared_ptr<GuestProcess> proc_;
  std::unique_ptr<Vcpu> vcpu_;
};

void make_scratch_files() {
  reset_scratch();
  const std::string& dir = scratch_dir();
  const auto put = [](const std::string& path, const char* text) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || ::write(fd, text, std::strlen(text)) < 0) fail(kName, "cannot make " + path);
    ::close(fd);
  };
  put(dir + "/file0", "file zero\n");
  if (::mkdir((dir + "/dir0").c_str(), 0755) != 0) fail(kName, "mkdir dir0");
  put(dir + "/dir0/file1", "file one\n");
}

enum class PathKind { Unreadable, Bad, Scratch, Absolute, Relative };

bool has_component(const std::string& path, const char* name) {
  size_t at = 0;
  while (at <= path.size()) {
    size_t end = path.find('/', at);
    if (end == std::string::npos) end = path.size();
    if (path.compare(at, end - at, name) == 0) return true;
    at = end + 1;
  }
  return false;
}

// What a guest path names, as far as the harness cares: inside the scratch directory (a
// relative path from the current directory, no ".."), an absolute path, a relative one
// from another directory, one the handler will answer EFAULT, or one the harness rejects.
PathKind classify(Session& s, uint64_t addr, bool from_cwd) {
  uint8_t first;
  if (addr == 0 || !s.mem().read(0, addr, &first, 1)) return PathKind::Unreadable;
  std::string path;
  if (!s.mem().read_string(0, addr, 4096, path)) return PathKind::Bad;
  if (has_component(path, "..")) return PathKind::Bad;
  if (path.starts_with('/')) return PathKind::Absolute;
  return from_cwd ? PathKind::Scratch : PathKind::Relative;
}

// Absolute paths a guest may open (read-only): the guest's own /proc, and a few harmless
// files. Nothing below a "root" (/proc/self/root is the host's /).
bool absolute_open_ok(Session& s, uint64_t addr) {
  std::string path;
  if (!s.mem().read_string(0, addr, 4096, path) || has_component(path, "root")) return false;
  for (const char* prefix : {"/proc/self/", "/proc/thread-self/", "/dev/fd/"})
    if (path.starts_with(prefix)) return true;
  for (const char* file : {"/proc/self", "/dev/null", "/dev/zero", "/dev/urandom", "/dev/random", "/dev/stdin",
                           "/dev/stdout", "/dev/stderr", "/proc/cpuinfo", "/proc/meminfo", "/proc/stat",
                           "/proc/uptime", "/proc/version", "/etc/passwd", "/etc/hostname"})
    if (path == file) return true;
  return false;
}

bool sockaddr_ok(Session& s, uint64_t addr, uint64_t len) {
  uint8_t b[3] = {};
  if (len < 3 || !s.mem().read(0, addr, b, sizeof b)) return true;  // autobind, EINVAL or EFAULT
  const uint16_t family = static_cast<uint16_t>(b[0] | (b[1] << 8));
  return family != AF_UNIX || b[2] == 0;  // abstract names only
}

constexpr uint64_t kDropFlags = O_ACCMODE | O_CREAT | O_TRUNC | O_EXCL | O_APPEND | O_TMPFILE;

// Applies `spec`'s rule to `a`: false when the call must not run.
bool adjust(Session& s, const Spec& spec, std::array<uint64_t, 6>& a) {
  const auto dirfd_is_cwd = [&](int8_t i) { return i < 0 || s32(a[i]) == AT_FDCWD; };
  switch (spec.rule) {
    case Rule::Pass: return true;
    case Rule::Open: {
      const PathKind k = classify(s, a[spec.i1], dirfd_is_cwd(spec.i0));
      if (k == PathKind::Bad) return false;
      uint64_t& flags = a[spec.i2];
      flags |= O_NONBLOCK;
      flags &= ~uint64_t{O_ASYNC};
      if (k == PathKind::Scratch || k == PathKind::Unreadable) return true;
      if (k == PathKind::Absolute && !absolute_open_ok(s, a[spec.i1])) return false;
      if (k == PathKind::Relative) {
        std::string path;
        (void)s.mem().read_string(0, a[spec.i1], 4096, path);
        if (has_component(path, "root")) return false;
      }
      flags = (flags & ~kDropFlags) | O_RDONLY;
      return true;
    }
    case Rule::PathWrite: {
      for (int8_t d : {spec.i2, spec.i3})
        if (d >= 0) a[d] = static_cast<uint64_t>(int64_t{AT_FDCWD});
      for (int8_t p : {spec.i0, spec.i1}) {
        if (p < 0) continue;
        const PathKind k = classify(s, a[p], true);
        if (k != PathKind::Scratch && k != PathKind::Unreadable) return false;
      }
      return true;
    }
    case Rule::Chdir: {
      const PathKind k = classify(s, a[spec.i0], true);
      return k == PathKind::Scratch || k == PathKind::Unreadable;
    }
    case Rule::Fcntl: {
      const int cmd = s32(a[spec.i0]);
      switch (cmd) {
        case F_SETFL:
          a[spec.i1] = (a[spec.i1] | O_NONBLOCK) & ~uint64_t{O_ASYNC};
          return true;
        case F_SETOWN: case F_SETOWN_EX: case F_SETSIG: case F_SETLEASE: case F_NOTIFY: return false;
        default: return true;
      }
    }
    case Rule::Ioctl: {
      switch (a[spec.i0] & 0xffffffffu) {
        case FIONBIO: case FIOASYNC: case TCSETS: case TCSETSW: case TCSETSF: case TIOCSWINSZ: case TIOCSPGRP:
        case TIOCSTI: case TIOCSCTTY: return false;
        default: return true;
      }
    }
    case Rule::ZeroMs: a[spec.i0] = 0; return true;
    case Rule::ZeroPtr:
      s.reset_zero_page();
      a[spec.i0] = kZero;
      return true;
    case Rule::Futex: {
      const int cmd = s32(a[1]) & ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
      if (cmd == FUTEX_WAIT || cmd == FUTEX_WAIT_BITSET || cmd == FUTEX_LOCK_PI || cmd == 13 /* LOCK_PI2 */ ||
          cmd == FUTEX_WAIT_REQUEUE_PI) {
        s.reset_zero_page();
        a[3] = kZero;
      }
      return true;
    }
    case Rule::OrFlags: a[spec.i0] |= spec.value; return true;
    case Rule::Socketpair:
      a[0] = AF_UNIX;
      a[spec.i0] = SOCK_STREAM | SOCK_NONBLOCK | (a[spec.i0] & SOCK_CLOEXEC);
      return true;
    case Rule::Sockaddr: return sockaddr_ok(s, a[spec.i0], a[spec.i1]);
    case Rule::Socketcall: {
      const int call = s32(a[0]);
      if (call == 1 /* socket */ || call == 8 /* socketpair */ || call == 19 /* recvmmsg */) return false;
      if (call == 2 || call == 3) {  // bind, connect
        uint32_t w[3];
        if (!s.mem().read(0, a[1], w, sizeof w)) return true;
        return sockaddr_ok(s, w[1], w[2]);
      }
      return true;
    }
  }
  return false;
}

uint64_t argument(Input& in, Session& s, const std::vector<int64_t>& results) {
  const uint8_t sel = in.u8();
  switch (sel % 10) {
    case 0: return static_cast<uint64_t>(int64_t{static_cast<int8_t>(in.u8())});
    case 1: return in.u32();
    case 2: return in.u64();
    case 3: return kData + in.u16() % kDataBytes;
    case 4: {
      const auto& objs = s.table().objects();
      return objs[in.u8() % objs.size()];
    }
    case 5: return in.u8() % (kHarnessFds + 4);
    case 6: return results.empty() ? 0 : static_cast<uint64_t>(results[in.u8() % results.size()]);
    case 7: {
      static constexpr uint64_t kSpecial[] = {0, ~uint64_t{0}, static_cast<uint64_t>(int64_t{AT_FDCWD}), 4096,
                                              0x7fffffff, 0xffffffff, kZero, kData + kDataBytes - 1,
                                              uint64_t{1} << 31, uint64_t{1} << 32, 0x8000000000000000ull, 1};
      return kSpecial[in.u8() % std::size(kSpecial)];
    }
    case 8: return kHints + static_cast<uint64_t>(in.u16() % 1024) * mmu::kPageSize;
    default: return (uint64_t{1} << (in.u8() % 64)) | in.u8();
  }
}

void check_space(Session& s) {
  const auto vmas = s.proc().space().vmas(0);
  const uint64_t limit = s.proc().space().virt_limit();
  for (size_t i = 0; i < vmas.size(); ++i) {
    if (vmas[i].start >= vmas[i].end || vmas[i].end > limit) fail(kName, "a VMA outside the address space");
    if (i > 0 && vmas[i].start < vmas[i - 1].end) fail(kName, "VMAs out of order or overlapping");
  }
  if (s.i386() && limit > (uint64_t{1} << 32)) fail(kName, "an i386 space beyond 4 GiB");
}

// What emu opens once for the whole run the first time it is needed, before any input's
// fds are counted: the stand-in directory behind a guest's /proc/self/fd (procfs_fd_dir.cpp).
void warm_up() {
  static std::once_flag once;
  std::call_once(once, [] {
    make_scratch_files();
    Session s(false, {});
    const auto& objs = s.table().objects();
    for (const uint64_t path : objs) {
      std::string name;
      if (!s.mem().read_string(0, path, 64, name) || name != "/proc/self/fd") continue;
      bool known = true;
      const int64_t fd = s.call(257, {static_cast<uint64_t>(int64_t{AT_FDCWD}), path, O_RDONLY | O_DIRECTORY}, &known);
      if (fd < 0) fail(kName, "warm-up: cannot open /proc/self/fd: " + std::to_string(fd));
    }
  });
}

}  // namespace

int syscalls(const uint8_t* data, size_t size) {
  init_process();
  warm_up();
  const uint64_t leaks_before = Machine::leaked_teardowns();
  make_scratch_files();
  const int fds_before = count_host_fds();
  {
    Input in(data, size);
    const uint8_t flags = in.u8();
    const bool i386 = flags & 1;
    const std::span<const Spec> specs = i386 ? std::span<const Spec>(kSpecs32) : std::span<const Spec>(kSpecs64);
    Session s(i386, in.bytes(in.u16() % (kDataBytes + 1)), flags & 2);
    std::vector<int64_t> results;
    for (int n = 0; n < kMaxCalls && !in.empty() && !s.proc().exiting(); ++n) {
      const uint8_t op = in.u8();
      if (op < 0x10) {
        const uint64_t addr = kData + in.u16() % kDataBytes;
        const std::string_view bytes = in.bytes(in.u8());
        (void)s.mem().write(0, addr, bytes.data(), bytes.size());
        continue;
      }
      const Spec& spec = specs[in.u16() % specs.size()];
      std::array<uint64_t, 6> a{};
      for (uint64_t& x : a) x = argument(in, s, results);
      if (i386)
        for (uint64_t& x : a) x &= 0xffffffffu;
      if (!adjust(s, spec, a)) {
        results.push_back(-EPERM);
        continue;
      }
      if (trace_calls())
        std::fprintf(stderr, "emu-fuzz: %s %u(%#llx, %#llx, %#llx, %#llx, %#llx, %#llx)", i386 ? "i386" : "x86_64",
                     spec.nr, (unsigned long long)a[0], (unsigned long long)a[1], (unsigned long long)a[2],
                     (unsigned long long)a[3], (unsigned long long)a[4], (unsigned long long)a[5]);
      bool known = true;
      const int64_t r = s.call(spec.nr, a, &known);
      if (trace_calls()) std::fprintf(stderr, " = %lld\n", (long long)r);
      if (r < -4095) fail(kName, "call " + std::to_string(spec.nr) + " returned " + std::to_string(r) + ", not -errno");
      if (!known && r != -ENOSYS) fail(kName, "an unknown call did not return ENOSYS");
      if (i386 && r > 0xffffffffll) fail(kName, "i386 call " + std::to_string(spec.nr) + " returned more than 32 bits");
      results.push_back(r);
      check_space(s);
    }
  }
  if (Machine::leaked_teardowns() != leaks_before) fail(kName, "frames or swap slots leaked (see above)");
  if (count_host_fds() != fds_before) fail(kName, "host fds leaked");
  return 0;
}

}  // namespace emu::fuzz
