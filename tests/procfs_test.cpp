// The guest's /proc files as text: maps lines (Linux's padding), stat and status with the
// guest's fields put in, auxv words for both ABIs, the fd directory's entries, paths.
#include <gtest/gtest.h>

#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cinttypes>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "emu/loader/file_source.h"
#include "emu/signals/guest_signals.h"
#include "emu/syscalls/procfs_cpuinfo.h"
#include "emu/syscalls/procfs_fd_dir.h"
#include "emu/syscalls/procfs_maps.h"
#include "emu/syscalls/procfs_process.h"
#include "emu/syscalls/sys_procfs.h"

namespace {

using namespace emu::procfs;
using emu::HostFile;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// ---- maps ----

TEST(ProcfsMaps, FileLinePadsThePathToColumn73) {
  MapsEntry e{0x7ffff7dde000, 0x7ffff7e04000, mmu::kProtRead, false, 0, 0xfe, 0, 332835,
              "/usr/lib/x86_64-linux-gnu/libc.so.6"};
  const std::string line = format_maps_line(e);
  EXPECT_EQ(line, "7ffff7dde000-7ffff7e04000 r--p 00000000 fe:00 332835                     "
                  "/usr/lib/x86_64-linux-gnu/libc.so.6\n");
  EXPECT_EQ(line.find('/'), 73u);
}

TEST(ProcfsMaps, I386AddressesAreEightDigitsAndPaddedTheSame) {
  MapsEntry e{0x08048000, 0x08049000, mmu::kProtRead | mmu::kProtExec, false, 0x1000, 8, 1, 42, "/bin/busybox"};
  const std::string line = format_maps_line(e);
  EXPECT_TRUE(line.starts_with("08048000-08049000 r-xp 00001000 08:01 42 ")) << line;
  EXPECT_EQ(line.find('/'), 73u) << line;
  EXPECT_TRUE(line.ends_with(" /bin/busybox\n"));
}

TEST(ProcfsMaps, AnonymousLineEndsAfterTheInodeAndASpace) {
  MapsEntry e{0x7ffff7fb3000, 0x7ffff7fc0000, mmu::kProtRead | mmu::kProtWrite, false, 0, 0, 0, 0, ""};
  EXPECT_EQ(format_maps_line(e), "7ffff7fb3000-7ffff7fc0000 rw-p 00000000 00:00 0 \n");
}

TEST(ProcfsMaps, NamedAnonymousAndSharedAndNoPermissions) {
  MapsEntry heap{0x555555559000, 0x55555557a000, mmu::kProtRead | mmu::kProtWrite, false, 0, 0, 0, 0, "[heap]"};
  EXPECT_EQ(format_maps_line(heap),
            "555555559000-55555557a000 rw-p 00000000 00:00 0                          [heap]\n");
  MapsEntry shared{0x1000, 0x2000, 0, true, 0, 0, 0, 0, ""};
  EXPECT_EQ(format_maps_line(shared), "00001000-00002000 ---s 00000000 00:00 0 \n");
}

// The header ends in a space and seq_pad puts one more, padded or not: two spaces then.
TEST(ProcfsMaps, AHeaderLongerThanTheWidthGetsTwoSpaces) {
  MapsEntry e{0xffffffffff600000, 0xffffffffff601000, mmu::kProtExec, false, 0x123456789a, 0x1234, 0xabcde,
              123456789012345, "/x"};
  const std::string line = format_maps_line(e);
  EXPECT_EQ(line, "ffffffffff600000-ffffffffff601000 --xp 123456789a 1234:abcde 123456789012345  /x\n");
}

// The host kernel's own maps, parsed and written again, come out byte for byte: the format
// is Linux's, whatever the widths.
TEST(ProcfsMaps, HostMapsRoundTrip) {
  std::ifstream in("/proc/self/maps");
  std::string line;
  int checked = 0;
  while (std::getline(in, line)) {
    unsigned long long start, end, offset, inode;
    unsigned dev_major, dev_minor;
    char perms[5] = {};
    int consumed = 0;
    ASSERT_EQ(std::sscanf(line.c_str(), "%llx-%llx %4c %llx %x:%x %llu %n", &start, &end, perms, &offset, &dev_major,
                          &dev_minor, &inode, &consumed),
              7)
        << line;
    MapsEntry e;
    e.start = start;
    e.end = end;
    e.prot = (perms[0] == 'r' ? mmu::kProtRead : 0) | (perms[1] == 'w' ? mmu::kProtWrite : 0) |
             (perms[2] == 'x' ? mmu::kProtExec : 0);
    e.shared = perms[3] == 's';
    e.offset = offset;
    e.dev_major = dev_major;
    e.dev_minor = dev_minor;
    e.inode = inode;
    e.path = line.substr(static_cast<size_t>(consumed));
    EXPECT_EQ(format_maps_line(e), line + "\n");
    ++checked;
  }
  EXPECT_GT(checked, 5);
}

TEST(ProcfsMaps, EntriesHideTheGdtAndCarryTheFilesDeviceAndInode) {
  std::string path = testing::TempDir() + "/procfs_test_XXXXXX";
  const int fd = ::mkostemp(path.data(), O_CLOEXEC);
  ASSERT_GE(fd, 0);
  struct stat st {};
  ASSERT_EQ(::fstat(fd, &st), 0);
  auto source = emu::FileSource::from_fd(fd, path);
  ::close(fd);
  ::unlink(path.c_str());
  ASSERT_TRUE(source);

  std::vector<mmu::Vma> vmas(3);
  vmas[0].start = 0x8048000;
  vmas[0].end = 0x8049000;
  vmas[0].prot = mmu::kProtRead | mmu::kProtExec;
  vmas[0].kind = mmu::VmaKind::FilePrivate;
  vmas[0].source = source;
  vmas[0].source_offset = 0x3000;
  vmas[0].name = path;
  vmas[1].start = 0xfffde000;
  vmas[1].end = 0xffffe000;
  vmas[1].prot = mmu::kProtRead | mmu::kProtWrite;
  vmas[1].flags = mmu::kVmaGrowsDown;
  vmas[1].name = "[stack]";
  vmas[2].start = 0xfffff000;
  vmas[2].end = 0x100000000;
  vmas[2].prot = mmu::kProtRead | mmu::kProtWrite;
  vmas[2].name = "[gdt]";

  const auto entries = maps_entries(vmas);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].offset, 0x3000u);
  EXPECT_EQ(entries[0].dev_major, major(st.st_dev));
  EXPECT_EQ(entries[0].dev_minor, minor(st.st_dev));
  EXPECT_EQ(entries[0].inode, st.st_ino);
  EXPECT_EQ(entries[1].path, "[stack]");
  EXPECT_EQ(entries[1].inode, 0u);
  EXPECT_EQ(format_maps(entries).find("[gdt]"), std::string::npos);
}

