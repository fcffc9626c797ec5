// The loader's checks on what it is given: executables and interpreters that are truncated or
// corrupt give a clear error and status 126 (never a crash), #! lines are split as Linux
// splits them, and the sysroot maps paths both ways.
#include <elf.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <random>

#include "emu/cpu/emulated_cpu.h"
#include "emu/loader/elf_image.h"
#include "emu/loader/program.h"
#include "emu/loader/sysroot.h"

namespace {

using emu::ElfError;
using emu::ElfImage;

// A small ELF64 executable built in memory: one PT_LOAD of the whole file at 0x400000,
// plus whatever headers a test adds.
struct ElfBuilder {
  std::vector<Elf64_Phdr> phdrs;
  std::vector<uint8_t> tail;  // bytes after the headers (PT_INTERP strings...)
  uint16_t type = ET_EXEC;

  ElfBuilder() {
    Elf64_Phdr load{};
    load.p_type = PT_LOAD;
    load.p_flags = PF_R | PF_X;
    load.p_vaddr = 0x400000;
    load.p_offset = 0;
    load.p_filesz = 0x200;
    load.p_memsz = 0x1000;
    phdrs.push_back(load);
  }
  uint64_t tail_offset() const { return sizeof(Elf64_Ehdr) + phdrs.size() * sizeof(Elf64_Phdr); }
  // Adds a PT_INTERP naming `bytes` (given exactly: a test may leave the NUL out).
  void interp(const std::string& bytes) {
    Elf64_Phdr p{};
    p.p_type = PT_INTERP;
    p.p_filesz = p.p_memsz = bytes.size();
    phdrs.insert(phdrs.begin(), p);
    interp_bytes = bytes;
  }
  std::vector<uint8_t> bytes() {
    Elf64_Ehdr eh{};
    std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = type;
    eh.e_machine = EM_X86_64;
    eh.e_version = EV_CURRENT;
    eh.e_entry = 0x400100;
    eh.e_phoff = sizeof eh;
    eh.e_ehsize = sizeof eh;
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = static_cast<uint16_t>(phdrs.size());
    for (auto& p : phdrs)
      if (p.p_type == PT_INTERP) p.p_offset = tail_offset();
    const size_t ph_bytes = phdrs.size() * sizeof(Elf64_Phdr);
    std::vector<uint8_t> out(std::max<size_t>(0x200, tail_offset() + interp_bytes.size()), 0x90);
    std::memcpy(out.data(), &eh, sizeof eh);
    std::memcpy(out.data() + sizeof eh, phdrs.data(), ph_bytes);
    std::memcpy(out.data() + tail_offset(), interp_bytes.data(), interp_bytes.size());
    return out;
  }
  std::string interp_bytes;
};

std::string write_file(const std::string& name, const std::vector<uint8_t>& bytes) {
  const std::string path = testing::TempDir() + "/" + name;
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  std::filesystem::permissions(path, std::filesystem::perms::owner_all);
  return path;
}

ElfError open_error(const std::vector<uint8_t>& bytes) {
  ElfError e;
  EXPECT_FALSE(ElfImage::open(write_file("emu_bad.elf", bytes), &e).has_value());
  return e;
}

TEST(ElfImage, ReadsAGoodImage) {
  ElfBuilder b;
  ElfError e;
  const auto img = ElfImage::open(write_file("emu_good.elf", b.bytes()), &e);
  ASSERT_TRUE(img) << e.message;
  EXPECT_EQ(img->entry(), 0x400100u);
  EXPECT_EQ(img->segments().size(), 1u);
  EXPECT_EQ(img->phdr_vaddr(), 0x400040u);  // the headers, inside the segment
  EXPECT_TRUE(img->interpreter().empty());
}

TEST(ElfImage, ReadsPtInterp) {
  ElfBuilder b;
  b.interp(std::string("/lib64/ld-linux-x86-64.so.2") + '\0');
  ElfError e;
  const auto img = ElfImage::open(write_file("emu_interp.elf", b.bytes()), &e);
  ASSERT_TRUE(img) << e.message;
  EXPECT_EQ(img->interpreter(), "/lib64/ld-linux-x86-64.so.2");
}

TEST(ElfImage, CorruptImagesAre126WithAReason) {
  struct Bad {
    const char* why;
    std::function<std::vector<uint8_t>()> make;
  };
  const std::vector<Bad> bad = {
      {"truncated ELF header", [] { auto v = ElfBuilder().bytes(); v.resize(40); return v; }},
      {"bad program header table", [] {
         auto v = ElfBuilder().bytes();
         v[offsetof(Elf64_Ehdr, e_phentsize)] = 12;
         return v;
       }},
      {"program header table past the end", [] {
         auto v = ElfBuilder().bytes();
         const uint64_t far = 1 << 20;
         std::memcpy(v.data() + offsetof(Elf64_Ehdr, e_phoff), &far, 8);
         return v;
       }},
      {"not NUL-terminated", [] { ElfBuilder b; b.interp("/lib/ld.so"); return b.bytes(); }},
      {"bad PT_INTERP size", [] { ElfBuilder b; b.interp(std::string(5000, 'a') + '\0'); return b.bytes(); }},
      {"empty PT_INTERP", [] { ElfBuilder b; b.interp(std::string("\0\0", 2)); return b.bytes(); }},
      {"overlapping", [] {
         ElfBuilder b;
         Elf64_Phdr p = b.phdrs[0];
         p.p_vaddr += 0x100;  // inside the first one, same page offset as its file offset
         p.p_offset += 0x100;
         p.p_filesz = 0;
         b.phdrs.push_back(p);
         return b.bytes();
       }},
      {"past the end of the file", [] { ElfBuilder b; b.phdrs[0].p_filesz = 0x100000; b.phdrs[0].p_memsz = 0x100000; return b.bytes(); }},
      {"malformed loadable segment", [] {
         ElfBuilder b;
         b.phdrs[0].p_offset = 0x10;  // not congruent with the address modulo the page size
         b.phdrs[0].p_filesz = 0x100;
         return b.bytes();
       }},
      {"no loadable segment", [] { ElfBuilder b; b.phdrs[0].p_type = PT_NOTE; return b.bytes(); }},
      {"not an executable", [] { ElfBuilder b; b.type = ET_REL; return b.bytes(); }},
      {"not an ELF file", [] { return std::vector<uint8_t>{'#', '!', '/', 'x'}; }},
      {"another machine", [] {
         auto v = ElfBuilder().bytes();
         v[offsetof(Elf64_Ehdr, e_machine)] = EM_AARCH64;
         return v;
       }},
  };
  for (const Bad& b : bad) {
    const ElfError e = open_error(b.make());
    EXPECT_EQ(e.exit_status, 126) << b.why;
    EXPECT_EQ(e.errno_value, ENOEXEC) << b.why;
    EXPECT_NE(e.message.find(b.why), std::string::npos) << "expected '" << b.why << "' in: " << e.message;
  }
}

// Random corruption of a real executable's first bytes never crashes the reader (the
// sanitizer builds run this too).
TEST(ElfImage, SurvivesRandomCorruption) {
  std::ifstream in("/bin/true", std::ios::binary);
  std::vector<uint8_t> real((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(real.size(), 4096u);
  std::mt19937 rng(12345);
  int opened = 0;
  for (int round = 0; round < 300; ++round) {
    auto v = real;
    const int flips = 1 + static_cast<int>(rng() % 8);
    for (int i = 0; i < flips; ++i) v[rng() % 1024] = static_cast<uint8_t>(rng());
    if (round % 7 == 0) v.resize(rng() % 2048);
    ElfError e;
    if (ElfImage::open(write_file("emu_fuzzed.elf", v), &e)) {
      ++opened;
    } else {
      EXPECT_EQ(e.exit_status, 126);
      EXPECT_FALSE(e.message.empty());
    }
  }
  EXPECT_GT(opened, 0);  // most flips miss the headers: the good path is exercised too
}

TEST(Shebang, SplitsAsLinuxDoes) {
  using emu::parse_shebang;
  EXPECT_FALSE(parse_shebang("\x7f" "ELF"));
  auto s = parse_shebang("#!/bin/sh\necho\n");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->interp, "/bin/sh");
  EXPECT_FALSE(s->arg);
  s = parse_shebang("#!  /usr/bin/env   python3 -u  \t\nx");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->interp, "/usr/bin/env");
  EXPECT_EQ(*s->arg, "python3 -u");  // one argument: the rest of the line, trimmed
  s = parse_shebang("#!/bin/sh -e\r\n");  // Linux keeps a carriage return (a DOS script fails)
  ASSERT_TRUE(s);
  EXPECT_EQ(*s->arg, "-e\r");
  s = parse_shebang(std::string("#!/bin/sh\0x\n", 13));  // a NUL ends the name: no argument
  ASSERT_TRUE(s);
  EXPECT_EQ(s->interp, "/bin/sh");
  EXPECT_FALSE(s->arg);
  s = parse_shebang("#!/bin/sh" + std::string(300, ' '));  // no newline, but the name ended
  ASSERT_TRUE(s);
  EXPECT_EQ(s->interp, "/bin/sh");
  EXPECT_FALSE(s->arg);
  s = parse_shebang("#!/bin/bash");  // no newline, short: fine
  ASSERT_TRUE(s);
  EXPECT_EQ(s->interp, "/bin/bash");
  s = parse_shebang("#!\n");
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->interp.empty());
  s = parse_shebang("#!/" + std::string(300, 'a'));  // the name runs past the buffer
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->interp.empty());
}

