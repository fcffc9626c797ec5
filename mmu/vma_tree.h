// The set of VMAs of one address space, kept sorted and non-overlapping. Not synchronised:
// the address space guards it with its mmap lock.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <vector>

#include "mmu/vma.h"

namespace mmu {

class VmaTree {
 public:
  const Vma* find(VirtAddr a) const;
  // The first VMA that ends above `a` (the one containing it, or the next one up).
  const Vma* find_above(VirtAddr a) const;
  // The last VMA that starts below `a`.
  const Vma* find_below(VirtAddr a) const;
  bool overlaps(VirtAddr start, VirtAddr end) const;
  // True when every page of [start, end) belongs to some VMA.
  bool fully_mapped(VirtAddr start, VirtAddr end) const;

  // Inserts a VMA that overlaps nothing, merging with equal anonymous neighbours.
  void insert(Vma v);
  // Removes [start, end), splitting VMAs that straddle its ends.
  void remove(VirtAddr start, VirtAddr end);
  // Sets the protection of [start, end) (which must be fully mapped), splitting as needed.
  void protect(VirtAddr start, VirtAddr end, uint8_t prot);
  // Sets (`on`) or clears `flag` on [start, end) (which must be fully mapped), splitting as needed.
  void set_flag(VirtAddr start, VirtAddr end, uint8_t flag, bool on);
  // Moves the start of the VMA beginning at `old_start` down to `new_start` (stack growth).
  void extend_down(VirtAddr old_start, VirtAddr new_start);

  // Highest gap of `length` bytes inside [floor, ceiling), or nullopt.
  std::optional<VirtAddr> find_gap_top_down(uint64_t length, VirtAddr floor, VirtAddr ceiling) const;

  size_t size() const { return vmas_.size(); }
  void for_each(const std::function<void(const Vma&)>& fn) const;

 private:
  void split_at(VirtAddr a);
  void merge_around(VirtAddr a);
  // Applies `fn` to every VMA of [start, end) (split to fit), then merges what matches again.
  void change(VirtAddr start, VirtAddr end, const std::function<void(Vma&)>& fn);

  std::map<VirtAddr, Vma> vmas_;  // keyed by start
};

}  // namespace mmu
