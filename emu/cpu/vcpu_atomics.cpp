// Guest atomics without stopping the world (DESIGN.md decision 6): each LOCK-prefixed
// instruction (and xchg with memory) in a block run while other vCPUs exist gets a Unicorn
// code hook bound to its address (and the next instruction's). The hook translates the
// operand's address through the MMU's write path and does the operation with a host atomic of
// the same width on the frame pool. Then either
//   - fast path: Unicorn runs the instruction itself on a scratch copy of the old value below
//     the stack pointer, the base register pointed there for that one instruction and put
//     back by the same hook at the next instruction (or the next block hook, or when the
//     engine stops): Unicorn computes the flags and registers, nothing leaves translated code;
//   - slow path (no usable base register: RIP-relative, absolute, or a base the instruction
//     also uses): the hook writes the registers and EFLAGS and moves RIP past the instruction.
// Only what a host atomic cannot do (an operand crossing a page or a cache line, a fault, a
// block's first run) still takes the exclusive gate, with Unicorn executing the instruction.
//
// Why, measured with bench/atomic_hook_bench.cpp (Unicorn 2.1.1, a `lock add [rbx], 1` loop on
// this 2-core VM; docs/results/atomics-bench-2core.txt): a code hook is nearly free while it
// is the engine's only UC_HOOK_CODE hook (Unicorn calls it straight from the translated code)
// and costs about 2 ns more per other code hook (a list walk at every hooked instruction);
// each register access through the API costs 5-10 ns; moving RIP makes Unicorn leave and
// re-enter its execution loop (about 50 ns). Fast path 33 ns, slow path 95 ns, the loop alone
// 2.6 ns. Unicorn 2.1 offers no cheaper way to skip an instruction: CF_PARALLEL (QEMU's own
// atomic helpers) is compiled out, memory hooks put every access on the slow path, and
// "exits" retranslate the block on every stop.
//
// Not covered: code rewritten in place at a hooked address (an RWX JIT that neither munmaps
// nor mprotects) keeps the hook, decoded for the old instruction, until the next code flush.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "emu/cpu/vcpu.h"
#include "emu/process/guest_process.h"

