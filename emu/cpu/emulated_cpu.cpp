#include "emu/cpu/emulated_cpu.h"

#include <unicorn/unicorn.h>

#include <array>
#include <cstring>
#include <mutex>
#include <utility>

namespace emu {

namespace {

// Runs `cpuid` once with eax=leaf, ecx=subleaf in a fresh engine of the arch's mode.
CpuidResult run_cpuid(GuestArch arch, uint32_t leaf, uint32_t subleaf) {
  CpuidResult out;
  uc_engine* uc = nullptr;
  if (uc_open(UC_ARCH_X86, arch == GuestArch::I386 ? UC_MODE_32 : UC_MODE_64, &uc) != UC_ERR_OK) return out;
  constexpr uint64_t kCode = 0x1000;
  const uint8_t code[] = {0x0f, 0xa2};  // cpuid
  if (uc_mem_map(uc, kCode, 0x1000, UC_PROT_ALL) == UC_ERR_OK && uc_mem_write(uc, kCode, code, sizeof code) == UC_ERR_OK) {
    // 32-bit engines refuse the 64-bit register names: use the ones of the mode.
    const bool i386 = arch == GuestArch::I386;
    const int ids[4] = {i386 ? UC_X86_REG_EAX : UC_X86_REG_RAX, i386 ? UC_X86_REG_EBX : UC_X86_REG_RBX,
                        i386 ? UC_X86_REG_ECX : UC_X86_REG_RCX, i386 ? UC_X86_REG_EDX : UC_X86_REG_RDX};
    uint64_t a = leaf, c = subleaf, zero = 0;
    uc_reg_write(uc, ids[0], &a);
    uc_reg_write(uc, ids[2], &c);
    uc_reg_write(uc, ids[1], &zero);
    uc_reg_write(uc, ids[3], &zero);
    if (uc_emu_start(uc, kCode, kCode + sizeof code, 0, 1) == UC_ERR_OK) {
      uint64_t r[4] = {};
      for (int i = 0; i < 4; ++i) uc_reg_read(uc, ids[i], &r[i]);
      out = {static_cast<uint32_t>(r[0]), static_cast<uint32_t>(r[1]), static_cast<uint32_t>(r[2]),
             static_cast<uint32_t>(r[3])};
    }
  }
  uc_close(uc);
  return out;
}

EmulatedCpu probe(GuestArch arch) {
  EmulatedCpu cpu;
  const CpuidResult l0 = run_cpuid(arch, 0, 0);
  char vendor[13] = {};
  std::memcpy(vendor, &l0.ebx, 4);
  std::memcpy(vendor + 4, &l0.edx, 4);
  std::memcpy(vendor + 8, &l0.ecx, 4);
  cpu.vendor = vendor;
  cpu.leaf1 = run_cpuid(arch, 1, 0);
  if (l0.eax >= 7) cpu.leaf7 = run_cpuid(arch, 7, 0);
  const uint32_t a = cpu.leaf1.eax;
  cpu.stepping = a & 0xf;
  cpu.family = (a >> 8) & 0xf;
  cpu.model = (a >> 4) & 0xf;
  if (cpu.family == 0xf) cpu.family += (a >> 20) & 0xff;
  if (cpu.family >= 6) cpu.model |= ((a >> 16) & 0xf) << 4;
  const CpuidResult ext0 = run_cpuid(arch, 0x80000000, 0);
  if (ext0.eax >= 0x80000001) cpu.ext1 = run_cpuid(arch, 0x80000001, 0);
  if (ext0.eax >= 0x80000004) {
    char brand[49] = {};
    for (uint32_t i = 0; i < 3; ++i) {
      const CpuidResult r = run_cpuid(arch, 0x80000002 + i, 0);
      std::memcpy(brand + 16 * i, &r, 16);
    }
    std::string name = brand;
    while (!name.empty() && name.front() == ' ') name.erase(name.begin());
    cpu.model_name = name;
  }
  return cpu;
}

}  // namespace

std::string EmulatedCpu::flags() const {
  // (register, bit, name) in the order Linux's cpufeatures.h lists them.
  struct Flag {
    const uint32_t CpuidResult::*reg;
    bool ext;
    int bit;
    const char* name;
  };
  static constexpr std::array<Flag, 40> kFlags = {{
      {&CpuidResult::edx, false, 0, "fpu"},      {&CpuidResult::edx, false, 1, "vme"},
      {&CpuidResult::edx, false, 2, "de"},       {&CpuidResult::edx, false, 3, "pse"},
      {&CpuidResult::edx, false, 4, "tsc"},      {&CpuidResult::edx, false, 5, "msr"},
      {&CpuidResult::edx, false, 6, "pae"},      {&CpuidResult::edx, false, 7, "mce"},
      {&CpuidResult::edx, false, 8, "cx8"},      {&CpuidResult::edx, false, 9, "apic"},
      {&CpuidResult::edx, false, 11, "sep"},     {&CpuidResult::edx, false, 12, "mtrr"},
      {&CpuidResult::edx, false, 13, "pge"},     {&CpuidResult::edx, false, 14, "mca"},
      {&CpuidResult::edx, false, 15, "cmov"},    {&CpuidResult::edx, false, 16, "pat"},
      {&CpuidResult::edx, false, 17, "pse36"},   {&CpuidResult::edx, false, 19, "clflush"},
      {&CpuidResult::edx, false, 23, "mmx"},     {&CpuidResult::edx, false, 24, "fxsr"},
      {&CpuidResult::edx, false, 25, "sse"},     {&CpuidResult::edx, false, 26, "sse2"},
      {&CpuidResult::edx, false, 28, "ht"},      {&CpuidResult::edx, true, 11, "syscall"},
      {&CpuidResult::edx, true, 20, "nx"},       {&CpuidResult::edx, true, 29, "lm"},
      {&CpuidResult::ecx, false, 0, "pni"},      {&CpuidResult::ecx, false, 1, "pclmulqdq"},
      {&CpuidResult::ecx, false, 9, "ssse3"},    {&CpuidResult::ecx, false, 12, "fma"},
      {&CpuidResult::ecx, false, 13, "cx16"},    {&CpuidResult::ecx, false, 19, "sse4_1"},
      {&CpuidResult::ecx, false, 20, "sse4_2"},  {&CpuidResult::ecx, false, 22, "movbe"},
      {&CpuidResult::ecx, false, 23, "popcnt"},  {&CpuidResult::ecx, false, 25, "aes"},
      {&CpuidResult::ecx, false, 26, "xsave"},   {&CpuidResult::ecx, false, 28, "avx"},
      {&CpuidResult::ecx, false, 30, "rdrand"},  {&CpuidResult::ecx, true, 0, "lahf_lm"},
  }};
  std::string out;
  for (const Flag& f : kFlags) {
    const CpuidResult& r = f.ext ? ext1 : leaf1;
    if ((r.*f.reg >> f.bit) & 1) {
      if (!out.empty()) out += ' ';
      out += f.name;
    }
  }
  return out;
}

const EmulatedCpu& emulated_cpu(GuestArch arch) {
  static std::once_flag once[2];
  static EmulatedCpu cpus[2];
  const int i = arch == GuestArch::I386 ? 0 : 1;
  std::call_once(once[i], [&] { cpus[i] = probe(arch); });
  return cpus[i];
}

}  // namespace emu