std::string script(const std::string& name, const std::string& text) {
  return write_file(name, std::vector<uint8_t>(text.begin(), text.end()));
}

TEST(OpenProgram, RewritesScriptsAndLimitsNesting) {
  const emu::Sysroot host;
  std::string prev = "/bin/true";
  for (int depth = 1; depth <= emu::kMaxScriptDepth + 1; ++depth) {
    const std::string path = script("emu_nest" + std::to_string(depth), "#!" + prev + " arg" + std::to_string(depth) + "\n");
    ElfError e;
    const auto p = emu::open_program(path, {path, "x"}, host, &e);
    if (depth <= emu::kMaxScriptDepth) {
      ASSERT_TRUE(p) << depth << ": " << e.message;
      EXPECT_EQ(p->argv.front(), "/bin/true");
      EXPECT_EQ(p->argv.back(), "x");
      EXPECT_EQ(p->argv.size(), 2u * depth + 2);
      EXPECT_EQ(p->execfn, path);
    } else {
      EXPECT_FALSE(p);
      EXPECT_EQ(e.errno_value, ELOOP);
      EXPECT_EQ(e.exit_status, 126);
    }
    prev = path;
  }
}

TEST(OpenProgram, MissingInterpreterIs127AndSuggestsARoot) {
  ElfBuilder b;
  b.interp(std::string("/no/such/ld-linux.so.2") + '\0');
  const std::string path = write_file("emu_no_ld.elf", b.bytes());
  ElfError e;
  EXPECT_FALSE(emu::open_program(path, {path}, emu::Sysroot(), &e));
  EXPECT_EQ(e.exit_status, 127);
  EXPECT_EQ(e.errno_value, ENOENT);
  EXPECT_NE(e.message.find("/no/such/ld-linux.so.2"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("-L"), std::string::npos) << e.message;
  // A script whose interpreter is missing: ENOENT too, as execve gives.
  const std::string s = script("emu_no_interp.sh", "#!/no/such/shell\n");
  EXPECT_FALSE(emu::open_program(s, {s}, emu::Sysroot(), &e));
  EXPECT_EQ(e.errno_value, ENOENT);
  EXPECT_EQ(e.exit_status, 127);
}

TEST(OpenProgram, CorruptInterpreterIs126) {
  std::vector<uint8_t> header_only = {0x7f, 'E', 'L', 'F', ELFCLASS64, ELFDATA2LSB, EV_CURRENT};
  header_only.resize(24);  // the identification, then the header breaks off
  const std::string ld = write_file("emu_bad_ld.so", header_only);
  ElfBuilder b;
  b.interp(ld + '\0');
  const std::string path = write_file("emu_bad_ld_user.elf", b.bytes());
  ElfError e;
  EXPECT_FALSE(emu::open_program(path, {path}, emu::Sysroot(), &e));
  EXPECT_EQ(e.exit_status, 126);
  EXPECT_NE(e.message.find("interpreter"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("truncated"), std::string::npos) << e.message;
}

TEST(OpenProgram, PermissionAndTypeErrors) {
  ElfError e;
  EXPECT_FALSE(emu::open_program("/", {"/"}, emu::Sysroot(), &e));
  EXPECT_EQ(e.exit_status, 126);
  const std::string text = script("emu_plain.txt", "no shebang here\n");
  EXPECT_FALSE(emu::open_program(text, {text}, emu::Sysroot(), &e));
  EXPECT_EQ(e.errno_value, ENOEXEC);
  if (::geteuid() != 0) {  // root may execute anything with an x bit... and read anything
    std::filesystem::permissions(text, std::filesystem::perms::owner_read);
    EXPECT_FALSE(emu::open_program(text, {text}, emu::Sysroot(), &e));
    EXPECT_EQ(e.errno_value, EACCES);
  }
}

// A FIFO with an x bit: EACCES at once, as Linux answers for what is not a regular file
// (reading its first bytes would block the exec forever).
TEST(OpenProgram, FifoIsEaccesNotAHang) {
  const std::string fifo = testing::TempDir() + "/emu_fifo_prog";
  ::unlink(fifo.c_str());
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0755), 0);
  ElfError e;
  EXPECT_FALSE(emu::open_program(fifo, {fifo}, emu::Sysroot(), &e));
  EXPECT_EQ(e.errno_value, EACCES);
  EXPECT_EQ(e.exit_status, 126);
  ::unlink(fifo.c_str());
}

