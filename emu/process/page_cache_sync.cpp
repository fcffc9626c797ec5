#include "emu/process/page_cache_sync.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

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

void sync_before_read(Machine& machine, int host_fd) {
  if (auto object = mapped_file(machine, host_fd)) (void)object->writeback();
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

void truncate_cached(Machine& machine, int host_fd, uint64_t size) {
  if (auto object = mapped_file(machine, host_fd)) object->truncate(size);
}

}  // namespace emu