// ---- process files ----

TEST(ProcfsProcess, VmFactsFollowLinuxsAccounting) {
  std::vector<mmu::Vma> v(6);
  auto set = [](mmu::Vma& m, uint64_t s, uint64_t e, uint8_t prot, const char* name, bool file = true) {
    m.start = s;
    m.end = e;
    m.prot = prot;
    m.name = name;
    m.kind = file ? mmu::VmaKind::FilePrivate : mmu::VmaKind::Anonymous;
  };
  set(v[0], 0x400000, 0x401000, mmu::kProtRead, "/bin/prog");
  set(v[1], 0x401000, 0x405000, mmu::kProtRead | mmu::kProtExec, "/bin/prog");
  set(v[2], 0x405000, 0x407000, mmu::kProtRead | mmu::kProtWrite, "/bin/prog");
  set(v[3], 0x407000, 0x40a000, mmu::kProtRead | mmu::kProtWrite, "[heap]", false);
  v[3].flags = mmu::kVmaHeap;
  set(v[4], 0x7000000, 0x7002000, mmu::kProtRead | mmu::kProtExec, "/lib/libc.so");
  set(v[5], 0x7ff000, 0x800000, mmu::kProtRead | mmu::kProtWrite, "[stack]", false);
  v[5].flags = mmu::kVmaGrowsDown;
  const VmFacts f = vm_facts(v, "/bin/prog");
  EXPECT_EQ(f.size, 0xa000u + 0x2000u + 0x1000u);
  EXPECT_EQ(f.data, 0x2000u + 0x3000u);  // the program's data and the heap; not the stack
  EXPECT_EQ(f.stack, 0x1000u);
  EXPECT_EQ(f.exec, 0x4000u + 0x2000u);
  EXPECT_EQ(f.start_code, 0x401000u);
  EXPECT_EQ(f.end_code, 0x405000u);
  EXPECT_EQ(f.start_data, 0x405000u);
  EXPECT_EQ(f.end_data, 0x407000u);
  EXPECT_EQ(f.start_brk, 0x407000u);
}

