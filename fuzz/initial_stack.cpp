// The initial stack: build_initial_stack with fuzzed argv, envp, AT_EXECFN and image words
// (the auxiliary vector's values), in a fresh address space with little memory. Either it
// fails with a reason, or the stack reads back as a program sees it: argc, the argv and envp
// pointers to exactly the strings given, then the auxiliary vector it reported, AT_RANDOM,
// AT_EXECFN and AT_PLATFORM pointing at what they should, 16-byte aligned.
//
// Input: flags (bit 0: i386), the image's words, execfn, then argv and envp: a count, and
// per string a byte: below 0x80 that many bytes follow; below 0xf0 a byte repeated
// (byte - 0x80) * 64 times; else a repeated byte and a 16-bit size in 16-byte units (strings
// up to 1 MiB, 12 MiB in all: more than the stack may hold).
#include <elf.h>

#include <algorithm>
#include <string>
#include <vector>

#include "emu/loader/initial_stack.h"
#include "emu/process/guest_memory.h"
#include "fuzz/harness.h"

namespace emu::fuzz {

namespace {

constexpr const char* kName = "initial_stack";
constexpr size_t kMaxTotalBytes = size_t{12} << 20;

std::vector<std::string> strings(Input& in, size_t& total) {
  std::vector<std::string> out(in.u8());
  for (std::string& s : out) {
    const uint8_t spec = in.u8();
    // execve's strings end at their NUL: none inside.
    if (spec < 0x80) {
      s = in.bytes(spec);
      std::replace(s.begin(), s.end(), '\0', '\1');
    } else {
      const char fill = static_cast<char>(std::max<uint8_t>(in.u8(), 1));
      const size_t n = spec < 0xf0 ? size_t{spec - 0x80u} * 64 : size_t{in.u16()} * 16;
      if (total + n <= kMaxTotalBytes) s.assign(n, fill);
    }
    total += s.size();
  }
  return out;
}

class Reader {
 public:
  Reader(const GuestMemory& mem, GuestArch arch, uint64_t top) : mem_(mem), word_(pointer_size(arch)), top_(top) {}
  uint64_t word(uint64_t addr) {
    uint64_t v = 0;
    if (!mem_.read(0, addr, &v, word_)) fail(kName, "stack word at " + hex(addr) + " does not read back");
    return v;
  }
  std::string str(uint64_t addr, size_t max, const char* what) {
    if (addr >= top_) fail(kName, std::string(what) + " points above the stack: " + hex(addr));
    std::string s;
    if (!mem_.read_string(0, addr, max, s)) fail(kName, std::string(what) + " string does not read back");
    return s;
  }
  unsigned word_size() const { return word_; }
  static std::string hex(uint64_t v) {
    char b[24];
    std::snprintf(b, sizeof b, "%#llx", static_cast<unsigned long long>(v));
    return b;
  }

 private:
  const GuestMemory& mem_;
  const unsigned word_;
  const uint64_t top_;
};

void check_strings(Reader& r, uint64_t& at, const std::vector<std::string>& want, const char* what) {
  for (const std::string& s : want) {
    const std::string got = r.str(r.word(at), s.size() + 1, what);
    if (got != s) fail(kName, std::string(what) + " string differs");
    at += r.word_size();
  }
  if (r.word(at) != 0) fail(kName, std::string(what) + " not ended by a null pointer");
  at += r.word_size();
}

}  // namespace

int initial_stack(const uint8_t* data, size_t size) {
  init_process();
  (void)small_pool();
  Input in(data, size);
  const GuestArch arch = (in.u8() & 1) ? GuestArch::I386 : GuestArch::X86_64;
  const uint64_t word_mask = arch == GuestArch::I386 ? 0xffffffffu : ~uint64_t{0};
  LoadedImage image;
  image.entry = in.u64();
  image.phdr = in.u64();
  image.phnum = in.u16();
  image.phent = in.u16();
  image.interp_base = in.u64();
  size_t total = 0;
  std::string execfn(in.bytes(in.u8()));
  std::replace(execfn.begin(), execfn.end(), '\0', '\1');
  const std::vector<std::string> argv = strings(in, total);
  const std::vector<std::string> envp = strings(in, total);
  {
    auto space = new_space(arch);
    GuestMemory mem(*space);
    std::string error;
    Auxv auxv;
    const uint64_t sp = build_initial_stack(mem, 0, arch, image, execfn, argv, envp, &error, &auxv);
    if (sp == 0) {
      if (error.empty()) fail(kName, "failed without a reason");
    } else {
      const uint64_t top = default_stack(arch).top;
      if (sp % 16 != 0 || sp >= top) fail(kName, "bad stack pointer " + Reader::hex(sp));
      Reader r(mem, arch, top);
      if (r.word(sp) != argv.size()) fail(kName, "argc differs");
      uint64_t at = sp + r.word_size();
      check_strings(r, at, argv, "argv");
      check_strings(r, at, envp, "envp");
      if (auxv.empty() || auxv.back().first != AT_NULL) fail(kName, "auxv does not end with AT_NULL");
      for (const auto& [key, value] : auxv) {
        const uint64_t k = r.word(at), v = r.word(at + r.word_size());
        at += 2 * r.word_size();
        if (k != (key & word_mask) || v != (value & word_mask))
          fail(kName, "auxv entry " + std::to_string(key) + " differs from what was reported");
        switch (key) {
          case AT_EXECFN:
            if (r.str(v, execfn.size() + 1, "AT_EXECFN") != execfn) fail(kName, "AT_EXECFN string differs");
            break;
          case AT_PLATFORM:
            if (r.str(v, 16, "AT_PLATFORM") != machine_name(arch)) fail(kName, "AT_PLATFORM string differs");
            break;
          case AT_RANDOM: {
            uint8_t random[16];
            if (v + 16 > top || !mem.read(0, v, random, sizeof random)) fail(kName, "AT_RANDOM bytes unreadable");
            break;
          }
          case AT_PHDR:
            if (v != (image.phdr & word_mask)) fail(kName, "AT_PHDR is not the image's");
            break;
          case AT_ENTRY:
            if (v != (image.entry & word_mask)) fail(kName, "AT_ENTRY is not the image's");
            break;
          case AT_BASE:
            if (v != (image.interp_base & word_mask)) fail(kName, "AT_BASE is not the image's");
            break;
          default: break;
        }
      }
    }
  }
  check_pool_empty(kName, small_pool());
  return 0;
}

}  // namespace emu::fuzz
