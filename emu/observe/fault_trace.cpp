#include "emu/observe/fault_trace.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <utility>

#include "emu/observe/fault_report.h"
#include "emu/process/guest_process.h"

namespace emu {

namespace {
using mmu::MmuCounter;

mmu::MmuCounters::Snapshot snapshot(mmu::MmuCounters::Slot& slot) {
  mmu::MmuCounters::Snapshot s;
  for (size_t i = 0; i < s.size(); ++i) s[i] = slot.value[i].load(std::memory_order_relaxed);
  return s;
}

// The most telling thing the fault did, in order of weight.
constexpr std::pair<MmuCounter, const char*> kPaths[] = {
    {MmuCounter::FaultMajor, "swap-in"},          {MmuCounter::FaultZeroFill, "new-frame"},
    {MmuCounter::FaultFileFill, "file-fill"},     {MmuCounter::FaultSharedFill, "page-cache-fill"},
    {MmuCounter::FaultSharedHit, "page-cache-hit"}, {MmuCounter::FaultCowCopy, "cow-copy"},
    {MmuCounter::FaultCopyOnWrite, "copy-on-write"},
    {MmuCounter::FaultZeroPage, "zero-page"},     {MmuCounter::FaultWriteUpgrade, "write-upgrade"},
    {MmuCounter::FaultStackGrowth, "stack-growth"}, {MmuCounter::AccessedDirtySet, "accessed-dirty-set"},
    {MmuCounter::TranslateHit, "walk"},
};

// The instruction at `ip`, read without going through the fault handler: tracing must not
// fault pages in, set accessed bits or move the counters it reads.
std::string peek_instruction(Vcpu& vcpu, uint64_t ip) {
  mmu::AddressSpace& space = vcpu.process().space();
  uint8_t code[16];
  size_t n = 0;
  while (n < sizeof code) {
    const uint64_t at = ip + n;
    const std::optional<mmu::PhysAddr> page = space.peek(vcpu.slot(), mmu::page_floor(at));
    if (!page) break;
    const size_t offset = at & (mmu::kPageSize - 1);
    const size_t chunk = std::min<size_t>(sizeof code - n, mmu::kPageSize - offset);
    std::memcpy(code + n, space.pool().host(*page) + offset, chunk);
    n += chunk;
  }
  return n ? disassemble(vcpu.arch(), code, n, ip) : "<not mapped>";
}

const char* access_word(mmu::Access a) {
  switch (a) {
    case mmu::Access::Read: return "read";
    case mmu::Access::Write: return "write";
    case mmu::Access::Fetch: return "fetch";
  }
  return "?";
}
}  // namespace

mmu::Translation traced_translate(Vcpu& vcpu, Tracer& tracer, uint64_t vaddr, mmu::Access access) {
  mmu::AddressSpace& space = vcpu.process().space();
  auto& slot = space.counters().slot(vcpu.slot());
  const auto before = snapshot(slot);
  const uint64_t start = Tracer::now_ns();
  const mmu::Translation t = space.translate(vcpu.slot(), vaddr, access);
  const uint64_t end = Tracer::now_ns();
  const auto after = snapshot(slot);
  auto d = [&](MmuCounter c) { return after[size_t(c)] - before[size_t(c)]; };

  const char* path = "none";
  for (const auto& [counter, name] : kPaths) {
    if (d(counter)) {
      path = name;
      break;
    }
  }
  const uint64_t ip = access == mmu::Access::Fetch ? vaddr : vcpu.reg(vcpu.arch() == GuestArch::I386 ? UC_X86_REG_EIP : UC_X86_REG_RIP);
  const std::string insn = peek_instruction(vcpu, ip);
  const std::string outcome(mmu::to_string(t.outcome));
  if (tracer.on(TraceEvent::Faults)) {
    tracer.record(
        TraceEvent::Faults, vcpu.slot(), start, end - start, std::string("fault ") + path,
        fmt::format("{} {:#x} ip {:#x} \"{}\" path={} levels={} locks={} contended={} lock-wait={}ns cmpxchg-retries={} "
                    "retries={} memory-waits={} outcome={} {:.3f}us",
                    access_word(access), vaddr, ip, insn, path, d(MmuCounter::TablesAllocated),
                    d(MmuCounter::LockAcquisitions), d(MmuCounter::LockContended), d(MmuCounter::LockWaitNs),
                    d(MmuCounter::CmpxchgFailures), d(MmuCounter::FaultRetry), d(MmuCounter::FaultMemoryWaits), outcome,
                    double(end - start) / 1000.0),
        {{"address", fmt::format("{:#x}", vaddr)},
         {"access", access_word(access)},
         {"ip", fmt::format("{:#x}", ip)},
         {"instruction", insn},
         {"path", path},
         {"levels_populated", d(MmuCounter::TablesAllocated)},
         {"locks_taken", d(MmuCounter::LockAcquisitions)},
         {"locks_contended", d(MmuCounter::LockContended)},
         {"lock_wait_ns", d(MmuCounter::LockWaitNs)},
         {"cmpxchg_retries", d(MmuCounter::CmpxchgFailures)},
         {"retries", d(MmuCounter::FaultRetry)},
         {"memory_waits", d(MmuCounter::FaultMemoryWaits)},
         {"outcome", outcome}});
  }
  if (tracer.on(TraceEvent::Locks) && d(MmuCounter::LockContended)) {
    // The wait sits at the start of the fault's window as an approximation of where it was.
    tracer.record(TraceEvent::Locks, vcpu.slot(), start, d(MmuCounter::LockWaitNs), "page-table lock wait",
                  fmt::format("{:#x} waited {}ns for {} contended of {} acquisitions (scheme {})", vaddr,
                              d(MmuCounter::LockWaitNs), d(MmuCounter::LockContended), d(MmuCounter::LockAcquisitions),
                              mmu::to_string(space.scheme())),
                  {{"address", fmt::format("{:#x}", vaddr)},
                   {"contended", d(MmuCounter::LockContended)},
                   {"acquisitions", d(MmuCounter::LockAcquisitions)},
                   {"wait_ns", d(MmuCounter::LockWaitNs)}});
  }
  return t;
}

}  // namespace emu