TEST(ProcfsProcess, CommIsTheBaseNameCutTo15Bytes) {
  EXPECT_EQ(comm_of("/usr/bin/cat"), "cat");
  EXPECT_EQ(comm_of("/opt/a-very-long-program-name"), "a-very-long-pro");
  EXPECT_EQ(comm_of("prog"), "prog");
  EXPECT_EQ(format_comm("cat"), "cat\n");
}

TEST(ProcfsProcess, CmdlineEndsEveryArgumentWithANul) {
  EXPECT_EQ(format_cmdline({"/bin/cat", "-n", ""}), std::string("/bin/cat\0-n\0\0", 13));
  EXPECT_EQ(format_cmdline({}), "");
}

TEST(ProcfsProcess, AuxvWordsAreTheGuestsPointerSize) {
  const emu::Auxv auxv = {{AT_PAGESZ, 4096}, {AT_ENTRY, 0x8049000}, {AT_NULL, 0}};
  const std::string i386 = encode_auxv(auxv, true);
  ASSERT_EQ(i386.size(), 3u * 8);
  uint32_t w32[6];
  std::memcpy(w32, i386.data(), sizeof w32);
  EXPECT_EQ(w32[0], uint32_t{AT_PAGESZ});
  EXPECT_EQ(w32[1], 4096u);
  EXPECT_EQ(w32[2], uint32_t{AT_ENTRY});
  EXPECT_EQ(w32[3], 0x8049000u);
  EXPECT_EQ(w32[4], 0u);
  EXPECT_EQ(w32[5], 0u);

  const std::string x64 = encode_auxv(auxv, false);
  ASSERT_EQ(x64.size(), 3u * 16);
  uint64_t w64[6];
  std::memcpy(w64, x64.data(), sizeof w64);
  EXPECT_EQ(w64[0], uint64_t{AT_PAGESZ});
  EXPECT_EQ(w64[1], 4096u);
  EXPECT_EQ(w64[3], 0x8049000u);
  EXPECT_EQ(w64[4], 0u);
}

TEST(ProcfsProcess, AuxvAlwaysEndsWithOneAtNull) {
  EXPECT_EQ(encode_auxv({{AT_PAGESZ, 4096}}, false).size(), 2u * 16);  // AT_NULL added
  EXPECT_EQ(encode_auxv({{AT_PAGESZ, 4096}, {AT_NULL, 0}, {AT_ENTRY, 1}}, true).size(), 2u * 8);  // stops there
}

TEST(ProcfsProcess, FdSizeGrowsLikeLinuxsFdTable) {
  EXPECT_EQ(fd_size_for(0), 64);
  EXPECT_EQ(fd_size_for(63), 64);
  EXPECT_EQ(fd_size_for(64), 128);
  EXPECT_EQ(fd_size_for(127), 128);
  EXPECT_EQ(fd_size_for(128), 256);
  EXPECT_EQ(fd_size_for(255), 256);
  EXPECT_EQ(fd_size_for(256), 512);
  EXPECT_EQ(fd_size_for(1023), 1024);
}

