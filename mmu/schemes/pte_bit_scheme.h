// `ptebit` (seed 001): a software lock bit inside each entry. A fault locks the single entry
// it changes (ptep_lock), at whatever level it is; nothing else is serialised. Unlocking is
// the store of the new value, done by compare-and-swap so that A/D bits set meanwhile by
// other vCPUs survive. Reclaim and swap-in use clear-and-lock (ptep_clear_and_lock_flush):
// the entry is replaced while the lock bit stays set, and stays locked while the page is in
// transition (written out or read back); unlock_to() stores the final entry.
//
// The lock bit lives in guest-physical memory, where clang's analysis cannot follow it; the
// invariant is local: lock_entry() and the release in update() pair up in this one function.
#pragma once

#include <chrono>
#include <optional>

#include "mmu/schemes/entry_slot.h"

namespace mmu {

template <class F>
struct PteBitScheme : EntryAtATime<F, PteBitScheme<F>> {
  static constexpr SchemeKind kKind = SchemeKind::PteBit;
  using Pte = PageTableEntry<F>;
  using Entry = typename F::Entry;

  // Sets the lock bit; returns the entry value with the bit set. Gives up (nullopt) on an
  // entry locked in transition: its holder (the reclaimer, or a swap-in) keeps it locked while
  // it waits for shootdown acknowledgements or I/O, so spinning here without serving this
  // vCPU's mailbox could deadlock; the caller retries and waits on the transition entry the
  // way every fault does, serving its mailbox.
  static std::optional<Entry> lock_entry(const EntrySlot<F>& slot, MmuCounters::Slot& stats) {
    auto ref = slot.ref();
    stats.add(MmuCounter::LockAcquisitions);
    Entry cur = ref.load(std::memory_order_relaxed);
    if (!(cur & Pte::kLockBit) &&
        ref.compare_exchange_strong(cur, cur | Pte::kLockBit, std::memory_order_acquire, std::memory_order_relaxed))
      return cur | Pte::kLockBit;
    const auto start = std::chrono::steady_clock::now();
    bool in_transition = false;
    spin_until([&] {
      cur = ref.load(std::memory_order_relaxed);
      if ((cur & Pte::kLockBit) && Pte(cur).without_lock().kind() == EntryKind::Transition) {
        in_transition = true;
        return true;
      }
      return !(cur & Pte::kLockBit) && ref.compare_exchange_weak(cur, cur | Pte::kLockBit,
                                                                std::memory_order_acquire,
                                                                std::memory_order_relaxed);
    });
    record_contention(stats, start);
    if (in_transition) return std::nullopt;
    return cur | Pte::kLockBit;
  }

  template <class Change>
  static UpdateResult<F> update(SchemeEnv& env, const EntrySlot<F>& slot, Change&& change) {
    return change_locked(env, slot, change, /*stay_locked=*/false);
  }

  // Locks the entry and, if the change accepts it, replaces it keeping the lock bit set.
  // Declined: the entry is unlocked unchanged.
  template <class Change>
  static UpdateResult<F> clear_and_lock(SchemeEnv& env, const EntrySlot<F>& slot, Change&& change) {
    return change_locked(env, slot, change, /*stay_locked=*/true);
  }
  // Stores `final` into an entry this thread holds by clear_and_lock(), releasing the lock.
  static void unlock_to(const EntrySlot<F>& slot, Pte final) {
    auto ref = slot.ref();
    Entry cur = ref.load(std::memory_order_relaxed);
    while (!ref.compare_exchange_weak(cur, final.raw() & ~Pte::kLockBit, std::memory_order_release,
                                      std::memory_order_relaxed)) {
    }
  }

 private:
  // ptep_lock, then the change; the store that follows unlocks (the new value, or the old
  // one unchanged when the change declines) unless the caller keeps the entry locked.
  template <class Change>
  static UpdateResult<F> change_locked(SchemeEnv& env, const EntrySlot<F>& slot, Change&& change, bool stay_locked) {
    const std::optional<Entry> locked = lock_entry(slot, env.stats);
    if (!locked) return {Pte(slot.ref().load(std::memory_order_relaxed)).without_lock(), false};
    Entry cur = *locked;
    auto ref = slot.ref();
    for (;;) {
      const Pte seen = Pte(cur).without_lock();
      const std::optional<Pte> want = change(seen);
      Entry next = want ? (want->raw() & ~Pte::kLockBit) : seen.raw();
      if (want && stay_locked) next |= Pte::kLockBit;
      if (ref.compare_exchange_weak(cur, next, std::memory_order_acq_rel, std::memory_order_relaxed))
        return {seen, want.has_value()};
      // Only lock-free A/D updates can change a locked entry; re-evaluate on the new value.
    }
  }
};

}  // namespace mmu
