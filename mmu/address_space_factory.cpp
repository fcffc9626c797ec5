// Picks PagedAddressSpace<Format, Scheme> for a run-time paging mode and scheme.
#include "mmu/paged_address_space.h"
#include "mmu/schemes/atomic_scheme.h"
#include "mmu/schemes/global_lock_scheme.h"
#include "mmu/schemes/pte_bit_scheme.h"
#include "mmu/schemes/split_lock_scheme.h"

namespace mmu {

namespace {

template <class F>
std::unique_ptr<AddressSpace> make_for_format(FramePool& pool, const AddressSpaceConfig& config, std::string* error,
                                              VcpuId v) {
  if (pool.bytes() > F::kMaxPhys) {
    if (error)
      *error = std::string(to_string(F::kMode)) + " page-table entries address at most " +
               std::to_string(F::kMaxPhys >> 20) + " MiB of guest-physical memory; the pool has " +
               std::to_string(pool.bytes() >> 20) + " MiB";
    return nullptr;
  }
  const FrameNumber root = pool.allocate(v, FrameState::PageTable, FrameFill::Zero);
  if (root == kNoFrame) {
    if (error) *error = "no free frame for the root page table";
    return nullptr;
  }
  std::unique_ptr<AddressSpace> space;
  switch (config.scheme) {
    case SchemeKind::Global: space = std::make_unique<PagedAddressSpace<F, GlobalLockScheme<F>>>(pool, config, root); break;
    case SchemeKind::Split: space = std::make_unique<PagedAddressSpace<F, SplitLockScheme<F>>>(pool, config, root); break;
    case SchemeKind::Atomic: space = std::make_unique<PagedAddressSpace<F, AtomicScheme<F>>>(pool, config, root); break;
    case SchemeKind::PteBit: space = std::make_unique<PagedAddressSpace<F, PteBitScheme<F>>>(pool, config, root); break;
  }
  if (space) {
    // Destroyed by the creating thread unless it says otherwise (fork's failure path does).
    space->set_teardown_slot(v);
    return space;
  }
  pool.free(v, root);
  if (error) *error = "unknown locking scheme";
  return nullptr;
}

}  // namespace

std::unique_ptr<AddressSpace> make_address_space(FramePool& pool, const AddressSpaceConfig& config,
                                                 std::string* error, VcpuId v) {
  switch (config.paging) {
    case PagingMode::I386: return make_for_format<I386Format>(pool, config, error, v);
    case PagingMode::Pae: return make_for_format<PaeFormat>(pool, config, error, v);
    case PagingMode::X86_64: return make_for_format<X86_64Format>(pool, config, error, v);
    case PagingMode::La57: return make_for_format<La57Format>(pool, config, error, v);
  }
  if (error) *error = "unknown paging mode";
  return nullptr;
}

}  // namespace mmu