ProcessFacts sample_facts() {
  ProcessFacts f;
  f.pid = 300;
  f.tid = 300;
  f.ppid = 299;
  f.comm = "prog";
  f.threads = 3;
  f.fd_size = 64;
  f.vm.size = 10 << 20;
  f.vm.data = 2 << 20;
  f.vm.stack = 132 << 10;
  f.vm.exec = 1 << 20;
  f.vm.start_code = 0x401000;
  f.vm.end_code = 0x405000;
  f.vm.start_data = 0x405000;
  f.vm.end_data = 0x407000;
  f.vm.start_brk = 0x407000;
  f.rss_pages = 250;
  f.sig_pending = 0;
  f.shared_pending = emu::signal_bit(10);
  f.sig_blocked = emu::signal_bit(2);
  f.sig_ignored = emu::signal_bit(13);
  f.sig_caught = emu::signal_bit(17) | emu::signal_bit(34);
  return f;
}

std::vector<std::string> stat_fields_of(const std::string& line) {
  std::vector<std::string> out;
  const size_t close = line.rfind(')');
  out.push_back(line.substr(0, line.find(' ')));
  out.push_back(line.substr(line.find('(') + 1, close - line.find('(') - 1));
  std::istringstream rest(line.substr(close + 2));
  for (std::string f; rest >> f;) out.push_back(f);
  return out;
}

TEST(ProcfsProcess, StatPutsTheGuestsFieldsIntoTheHostsLine) {
  // A host line: emu's pid 100 "(emu) x)", its parent, group, session, tty, times...
  std::string host = "100 (emu) x) S 1 100 90 34816 100 4194304 10 0 0 0 7 3 0 0 20 0 9 0 12345 999999 4444 "
                     "18446744073709551615";
  for (int i = 26; i <= 52; ++i) host += " " + std::to_string(i * 1000);
  host += "\n";
  const std::string out = format_stat(host, sample_facts());
  ASSERT_TRUE(out.ends_with("\n"));
  const auto f = stat_fields_of(out);
  ASSERT_EQ(f.size(), 52u) << out;
  EXPECT_EQ(f[0], "300");
  EXPECT_EQ(f[1], "prog");
  EXPECT_EQ(f[2], "R");
  EXPECT_EQ(f[3], "299");
  EXPECT_EQ(f[4], "100");    // pgrp: emu's, which getpgrp also answers the guest
  EXPECT_EQ(f[5], "90");     // session
  EXPECT_EQ(f[6], "34816");  // tty_nr
  EXPECT_EQ(f[13], "7");     // utime
  EXPECT_EQ(f[19], "3");     // num_threads
  EXPECT_EQ(f[21], "12345"); // starttime
  EXPECT_EQ(f[22], std::to_string(10 << 20));  // vsize
  EXPECT_EQ(f[23], "250");                     // rss
  EXPECT_EQ(f[24], "18446744073709551615");    // rsslim
  EXPECT_EQ(f[25], std::to_string(0x401000));
  EXPECT_EQ(f[26], std::to_string(0x405000));
  EXPECT_EQ(f[30], std::to_string(emu::signal_bit(10)));  // signal
  EXPECT_EQ(f[31], "2");                                  // blocked: SIGINT
  EXPECT_EQ(f[32], std::to_string(emu::signal_bit(13)));  // sigignore
  EXPECT_EQ(f[33], std::to_string(emu::signal_bit(17)));  // sigcatch: real-time ones not here
  EXPECT_EQ(f[37], "17");
  EXPECT_EQ(f[38], "39000");  // processor: emu's
  EXPECT_EQ(f[44], std::to_string(0x405000));
  EXPECT_EQ(f[46], std::to_string(0x407000));
  EXPECT_EQ(f[51], "0");
}

TEST(ProcfsProcess, StatOfAThreadNamesItAndHasNoExitSignal) {
  ProcessFacts facts = sample_facts();
  facts.tid = 302;
  const auto f = stat_fields_of(format_stat("", facts));
  ASSERT_EQ(f.size(), 52u);
  EXPECT_EQ(f[0], "302");
  EXPECT_EQ(f[37], "-1");
}

TEST(ProcfsProcess, StatKeepsANewerKernelsExtraFields) {
  std::string host = "1 (x) S";
  for (int i = 4; i <= 54; ++i) host += " " + std::to_string(i);
  const auto f = stat_fields_of(format_stat(host + "\n", sample_facts()));
  ASSERT_EQ(f.size(), 54u);
  EXPECT_EQ(f[53], "54");
}

