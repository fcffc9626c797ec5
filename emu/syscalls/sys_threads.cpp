// Threads, futexes, TLS and signals. Each guest thread is a vCPU in its own host thread.
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <optional>
#include <cstring>
#include <vector>

#include "emu/process/guest_process.h"
#include "emu/process/machine.h"
#include "emu/signals/signal_frame.h"
#include "emu/syscalls/sys_handlers.h"

namespace emu::sys {

namespace {

// i386 `struct user_desc` (set_thread_area, clone's TLS argument).
struct UserDesc {
  uint32_t entry_number;
  uint32_t base_addr;
  uint32_t limit;
  uint32_t flags;  // seg_32bit:1 contents:2 read_exec_only:1 limit_in_pages:1 seg_not_present:1 useable:1
};

// The GDT descriptor Linux would build from a user_desc (arch/x86/include/asm/desc.h).
std::array<uint32_t, 2> descriptor_from(const UserDesc& u) {
  const uint32_t seg_32bit = u.flags & 1, contents = (u.flags >> 1) & 3, read_exec_only = (u.flags >> 3) & 1,
                 limit_in_pages = (u.flags >> 4) & 1, not_present = (u.flags >> 5) & 1, useable = (u.flags >> 6) & 1;
  const uint32_t type = ((read_exec_only ^ 1) << 1) | (contents << 2) | 1;  // accessed already set
  const uint32_t lo = (u.limit & 0xffff) | ((u.base_addr & 0xffff) << 16);
  const uint32_t hi = ((u.base_addr >> 16) & 0xff) | (type << 8) | (1u << 12) /* S */ | (3u << 13) /* DPL 3 */ |
                      ((not_present ^ 1) << 15) | (u.limit & 0xf0000) | (useable << 20) | (seg_32bit << 22) |
                      (limit_in_pages << 23) | (u.base_addr & 0xff000000);
  return {lo, hi};
}

SigInfo sent_by(Call& c, int sig, int32_t code) {
  SigInfo info;
  info.signo = sig;
  info.code = code;
  info.pid = c.proc.pid();
  info.uid = static_cast<int32_t>(::getuid());
  return info;
}

// Reads a guest sigset (8 bytes on both ABIs); `size` must be that.
bool read_sigset(Call& c, uint64_t addr, uint64_t* set) { return c.mem.read_value(c.v, addr, *set); }

}  // namespace

VcpuStart child_start(Call& c, uint64_t stack) {
  VcpuStart start;
  c.vcpu.save_registers(start.regs);
  // The child resumes after the syscall with 0 in the result register and its own stack.
  start.regs.general[0] = 0;  // RAX / EAX
  if (stack) start.regs.general[7] = stack;  // RSP / ESP
  start.signal_mask = c.vcpu.signals().mask.load(std::memory_order_acquire);
  // i386: the caller's own TLS, not whatever another thread left in the shared GDT page.
  start.i386_tls_descriptor = c.vcpu.tls_descriptor;
  start.i386_tls_entry = c.vcpu.tls_entry;
  if (!stack) start.altstack = c.vcpu.signals().altstack;  // a new thread's stack: no altstack
  if (!c.i386) {
    // In Unicorn's syscall hook RIP still points at the `syscall` instruction (it is advanced
    // after the hook returns); the child starts after it. (int 0x80's hook sees EIP past it.)
    uint8_t insn[2] = {};
    if (c.mem.read(c.v, start.regs.general[16], insn, 2) && insn[0] == 0x0f && insn[1] == 0x05)
      start.regs.general[16] += 2;
  }
  return start;
}

int64_t clone(Call& c, uint64_t flags, uint64_t stack, uint64_t parent_tid, uint64_t child_tid, uint64_t tls) {
  constexpr uint64_t kThread = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD;
  // A new process: fork, vfork, or posix_spawn's CLONE_VM | CLONE_VFORK (served as vfork).
  if (!(flags & CLONE_THREAD)) return fork(c, flags, stack, parent_tid, child_tid);
  if ((flags & kThread) != kThread) return -EINVAL;
  VcpuStart start = child_start(c, stack);
  if (flags & CLONE_SETTLS) {
    if (c.i386) {
      UserDesc u;
      if (!c.mem.read_value(c.v, tls, u)) return -EFAULT;
      if (u.entry_number < kI386TlsFirstEntry || u.entry_number >= kI386TlsFirstEntry + kI386TlsEntries) return -EINVAL;
      start.i386_tls_descriptor = descriptor_from(u);
      start.i386_tls_entry = u.entry_number;
    } else {
      start.regs.fs_base = tls;
    }
  }
  int tid = 0;
  // The child may run before we return: its tid is stored first (CLONE_PARENT_SETTID).
  const int r = c.proc.spawn_thread(start, (flags & CLONE_CHILD_CLEARTID) ? child_tid : 0, &tid, [&](int new_tid) {
    if (flags & CLONE_PARENT_SETTID) (void)c.mem.write_value(c.v, parent_tid, static_cast<uint32_t>(new_tid));
    if (flags & CLONE_CHILD_SETTID) (void)c.mem.write_value(c.v, child_tid, static_cast<uint32_t>(new_tid));
    c.proc.controls().copy_thread_name(c.vcpu.tid(), new_tid);
  });
  return r < 0 ? r : tid;
}

int64_t clone3(Call& c, uint64_t args, uint64_t size) {
  // struct clone_args: flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size,
  // tls (64 bytes, CLONE_ARGS_SIZE_VER0), set_tid, set_tid_size (VER1), cgroup (VER2); all
  // 64-bit on both ABIs. A larger struct from a newer libc is fine if its tail is zero.
  constexpr uint64_t kVer0 = 64, kKnown = 88, kPage = 4096;
  if (size < kVer0) return -EINVAL;
  if (size > kPage) return -E2BIG;
  std::vector<uint8_t> raw(size);
  if (!c.mem.read(c.v, args, raw.data(), size)) return -EFAULT;
  for (uint64_t i = kKnown; i < size; ++i)
    if (raw[i]) return -E2BIG;
  raw.resize(std::max<uint64_t>(size, kKnown), 0);
  uint64_t f[11];
  std::memcpy(f, raw.data(), sizeof f);
  const uint64_t flags = f[0], pidfd = f[1], child_tid = f[2], parent_tid = f[3], exit_signal = f[4], stack = f[5],
                 stack_size = f[6], tls = f[7], set_tid_size = f[9];
  (void)pidfd;
  if (flags & ~(uint64_t{0xffffffff} | kCloneClearSighand | kCloneIntoCgroup)) return -EINVAL;
  if (flags & CSIGNAL) return -EINVAL;  // clone3 takes the exit signal apart
  if ((exit_signal & ~uint64_t{CSIGNAL}) || exit_signal > kMaxSignal) return -EINVAL;
  if ((stack == 0) != (stack_size == 0)) return -EINVAL;
  if ((flags & kCloneClearSighand) && (flags & CLONE_SIGHAND)) return -EINVAL;
  if (set_tid_size) return -EPERM;  // choosing pids needs CAP_SYS_ADMIN over the pid namespace
  // No pidfds and no cgroups in emu: refused rather than half done (glibc never asks for
  // them when creating threads or spawning).
  if (flags & (CLONE_PIDFD | kCloneIntoCgroup)) return -EINVAL;
  const uint64_t sp = stack ? stack + stack_size : 0;
  return clone(c, flags | exit_signal, sp, parent_tid, child_tid, tls);
}

int64_t exit_thread(Call& c, int code) {
  if (c.vcpu.clear_child_tid) {
    // CLONE_CHILD_CLEARTID: zero the tid word and wake one waiter (pthread_join).
    (void)c.mem.write_value(c.v, c.vcpu.clear_child_tid, uint32_t{0});
    c.proc.futexes().wake(c.vcpu.clear_child_tid, 1, FUTEX_BITSET_MATCH_ANY);
  }
  c.vcpu.request_thread_exit(code & 0xff);
  return 0;
}

int64_t exit_group(Call& c, int code) {
  c.proc.exit_group(code & 0xff);
  c.vcpu.request_stop();
  return 0;
}

int64_t set_tid_address(Call& c, uint64_t addr) {
  c.vcpu.clear_child_tid = addr;
  return c.vcpu.tid();
}

namespace {

// Where a futex word's waiters queue. A word in shared memory (MAP_SHARED), unless the
// caller says FUTEX_PRIVATE_FLAG, is keyed by where it lives: processes that map the page at
// different addresses must meet, as with Linux's shared keys (inode or mm-independent page).
// Everything else is keyed by its address in the process's own table.
struct FutexKey {
  FutexTable* table;
  uint64_t key;
};

// `word`: the word translated (pinned by the caller); nullptr to translate it here.
std::optional<FutexKey> futex_key(Call& c, uint64_t addr, int op, const uint32_t* word) {
  if (op & FUTEX_PRIVATE_FLAG) return FutexKey{&c.proc.futexes(), addr};
  std::optional<GuestMemory::Pin> pin;
  if (!word) {
    pin.emplace(c.mem, c.v);
    word = c.mem.word(c.v, addr, mmu::Access::Read);
    if (!word) return std::nullopt;  // Linux faults the page in for a shared key: EFAULT
  }
  auto& pool = c.proc.machine().pool();
  const auto host = reinterpret_cast<const uint8_t*>(word);
  const uint64_t phys = static_cast<uint64_t>(host - pool.host_base());
  if (pool.descriptor(static_cast<mmu::FrameNumber>(phys >> mmu::kPageShift)).state.load(std::memory_order_acquire) ==
      mmu::FrameState::Shared)
    return FutexKey{&c.proc.machine().shared_futexes(), phys};
  return FutexKey{&c.proc.futexes(), addr};
}

}  // namespace

int64_t futex(Call& c, uint64_t addr, int op, uint32_t val, uint64_t timeout, uint64_t addr2, uint32_t val3, bool time64) {
  const int cmd = op & FUTEX_CMD_MASK;
  auto& counters = c.proc.counters().slot(c.v);
  switch (cmd) {
    case FUTEX_WAIT:
    case FUTEX_WAIT_BITSET: {
      const uint32_t bitset = cmd == FUTEX_WAIT ? FUTEX_BITSET_MATCH_ANY : val3;
      if (bitset == 0) return -EINVAL;
      // The timeout first: reading it may fault, and a fault may serve a shootdown, which
      // must not happen between translating the word and comparing it.
      FutexTable::Deadline deadline;
      if (timeout) {
        int64_t sec = 0, nsec = 0;
        if (!read_timespec(c, timeout, time64, sec, nsec)) return -EFAULT;
        if (!valid_timespec(sec, nsec)) return -EINVAL;
        // FUTEX_WAIT: relative. FUTEX_WAIT_BITSET: absolute, on CLOCK_REALTIME when
        // FUTEX_CLOCK_REALTIME is set, else CLOCK_MONOTONIC.
        if (cmd == FUTEX_WAIT)
          deadline = deadline_after(sec, nsec);
        else
          deadline = deadline_at((op & FUTEX_CLOCK_REALTIME) ? CLOCK_REALTIME : CLOCK_MONOTONIC, sec, nsec);
      }
      // The frame holding the word must stay this page's until the compare is done.
      auto pin = c.mem.pin(c.v);
      const uint32_t* word = c.mem.word(c.v, addr, mmu::Access::Read);
      if (!word) return -EFAULT;
      const auto key = futex_key(c, addr, op, word);
      counters.add(EmuCounter::FutexWaits);
      return key->table->wait(
          key->key, word, val, bitset, deadline, [&] { pin.release(); },
          [&] { return c.proc.exiting() || c.proc.signals().deliverable(c.vcpu.signals()); }, -kErestartSys);
    }
    case FUTEX_WAKE:
    case FUTEX_WAKE_BITSET: {
      const uint32_t bitset = cmd == FUTEX_WAKE ? FUTEX_BITSET_MATCH_ANY : val3;
      if (bitset == 0) return -EINVAL;
      const auto key = futex_key(c, addr, op, nullptr);
      if (!key) return -EFAULT;
      counters.add(EmuCounter::FutexWakes);
      return key->table->wake(key->key, static_cast<int>(std::min<uint32_t>(val, INT32_MAX)), bitset);
    }
    case FUTEX_REQUEUE:
    case FUTEX_CMP_REQUEUE: {
      const auto pin = c.mem.pin(c.v);  // requeue never sleeps: pinned throughout
      const uint32_t* word = c.mem.word(c.v, addr, mmu::Access::Read);
      if (!word) return -EFAULT;
      const auto from = futex_key(c, addr, op, word);
      const auto to = futex_key(c, addr2, op, nullptr);
      if (!to) return -EFAULT;
      // Waiters move within one table: between private and shared memory there is nothing
      // they could be woken by (glibc requeues only within one condition variable's memory).
      if (from->table != to->table) return -EINVAL;
      const int requeue = static_cast<int>(std::min<uint64_t>(timeout, INT32_MAX));  // val2 in the timeout slot
      return from->table->requeue(from->key, to->key, static_cast<int>(val), requeue, word,
                                  cmd == FUTEX_CMP_REQUEUE ? std::optional<uint32_t>(val3) : std::nullopt);
    }
    default:
      return -ENOSYS;
  }
}

int64_t arch_prctl(Call& c, int code, uint64_t addr) {
  constexpr int kSetGs = 0x1001, kSetFs = 0x1002, kGetFs = 0x1003, kGetGs = 0x1004;
  switch (code) {
    case kSetFs: c.vcpu.set_reg(UC_X86_REG_FS_BASE, addr); return 0;
    case kSetGs: c.vcpu.set_reg(UC_X86_REG_GS_BASE, addr); return 0;
    case kGetFs: return c.mem.write_value(c.v, addr, c.vcpu.reg(UC_X86_REG_FS_BASE)) ? 0 : -EFAULT;
    case kGetGs: return c.mem.write_value(c.v, addr, c.vcpu.reg(UC_X86_REG_GS_BASE)) ? 0 : -EFAULT;
    default: return -EINVAL;
  }
}

int64_t set_thread_area(Call& c, uint64_t u_info) {
  UserDesc u;
  if (!c.mem.read_value(c.v, u_info, u)) return -EFAULT;
  if (u.entry_number == ~uint32_t{0}) {
    u.entry_number = kI386TlsFirstEntry;  // glibc asks once, then reuses what it got
    if (!c.mem.write_value(c.v, u_info, u.entry_number)) return -EFAULT;
  }
  if (u.entry_number < kI386TlsFirstEntry || u.entry_number >= kI386TlsFirstEntry + kI386TlsEntries) return -EINVAL;
  // The guest loads GS itself next; the entry must hold this thread's base until then. The
  // GDT is shared in guest memory, so the load happens under the GDT lock: reload GS now.
  const uint32_t selector = u.entry_number * 8 + 3;
  c.vcpu.tls_descriptor = descriptor_from(u);
  c.vcpu.tls_entry = u.entry_number;
  c.proc.with_gdt_entry(c.v, u.entry_number, descriptor_from(u), [&] {
    if (c.vcpu.reg(UC_X86_REG_GS) == selector) c.vcpu.set_reg(UC_X86_REG_GS, selector);
  });
  return 0;
}

namespace {

// kill's targets: one process, a process group, or (-1) every guest process but the caller.
// -ESRCH when none is alive; signal 0 only asks whether one is.
int64_t send_to(Call& c, int pid, int sig, const SigInfo& info, bool* queue_full = nullptr) {
  if (pid > 0) {
    auto target = pid == c.proc.pid() ? c.proc.shared_from_this() : c.proc.machine().find_process(pid);
    if (!target || target->ended()) return -ESRCH;
    if (sig) target->send_signal(sig, info, nullptr, queue_full);
    return 0;
  }
  const int pgid = pid == 0 ? c.proc.pgid() : -pid;
  bool any = false;
  for (auto& p : c.proc.machine().processes()) {
    if (p->ended() || (pid == -1 ? p.get() == &c.proc : p->pgid() != pgid)) continue;
    any = true;
    if (sig) p->send_signal(sig, info, nullptr, queue_full);
  }
  return any ? 0 : -ESRCH;
}

// A guest siginfo for rt_sigqueueinfo: code, sender and value as given (the signal number is
// the call's). Linux lets a process forge kernel codes only towards itself.
int64_t read_user_siginfo(Call& c, uint64_t addr, int sig, bool to_self, SigInfo* info) {
  uint8_t raw[32];
  if (!c.mem.read(c.v, addr, raw, sizeof raw)) return -EFAULT;
  const auto get32 = [&](size_t off) {
    int32_t v;
    std::memcpy(&v, raw + off, 4);
    return v;
  };
  const size_t u = c.i386 ? 12 : 16;
  info->signo = sig;
  info->code = get32(8);
  if ((info->code >= 0 || info->code == kSiTkill) && !to_self) return -EPERM;
  info->pid = get32(u);
  info->uid = get32(u + 4);
  info->has_value = true;
  if (c.i386) {
    info->value = static_cast<uint32_t>(get32(u + 8));
  } else {
    std::memcpy(&info->value, raw + u + 8, 8);
  }
  return 0;
}

}  // namespace

int64_t kill(Call& c, int pid, int sig) {
  if (sig < 0 || sig > kMaxSignal) return -EINVAL;
  if (pid == INT_MIN) return -ESRCH;  // Linux: -INT_MIN names no group
  return send_to(c, pid, sig, sent_by(c, sig, kSiUser));
}

int64_t rt_sigqueueinfo(Call& c, int pid, int sig, uint64_t uinfo) {
  SigInfo info;
  if (const int64_t e = read_user_siginfo(c, uinfo, sig, pid == c.proc.pid(), &info); e < 0) return e;
  if (sig < 0 || sig > kMaxSignal) return -EINVAL;
  if (pid <= 0) return -ESRCH;  // one process only
  bool full = false;
  const int64_t r = send_to(c, pid, sig, info, &full);
  return r < 0 ? r : (full ? -EAGAIN : 0);
}

int64_t rt_tgsigqueueinfo(Call& c, int tgid, int tid, int sig, uint64_t uinfo) {
  if (tgid <= 0 || tid <= 0) return -EINVAL;
  SigInfo info;
  if (const int64_t e = read_user_siginfo(c, uinfo, sig, tgid == c.proc.pid(), &info); e < 0) return e;
  if (sig < 0 || sig > kMaxSignal) return -EINVAL;
  if (tgid != c.proc.pid()) return tid == tgid ? rt_sigqueueinfo(c, tgid, sig, uinfo) : -ESRCH;
  Vcpu* target = tid == c.vcpu.tid() ? &c.vcpu : nullptr;
  if (!target) {
    c.proc.for_each_other_vcpu(c.vcpu, [&](Vcpu& v) {
      if (v.tid() == tid) target = &v;
    });
  }
  if (!target) return -ESRCH;
  bool full = false;
  if (sig) c.proc.send_signal(sig, info, target, &full);
  return full ? -EAGAIN : 0;
}

namespace {

// What a pidfd is in emu: a guest pid behind an eventfd that becomes readable when the process
// ends (Machine::watch_exit), so that poll and epoll see the exit as with Linux's pidfds.
class PidFdView final : public GuestView {
 public:
  explicit PidFdView(int pid) : pid_(pid) {}
  std::string link_target() const override { return "anon_inode:[pidfd]"; }
  int pid() const { return pid_; }

