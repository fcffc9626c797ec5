// Every live address space of the run, with the process whose vCPUs cache its translations,
// for the few operations that reach into other processes' memory: when a file shrinks, its
// pages past the new end leave every process that maps it, as Linux's unmap_mapping_range
// walks the file's i_mmap. A file's page-cache object knows its mappers by space id
// (mmu::SharedMemory::mappers); this directory turns an id back into a space safely.
//
// A space is listed from GuestProcess::adopt_space until GuestProcess::destroy_space, and
// for_each holds the directory's lock across the caller's work, so a listed space cannot be
// destroyed under it. The threads that list and unlist spaces are in a syscall (fork, execve,
// exit), so a shootdown the work waits for never waits on them.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "mmu/address_space.h"
#include "mmu/spin_lock.h"
#include "mmu/thread_annotations.h"

namespace emu {

class GuestProcess;

class SpaceDirectory {
 public:
  void add(mmu::AddressSpace& space, GuestProcess& owner);
  void remove(const mmu::AddressSpace& space);
  // Calls `fn` for each listed space whose id is in `ids`, holding the directory's lock.
  void for_each_of(std::span<const uint32_t> ids, const std::function<void(mmu::AddressSpace&, GuestProcess&)>& fn);

 private:
  struct Entry {
    mmu::AddressSpace* space;
    GuestProcess* owner;
  };
  mmu::Mutex lock_;
  std::vector<Entry> entries_ EMU_GUARDED_BY(lock_);
};

}  // namespace emu