TEST(ProcfsProcess, StatusReplacesTheGuestsLinesAndKeepsTheRest) {
  const std::string host =
      "Name:\temu\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t100\nNgid:\t0\nPid:\t100\nPPid:\t1\n"
      "TracerPid:\t55\nUid:\t1000\t1000\t1000\t1000\nFDSize:\t256\nVmPeak:\t  999999 kB\nVmSize:\t  999999 kB\n"
      "VmRSS:\t   77777 kB\nVmData:\t1 kB\nVmStk:\t1 kB\nVmExe:\t1 kB\nVmLib:\t1 kB\nThreads:\t9\nSigQ:\t4/63435\n"
      "SigPnd:\tffffffffffffffff\nShdPnd:\t0\nSigBlk:\t0\nSigIgn:\t0\nSigCgt:\t0\nCpus_allowed_list:\t0-1\n";
  const std::string out = format_status(host, sample_facts());
  const auto lines = lines_of(out);
  auto value = [&](const std::string& key) {
    for (const auto& l : lines)
      if (l.starts_with(key + ":\t")) return l.substr(key.size() + 2);
    return std::string("<missing>");
  };
  EXPECT_EQ(value("Name"), "prog");
  EXPECT_EQ(value("Umask"), "0022");
  EXPECT_EQ(value("State"), "R (running)");
  EXPECT_EQ(value("Tgid"), "300");
  EXPECT_EQ(value("Pid"), "300");
  EXPECT_EQ(value("PPid"), "299");
  EXPECT_EQ(value("TracerPid"), "0");
  EXPECT_EQ(value("Uid"), "1000\t1000\t1000\t1000");
  EXPECT_EQ(value("FDSize"), "64");
  EXPECT_EQ(value("VmPeak"), "   10240 kB");
  EXPECT_EQ(value("VmSize"), "   10240 kB");
  EXPECT_EQ(value("VmRSS"), "    1000 kB");
  EXPECT_EQ(value("VmData"), "    2048 kB");
  EXPECT_EQ(value("VmStk"), "     132 kB");
  EXPECT_EQ(value("VmExe"), "      16 kB");
  EXPECT_EQ(value("VmLib"), "    1008 kB");
  EXPECT_EQ(value("Threads"), "3");
  EXPECT_EQ(value("SigQ"), "1/63435");
  EXPECT_EQ(value("SigPnd"), "0000000000000000");
  EXPECT_EQ(value("ShdPnd"), "0000000000000200");
  EXPECT_EQ(value("SigBlk"), "0000000000000002");
  EXPECT_EQ(value("SigIgn"), "0000000000001000");
  EXPECT_EQ(value("SigCgt"), "0000000200010000");
  EXPECT_EQ(value("Cpus_allowed_list"), "0-1");
  EXPECT_EQ(lines.size(), lines_of(host).size());  // no line added or lost
}

TEST(ProcfsProcess, StatusWithoutTheHostsHasLinuxsKeysAllFilledIn) {
  const std::string out = format_status("", sample_facts());
  for (const char* key : {"Name:\tprog\n", "State:\tR (running)\n", "Tgid:\t300\n", "Pid:\t300\n", "PPid:\t299\n",
                          "VmSize:\t   10240 kB\n", "Threads:\t3\n", "SigCgt:\t0000000200010000\n",
                          "Cpus_allowed_list:\t"})
    EXPECT_NE(out.find(key), std::string::npos) << key << "\n" << out;
  for (const auto& line : lines_of(out)) EXPECT_FALSE(line.ends_with(":\t")) << line;  // no value left empty
}

TEST(ProcfsProcess, StatusEscapesTheNameAsLinuxDoes) {
  ProcessFacts f = sample_facts();
  f.comm = "a\\b\nc d";
  EXPECT_NE(format_status("Name:\tx\n", f).find("Name:\ta\\\\b\\nc d\n"), std::string::npos);
}

