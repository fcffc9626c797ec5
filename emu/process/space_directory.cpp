#include "emu/process/space_directory.h"

#include <algorithm>

namespace emu {

void SpaceDirectory::add(mmu::AddressSpace& space, GuestProcess& owner) {
  mmu::MutexGuard g(lock_);
  entries_.push_back({&space, &owner});
}

void SpaceDirectory::remove(const mmu::AddressSpace& space) {
  mmu::MutexGuard g(lock_);
  std::erase_if(entries_, [&](const Entry& e) { return e.space == &space; });
}

void SpaceDirectory::for_each_of(std::span<const uint32_t> ids,
                                 const std::function<void(mmu::AddressSpace&, GuestProcess&)>& fn) {
  mmu::MutexGuard g(lock_);
  for (const Entry& e : entries_)
    if (std::find(ids.begin(), ids.end(), e.space->id()) != ids.end()) fn(*e.space, *e.owner);
}

}  // namespace emu
