// What a Unicorn 2.1 code hook costs, and what each way of doing a guest atomic in one costs:
// a loop of `lock add qword [rbx], 1; dec rcx; jnz` on one engine, with the hook variants
// below, CPU time per iteration (the fastest of --reps runs). The numbers behind the choice in
// emu/cpu/vcpu_atomics.cpp (docs/results/atomics-bench-2core.txt).
//
//   atomic-hook-bench [--iters N] [--reps R]
#include <unicorn/unicorn.h>

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

namespace {

constexpr uint64_t kCode = 0x1000, kData = 0x10000, kScratch = kData + 0x8000;
uint8_t* host_data;
uint64_t lock_addr;
uint64_t saved_rbx;
bool pending;

uint64_t& counter() { return *reinterpret_cast<uint64_t*>(host_data); }

void hook_empty(uc_engine*, uint64_t, uint32_t, void*) {}
void hook_read_reg(uc_engine* uc, uint64_t, uint32_t, void*) {
  uint64_t rbx;
  uc_reg_read(uc, UC_X86_REG_RBX, &rbx);
}
void hook_read_flags(uc_engine* uc, uint64_t, uint32_t, void*) {
  uint64_t f;
  uc_reg_read(uc, UC_X86_REG_RFLAGS, &f);
}
void hook_write_flags(uc_engine* uc, uint64_t, uint32_t, void*) {
  uint64_t f = 0x202;
  uc_reg_write(uc, UC_X86_REG_RFLAGS, &f);
}
// Moves RIP past the instruction (it is not done at all): the cost of leaving and re-entering
// Unicorn's execution loop.
void hook_skip(uc_engine* uc, uint64_t address, uint32_t size, void*) {
  uint64_t next = address + size;
  uc_reg_write(uc, UC_X86_REG_RIP, &next);
}
// The slow path: registers and EFLAGS read, the host atomic, EFLAGS and RIP written.
void hook_atomic_skip(uc_engine* uc, uint64_t address, uint32_t size, void*) {
  uint64_t rbx, flags;
  int rr[2] = {UC_X86_REG_RBX, UC_X86_REG_RFLAGS};
  void* rv[2] = {&rbx, &flags};
  uc_reg_read_batch(uc, rr, rv, 2);
  const uint64_t old = __atomic_fetch_add(reinterpret_cast<uint64_t*>(host_data + (rbx - kData)), 1, __ATOMIC_SEQ_CST);
  flags = (flags & ~uint64_t{0x8d5}) | (old + 1 == 0 ? 0x40 : 0);
  uint64_t next = address + size;
  int wr[2] = {UC_X86_REG_RFLAGS, UC_X86_REG_RIP};
  void* wv[2] = {&flags, &next};
  uc_reg_write_batch(uc, wr, wv, 2);
}
// The fast path: the host atomic, then Unicorn runs the instruction on a scratch copy of the
// old value (rbx pointed there), rbx put back by the same hook at the next instruction.
void hook_atomic_scratch(uc_engine* uc, uint64_t address, uint32_t, void*) {
  if (address != lock_addr) {
    if (pending) {
      pending = false;
      uc_reg_write(uc, UC_X86_REG_RBX, &saved_rbx);
    }
    return;
  }
  uint64_t rbx;
  uc_reg_read(uc, UC_X86_REG_RBX, &rbx);
  const uint64_t old = __atomic_fetch_add(reinterpret_cast<uint64_t*>(host_data + (rbx - kData)), 1, __ATOMIC_SEQ_CST);
  std::memcpy(host_data + (kScratch - kData), &old, 8);
  saved_rbx = rbx;
  pending = true;
  uint64_t scratch = kScratch;
  uc_reg_write(uc, UC_X86_REG_RBX, &scratch);
}

double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

struct Variant {
  const char* name;
  const char* what;
  int type;  // 0: no hook, UC_HOOK_BLOCK or UC_HOOK_CODE
  void* callback;
  int range_end;  // the code hook covers lock_addr .. lock_addr + range_end
  int extra_hooks;  // more code hooks elsewhere: Unicorn then walks a list at every hooked instruction
  bool exact;       // the counter must come out exact
};

double run(const Variant& v, long iters) {
  uc_engine* uc;
  if (uc_open(UC_ARCH_X86, UC_MODE_64, &uc) != UC_ERR_OK) std::exit(1);
  uc_ctl_set_tcg_buffer_size(uc, 16 << 20);
  uc_mem_map(uc, kCode, 0x1000, UC_PROT_ALL);
  std::memset(host_data, 0, 0x10000);
  uc_mem_map_ptr(uc, kData, 0x10000, UC_PROT_ALL, host_data);
  // mov rbx, kData; loop: lock add qword [rbx], 1; dec rcx; jnz loop
  std::vector<uint8_t> code = {0x48, 0xbb};
  for (int i = 0; i < 8; ++i) code.push_back(uint8_t(kData >> (8 * i)));
  lock_addr = kCode + code.size();
  const uint8_t body[] = {0xf0, 0x48, 0x83, 0x03, 0x01, 0x48, 0xff, 0xc9, 0x75, 0xf6};
  code.insert(code.end(), body, body + sizeof body);
  const uint64_t end = kCode + code.size();
  uc_mem_write(uc, kCode, code.data(), code.size());
  uint64_t rcx = static_cast<uint64_t>(iters);
  uc_reg_write(uc, UC_X86_REG_RCX, &rcx);
  uc_hook h;
  for (int i = 0; i < v.extra_hooks; ++i)
    uc_hook_add(uc, &h, UC_HOOK_CODE, reinterpret_cast<void*>(&hook_empty), nullptr, 0x100000 + i * 16, 0x100000 + i * 16);
  if (v.type == UC_HOOK_BLOCK) uc_hook_add(uc, &h, UC_HOOK_BLOCK, v.callback, nullptr, 1, 0);
  if (v.type == UC_HOOK_CODE) uc_hook_add(uc, &h, UC_HOOK_CODE, v.callback, nullptr, lock_addr, lock_addr + v.range_end);
  pending = false;
  const double t0 = cpu_seconds();
  uc_emu_start(uc, kCode, end, 0, 0);
  const double t1 = cpu_seconds();
  if (v.exact && counter() != static_cast<uint64_t>(iters)) {
    std::fprintf(stderr, "%s: counter %lu, want %ld\n", v.name, static_cast<unsigned long>(counter()), iters);
    std::exit(1);
  }
  uc_close(uc);
  return (t1 - t0) / double(iters) * 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  long iters = 2000000;
  int reps = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--iters") iters = std::atol(argv[i + 1]);
    if (std::string(argv[i]) == "--reps") reps = std::atoi(argv[i + 1]);
  }
  host_data = static_cast<uint8_t*>(mmap(nullptr, 0x10000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  const void* cb_empty = reinterpret_cast<void*>(&hook_empty);
  const Variant variants[] = {
      {"none", "no hook (the add is not atomic across engines)", 0, nullptr, 0, 0, true},
      {"block", "UC_HOOK_BLOCK, empty", UC_HOOK_BLOCK, const_cast<void*>(cb_empty), 0, 0, true},
      {"code", "UC_HOOK_CODE at the add, empty (the only code hook: called inline)", UC_HOOK_CODE,
       const_cast<void*>(cb_empty), 0, 0, true},
      {"code+1", "the same with 1 more code hook elsewhere (list walk)", UC_HOOK_CODE, const_cast<void*>(cb_empty), 0, 1, true},
      {"code+30", "the same with 30 more code hooks elsewhere", UC_HOOK_CODE, const_cast<void*>(cb_empty), 0, 30, true},
      {"read-reg", "code hook reading rbx", UC_HOOK_CODE, reinterpret_cast<void*>(&hook_read_reg), 0, 0, true},
      {"read-flags", "code hook reading RFLAGS", UC_HOOK_CODE, reinterpret_cast<void*>(&hook_read_flags), 0, 0, true},
      {"write-flags", "code hook writing RFLAGS", UC_HOOK_CODE, reinterpret_cast<void*>(&hook_write_flags), 0, 0, true},
      {"skip", "code hook moving RIP past the add (not done)", UC_HOOK_CODE, reinterpret_cast<void*>(&hook_skip), 0, 0, false},
      {"atomic-skip", "host atomic, EFLAGS and RIP written (emu's slow path)", UC_HOOK_CODE,
       reinterpret_cast<void*>(&hook_atomic_skip), 0, 0, true},
      {"atomic-scratch", "host atomic, add run on a scratch copy, rbx put back (emu's fast path)", UC_HOOK_CODE,
       reinterpret_cast<void*>(&hook_atomic_scratch), 5, 0, true},
      {"atomic-scratch+1", "the same with 1 more code hook elsewhere", UC_HOOK_CODE,
       reinterpret_cast<void*>(&hook_atomic_scratch), 5, 1, true},
  };
  std::printf("# atomic-hook-bench: Unicorn %u.%u, %ld iterations of lock add; dec; jnz; fastest of %d, CPU ns/iteration\n",
              UC_VERSION_MAJOR, UC_VERSION_MINOR, iters, reps);
  std::printf("%-18s %8s  %s\n", "variant", "ns/iter", "what");
  for (const Variant& v : variants) {
    double best = 1e30;
    for (int r = 0; r < reps; ++r) best = std::min(best, run(v, iters));
    std::printf("%-18s %8.1f  %s\n", v.name, best, v.what);
    std::fflush(stdout);
  }
  return 0;
}
