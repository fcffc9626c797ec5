#include "emu/loader/initial_stack.h"

#include "emu/cpu/emulated_cpu.h"

#include <elf.h>

#include <cstring>
#include <random>
#include <string>
#include <unistd.h>

namespace emu {

namespace {

// Builds the image in a host buffer first and writes it with one guest copy.
class StackImage {
 public:
  StackImage(uint64_t top, unsigned word) : top_(top), word_(word) {}

  // Strings and blobs go down from the top; returns their guest address. They are kept in
  // the order pushed and laid out top-down only in write(): inserting each at the front of
  // one buffer made a large argv quadratic (4 s for 100k arguments; found by
  // fuzz/initial_stack).
  uint64_t push_bytes(const void* data, size_t len) {
    pushed_.append(static_cast<const char*>(data), len);
    lengths_.push_back(len);
    return top_ - pushed_.size();
  }
  uint64_t push_string(const std::string& s) { return push_bytes(s.c_str(), s.size() + 1); }
  // Pads so that the next push ends on an `a`-byte boundary.
  void align(uint64_t a) {
    const size_t pad = (top_ - pushed_.size()) % a;
    pushed_.append(pad, '\0');
    lengths_.push_back(pad);
  }
  void word(uint64_t w) { words_.push_back(w); }

  // Lays the words below the blob, 16-byte aligned at the start (argc), and writes it all.
  uint64_t write(GuestMemory& mem, mmu::VcpuId v) {
    const uint64_t blob_start = (top_ - pushed_.size()) & ~uint64_t{15};
    const uint64_t sp = (blob_start - words_.size() * word_) & ~uint64_t{15};
    std::vector<uint8_t> image(top_ - sp, 0);
    for (size_t i = 0; i < words_.size(); ++i) {
      const uint64_t w = words_[i];
      std::memcpy(image.data() + i * word_, &w, word_);  // little-endian: the low bytes
    }
    size_t from = 0, to = image.size();  // the first piece pushed ends at the top
    for (const size_t len : lengths_) {
      to -= len;
      std::memcpy(image.data() + to, pushed_.data() + from, len);
      from += len;
    }
    return mem.write(v, sp, image.data(), image.size()) ? sp : 0;
  }

 private:
  uint64_t top_;
  unsigned word_;
  std::string pushed_;           // every piece, in the order pushed (top-down in the image)
  std::vector<size_t> lengths_;  // their lengths
  std::vector<uint64_t> words_;
};

}  // namespace

uint64_t build_initial_stack(GuestMemory& memory, mmu::VcpuId v, GuestArch arch, const LoadedImage& image,
                             const std::string& execfn, const std::vector<std::string>& argv,
                             const std::vector<std::string>& envp, std::string* error, Auxv* auxv_out) {
  const StackLayout layout = default_stack(arch);
  mmu::MapRequest req;
  req.addr = layout.top - layout.reserved;
  req.length = layout.reserved;
  req.prot = mmu::kProtRead | mmu::kProtWrite;
  req.placement = mmu::MapPlacement::FixedNoReplace;
  req.flags = mmu::kVmaGrowsDown;
  req.name = "[stack]";
  if (const mmu::MmResult r = memory.space().map(v, req); !r.ok()) {
    *error = "cannot map the stack: " + std::string(mmu::to_string(r.error));
    return 0;
  }

  // Linux's layout (fs/exec.c, create_elf_tables), top down: a zero word, the exec'd file's
  // name, the environment and argument strings (ascending, contiguous), then aligned, the
  // platform string and the 16 random bytes. Code that reads a little past a string (word-
  // wise string functions, glibc's tunables parser) then stays inside the stack.
  StackImage st(layout.top, pointer_size(arch));
  const uint8_t end_marker[8] = {};
  st.push_bytes(end_marker, sizeof end_marker);
  const uint64_t at_execfn = st.push_string(execfn);
  std::vector<uint64_t> arg_ptrs(argv.size()), env_ptrs(envp.size());
  for (size_t i = envp.size(); i-- > 0;) env_ptrs[i] = st.push_string(envp[i]);
  for (size_t i = argv.size(); i-- > 0;) arg_ptrs[i] = st.push_string(argv[i]);
  st.align(16);
  const uint64_t at_platform = st.push_string(std::string(machine_name(arch)));
  std::random_device rd;
  uint8_t random[16];
  for (auto& b : random) b = static_cast<uint8_t>(rd());
  const uint64_t at_random = st.push_bytes(random, sizeof random);

  // The engine's CPUID, not the host's: glibc must not pick code Unicorn cannot run.
  const EmulatedCpu& cpu = emulated_cpu(arch);

  st.word(argv.size());
  for (uint64_t p : arg_ptrs) st.word(p);
  st.word(0);
  for (uint64_t p : env_ptrs) st.word(p);
  st.word(0);
  // Linux's order (create_elf_tables); no AT_SYSINFO_EHDR: there is no vDSO, and glibc
  // then makes real system calls.
  const Auxv auxv = {
      {AT_HWCAP, cpu.leaf1.edx},   {AT_MINSIGSTKSZ, kMinSigStackBytes},
      {AT_PAGESZ, mmu::kPageSize}, {AT_CLKTCK, static_cast<uint64_t>(sysconf(_SC_CLK_TCK))},
      {AT_PHDR, image.phdr},       {AT_PHENT, image.phent},
      {AT_PHNUM, image.phnum},     {AT_BASE, image.interp_base},
      {AT_FLAGS, 0},               {AT_ENTRY, image.entry},
      {AT_UID, getuid()},          {AT_EUID, geteuid()},
      {AT_GID, getgid()},          {AT_EGID, getegid()},
      {AT_SECURE, 0},              {AT_RANDOM, at_random},
      {AT_HWCAP2, 0},              {AT_EXECFN, at_execfn},
      {AT_PLATFORM, at_platform},  {AT_NULL, 0},
  };
  if (auxv_out) *auxv_out = auxv;
  for (const auto& [key, value] : auxv) {
    st.word(key);
    st.word(value);
  }
  const uint64_t sp = st.write(memory, v);
  if (sp == 0) *error = "arguments and environment do not fit the initial stack";
  return sp;
}

}  // namespace emu
