// /proc/cpuinfo for a guest: the CPU Unicorn emulates (the one whose CPUID the guest's code
// sees, emulated_cpu.h), not the host's. A program that reads the flags to pick code paths
// (OpenBLAS, numpy, ffmpeg, the JVM) must not choose AVX-512 because the host has it.
#pragma once

#include <string>

#include "emu/cpu/emulated_cpu.h"

namespace emu::procfs {

// What the host's /proc/cpuinfo says that the emulated CPU cannot: its clock. Both as the
// host wrote them ("2299.998", "4599.99"); empty when the host has none.
struct HostClock {
  std::string mhz;
  std::string bogomips;
};
// The host's first processor's values (read once).
const HostClock& host_clock();

// Linux's x86 format (show_cpuinfo in arch/x86/kernel/cpu/proc.c, 64-bit kernel: i386
// programs on x86_64 read the same), one block per processor 0..cpus-1, each ending in a
// blank line.
std::string format_cpuinfo(const EmulatedCpu& cpu, int cpus, const HostClock& clock);

}  // namespace emu::procfs