 private:
  const int pid_;
};

// The guest pid a fd names for pidfd_send_signal: a pidfd, or (as Linux also accepts) an open
// /proc/PID directory; 0 for any other fd.
int pidfd_target(const HostFile& f) {
  if (const auto* v = dynamic_cast<const PidFdView*>(f.view())) return v->pid();
  if (f.view()) return 0;
  char link[64];
  const ssize_t n = ::readlink(fmt::format("/proc/self/fd/{}", f.fd()).c_str(), link, sizeof link - 1);
  if (n <= 6) return 0;
  link[n] = 0;
  if (std::strncmp(link, "/proc/", 6) != 0) return 0;
  char* end = nullptr;
  const long pid = std::strtol(link + 6, &end, 10);
  return *end == 0 && pid > 0 && pid <= INT_MAX ? static_cast<int>(pid) : 0;
}

}  // namespace

int64_t pidfd_open(Call& c, int pid, unsigned flags) {
  if (flags & ~static_cast<unsigned>(O_NONBLOCK)) return -EINVAL;
  if (pid <= 0) return -EINVAL;
  auto target = pid == c.proc.pid() ? c.proc.shared_from_this() : c.proc.machine().find_process(pid);
  if (!target) return -ESRCH;
  const int efd = ::eventfd(0, EFD_CLOEXEC | ((flags & O_NONBLOCK) ? EFD_NONBLOCK : 0));
  if (efd < 0) return -errno;
  auto file = std::make_shared<HostFile>(efd, std::make_unique<PidFdView>(pid));
  c.proc.machine().watch_exit(*target, file);
  return c.proc.files().install(std::move(file), true);  // a pidfd is always close-on-exec
}

int64_t pidfd_send_signal(Call& c, int pidfd, int sig, uint64_t uinfo, unsigned flags) {
  // Linux 6.9's scope flags, at most one: PIDFD_SIGNAL_THREAD (1: the leader thread, which
  // emu treats as the process), _THREAD_GROUP (2: the process, the default), _PROCESS_GROUP (4).
  if ((flags & ~7u) || (flags & (flags - 1))) return -EINVAL;
  if (sig < 0 || sig > kMaxSignal) return -EINVAL;
  const auto f = c.proc.files().get(pidfd);
  if (!f) return -EBADF;
  const int pid = pidfd_target(*f);
  if (pid <= 0) return -EBADF;
  SigInfo info = sent_by(c, sig, kSiUser);
  if (uinfo) {
    if (const int64_t e = read_user_siginfo(c, uinfo, sig, pid == c.proc.pid(), &info); e < 0) return e;
    int32_t signo = 0;
    if (!c.mem.read_value(c.v, uinfo, signo)) return -EFAULT;
    if (signo != sig) return -EINVAL;  // Linux: the siginfo must name the signal sent
  }
  if (flags == 4) {
    const auto target = pid == c.proc.pid() ? c.proc.shared_from_this() : c.proc.machine().find_process(pid);
    if (!target || target->ended()) return -ESRCH;
    return send_to(c, -target->pgid(), sig, info);
  }
  return send_to(c, pid, sig, info);
}

int64_t pause(Call& c) {
  (void)c.proc.sleep_until(std::nullopt, &c.vcpu);
  return -kErestartNoHand;
}

int64_t tgkill(Call& c, int tgid, int tid, int sig) {
  if (sig < 0 || sig > kMaxSignal) return -EINVAL;
  if (tgid != c.proc.pid() || tid <= 0) return -ESRCH;
  // Only a name for the target: send_signal finds it (or not) among the live threads.
  Vcpu* target = nullptr;
  if (tid == c.vcpu.tid()) {
    target = &c.vcpu;
  } else {
    c.proc.for_each_other_vcpu(c.vcpu, [&](Vcpu& v) {
      if (v.tid() == tid) target = &v;
    });
    if (!target) return -ESRCH;
  }
  if (sig) c.proc.send_signal(sig, sent_by(c, sig, kSiTkill), target);
  return 0;
}

int64_t rt_sigaction(Call& c, int sig, uint64_t act, uint64_t oldact, uint64_t size) {
  if (sig < 1 || sig > kMaxSignal || size != 8) return -EINVAL;
  if (act && (sig == SIGKILL || sig == SIGSTOP)) return -EINVAL;
  // The kernel's sigaction: handler, flags, restorer, mask, each a long but the mask (8 bytes).
  SigAction fresh;
  if (act) {
    if (c.i386) {
      uint32_t f[3] = {};
      if (!c.mem.read(c.v, act, f, sizeof f) || !c.mem.read_value(c.v, act + 12, fresh.mask)) return -EFAULT;
      fresh = {f[0], f[1], f[2], fresh.mask};
    } else {
      uint64_t f[4] = {};
      if (!c.mem.read(c.v, act, f, sizeof f)) return -EFAULT;
      fresh = {f[0], f[1], f[2], f[3]};
    }
    fresh.mask &= ~kUnblockable;
  }
  // Guest memory is copied outside the signal lock: a fault may wait for swap.
  const SigAction old = act ? c.proc.signals().set_action(sig, fresh) : c.proc.signals().action(sig);
  if (oldact) {
    bool ok;
    if (c.i386) {
      const uint32_t f[3] = {static_cast<uint32_t>(old.handler), static_cast<uint32_t>(old.flags),
                             static_cast<uint32_t>(old.restorer)};
      ok = c.mem.write(c.v, oldact, f, sizeof f) && c.mem.write_value(c.v, oldact + 12, old.mask);
    } else {
      const uint64_t f[4] = {old.handler, old.flags, old.restorer, old.mask};
      ok = c.mem.write(c.v, oldact, f, sizeof f);
    }
    if (!ok) return -EFAULT;
  }
  return 0;
}

int64_t rt_sigprocmask(Call& c, int how, uint64_t set, uint64_t oldset, uint64_t size) {
  if (size != 8) return -EINVAL;
  ThreadSignals& t = c.vcpu.signals();
  const uint64_t old = t.mask.load(std::memory_order_acquire);
  uint64_t s = 0;
  if (set && !read_sigset(c, set, &s)) return -EFAULT;
  if (set) {
    uint64_t next;
    switch (how) {
      case SIG_BLOCK: next = old | s; break;
      case SIG_UNBLOCK: next = old & ~s; break;
      case SIG_SETMASK: next = s; break;
      default: return -EINVAL;
    }
    // A signal it unblocks is taken before the call returns to the guest (the vCPU looks);
    // process-wide ones it blocks go to another thread.
    c.proc.signals().set_mask(t, next);
    if (next & ~old) c.proc.retarget_shared_signals(c.vcpu);
  }
  if (oldset && !c.mem.write_value(c.v, oldset, old)) return -EFAULT;
  return 0;
}

int64_t rt_sigsuspend(Call& c, uint64_t set, uint64_t size) {
  if (size != 8) return -EINVAL;
  uint64_t s = 0;
  if (!read_sigset(c, set, &s)) return -EFAULT;
  ThreadSignals& t = c.vcpu.signals();
  // The caller's mask comes back once a handler's frame holds it (sigreturn restores it).
  t.saved_mask = t.mask.load(std::memory_order_acquire);
  c.proc.signals().set_mask(t, s);
  (void)c.proc.sleep_until(std::nullopt, &c.vcpu);
  return -kErestartNoHand;
}

int64_t rt_sigpending(Call& c, uint64_t set, uint64_t size) {
  if (size > 8) return -EINVAL;
  const uint64_t pending = c.proc.signals().pending_for(c.vcpu.signals()) & c.vcpu.signals().mask.load();
  return c.mem.write(c.v, set, &pending, size) ? 0 : -EFAULT;
}

int64_t rt_sigtimedwait(Call& c, uint64_t set, uint64_t info, uint64_t timeout, uint64_t size, bool time64) {
  if (size != 8) return -EINVAL;
  uint64_t wanted = 0;
  if (!read_sigset(c, set, &wanted)) return -EFAULT;
  wanted &= ~kUnblockable;
  Deadline deadline;
  if (timeout) {
    int64_t sec = 0, nsec = 0;
    if (!read_timespec(c, timeout, time64, sec, nsec)) return -EFAULT;
    if (!valid_timespec(sec, nsec)) return -EINVAL;
    deadline = deadline_after(sec, nsec);
  }
  ThreadSignals& t = c.vcpu.signals();
  // While waiting, the wanted signals count as unblocked (Linux: real_blocked), so that a
  // sender wakes this thread for them.
  const uint64_t mask = t.mask.load(std::memory_order_acquire);
  t.awaiting.store(wanted, std::memory_order_release);
  c.proc.signals().set_mask(t, mask & ~wanted);
  SigInfo si;
  int sig = 0;
  for (;;) {
    sig = c.proc.signals().take(t, wanted, &si);
    if (sig) break;
    const auto end = c.proc.sleep_until(deadline, &c.vcpu);
    if (end == GuestProcess::SleepEnd::Signal && (c.proc.signals().pending_for(t) & wanted)) continue;
    t.awaiting.store(0, std::memory_order_release);
    c.proc.signals().set_mask(t, mask);
    c.proc.retarget_shared_signals(c.vcpu);
    return end == GuestProcess::SleepEnd::Deadline ? -EAGAIN : -kErestartNoHand;
  }
  t.awaiting.store(0, std::memory_order_release);
  c.proc.signals().set_mask(t, mask);
  c.proc.retarget_shared_signals(c.vcpu);
  if (info) {
    std::array<uint8_t, 128> bytes{};
    write_siginfo(bytes.data(), si, c.i386);
    if (!c.mem.write(c.v, info, bytes.data(), bytes.size())) return -EFAULT;
  }
  return sig;
}

int64_t sigreturn(Call& c, bool rt) {
  CpuRegisters regs;
  c.vcpu.save_registers(regs);
  uint64_t mask = 0;
  if (!pop_signal_frame(c.mem, c.v, c.vcpu.arch(), rt, regs, &mask)) {
    c.proc.kill_by_signal(SIGSEGV, fmt::format("bad signal frame at sp {:#x} in {}sigreturn", regs.general[7], rt ? "rt_" : ""));
    c.vcpu.request_stop();
    return 0;
  }
  c.proc.signals().set_mask(c.vcpu.signals(), mask);
  c.proc.retarget_shared_signals(c.vcpu);
  c.vcpu.request_register_load(regs);
  return static_cast<int64_t>(regs.general[0]);  // what the interrupted code had in RAX / EAX
}

int64_t sigaltstack(Call& c, uint64_t ss, uint64_t old_ss) {
  AltStack& alt = c.vcpu.signals().altstack;
  constexpr int kSsOnStack = 1, kSsDisable = 2, kMinSigStack = 2048;
  const uint64_t sp = c.vcpu.reg(c.i386 ? UC_X86_REG_ESP : UC_X86_REG_RSP);
  if (old_ss) {
    const int flags = alt.disabled ? kSsDisable : alt.contains(sp) ? kSsOnStack : 0;
    bool ok;
    if (c.i386) {
      const uint32_t f[3] = {static_cast<uint32_t>(alt.sp), static_cast<uint32_t>(flags), static_cast<uint32_t>(alt.size)};
      ok = c.mem.write(c.v, old_ss, f, sizeof f);
    } else {
      uint8_t b[24] = {};
      std::memcpy(b, &alt.sp, 8);
      std::memcpy(b + 8, &flags, 4);
      std::memcpy(b + 16, &alt.size, 8);
      ok = c.mem.write(c.v, old_ss, b, sizeof b);
    }
    if (!ok) return -EFAULT;
  }
  if (!ss) return 0;
  uint64_t new_sp = 0, new_size = 0;
  int32_t flags = 0;
  if (c.i386) {
    uint32_t f[3] = {};
    if (!c.mem.read(c.v, ss, f, sizeof f)) return -EFAULT;
    new_sp = f[0], flags = static_cast<int32_t>(f[1]), new_size = f[2];
  } else {
    uint8_t b[24] = {};
    if (!c.mem.read(c.v, ss, b, sizeof b)) return -EFAULT;
    std::memcpy(&new_sp, b, 8);
    std::memcpy(&flags, b + 8, 4);
    std::memcpy(&new_size, b + 16, 8);
  }
  if (alt.contains(sp)) return -EPERM;  // running on it
  constexpr int kSsAutoDisarm = 1 << 31;
  flags &= ~kSsAutoDisarm;
  if (flags != 0 && flags != kSsDisable && flags != kSsOnStack) return -EINVAL;
  if (flags == kSsDisable) {
    alt = AltStack{};
    return 0;
  }
  if (new_size < kMinSigStack) return -ENOMEM;
  alt = AltStack{new_sp, new_size, false};
  return 0;
}

}  // namespace emu::sys
