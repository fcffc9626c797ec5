#include "mmu/vma_tree.h"

#include <iterator>

namespace mmu {

namespace {
bool mergeable(const Vma& lo, const Vma& hi) {
  return lo.end == hi.start && lo.kind == VmaKind::Anonymous && hi.kind == VmaKind::Anonymous &&
         lo.prot == hi.prot && lo.flags == hi.flags && lo.name == hi.name;
}
}  // namespace

const Vma* VmaTree::find(VirtAddr a) const {
  const Vma* v = find_above(a);
  return v && v->contains(a) ? v : nullptr;
}

const Vma* VmaTree::find_above(VirtAddr a) const {
  auto it = vmas_.upper_bound(a);
  if (it != vmas_.begin()) {
    auto prev = std::prev(it);
    if (prev->second.end > a) return &prev->second;
  }
  return it == vmas_.end() ? nullptr : &it->second;
}

const Vma* VmaTree::find_below(VirtAddr a) const {
  auto it = vmas_.lower_bound(a);
  if (it == vmas_.begin()) return nullptr;
  return &std::prev(it)->second;
}

bool VmaTree::overlaps(VirtAddr start, VirtAddr end) const {
  const Vma* v = find_above(start);
  return v && v->start < end;
}

bool VmaTree::fully_mapped(VirtAddr start, VirtAddr end) const {
  VirtAddr a = start;
  while (a < end) {
    const Vma* v = find(a);
    if (!v) return false;
    a = v->end;
  }
  return true;
}

void VmaTree::split_at(VirtAddr a) {
  auto it = vmas_.upper_bound(a);
  if (it == vmas_.begin()) return;
  --it;
  Vma& v = it->second;
  if (v.start >= a || v.end <= a) return;
  Vma hi = v;
  hi.start = a;
  if (hi.kind != VmaKind::Anonymous) hi.source_offset += a - v.start;
  v.end = a;
  vmas_.emplace(a, std::move(hi));
}

void VmaTree::merge_around(VirtAddr a) {
  auto it = vmas_.find(a);
  if (it == vmas_.end()) return;
  if (it != vmas_.begin()) {
    auto prev = std::prev(it);
    if (mergeable(prev->second, it->second)) {
      prev->second.end = it->second.end;
      vmas_.erase(it);
      it = prev;
    }
  }
  auto next = std::next(it);
  if (next != vmas_.end() && mergeable(it->second, next->second)) {
    it->second.end = next->second.end;
    vmas_.erase(next);
  }
}

void VmaTree::insert(Vma v) {
  const VirtAddr start = v.start;
  vmas_.emplace(start, std::move(v));
  merge_around(start);
}

void VmaTree::remove(VirtAddr start, VirtAddr end) {
  split_at(start);
  split_at(end);
  vmas_.erase(vmas_.lower_bound(start), vmas_.lower_bound(end));
}

void VmaTree::change(VirtAddr start, VirtAddr end, const std::function<void(Vma&)>& fn) {
  split_at(start);
  split_at(end);
  for (auto it = vmas_.lower_bound(start); it != vmas_.end() && it->first < end; ++it) fn(it->second);
  // Merge the pieces back with neighbours that now match.
  std::vector<VirtAddr> starts;
  for (auto it = vmas_.lower_bound(start); it != vmas_.end() && it->first <= end; ++it) starts.push_back(it->first);
  for (VirtAddr s : starts) merge_around(s);
}

void VmaTree::protect(VirtAddr start, VirtAddr end, uint8_t prot) {
  change(start, end, [&](Vma& v) { v.prot = prot; });
}

void VmaTree::set_flag(VirtAddr start, VirtAddr end, uint8_t flag, bool on) {
  change(start, end, [&](Vma& v) { v.flags = on ? (v.flags | flag) : (v.flags & ~flag); });
}

void VmaTree::extend_down(VirtAddr old_start, VirtAddr new_start) {
  auto node = vmas_.extract(old_start);
  node.key() = new_start;
  node.mapped().start = new_start;
  vmas_.insert(std::move(node));
}

std::optional<VirtAddr> VmaTree::find_gap_top_down(uint64_t length, VirtAddr floor, VirtAddr ceiling) const {
  if (length == 0 || ceiling < floor || ceiling - floor < length) return std::nullopt;
  VirtAddr hi = ceiling;
  // Walk VMAs from the top; each gap is [end of the VMA below, start of the one above).
  auto it = vmas_.lower_bound(ceiling);
  for (;;) {
    VirtAddr lo = floor;
    if (it != vmas_.begin()) lo = std::max(floor, std::prev(it)->second.end);
    if (hi >= lo && hi - lo >= length) return hi - length;
    if (it == vmas_.begin()) return std::nullopt;
    --it;
    hi = std::min(hi, it->second.start);
    if (hi <= floor) return std::nullopt;
  }
}

void VmaTree::for_each(const std::function<void(const Vma&)>& fn) const {
  for (const auto& [start, v] : vmas_) fn(v);
}

}  // namespace mmu
