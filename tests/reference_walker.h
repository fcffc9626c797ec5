// An independent reference walker for the tests: it reads the raw tables with x86 constants
// written out here, not with the library's format traits or entry wrapper, so a bug there
// cannot hide itself.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <functional>

#include "mmu/types.h"

namespace mmu::testing {

struct RefLeaf {
  bool present = false;
  uint64_t raw = 0;
  uint64_t page = 0;  // physical address of the 4 KiB page holding the address
  bool writable = false, user = false, accessed = false, dirty = false, nx = false, large = false;
  int level = 0;
};

struct RefFormat {
  int levels;
  int entry_bytes;
  int root_index_bits;
  uint64_t limit;
};

inline RefFormat ref_format(PagingMode m) {
  switch (m) {
    case PagingMode::I386: return {2, 4, 10, 1ull << 32};
    case PagingMode::Pae: return {3, 8, 2, 1ull << 32};
    case PagingMode::X86_64: return {4, 8, 9, 1ull << 47};
    case PagingMode::La57: return {5, 8, 9, 1ull << 56};
  }
  return {};
}

class ReferenceWalker {
 public:
  ReferenceWalker(const uint8_t* phys_base, PagingMode mode, uint64_t root)
      : base_(phys_base), f_(ref_format(mode)), root_(root) {}

  uint64_t read_entry(uint64_t table, unsigned index) const {
    if (f_.entry_bytes == 4) {
      uint32_t v;
      std::memcpy(&v, base_ + table + index * 4, 4);
      return v;
    }
    uint64_t v;
    std::memcpy(&v, base_ + table + index * 8, 8);
    return v;
  }
  unsigned bits(int level) const { return level == f_.levels ? f_.root_index_bits : (f_.entry_bytes == 4 ? 10 : 9); }
  unsigned shift(int level) const { return 12 + (f_.entry_bytes == 4 ? 10 : 9) * (level - 1); }
  uint64_t addr_mask() const { return f_.entry_bytes == 4 ? 0xFFFFF000ull : 0x000FFFFFFFFFF000ull; }

  // PS bit: 4 MiB / 2 MiB pages at level 2 in every format, 1 GiB at level 3 with 4+ levels.
  bool is_large(uint64_t e, int level) const { return (e & 0x80) && (level == 2 || (level == 3 && f_.levels >= 4)); }

  RefLeaf walk(uint64_t va) const {
    uint64_t table = root_;
    for (int level = f_.levels; level >= 1; --level) {
      const unsigned idx = (va >> shift(level)) & ((1u << bits(level)) - 1);
      const uint64_t e = read_entry(table, idx);
      if (!(e & 1)) return {};
      const bool large = is_large(e, level);
      if (level == 1 || large) {
        RefLeaf l;
        l.present = true;
        l.raw = e;
        l.level = level;
        l.large = large;
        const uint64_t span_mask = (1ull << shift(level)) - 1;
        l.page = ((e & addr_mask() & ~span_mask) + (va & span_mask)) & ~0xFFFull;
        l.writable = e & 2;
        l.user = e & 4;
        l.accessed = e & 0x20;
        l.dirty = e & 0x40;
        l.nx = f_.entry_bytes == 8 && (e >> 63);
        return l;
      }
      table = e & addr_mask();
    }
    return {};
  }

  // Visits every table frame reachable from the root (the root included) and every present
  // leaf entry with the address it maps.
  void for_each(const std::function<void(uint64_t table, int level)>& on_table,
                const std::function<void(uint64_t va, const RefLeaf&)>& on_leaf) const {
    visit(root_, f_.levels, 0, on_table, on_leaf);
  }

  // Every entry that is not empty, along every path from the root: a table reached from
  // several places (shared by fork) is visited each time.
  void for_each_entry(const std::function<void(uint64_t table, int level, unsigned index, uint64_t va, uint64_t raw)>& fn) const {
    visit_all(root_, f_.levels, 0, fn);
  }
  // Whether a write through every level to `va` is allowed (x86 ANDs the W bits; the PAE
  // PDPT has none).
  bool path_writable(uint64_t va) const {
    uint64_t table = root_;
    for (int level = f_.levels; level >= 1; --level) {
      const unsigned idx = (va >> shift(level)) & ((1u << bits(level)) - 1);
      const uint64_t e = read_entry(table, idx);
      if (!(e & 1)) return false;
      const bool pae_top = f_.levels == 3 && level == 3;
      if (!pae_top && !(e & 2)) return false;
      if (level == 1 || is_large(e, level)) return true;
      table = e & addr_mask();
    }
    return false;
  }

  // Non-present entries that are not empty (swap, transition, protnone), by address.
  void for_each_nonpresent(const std::function<void(uint64_t va, uint64_t raw)>& fn) const {
    visit_np(root_, f_.levels, 0, fn);
  }

 private:
  void visit(uint64_t table, int level, uint64_t base, const std::function<void(uint64_t, int)>& on_table,
             const std::function<void(uint64_t, const RefLeaf&)>& on_leaf) const {
    on_table(table, level);
    for (unsigned i = 0; i < (1u << bits(level)); ++i) {
      const uint64_t e = read_entry(table, i);
      if (!(e & 1)) continue;
      const uint64_t va = base + (uint64_t{i} << shift(level));
      if (level > 1 && !is_large(e, level)) {
        visit(e & addr_mask(), level - 1, va, on_table, on_leaf);
      } else {
        on_leaf(va, walk(va));
      }
    }
  }
  void visit_all(uint64_t table, int level, uint64_t base,
                 const std::function<void(uint64_t, int, unsigned, uint64_t, uint64_t)>& fn) const {
    for (unsigned i = 0; i < (1u << bits(level)); ++i) {
      const uint64_t e = read_entry(table, i);
      if (!(e & ~0x200ull)) continue;
      const uint64_t va = base + (uint64_t{i} << shift(level));
      fn(table, level, i, va, e);
      if ((e & 1) && level > 1 && !is_large(e, level)) visit_all(e & addr_mask(), level - 1, va, fn);
    }
  }
  void visit_np(uint64_t table, int level, uint64_t base, const std::function<void(uint64_t, uint64_t)>& fn) const {
    for (unsigned i = 0; i < (1u << bits(level)); ++i) {
      const uint64_t e = read_entry(table, i);
      const uint64_t va = base + (uint64_t{i} << shift(level));
      if (!(e & 1)) {
        if (e & ~0x200ull) fn(va, e);
        continue;
      }
      if (level > 1 && !is_large(e, level)) visit_np(e & addr_mask(), level - 1, va, fn);
    }
  }

  const uint8_t* base_;
  RefFormat f_;
  uint64_t root_;
};

}  // namespace mmu::testing