// ---- the fd directory ----

TEST(ProcfsFdDir, EntriesAreNumberedAsProcReaddirNumbersThem) {
  const auto all = fd_dir_entries({0, 1, 2, 7}, 0, 500);
  ASSERT_EQ(all.size(), 6u);
  EXPECT_EQ(all[0].name, ".");
  EXPECT_EQ(all[0].type, DT_DIR);
  EXPECT_EQ(all[0].next, 1);
  EXPECT_EQ(all[1].name, "..");
  EXPECT_EQ(all[1].next, 2);
  EXPECT_EQ(all[5].name, "7");
  EXPECT_EQ(all[5].type, DT_LNK);
  EXPECT_EQ(all[5].next, 10);
  for (const auto& e : all) EXPECT_NE(e.ino, 0u);  // glibc's readdir skips inode 0
  // From a position in the middle: fd 2 was read (position 5), fd 3..6 closed since.
  const auto rest = fd_dir_entries({0, 1, 7}, 5, 500);
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].name, "7");
}

TEST(ProcfsFdDir, Dirent64Layout) {
  uint8_t buf[64];
  const DirEntry e{1234, 9, DT_LNK, "12"};
  const size_t n = encode_dirent64(e, buf, sizeof buf);
  EXPECT_EQ(n, 24u);  // 19 + "12" + NUL = 22, aligned to 8
  uint64_t ino;
  int64_t off;
  uint16_t reclen;
  std::memcpy(&ino, buf, 8);
  std::memcpy(&off, buf + 8, 8);
  std::memcpy(&reclen, buf + 16, 2);
  EXPECT_EQ(ino, 1234u);
  EXPECT_EQ(off, 9);
  EXPECT_EQ(reclen, 24);
  EXPECT_EQ(buf[18], DT_LNK);
  EXPECT_STREQ(reinterpret_cast<const char*>(buf + 19), "12");
  EXPECT_EQ(encode_dirent64(e, buf, 23), 0u);  // does not fit
}

