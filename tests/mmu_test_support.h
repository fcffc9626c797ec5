// Shared pieces of the MMU tests: every format x scheme pair, a spinning barrier, simulated
// vCPUs with software TLBs that answer shootdowns, and the invariant checker.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "mmu/address_space.h"
#include "mmu/frame_pool.h"
#include "mmu/reclaimer.h"
#include "mmu/swap_device.h"
#include "reference_walker.h"

namespace mmu::testing {

struct Combo {
  PagingMode paging;
  SchemeKind scheme;
};

inline std::vector<Combo> all_combos() {
  std::vector<Combo> out;
  for (auto p : {PagingMode::I386, PagingMode::Pae, PagingMode::X86_64, PagingMode::La57})
    for (auto s : {SchemeKind::Global, SchemeKind::Split, SchemeKind::Atomic, SchemeKind::PteBit}) out.push_back({p, s});
  return out;
}

// The stress tests' reclaimer: its own slot, polling every 2 ms so that it keeps up.
inline ReclaimerConfig stress_reclaimer_config(VcpuId slot) {
  ReclaimerConfig rc;
  rc.slot = slot;
  rc.poll_ms = 2;
  return rc;
}

// 2-level (i386) and 4-level (x86_64) tables under every scheme: the stress tests' set.
inline std::vector<Combo> two_widths_all_schemes() {
  std::vector<Combo> out;
  for (auto p : {PagingMode::I386, PagingMode::X86_64})
    for (auto s : {SchemeKind::Global, SchemeKind::Split, SchemeKind::Atomic, SchemeKind::PteBit}) out.push_back({p, s});
  return out;
}

inline std::string combo_name(const ::testing::TestParamInfo<Combo>& info) {
  return std::string(to_string(info.param.paging)) + "_" + std::string(to_string(info.param.scheme));
}

inline std::unique_ptr<FramePool> make_pool(uint64_t bytes, uint32_t slots = 16) {
  FramePoolConfig c;
  c.bytes = bytes;
  c.vcpu_slots = slots;
  c.populate_chunk_bytes = uint64_t{4} << 20;
  std::string err;
  auto pool = FramePool::create(c, &err);
  EXPECT_TRUE(pool) << err;
  return pool;
}

inline std::unique_ptr<AddressSpace> make_space(FramePool& pool, Combo combo, TlbShootdown* tlbs = nullptr,
                                                RssMode rss = RssMode::PerVcpu, SwapDevice* swap = nullptr,
                                                Reclaimer* reclaimer = nullptr) {
  AddressSpaceConfig c;
  c.swap = swap;
  c.reclaimer = reclaimer;
  c.paging = combo.paging;
  c.scheme = combo.scheme;
  c.rss = rss;
  c.tlbs = tlbs;
  std::string err;
  auto as = make_address_space(pool, c, &err);
  EXPECT_TRUE(as) << err;
  return as;
}

class SpinBarrier {
 public:
  explicit SpinBarrier(unsigned n) : n_(n) {}
  // `idle` runs while waiting: a simulated vCPU serves its mailbox there, or a flush that
  // another vCPU started would wait for it forever.
  template <class Idle = void (*)()>
  void arrive_and_wait(Idle idle = [] {}) {
    const unsigned gen = gen_.load(std::memory_order_acquire);
    if (count_.fetch_add(1, std::memory_order_acq_rel) + 1 == n_) {
      count_.store(0, std::memory_order_relaxed);
      gen_.fetch_add(1, std::memory_order_release);
    } else {
      while (gen_.load(std::memory_order_acquire) == gen) {
        idle();
        std::this_thread::yield();
      }
    }
  }

 private:
  const unsigned n_;
  std::atomic<unsigned> count_{0};
  std::atomic<unsigned> gen_{0};
};

// vCPUs as the emulator will have them: each caches translations in its own software TLB,
// only its own thread touches that TLB, and flush requests reach it through a mailbox it
// serves at sync points (before each access and while waiting). flush() returns once every
// other active vCPU acknowledged, as DESIGN.md decision 7 requires.
class SimulatedVcpus final : public TlbShootdown {
 public:
  struct TlbEntry {
    PhysAddr page;
    uint8_t perms;
  };
  struct alignas(64) Vcpu {
    std::atomic<uint64_t> requested{0};
    std::atomic<uint64_t> acked{~uint64_t{0}};  // inactive: never waited for
    std::unordered_map<VirtAddr, TlbEntry> tlb;  // owner thread only
  };

