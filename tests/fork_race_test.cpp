// Seed 004's races, run for real: one address space forked into several, each "process" on its
// own thread (a simulated vCPU with a software TLB answering shootdowns), all writing into
// pages and tables they share while forking grandchildren from their own spaces and dropping
// them again, with the reclaimer swapping under them. That gives share+share (two processes
// forking off the same shared table at once), share+unshare (one forks while another copies
// the table away), and unshare+unshare (two copy it at once). Afterwards every process must
// have read exactly what it wrote or inherited, and every count must add up: table use
// counts, page counts, swap slot references, RSS, the pool's frame states.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <thread>

#include "fork_test_support.h"

namespace mmu::testing {
namespace {

constexpr unsigned kProcesses = 5;  // the first space and four children, one thread each
constexpr VcpuId kReclaimerSlot = kProcesses;
constexpr uint64_t kPoolBytes = uint64_t{16} << 20;
constexpr uint64_t kPages = 1200;  // several pte tables of any format
constexpr unsigned kRounds = 6;

struct RaceCase {
  Combo combo;
  ForkTables tables;
};

std::vector<RaceCase> race_cases() {
  std::vector<RaceCase> out;
  for (auto p : {PagingMode::I386, PagingMode::X86_64})
    for (auto s : {SchemeKind::Global, SchemeKind::Split, SchemeKind::Atomic, SchemeKind::PteBit})
      for (auto t : {ForkTables::Share, ForkTables::Copy}) out.push_back({{p, s}, t});
  return out;
}

std::string race_case_name(const ::testing::TestParamInfo<RaceCase>& info) {
  return std::string(to_string(info.param.combo.paging)) + "_" + std::string(to_string(info.param.combo.scheme)) +
         (info.param.tables == ForkTables::Share ? "_share" : "_copy");
}

uint64_t tag(VirtAddr page, uint64_t who) { return ((page >> kPageShift) * 0x9E3779B97F4A7C15ull) ^ (who * 0xBF58476D1CE4E5B9ull); }

class ForkRaceTest : public ::testing::TestWithParam<RaceCase> {};

TEST_P(ForkRaceTest, SharedTablesAndPagesSurviveForkingWritingAndReclaim) {
  auto pool = make_pool(kPoolBytes, kProcesses + 1);
  auto swap = make_swap(uint64_t{96} << 20);
  Reclaimer reclaimer(*pool, swap.get(), stress_reclaimer_config(kReclaimerSlot));
  std::vector<std::unique_ptr<SimulatedVcpus>> tlbs;
  for (unsigned p = 0; p < kProcesses; ++p) tlbs.push_back(std::make_unique<SimulatedVcpus>(kProcesses + 1));
  std::atomic<uint32_t> next_id{1};
  const auto config_for = [&](SimulatedVcpus& t) {
    AddressSpaceConfig c;
    c.id = next_id++;
    c.tlbs = &t;
    c.swap = swap.get();
    c.reclaimer = &reclaimer;
    return c;
  };

  std::vector<std::unique_ptr<AddressSpace>> spaces;
  {
    AddressSpaceConfig c = config_for(*tlbs[0]);
    c.paging = GetParam().combo.paging;
    c.scheme = GetParam().combo.scheme;
    std::string error;
    spaces.push_back(make_address_space(*pool, c, &error));
    ASSERT_TRUE(spaces[0]) << error;
  }
  MapRequest r;
  r.length = kPages * kPageSize;
  const VirtAddr base = spaces[0]->map(0, r).value;
  tlbs[0]->activate(0);
  for (uint64_t i = 0; i < kPages; ++i) {
    uint8_t* p = tlbs[0]->access(*spaces[0], 0, base + i * kPageSize, Access::Write);
    ASSERT_TRUE(p);
    const uint64_t v = tag(base + i * kPageSize, 0);
    std::memcpy(p, &v, 8);
  }
  tlbs[0]->deactivate(0);
  for (unsigned p = 1; p < kProcesses; ++p) {
    std::string error;
    spaces.push_back(spaces[0]->fork(0, config_for(*tlbs[p]), GetParam().tables, &error));
    ASSERT_TRUE(spaces[p]) << error;
  }
  for (unsigned p = 0; p < kProcesses; ++p) {
    spaces[p]->set_wait_hook(tlbs[p]->wait_hook());
    reclaimer.attach(*spaces[p]);
  }
  reclaimer.start();

  std::atomic<uint64_t> mismatches{0}, failed{0}, grandchildren{0};
  std::vector<std::thread> threads;
  for (unsigned p = 0; p < kProcesses; ++p) {
    threads.emplace_back([&, p] {
      const VcpuId v = p;
      SimulatedVcpus& tlb = *tlbs[p];
      AddressSpace& as = *spaces[p];
      std::mt19937_64 rng(p * 7919 + 1);
      std::vector<uint64_t> expected(kPages);
      for (uint64_t i = 0; i < kPages; ++i) expected[i] = tag(base + i * kPageSize, 0);
      const auto put = [&](SimulatedVcpus& t, AddressSpace& s, uint64_t i, uint64_t value) {
        FaultOutcome outcome{};
        if (uint8_t* q = t.access(s, v, base + i * kPageSize, Access::Write, &outcome)) {
          std::memcpy(q, &value, 8);
          return true;
        }
        ADD_FAILURE() << "write fault: " << to_string(outcome);
        ++failed;
        return false;
      };
      const auto get = [&](SimulatedVcpus& t, AddressSpace& s, uint64_t i) -> uint64_t {
        FaultOutcome outcome{};
        if (const uint8_t* q = t.access(s, v, base + i * kPageSize, Access::Read, &outcome)) {
          uint64_t value;
          std::memcpy(&value, q, 8);
          return value;
        }
        ADD_FAILURE() << "read fault: " << to_string(outcome);
        ++failed;
        return 0;
      };
      tlb.activate(v);
      for (unsigned round = 1; round <= kRounds; ++round) {
        for (uint64_t i = 0; i < kPages; ++i) {
          if (rng() % 4 != 0) continue;
          const uint64_t value = tag(base + i * kPageSize, p * 100 + round);
          if (put(tlb, as, i, value)) expected[i] = value;
        }
        for (uint64_t i = 0; i < kPages; ++i)
          if (get(tlb, as, i) != expected[i]) ++mismatches;
        if (round % 2 == 1) {
          // A grandchild off our own space: it must see our pages as they are now, and its
          // writes must stay its own.
          // Forking, attaching and detaching are syscalls: this vCPU is quiescent meanwhile
          // (as the emulator's are), so the reclaimer's shootdowns need not wait for it.
          tlb.deactivate(v);
          SimulatedVcpus gtlb(kProcesses + 1);
          std::string error;
          auto child = as.fork(v, config_for(gtlb), GetParam().tables, &error);
          if (!child) {
            ADD_FAILURE() << error;
            tlb.activate(v);
            continue;
          }
          child->set_wait_hook(gtlb.wait_hook());
          reclaimer.attach(*child);
          gtlb.activate(v);
          for (uint64_t i = 0; i < kPages; ++i)
            if (get(gtlb, *child, i) != expected[i]) ++mismatches;
          for (uint64_t i = round % 3; i < kPages; i += 3) (void)put(gtlb, *child, i, tag(base + i * kPageSize, 1000 + p));
          for (uint64_t i = 0; i < kPages; ++i) {
            const uint64_t want = i % 3 == round % 3 ? tag(base + i * kPageSize, 1000 + p) : expected[i];
            if (get(gtlb, *child, i) != want) ++mismatches;
          }
          gtlb.deactivate(v);
          reclaimer.detach(*child);
          child->set_teardown_slot(v);
          child.reset();  // drops its references while the others copy and share
          tlb.activate(v);
          ++grandchildren;
          for (uint64_t i = 0; i < kPages; ++i)
            if (get(tlb, as, i) != expected[i]) ++mismatches;
        }
      }
      tlb.deactivate(v);
    });
  }
  for (auto& t : threads) t.join();
  reclaimer.stop();

  EXPECT_EQ(mismatches.load(), 0u) << "a process saw another's write, or lost its own";
  EXPECT_EQ(failed.load(), 0u);
  EXPECT_EQ(grandchildren.load(), kProcesses * ((kRounds + 1) / 2));
  std::vector<AddressSpace*> all;
  uint64_t unshared = 0, cow = 0, reclaimed = 0, cow_swapped = 0;
  for (auto& s : spaces) {
    all.push_back(s.get());
    unshared += s->counters().total(MmuCounter::UnsharesCopied) + s->counters().total(MmuCounter::UnsharesExclusive);
    cow += s->counters().total(MmuCounter::FaultCowCopy) + s->counters().total(MmuCounter::FaultCowReuse);
    reclaimed += s->counters().total(MmuCounter::Reclaimed);
    cow_swapped += s->counters().total(MmuCounter::CowSwappedOut);
  }
  if (GetParam().tables == ForkTables::Share) {
    EXPECT_GT(unshared, 0u);
  } else {
    EXPECT_EQ(unshared, 0u);
  }
  EXPECT_GT(cow, 0u);
  EXPECT_GT(reclaimed, 0u) << "the reclaimer must have been at work";
  EXPECT_GT(cow_swapped, 0u) << "pages fork left shared must have gone to swap too (mmu/cow_reclaim.h)";
  check_fork_invariants(*pool, all, swap.get());
  for (auto& s : spaces) reclaimer.detach(*s);
  spaces.clear();
  EXPECT_EQ(swap->slots_used(), 0u);
  const auto by_state = pool->count_by_state();
  EXPECT_EQ(by_state[static_cast<size_t>(FrameState::Anon)], 0u);
  EXPECT_EQ(by_state[static_cast<size_t>(FrameState::PageTable)], 0u);
}

INSTANTIATE_TEST_SUITE_P(BothWidthsAllSchemesBothModes, ForkRaceTest, ::testing::ValuesIn(race_cases()), race_case_name);

}  // namespace
}  // namespace mmu::testing