namespace emu {

namespace {

constexpr int kGpr64[16] = {UC_X86_REG_RAX, UC_X86_REG_RCX, UC_X86_REG_RDX, UC_X86_REG_RBX,
                            UC_X86_REG_RSP, UC_X86_REG_RBP, UC_X86_REG_RSI, UC_X86_REG_RDI,
                            UC_X86_REG_R8,  UC_X86_REG_R9,  UC_X86_REG_R10, UC_X86_REG_R11,
                            UC_X86_REG_R12, UC_X86_REG_R13, UC_X86_REG_R14, UC_X86_REG_R15};
constexpr int kGpr32[16] = {UC_X86_REG_EAX, UC_X86_REG_ECX, UC_X86_REG_EDX, UC_X86_REG_EBX,
                            UC_X86_REG_ESP, UC_X86_REG_EBP, UC_X86_REG_ESI, UC_X86_REG_EDI};
constexpr uint64_t kPageMask = mmu::kPageSize - 1;
constexpr uint64_t kCacheLine = 64;
// Where the fast path's scratch copy goes: this far below the stack pointer (x86_64's red
// zone is the 128 bytes below it), rounded down to a cache line.
constexpr uint64_t kScratchBelowSp = 512;
// A block's atomics are hooked at its second run (the first takes the gate): code run once
// per thread (start-up, exit) adds no hook. Measured on the loaded 2-core VM, a gate costs
// from microseconds to a scheduler quantum (the others must reach a block boundary), so the
// warm-up is kept short.
constexpr unsigned kRunsBeforeHooking = 2;

size_t site_hash(uint64_t address, size_t slots) {
  return static_cast<size_t>((address * 0x9E3779B97F4A7C15ull) >> 20) & (slots - 1);
}

}  // namespace

auto Vcpu::find_site(uint64_t address) const -> const HookedSite* {
  if (sites_.empty()) return nullptr;
  const size_t mask = sites_.size() - 1;
  for (size_t i = site_hash(address, sites_.size());; i = (i + 1) & mask) {
    const HookedSite* h = sites_[i];
    if (!h) return nullptr;
    if (h->site.address == address) return h;
  }
}

bool Vcpu::hook_site(const AtomicSite& site) {
  // Unicorn 2.1 cannot read GS's base in 32-bit mode: %gs-relative i386 atomics keep the gate.
  if (!mode64_ && site.segment == AtomicSite::Segment::Gs) return false;
  auto node = std::make_unique<HookedSite>();
  HookedSite& h = *node;
  h.vcpu = this;
  h.site = site;
  // The fast path points the base register at the scratch copy for one instruction: only
  // when the instruction uses that register for nothing else. adc/sbb need CF, which the
  // fast path does not read.
  const bool wide = site.op == AtomicOp::Cmpxchg8b || site.op == AtomicOp::Cmpxchg16b;
  if (site.base.valid() && site.addr_bytes != 2 && site.op != AtomicOp::Adc && site.op != AtomicOp::Sbb) {
    const int8_t b = site.base.index;
    const bool clash = (site.src.valid() && !site.src_imm && site.src.index == b) ||
                       (site.index.valid() && site.index.index == b) ||
                       ((site.op == AtomicOp::Cmpxchg || wide) && b == 0) || (wide && (b == 1 || b == 2 || b == 3));
    if (!clash) h.redirect = b;
  }
  // What the hook reads, in one batch.
  const int* gpr = mode64_ ? kGpr64 : kGpr32;
  auto want = [&](int id) {
    h.regs[h.nregs] = id;
    return static_cast<int8_t>(h.nregs++);
  };
  if (site.base.valid()) h.i_base = want(gpr[site.base.index]);
  if (site.index.valid()) h.i_index = want(gpr[site.index.index]);
  if (!site.src_imm && site.src.valid()) h.i_src = want(gpr[site.src.index]);
  if (site.op == AtomicOp::Cmpxchg || wide) h.i_acc = want(gpr[0]);
  if (wide) {
    h.i_dx = want(gpr[2]);
    h.i_bx = want(gpr[3]);
    h.i_cx = want(gpr[1]);
  }
  if (site.segment == AtomicSite::Segment::Fs) h.i_seg = want(UC_X86_REG_FS_BASE);
  if (site.segment == AtomicSite::Segment::Gs) h.i_seg = want(UC_X86_REG_GS_BASE);
  if (h.redirect >= 0) h.i_sp = want(gpr[4]);
  // One hook covers the instruction and the next one (where the register is put back).
  if (uc_hook_add(uc_, &h.hook, UC_HOOK_CODE, reinterpret_cast<void*>(&Vcpu::on_atomic), &h, site.address,
                  site.address + site.length) != UC_ERR_OK)
    return false;
  if ((site_nodes_.size() + 1) * 2 > sites_.size()) {
    sites_.assign(std::max<size_t>(64, sites_.size() * 2), nullptr);
    for (const auto& n : site_nodes_) {
      for (size_t i = site_hash(n->site.address, sites_.size());; i = (i + 1) & (sites_.size() - 1)) {
        if (!sites_[i]) {
          sites_[i] = n.get();
          break;
        }
      }
    }
  }
  for (size_t i = site_hash(site.address, sites_.size());; i = (i + 1) & (sites_.size() - 1)) {
    if (!sites_[i]) {
      sites_[i] = &h;
      break;
    }
  }
  site_nodes_.push_back(std::move(node));
  // Translations made before the hook existed carry no call to it: drop every block that
  // overlaps the instruction or starts at the next one, whatever its start, page by page.
  const uint64_t end = site.address + site.length + 1;
  const uint64_t page_end = (site.address | kPageMask) + 1;
  uc_ctl_remove_cache(uc_, site.address, std::min(end, page_end));
  if (end > page_end) uc_ctl_remove_cache(uc_, page_end, end);
  counter_slot_->add(EmuCounter::AtomicSitesHooked);
  if (Tracer* tracer = process_.tracer(); tracer && tracer->on(TraceEvent::Atomics) && tracer->wants_vcpu(slot_)) {
    tracer->record(TraceEvent::Atomics, slot_, Tracer::now_ns(), 0, "atomic hooked",
                   fmt::format("locked instruction at {:#x} ({} bytes, {}-byte operand) done as a host atomic from now on{}",
                               site.address, site.length, site.width,
                               h.redirect >= 0 ? "" : " (results written by the hook)"),
                   {{"address", fmt::format("{:#x}", site.address)}, {"width", site.width}});
  }
  return true;
}

void Vcpu::drop_atomic_sites() {
  for (const auto& n : site_nodes_)
    if (uc_) uc_hook_del(uc_, n->hook);
  // The nodes are the hooks' user data: they stay until the engine is next left, when
  // Unicorn frees hooks deleted meanwhile (this runs between engine runs only).
  site_nodes_.clear();
  sites_.clear();
  clear_atomic_tlb();
}

Vcpu::BlockAtomics Vcpu::block_atomics(uint64_t address, uint32_t size) {
  constexpr BlockAtomics kNone = BlockAtomics::None, kGate = BlockAtomics::Gate;
  const int cached = detector_->cached(address, size);
  if (cached == AtomicBlockDetector::kNoAtomics || cached == AtomicBlockDetector::kHooked) return kNone;
  if (cached == AtomicBlockDetector::kNeedsGate) return kGate;
  // A block whose atomics could be hooked stays on the gate for its first run: code run once
  // (thread start-up, exit) would only lengthen the list of code hooks, which Unicorn walks
  // at every hooked instruction once there is more than one (about 2 ns per hook).
  // Not in a process sharing memory with others: the gate parks only this process's vCPUs, so
  // there even a first run must use host atomics.
  const bool gate_is_enough = !process_.shares_memory();
  if (gate_is_enough && cached == AtomicBlockDetector::kWarming && detector_->count_run(address) < kRunsBeforeHooking)
    return kGate;
  uint8_t code[4096];
  const uint32_t n = std::min<uint32_t>(size, sizeof code);
  counter_slot_->add(EmuCounter::AtomicBlockScans);
  if (!process_.memory().read(slot_, address, code, n)) return kNone;
  std::vector<AtomicSite> sites;
  bool undecoded = false;
  if (!detector_->find_sites({code, n}, address, sites, &undecoded)) {
    detector_->remember(address, size, AtomicBlockDetector::kNoAtomics);
    return kNone;
  }
  if (undecoded) {
    detector_->remember(address, size, AtomicBlockDetector::kNeedsGate);
    return kGate;
  }
  bool all_hooked = true;
  for (const AtomicSite& site : sites)
    if (!find_site(site.address)) all_hooked = false;
  if (all_hooked) {  // by other blocks: this block's translation was made with the hooks
    detector_->remember(address, size, AtomicBlockDetector::kHooked);
    return kNone;
  }
  if (gate_is_enough && cached != AtomicBlockDetector::kWarming) {  // first run
    detector_->remember(address, size, AtomicBlockDetector::kWarming);
    detector_->count_run(address);
    return kGate;
  }
  bool hooked = true;
  for (const AtomicSite& site : sites)
    if (!find_site(site.address) && !hook_site(site)) hooked = false;
  detector_->remember(address, size, hooked ? AtomicBlockDetector::kHooked : AtomicBlockDetector::kNeedsGate);
  // The translation about to run was made without the new hooks. It is dropped from the
  // cache, but one already chained to itself (a loop) would keep running: measured, a
  // `lock add` loop went on unhooked. Leave the engine before its first instruction; the
  // next run looks the block up again and translates it with the hooks.
  return BlockAtomics::Restart;
}

void Vcpu::begin_exclusive(uint64_t address, uint32_t size, const char* why) {
  const uint64_t wait = process_.gate().begin(*this, [this](const std::function<void(Vcpu&)>& fn) {
    process_.for_each_other_vcpu(*this, fn);
  });
  exclusive_owner_ = true;
  auto& c = process_.counters().slot(slot_);
  c.add(EmuCounter::ExclusiveSections);
  c.add(EmuCounter::ExclusiveWaitNs, wait);
  if (Tracer* tracer = process_.tracer(); tracer && tracer->on(TraceEvent::Atomics) && tracer->wants_vcpu(slot_)) {
    const uint64_t now = Tracer::now_ns();
    tracer->record(TraceEvent::Atomics, slot_, now - wait, wait, "exclusive block",
                   fmt::format("{} {:#x} ({} bytes) with a locked instruction ({}): others parked after {:.3f}us",
                               size ? "block" : "instruction", address, size, why, double(wait) / 1000.0),
                   {{"block", fmt::format("{:#x}", address)}, {"size", size}, {"why", why}, {"wait_ns", wait}});
  }
}

void Vcpu::stop_engine() {
  if (!uc_) return;
  if (in_block_hook_) {
    uint64_t pc = block_pc_;
    uc_reg_write(uc_, arch() == GuestArch::I386 ? UC_X86_REG_EIP : UC_X86_REG_RIP, &pc);
  }
  uc_emu_stop(uc_);
}

uint8_t* Vcpu::atomic_page(uint64_t page) {
  AtomicTlbEntry& e = atomic_tlb_[(page >> 12) & (atomic_tlb_.size() - 1)];
  if (e.page == page) return e.host;
  mmu::AddressSpace& space = process_.space();
  if (page >= space.virt_limit()) return nullptr;
  const std::optional<mmu::PhysAddr> before = space.peek(slot_, page);
  const mmu::Translation t = space.translate(slot_, page, mmu::Access::Write);
  if (!t.ok()) return nullptr;
  // The write gave the page a new frame (copy-on-write, the shared zero page): this engine's
  // TLB may still map the old one for reads, and the MMU does not flush the requester's own.
  if (before && *before != t.page && uc_) uc_ctl_flush_tlb(uc_);
  e = {page, process_.pool().host(t.page)};
  return e.host;
}

void Vcpu::end_redirect_slow() {
  redirect_pending_ = false;
  uc_reg_write(uc_, redirect_reg_, &redirect_value_);
}

void Vcpu::on_atomic(uc_engine*, uint64_t address, uint32_t, void* user) {
  const HookedSite& h = *static_cast<const HookedSite*>(user);
  h.vcpu->do_atomic(h, address);
}

void Vcpu::do_atomic(const HookedSite& h, uint64_t address) {
  if (!mode64_) address &= 0xffffffffu;
  // First the instruction after a redirected one: its base register goes back. (Hooks of
  // adjacent sites overlap at the next instruction: the one that just redirected may run
  // first there, and must not be undone.)
  if (redirect_pending_ && address == redirect_next_) end_redirect_slow();
  if (address != h.site.address) return;  // the instruction after the site (the hook covers both)
  // Alone, or holding the gate: Unicorn's own execution of the instruction is exact. Also
  // when the engine is stopping: it leaves before the instruction.
  if (exclusive_owner_ || !process_.atomics_needed() || stop_ || stopping_ || fault_ || pending_signal_) return;
  const AtomicSite& s = h.site;
  const bool i386 = !mode64_;
  const int* gpr = i386 ? kGpr32 : kGpr64;
  const unsigned width = s.width;

  // Everything the operation reads, in one call.
  uint64_t v[10] = {};
  void* ptrs[10];
  for (int i = 0; i < h.nregs; ++i) ptrs[i] = &v[i];
  uc_reg_read_batch(uc_, const_cast<int*>(h.regs), ptrs, h.nregs);

  // The effective address, as the CPU forms it.
  uint64_t ea = static_cast<uint64_t>(s.disp);
  if (h.i_base >= 0) ea += reg_operand(v[h.i_base], s.base);
  if (h.i_index >= 0) ea += reg_operand(v[h.i_index], s.index) * s.scale;
  if (s.rip_relative) ea += address + s.length;
  AtomicArgs a;
  const bool bit_op = s.op == AtomicOp::Bts || s.op == AtomicOp::Btr || s.op == AtomicOp::Btc;
  if (bit_op && h.i_src >= 0) {
    int64_t delta;
    unsigned bit;
    bit_string_offset(reg_operand(v[h.i_src], s.src), width, &delta, &bit);
    ea += static_cast<uint64_t>(delta);
    a.src = bit;
  } else if (h.i_src >= 0) {
    a.src = reg_operand(v[h.i_src], s.src);
  } else {
    a.src = static_cast<uint64_t>(s.imm);
  }
  const uint64_t addr_mask = s.addr_bytes == 4 ? 0xffffffffu : s.addr_bytes == 2 ? 0xffffu : ~uint64_t{0};
  ea &= addr_mask;
  if (h.i_seg >= 0) ea += v[h.i_seg];
  if (i386) ea &= 0xffffffffu;
  if (h.i_acc >= 0) a.acc = v[h.i_acc];
  if (h.i_dx >= 0) {
    a.acc_hi = v[h.i_dx];
    a.new_lo = v[h.i_bx];
    a.new_hi = v[h.i_cx];
  }

  // What a host atomic cannot do keeps the gate: Unicorn then executes the instruction with
  // the other vCPUs parked (and raises the fault, or #GP, if there is one).
  EmuCounters::Slot& c = *counter_slot_;
  const uint64_t offset = ea & kPageMask;
  if (offset + width > mmu::kPageSize) {
    c.add(EmuCounter::AtomicPageCrossings);
    c.add(EmuCounter::AtomicsGated);
    begin_exclusive(address, 0, "operand crosses a page");
    return;
  }
  if ((ea & (kCacheLine - 1)) + width > kCacheLine) {
    c.add(EmuCounter::AtomicSplitLocks);
    c.add(EmuCounter::AtomicsGated);
    begin_exclusive(address, 0, "split lock");
    return;
  }
  if (s.op == AtomicOp::Cmpxchg16b && (ea & 15)) {
    c.add(EmuCounter::AtomicsGated);
    begin_exclusive(address, 0, "misaligned cmpxchg16b");
    return;
  }
  // The fast path's scratch copy: below the stack pointer (beyond x86_64's red zone: memory
  // a signal frame may overwrite at any time), a cache line of its own.
  const uint64_t scratch =
      h.redirect >= 0 ? ((v[h.i_sp] - kScratchBelowSp) & ~(kCacheLine - 1)) & (i386 ? 0xffffffffu : ~uint64_t{0}) : 0;
  // (A 32-bit address in 64-bit mode reaches the scratch only below 4 GiB.)
  const bool use_scratch = h.redirect >= 0 && !(scratch < ea + width && ea < scratch + 16) &&
                           (i386 || s.addr_bytes == 8 || (h.i_seg < 0 && scratch <= 0xffffffffu));
  // Host pointers stay valid until this vCPU next acknowledges a TLB flush; a translation that
  // had to wait (for a frame, a swap-in) may have served one: then both are taken again.
  uint8_t* page = nullptr;
  uint8_t* scratch_page = nullptr;
  for (int attempt = 0;; ++attempt) {
    const uint64_t epoch = flush_epoch_;
    page = atomic_page(ea - offset);
    if (page && use_scratch) scratch_page = atomic_page(scratch & ~kPageMask);
    if (flush_epoch_ == epoch) break;
    if (attempt == 3) {  // memory too tight to hold both: the gate, and Unicorn faults them in
      page = nullptr;
      break;
    }
  }
  if (!page) {
    c.add(EmuCounter::AtomicsGated);
    begin_exclusive(address, 0, "fault");
    return;
  }

  // Fast path: the host atomic, then Unicorn runs the instruction itself on a scratch copy of
  // the old value, with the base register pointing there for that instruction. Unicorn
  // computes the flags and the registers the instruction writes, and nothing leaves the
  // translated code.
  if (use_scratch) {
    if (scratch_page) {
      const AtomicResult r = perform_atomic(s.op, width, page + offset, a, /*flags=*/false);
      uint8_t* copy = scratch_page + (scratch & kPageMask);
      if (s.op == AtomicOp::Cmpxchg8b) {
        const uint64_t old = (r.old_hi << 32) | (r.old & 0xffffffffu);
        std::memcpy(copy, &old, 8);
      } else {
        std::memcpy(copy, &r.old, 8);
        std::memcpy(copy + 8, &r.old_hi, 8);
      }
      // base' + (the rest of the address) = scratch, in the address size's arithmetic.
      const uint64_t base_full = v[h.i_base];
      const uint64_t moved = (reg_operand(base_full, s.base) + (scratch - ea)) & addr_mask;
      const uint64_t base_new = (base_full & ~addr_mask) | moved;
      redirect_reg_ = gpr[h.redirect];
      redirect_value_ = base_full;
      redirect_next_ = address + s.length;
      redirect_pending_ = true;
      uc_reg_write(uc_, redirect_reg_, &base_new);
      c.add(EmuCounter::AtomicsHost);
      c.add(EmuCounter::AtomicsRedirected);
      return;
    }
  }

  // Slow path: the results written here, RIP moved past the instruction (Unicorn leaves and
  // re-enters its execution loop).
  uint64_t flags = 0;
  uc_reg_read(uc_, i386 ? UC_X86_REG_EFLAGS : UC_X86_REG_RFLAGS, &flags);
  a.flags = static_cast<uint32_t>(flags);
  const AtomicResult r = perform_atomic(s.op, width, page + offset, a);
  int wids[5];
  void* wptrs[5];
  uint64_t wv[5];
  int m = 0;
  auto put = [&](int id, uint64_t value) {
    wids[m] = id;
    wv[m] = value;
    wptrs[m] = &wv[m];
    ++m;
  };
  if (r.flags != a.flags) put(i386 ? UC_X86_REG_EFLAGS : UC_X86_REG_RFLAGS, r.flags);
  switch (s.op) {
    case AtomicOp::Xadd:
    case AtomicOp::Xchg: put(gpr[s.src.index], reg_merge(v[h.i_src], s.src, r.old, !i386)); break;
    case AtomicOp::Cmpxchg:
      if (!r.success) put(gpr[0], reg_merge(v[h.i_acc], GuestReg{0, static_cast<uint8_t>(width), false}, r.old, !i386));
      break;
    case AtomicOp::Cmpxchg8b:
      if (!r.success) {
        put(gpr[0], reg_merge(v[h.i_acc], GuestReg{0, 4, false}, r.old, !i386));
        put(gpr[2], reg_merge(v[h.i_dx], GuestReg{2, 4, false}, r.old_hi, !i386));
      }
      break;
    case AtomicOp::Cmpxchg16b:
      if (!r.success) {
        put(gpr[0], r.old);
        put(gpr[2], r.old_hi);
      }
      break;
    default: break;
  }
  put(i386 ? UC_X86_REG_EIP : UC_X86_REG_RIP, address + s.length);
  uc_reg_write_batch(uc_, wids, wptrs, m);
  c.add(EmuCounter::AtomicsHost);
}

}  // namespace emu