  explicit SimulatedVcpus(uint32_t n) : vcpus_(n) {}

  void activate(VcpuId v) { vcpus_[v].acked.store(vcpus_[v].requested.load()); }
  void deactivate(VcpuId v) {
    vcpus_[v].tlb.clear();
    vcpus_[v].acked.store(~uint64_t{0});
  }
  // The mailbox: drop cached translations if a flush was requested.
  void serve(VcpuId v) {
    Vcpu& c = vcpus_[v];
    const uint64_t req = c.requested.load(std::memory_order_acquire);
    if (req != c.acked.load(std::memory_order_relaxed) && c.acked.load(std::memory_order_relaxed) != ~uint64_t{0}) {
      c.tlb.clear();
      c.acked.store(req, std::memory_order_release);
    }
  }

  void flush(const AddressSpace&, std::span<const VirtRange>, VcpuId requester) override {
    flushes_.fetch_add(1, std::memory_order_relaxed);
    const uint64_t gen = generation_.fetch_add(1, std::memory_order_acq_rel) + 1;
    if (requester < vcpus_.size()) vcpus_[requester].tlb.clear();
    for (uint32_t i = 0; i < vcpus_.size(); ++i) {
      if (i == requester) continue;
      uint64_t cur = vcpus_[i].requested.load();
      while (cur < gen && !vcpus_[i].requested.compare_exchange_weak(cur, gen)) {
      }
    }
    for (uint32_t i = 0; i < vcpus_.size(); ++i) {
      if (i == requester) continue;
      while (vcpus_[i].acked.load(std::memory_order_acquire) < gen) {
        if (requester < vcpus_.size()) serve(requester);
        std::this_thread::yield();
      }
    }
  }

  // Translates through the vCPU's TLB, filling it from the address space on a miss or when
  // the cached permissions do not allow the access (as a real TLB refills). Returns the host
  // pointer, or nullptr with *outcome set.
  uint8_t* access(AddressSpace& as, VcpuId v, VirtAddr va, Access a, FaultOutcome* outcome = nullptr) {
    serve(v);
    Vcpu& c = vcpus_[v];
    const VirtAddr page = page_floor(va);
    const uint8_t need = a == Access::Write ? kPermWrite : a == Access::Fetch ? kPermExec : kPermRead;
    auto it = c.tlb.find(page);
    if (it == c.tlb.end() || !(it->second.perms & need)) {
      const Translation t = as.translate(v, va, a);
      if (outcome) *outcome = t.outcome;
      if (!t.ok()) return nullptr;
      it = c.tlb.insert_or_assign(page, TlbEntry{t.page, t.perms}).first;
      // A write fault on a clean page may have returned read-only permissions; ask again.
      if (!(t.perms & need)) return nullptr;
    }
    if (outcome) *outcome = FaultOutcome::Ok;
    return as.pool().host(it->second.page) + (va - page);
  }

  uint64_t flushes() const { return flushes_.load(); }
  WaitHook wait_hook() {
    return [this](VcpuId v) { if (v < vcpus_.size()) serve(v); };
  }

