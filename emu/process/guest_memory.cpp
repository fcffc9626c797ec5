#include "emu/process/guest_memory.h"

#include <algorithm>
#include <cstring>

namespace emu {

template <typename Fn>
bool GuestMemory::for_each_chunk(mmu::VcpuId v, uint64_t addr, size_t len, mmu::Access access, Fn&& fn) const {
  if (len == 0) return true;
  if (addr + len < addr || addr + len > space_->virt_limit()) return false;
  const Pin pinned(*this, v);
  while (len > 0) {
    const uint64_t offset = addr & (mmu::kPageSize - 1);
    const size_t chunk = std::min<size_t>(len, mmu::kPageSize - offset);
    const mmu::Translation t = space_->translate(v, mmu::page_floor(addr), access);
    if (!t.ok()) return false;
    fn(space_->pool().host(t.page) + offset, chunk);
    addr += chunk;
    len -= chunk;
  }
  return true;
}

bool GuestMemory::read(mmu::VcpuId v, uint64_t addr, void* dst, size_t len) const {
  auto* out = static_cast<uint8_t*>(dst);
  return for_each_chunk(v, addr, len, mmu::Access::Read, [&](const uint8_t* p, size_t n) {
    std::memcpy(out, p, n);
    out += n;
  });
}

bool GuestMemory::write(mmu::VcpuId v, uint64_t addr, const void* src, size_t len) const {
  const auto* in = static_cast<const uint8_t*>(src);
  return for_each_chunk(v, addr, len, mmu::Access::Write, [&](uint8_t* p, size_t n) {
    std::memcpy(p, in, n);
    in += n;
  });
}

bool GuestMemory::fill(mmu::VcpuId v, uint64_t addr, uint8_t byte, size_t len) const {
  return for_each_chunk(v, addr, len, mmu::Access::Write, [&](uint8_t* p, size_t n) { std::memset(p, byte, n); });
}

bool GuestMemory::read_string(mmu::VcpuId v, uint64_t addr, size_t max, std::string& out) const {
  out.clear();
  const Pin pinned(*this, v);
  while (out.size() < max) {
    const uint64_t offset = addr & (mmu::kPageSize - 1);
    const size_t room = std::min<size_t>(mmu::kPageSize - offset, max - out.size());
    if (addr >= space_->virt_limit()) return false;
    const mmu::Translation t = space_->translate(v, mmu::page_floor(addr), mmu::Access::Read);
    if (!t.ok()) return false;
    const auto* p = reinterpret_cast<const char*>(space_->pool().host(t.page) + offset);
    const void* nul = std::memchr(p, 0, room);
    if (nul) {
      out.append(p, static_cast<const char*>(nul) - p);
      return true;
    }
    out.append(p, room);
    addr += room;
  }
  return false;  // too long: ENAMETOOLONG/EFAULT for the caller
}

uint32_t* GuestMemory::word(mmu::VcpuId v, uint64_t addr, mmu::Access access) const {
  if (addr % 4 != 0 || addr >= space_->virt_limit()) return nullptr;
  const mmu::Translation t = space_->translate(v, mmu::page_floor(addr), access);
  if (!t.ok()) return nullptr;
  return reinterpret_cast<uint32_t*>(space_->pool().host(t.page) + (addr & (mmu::kPageSize - 1)));
}

}  // namespace emu
