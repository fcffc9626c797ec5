#include "emu/cpu/cpu_registers.h"

namespace emu {

const std::array<int, CpuRegisters::kGeneral>& general_register_ids(GuestArch arch) {
  static const std::array<int, CpuRegisters::kGeneral> x64 = {
      UC_X86_REG_RAX, UC_X86_REG_RBX, UC_X86_REG_RCX, UC_X86_REG_RDX, UC_X86_REG_RSI, UC_X86_REG_RDI,
      UC_X86_REG_RBP, UC_X86_REG_RSP, UC_X86_REG_R8,  UC_X86_REG_R9,  UC_X86_REG_R10, UC_X86_REG_R11,
      UC_X86_REG_R12, UC_X86_REG_R13, UC_X86_REG_R14, UC_X86_REG_R15, UC_X86_REG_RIP, UC_X86_REG_EFLAGS};
  // i386 has 8; the rest repeat EAX harmlessly.
  static const std::array<int, CpuRegisters::kGeneral> x86 = {
      UC_X86_REG_EAX, UC_X86_REG_EBX, UC_X86_REG_ECX, UC_X86_REG_EDX, UC_X86_REG_ESI, UC_X86_REG_EDI,
      UC_X86_REG_EBP, UC_X86_REG_ESP, UC_X86_REG_EAX, UC_X86_REG_EAX, UC_X86_REG_EAX, UC_X86_REG_EAX,
      UC_X86_REG_EAX, UC_X86_REG_EAX, UC_X86_REG_EAX, UC_X86_REG_EAX, UC_X86_REG_EIP, UC_X86_REG_EFLAGS};
  return arch == GuestArch::I386 ? x86 : x64;
}

void CpuRegisters::save(uc_engine* uc, GuestArch arch) {
  const auto& ids = general_register_ids(arch);
  for (int i = 0; i < kGeneral; ++i) {
    general[i] = 0;
    uc_reg_read(uc, ids[i], &general[i]);
  }
  const int nxmm = arch == GuestArch::I386 ? 8 : 16;
  for (int i = 0; i < nxmm; ++i) uc_reg_read(uc, UC_X86_REG_XMM0 + i, xmm[i].data());
  if (arch == GuestArch::X86_64) {
    uc_reg_read(uc, UC_X86_REG_FS_BASE, &fs_base);
    uc_reg_read(uc, UC_X86_REG_GS_BASE, &gs_base);
  } else {
    uc_reg_read(uc, UC_X86_REG_GS, &gs);
  }
  uc_reg_read(uc, UC_X86_REG_MXCSR, &mxcsr);
  uc_reg_read(uc, UC_X86_REG_FPCW, &fpcw);
  for (int i = 0; i < 8; ++i) uc_reg_read(uc, UC_X86_REG_FP0 + i, st[i].data());
  uc_reg_read(uc, UC_X86_REG_FPSW, &fpsw);
  uc_reg_read(uc, UC_X86_REG_FPTAG, &fptag);
}

void CpuRegisters::restore(uc_engine* uc, GuestArch arch) const {
  const auto& ids = general_register_ids(arch);
  const int n = arch == GuestArch::I386 ? 8 : 16;
  for (int i = 0; i < n; ++i) uc_reg_write(uc, ids[i], &general[i]);
  uc_reg_write(uc, ids[16], &general[16]);
  uc_reg_write(uc, ids[17], &general[17]);
  const int nxmm = arch == GuestArch::I386 ? 8 : 16;
  for (int i = 0; i < nxmm; ++i) uc_reg_write(uc, UC_X86_REG_XMM0 + i, xmm[i].data());
  if (arch == GuestArch::X86_64) {
    uc_reg_write(uc, UC_X86_REG_FS_BASE, &fs_base);
    uc_reg_write(uc, UC_X86_REG_GS_BASE, &gs_base);
  }
  uc_reg_write(uc, UC_X86_REG_MXCSR, &mxcsr);
  uc_reg_write(uc, UC_X86_REG_FPCW, &fpcw);
  for (int i = 0; i < 8; ++i) uc_reg_write(uc, UC_X86_REG_FP0 + i, st[i].data());
  uc_reg_write(uc, UC_X86_REG_FPSW, &fpsw);
  uc_reg_write(uc, UC_X86_REG_FPTAG, &fptag);
}

}  // namespace emu
