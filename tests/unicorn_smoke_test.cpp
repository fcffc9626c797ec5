// The Unicorn the set-up installs is the one DESIGN.md needs: 2.1 with a virtual TLB and the
// TLB-fill hook, whose translation is really applied (2.0.1 identity-mapped instead).
#include <gtest/gtest.h>
#include <unicorn/unicorn.h>

#include <cstdint>

namespace {

struct Fill {
  int calls = 0;
  uint64_t last_vaddr = 0;
};

bool tlb_fill(uc_engine*, uint64_t vaddr, uc_mem_type, uc_tlb_entry* e, void* user) {
  auto* f = static_cast<Fill*>(user);
  ++f->calls;
  f->last_vaddr = vaddr;
  // Guest-virtual 0x400000 lives at guest-physical 0x2000.
  e->paddr = (vaddr & ~0xFFFull) - 0x400000 + 0x2000;
  e->perms = UC_PROT_ALL;
  return true;
}

TEST(Unicorn, VersionIsAtLeast21) {
  unsigned major = 0, minor = 0;
  uc_version(&major, &minor);
  EXPECT_TRUE(major > 2 || (major == 2 && minor >= 1)) << major << "." << minor;
}

TEST(Unicorn, TlbFillHookTranslates) {
  uc_engine* uc = nullptr;
  ASSERT_EQ(uc_open(UC_ARCH_X86, UC_MODE_64, &uc), UC_ERR_OK);
  ASSERT_EQ(uc_ctl_tlb_mode(uc, UC_TLB_VIRTUAL), UC_ERR_OK);
  ASSERT_EQ(uc_mem_map(uc, 0, 0x10000, UC_PROT_ALL), UC_ERR_OK);
  const uint8_t code[] = {0xff, 0xc0, 0xff, 0xc0};  // inc eax; inc eax
  ASSERT_EQ(uc_mem_write(uc, 0x2000, code, sizeof code), UC_ERR_OK);
  Fill fill;
  uc_hook h;
  ASSERT_EQ(uc_hook_add(uc, &h, UC_HOOK_TLB_FILL, reinterpret_cast<void*>(tlb_fill), &fill, 1, 0), UC_ERR_OK);
  uint64_t rax = 0;
  uc_reg_write(uc, UC_X86_REG_RAX, &rax);
  ASSERT_EQ(uc_emu_start(uc, 0x400000, 0x400000 + sizeof code, 0, 0), UC_ERR_OK);
  uc_reg_read(uc, UC_X86_REG_RAX, &rax);
  EXPECT_EQ(rax, 2u);
  EXPECT_GE(fill.calls, 1);
  EXPECT_EQ(fill.last_vaddr & ~0xFFFull, 0x400000u);
  uc_hook_del(uc, h);
  uc_close(uc);
}

}  // namespace
