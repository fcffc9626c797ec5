#include "emu/process/page_cache_sync.h"

#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <vector>

#include "emu/process/guest_process.h"
#include "emu/process/machine.h"
#include "emu/process/shared_file_backing.h"

namespace emu {

std::shared_ptr<mmu::SharedMemory> page_cache_object(Machine& machine, int host_fd, const std::string& name) {
  struct stat st {};
  if (::fstat(host_fd, &st) != 0) return nullptr;
  if (!S_ISREG(st.st_mode)) {
    errno = ENODEV;
    return nullptr;
  }
  return machine.shared_memory().get({static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)}, name,
                                     [&] { return SharedFileBacking::open(host_fd); });
}

std::shared_ptr<mmu::SharedMemory> mapped_file(Machine& machine, int host_fd) {
  auto& registry = machine.shared_memory();
  if (registry.empty()) return nullptr;
  struct stat st {};
  if (::fstat(host_fd, &st) != 0 || !S_ISREG(st.st_mode)) return nullptr;
  return registry.find({static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)});
}

void sync_before_read(Machine& machine, int host_fd, int64_t at, uint64_t n) {
  auto object = mapped_file(machine, host_fd);
  if (!object) return;
  if (at < 0) {
    const off_t here = ::lseek(host_fd, 0, SEEK_CUR);
    if (here < 0) return;
    at = here;
  }
  (void)object->writeback(static_cast<uint64_t>(at), n);
}

void store_after_write(Machine& machine, int host_fd, int64_t at, const uint8_t* data, int64_t n) {
  if (n <= 0) return;
  auto object = mapped_file(machine, host_fd);
  if (!object) return;
  if (at < 0) {
    const off_t end = ::lseek(host_fd, 0, SEEK_CUR);
    if (end < 0) return;
    at = end - n;
  }
  object->store(static_cast<uint64_t>(at), data, static_cast<uint64_t>(n));
}

void truncate_cached(Machine& machine, GuestProcess& self, mmu::VcpuId v, int host_fd, uint64_t size) {
  auto object = mapped_file(machine, host_fd);
  if (!object) return;
  // The ptes go first: from then on a fault past the end is SIGBUS (the host file is cut
  // already), so nothing can store into the cached bytes the truncate below zeroes.
  const uint64_t from = (size + mmu::kPageSize - 1) & ~(mmu::kPageSize - 1);
  std::vector<uint32_t> ids;
  for (const auto& m : object->mappers()) ids.push_back(m.space);
  machine.spaces().for_each_of(ids, [&](mmu::AddressSpace& space, GuestProcess& owner) {
    // Another process whose only vCPU runs without the block hook would acknowledge the
    // shootdown only at its next syscall, and a compute loop never makes one: its ptes stay
    // (it keeps reading the zeros the cache now holds there), rather than the truncate (and
    // every fork and exit, waiting for the directory) hanging on it.
    if (&owner != &self && !space.can_flush_now()) {
      spdlog::debug("truncate of {}: space {} runs without the block hook; its ptes stay", object->name(), space.id());
      return;
    }
    const auto zap = space.zap_object_pages(v, *object, from);
    // Blocks translated from the pages must not run once the frames hold something else.
    if (zap.code) owner.flush_code();
    // Not zapped (a table fork shared could not be copied for want of a frame): those ptes
    // keep showing the zeros the cache now holds there, as before truncation reached ptes.
    if (!zap.ok) spdlog::debug("truncate of {}: ptes past the end stay in space {} (no frame)", object->name(), space.id());
  });
  object->truncate(size);
}

}  // namespace emu