TEST(ProcfsFdDir, StandInIsAnEmptyDirectory) {
  const int fd = open_fd_dir_standin();
  ASSERT_GE(fd, 0);
  struct stat st {};
  ASSERT_EQ(::fstat(fd, &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_LT(::openat(fd, "0", O_RDONLY | O_CLOEXEC), 0);  // nothing of emu's to be found in it
  ::close(fd);
}

TEST(ProcfsFdDir, SeekFollowsGenericFileLlseek) {
  FdDirView view({}, "/proc/1/fd");
  EXPECT_EQ(view.seek(5, SEEK_SET), 5);
  EXPECT_EQ(view.seek(2, SEEK_CUR), 7);
  EXPECT_EQ(view.seek(-8, SEEK_CUR), -EINVAL);
  EXPECT_EQ(view.seek(0, SEEK_END), 0);
  EXPECT_EQ(view.seek(0, SEEK_DATA), -EINVAL);
  EXPECT_EQ(view.link_target(), "/proc/1/fd");
}

TEST(ProcfsFdDir, ADirectoryOfAProcessGoneListsOnlyDots) {
  FdDirView view({}, "/proc/1/fd");
  HostFile dir(open_fd_dir_standin());
  std::vector<uint8_t> out;
  EXPECT_EQ(view.read(dir, out, 10), -EINVAL);  // not even "." fits
  const int64_t n = view.read(dir, out, 4096);
  EXPECT_EQ(n, 48);  // "." and "..", 24 bytes each
  EXPECT_EQ(view.read(dir, out, 4096), 0);  // the end
  view.seek(0, SEEK_SET);
  EXPECT_EQ(view.read(dir, out, 4096), 48);  // rewinddir
}

// ---- cpuinfo ----

TEST(ProcfsCpuinfo, OneBlockPerProcessorInLinuxsFormat) {
  emu::EmulatedCpu cpu;
  cpu.vendor = "AuthenticAMD";
  cpu.model_name = "QEMU Virtual CPU version 2.5+";
  cpu.family = 6;
  cpu.model = 6;
  cpu.stepping = 3;
  cpu.leaf1.edx = 0x078bfbfd;
  cpu.leaf1.ebx = 0x800;
  const std::string out = format_cpuinfo(cpu, 3, {"2299.998", "4599.99"});
  EXPECT_TRUE(out.starts_with("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 6\nmodel\t\t: 6\n"
                              "model name\t: QEMU Virtual CPU version 2.5+\nstepping\t: 3\ncpu MHz\t\t: 2299.998\n"))
      << out;
  EXPECT_NE(out.find("\nprocessor\t: 2\n"), std::string::npos);
  EXPECT_EQ(out.find("\nprocessor\t: 3\n"), std::string::npos);
  EXPECT_NE(out.find("\nflags\t\t: fpu de pse tsc"), std::string::npos) << out;
  EXPECT_NE(out.find("\nsiblings\t: 3\n"), std::string::npos);
  EXPECT_NE(out.find("\nbogomips\t: 4599.99\n"), std::string::npos);
  EXPECT_NE(out.find("\nclflush size\t: 64\n"), std::string::npos);
  EXPECT_TRUE(out.ends_with("power management:\n\n"));
  int blocks = 0;
  for (size_t at = 0; (at = out.find("power management:\n\n", at)) != std::string::npos; at += 1) ++blocks;
  EXPECT_EQ(blocks, 3);
}

TEST(ProcfsCpuinfo, AnUnknownCpuSaysSo) {
  const std::string out = format_cpuinfo(emu::EmulatedCpu{}, 1, {});
  EXPECT_NE(out.find("vendor_id\t: unknown\n"), std::string::npos);
  EXPECT_NE(out.find("model name\t: unknown\n"), std::string::npos);
  EXPECT_EQ(out.find("cpu MHz"), std::string::npos);  // no TSC
  EXPECT_NE(out.find("flags\t\t:\n"), std::string::npos);
}

// ---- paths ----

TEST(ProcfsPath, Normalizes) {
  EXPECT_EQ(normalize_path("/proc//self/./maps/"), "/proc/self/maps");
  EXPECT_EQ(normalize_path("/proc/self/../cpuinfo"), "/proc/cpuinfo");
  EXPECT_EQ(normalize_path("/"), "/");
}

TEST(ProcfsPath, ParsesTheFormsEmuAnswers) {
  using K = ProcPath::Kind;
  using W = ProcPath::Who;
  auto p = parse_proc_path("/proc/self/maps");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, K::Process);
  EXPECT_EQ(p->who, W::Self);
  EXPECT_EQ(p->file, "maps");
  p = parse_proc_path("/proc//thread-self/status");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->who, W::ThreadSelf);
  EXPECT_EQ(p->file, "status");
  p = parse_proc_path("/proc/123/task/125/fd/");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->who, W::Pid);
  EXPECT_EQ(p->pid, 123);
  EXPECT_EQ(p->tid, 125);
  EXPECT_EQ(p->file, "fd");
  p = parse_proc_path("/proc/self/fd/3");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->file, "fd/3");
  EXPECT_EQ(parse_proc_path("/proc/self")->kind, K::SelfLink);
  EXPECT_EQ(parse_proc_path("/proc/thread-self/")->kind, K::ThreadSelfLink);
  EXPECT_EQ(parse_proc_path("/proc/cpuinfo")->kind, K::CpuInfo);
  EXPECT_EQ(parse_proc_path("/proc/123")->file, "");
}

TEST(ProcfsPath, RefusesWhatIsNotOneOfThem) {
  EXPECT_FALSE(parse_proc_path("proc/self/maps"));  // relative
  EXPECT_FALSE(parse_proc_path("/proc"));
  EXPECT_FALSE(parse_proc_path("/proc/meminfo"));
  EXPECT_FALSE(parse_proc_path("/proc/0123/maps"));  // not how /proc spells a pid
  EXPECT_FALSE(parse_proc_path("/proc/12a/maps"));
  EXPECT_FALSE(parse_proc_path("/proc/1/task/x/maps"));
  EXPECT_FALSE(parse_proc_path("/sys/self/maps"));
}

}  // namespace