 private:
  std::vector<Vcpu> vcpus_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<uint64_t> flushes_{0};
};

// Checks the tables of `spaces` (all over `pool`, all quiescent) against the frame pool:
// every present leaf maps an Anon frame (or the zero frame) owned by exactly one pte whose
// rmap points back at it; every reachable table is a PageTable frame reached once; each
// space's RSS equals its private leaves; the pool's per-state counts equal what is reachable
// (so nothing leaked and nothing is used twice).
inline void check_invariants(FramePool& pool, const std::vector<AddressSpace*>& spaces) {
  std::set<uint64_t> tables, data;
  for (AddressSpace* as : spaces) {
    ReferenceWalker w(pool.host_base(), as->paging_mode(), as->root_table());
    int64_t private_leaves = 0;
    w.for_each(
        [&](uint64_t table, int) {
          EXPECT_TRUE(tables.insert(table).second) << "table reached twice: " << table;
          EXPECT_EQ(pool.descriptor(table >> 12).state.load(), FrameState::PageTable);
        },
        [&](uint64_t va, const RefLeaf& leaf) {
          if (leaf.large) return;
          const FrameNumber f = static_cast<FrameNumber>(leaf.page >> 12);
          ASSERT_LT(f, pool.frame_count());
          if (f == FramePool::zero_frame()) {
            EXPECT_FALSE(leaf.writable) << "zero frame mapped writable at " << std::hex << va;
            return;
          }
          ++private_leaves;
          EXPECT_TRUE(data.insert(f).second) << "frame " << f << " mapped twice";
          EXPECT_EQ(pool.descriptor(f).state.load(), FrameState::Anon) << "pte maps a frame not in use";
          EXPECT_EQ(pool.descriptor(f).vaddr.load(), va);
        });
    w.for_each_nonpresent([&](uint64_t, uint64_t raw) {
      // protnone entries keep their frame
      if (((raw >> 1) & 3) == 3) {
        const FrameNumber f = static_cast<FrameNumber>((raw & 0x000FFFFFFFFFF000ull) >> 12);
        if (f == FramePool::zero_frame()) return;
        ++private_leaves;
        EXPECT_TRUE(data.insert(f).second) << "frame " << f << " mapped twice";
        EXPECT_EQ(pool.descriptor(f).state.load(), FrameState::Anon);
      }
    });
    EXPECT_EQ(as->rss_pages(), private_leaves) << "RSS counter does not add up";
  }
  const auto by_state = pool.count_by_state();
  EXPECT_EQ(by_state[static_cast<size_t>(FrameState::Anon)], data.size()) << "leaked or lost data frames";
  EXPECT_EQ(by_state[static_cast<size_t>(FrameState::PageTable)], tables.size()) << "leaked page tables";
  EXPECT_EQ(by_state[static_cast<size_t>(FrameState::Zero)], 1u);
  EXPECT_EQ(by_state[static_cast<size_t>(FrameState::Free)], pool.free_frames()) << "free lists disagree";
}

// Swap accounting of quiescent `spaces`: every slot in use is held either by exactly one
// swap pte or by one resident frame's up-to-date copy, and nothing is left in transition.
inline void check_swap_accounting(FramePool& pool, SwapDevice& swap, const std::vector<AddressSpace*>& spaces) {
  std::set<uint64_t> slots;
  for (AddressSpace* as : spaces) {
    ReferenceWalker w(pool.host_base(), as->paging_mode(), as->root_table());
    w.for_each_nonpresent([&](uint64_t va, uint64_t raw) {
      const unsigned kind = (raw >> 1) & 3;
      EXPECT_NE(kind, 2u) << "entry left in transition at " << std::hex << va;
      if (kind == 1) {
        const uint64_t slot = (raw & 0x000FFFFFFFFFF000ull) >> 12;
        EXPECT_LT(slot, swap.slot_count());
        EXPECT_TRUE(slots.insert(slot).second) << "swap slot " << slot << " held twice";
      }
    });
  }
  const auto populated = pool.populated_frames();
  for (FrameNumber f = 1; f < populated; ++f) {
    const uint32_t copy = pool.descriptor(f).swap_copy.load();
    if (!copy) continue;
    EXPECT_EQ(pool.descriptor(f).state.load(), FrameState::Anon) << "a free frame kept a swap copy";
    EXPECT_TRUE(slots.insert(copy - 1).second) << "swap slot " << copy - 1 << " held twice";
  }
  EXPECT_EQ(swap.slots_used(), slots.size()) << "swap slots leaked or lost";
}

inline std::unique_ptr<SwapDevice> make_swap(uint64_t bytes) {
  std::string err;
  auto swap = SwapDevice::open_temporary(bytes, &err);
  EXPECT_TRUE(swap) << err;
  return swap;
}

}  // namespace mmu::testing
