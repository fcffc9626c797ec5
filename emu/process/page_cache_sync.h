// Keeping read()/write() on a file coherent with its MAP_SHARED mappings. The mappings' pages
// live in emu's page cache (mmu::SharedMemory), the file's bytes on the host: a read of a
// mapped file writes the cache back first, a write stores its bytes in the cached pages it
// covered, and a truncate zeroes what it cut off.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "mmu/shared_memory.h"

namespace emu {

class GuestProcess;
class Machine;

// The page-cache object of the regular file behind `host_fd` (one per file identity for the
// whole run), created if none is live; `name` names it in /proc/self/maps. nullptr (errno
// set) for anything but a regular file, or when no descriptor of the file's own can be had.
std::shared_ptr<mmu::SharedMemory> page_cache_object(Machine& machine, int host_fd, const std::string& name);

// The live page-cache object of the file behind `host_fd`, if any process maps it.
// Costs one atomic load when no file is mapped shared anywhere in the run.
std::shared_ptr<mmu::SharedMemory> mapped_file(Machine& machine, int host_fd);

// Before a read of the `n` bytes at `at` of `host_fd` (at the fd's offset when `at` < 0):
// those bytes of the file get what the mappings wrote there. fsync passes the whole file.
void sync_before_read(Machine& machine, int host_fd, int64_t at, uint64_t n);
// After a write of the `n` bytes at `data`, ending at the fd's offset (`at` < 0) or at
// `at` + n (pwrite): the cached pages get them.
void store_after_write(Machine& machine, int host_fd, int64_t at, const uint8_t* data, int64_t n);
// After the file behind `host_fd` was cut to `size` (ftruncate, truncate, O_TRUNC), by the
// vCPU in slot `v`: cached bytes past it are zeros from now on, and every pte that maps a
// page wholly past it goes, in every process, private copies included (as Linux's
// truncate_pagecache): the next touch is SIGBUS, or the cache's zeros once the file grew.
// Exception: another process whose only vCPU runs without the block hook keeps its ptes (see
// the .cpp); `self` is the caller's process.
void truncate_cached(Machine& machine, GuestProcess& self, mmu::VcpuId v, int host_fd, uint64_t size);

}  // namespace emu