TEST(Sysroot, LooksUnderTheRootFirst) {
  const std::string root = testing::TempDir() + "/emu_root";
  std::filesystem::create_directories(root + "/usr/lib");
  std::filesystem::create_directories(root + "/proc");
  std::ofstream(root + "/usr/lib/only-here.so") << "x";
  const emu::Sysroot r(root + "/");
  EXPECT_EQ(r.host_path("/usr/lib/only-here.so"), r.dir() + "/usr/lib/only-here.so");
  EXPECT_EQ(r.host_path("/usr/lib/not-here.so"), "/usr/lib/not-here.so");
  EXPECT_EQ(r.host_path("/proc/self/maps"), "/proc/self/maps");  // the running system's
  EXPECT_EQ(r.host_path("/proc"), "/proc");
  EXPECT_EQ(r.host_path("relative/x"), "relative/x");
  EXPECT_EQ(r.guest_path(r.dir() + "/usr/lib/only-here.so"), "/usr/lib/only-here.so");
  EXPECT_EQ(r.guest_path("/usr/bin/ls"), "/usr/bin/ls");
  EXPECT_EQ(r.host_path(r.dir() + "/usr/lib/only-here.so"), r.dir() + "/usr/lib/only-here.so");
  EXPECT_TRUE(emu::Sysroot("/").empty());
}

}  // namespace

namespace {

// AT_HWCAP and /proc/cpuinfo come from the engine's CPUID, for both modes (a 32-bit engine
// refuses the 64-bit register names: its answers once came back all zero).
TEST(EmulatedCpu, BothModesAnswerCpuid) {
  for (const emu::GuestArch arch : {emu::GuestArch::I386, emu::GuestArch::X86_64}) {
    const emu::EmulatedCpu& cpu = emu::emulated_cpu(arch);
    EXPECT_FALSE(cpu.vendor.empty()) << emu::to_string(arch);
    EXPECT_TRUE(cpu.leaf1.edx & 1u) << "fpu, " << emu::to_string(arch);
    EXPECT_TRUE(cpu.leaf1.edx & (1u << 26)) << "sse2, " << emu::to_string(arch);
    EXPECT_NE(cpu.flags().find("sse2"), std::string::npos) << cpu.flags();
    EXPECT_GE(cpu.family, 6u);
  }
}

}  // namespace
