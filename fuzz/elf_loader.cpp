// The ELF loader: bytes as an executable (ElfImage::open, then open_program, which also
// follows #! lines and PT_INTERP through the host's files) and as an interpreter (ld.so
// for a fixed executable of the same architecture), loaded into a fresh address space
// (load_program) with its initial stack. Checked: a rejected file says why, with 126/127;
// an accepted one keeps ElfImage's promises (sorted, non-overlapping segments inside the
// file); its loaded pages hold the file's bytes and zeros past p_filesz; nothing leaks.
//
// Input: one mode byte (bit 0: through open_program; bit 1: also as an interpreter; bit 2:
// ASLR), then the file.
#include <elf.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>

#include "emu/loader/elf_image.h"
#include "emu/loader/elf_loader.h"
#include "emu/loader/initial_stack.h"
#include "emu/loader/program.h"
#include "emu/process/guest_memory.h"
#include "fuzz/harness.h"

namespace emu::fuzz {

namespace {

constexpr const char* kName = "elf_loader";

// A minimal executable of each class: one PT_LOAD of the first page, entry inside it.
template <typename Ehdr, typename Phdr>
std::string reference_exe(uint16_t machine, unsigned char cls, uint64_t base) {
  std::string file(4096, '\x90');
  Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = cls;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_type = ET_EXEC;
  eh.e_machine = machine;
  eh.e_version = EV_CURRENT;
  eh.e_entry = base + 0x100;
  eh.e_phoff = sizeof eh;
  eh.e_ehsize = sizeof eh;
  eh.e_phentsize = sizeof(Phdr);
  eh.e_phnum = 1;
  Phdr ph{};
  ph.p_type = PT_LOAD;
  ph.p_flags = PF_R | PF_X;
  ph.p_vaddr = base;
  ph.p_offset = 0;
  ph.p_filesz = 4096;
  ph.p_memsz = 8192;
  ph.p_align = 4096;
  std::memcpy(file.data(), &eh, sizeof eh);
  std::memcpy(file.data() + sizeof eh, &ph, sizeof ph);
  return file;
}

struct References {
  MemFile exe64{reference_exe<Elf64_Ehdr, Elf64_Phdr>(EM_X86_64, ELFCLASS64, 0x400000), "emu-fuzz-ref64"};
  MemFile exe32{reference_exe<Elf32_Ehdr, Elf32_Phdr>(EM_386, ELFCLASS32, 0x8048000), "emu-fuzz-ref32"};
  std::optional<ElfImage> image64, image32;
  References() {
    ElfError e;
    image64 = ElfImage::open(exe64.path(), &e);
    image32 = ElfImage::open(exe32.path(), &e);
    if (!image64 || !image32) fail(kName, "the reference executables do not open: " + e.message);
  }
};

References& references() {
  static References r;
  return r;
}

void check_rejection(const ElfError& e, const char* what) {
  if ((e.exit_status != 126 && e.exit_status != 127) || e.errno_value <= 0 || e.message.empty())
    fail(kName, std::string(what) + " rejected without a proper reason: status " + std::to_string(e.exit_status) +
                    " errno " + std::to_string(e.errno_value) + " '" + e.message + "'");
}

// What ElfImage promises of an image it accepted.
void check_image(const ElfImage& img, uint64_t file_size) {
  const auto& segs = img.segments();
  if (segs.empty()) fail(kName, "accepted an image without loadable segments");
  for (size_t i = 0; i < segs.size(); ++i) {
    const ElfSegment& s = segs[i];
    if (s.filesz > s.memsz || s.offset > file_size || s.filesz > file_size - s.offset)
      fail(kName, "accepted a segment past the end of the file");
    if (s.vaddr % mmu::kPageSize != s.offset % mmu::kPageSize) fail(kName, "accepted a misaligned segment");
    if (s.vaddr + s.memsz < s.vaddr) fail(kName, "accepted a segment that wraps");
    if (i > 0 && s.vaddr < segs[i - 1].vaddr + segs[i - 1].memsz) fail(kName, "accepted overlapping segments");
  }
  if (img.lowest_vaddr() > img.highest_vaddr()) fail(kName, "lowest_vaddr above highest_vaddr");
}

// The fuzzed image's pages once loaded: file bytes up to p_filesz, zeros after, wherever a
// page belongs to that segment alone (a page two segments share is the later one's, as on
// Linux) and the VMA there is the image's.
void check_loaded_bytes(const ElfImage& img, uint64_t bias, const std::string& vma_name, std::string_view file,
                        mmu::AddressSpace& space, const GuestMemory& mem) {
  const auto& segs = img.segments();
  const auto vmas = space.vmas(0);
  auto page_range = [&](const ElfSegment& s) {
    const uint64_t lo = mmu::page_floor(s.vaddr + bias);
    const uint64_t hi = mmu::page_floor(s.vaddr + bias + s.memsz + mmu::kPageSize - 1);
    return std::pair{lo, hi};
  };
  const size_t checked = std::min<size_t>(segs.size(), 16);
  for (size_t i = 0; i < checked; ++i) {
    const ElfSegment& s = segs[i];
    if (s.memsz == 0 || !(s.flags & (PF_R | PF_W | PF_X))) continue;
    const uint64_t samples[] = {0, s.filesz ? s.filesz - 1 : 0, s.filesz, s.memsz - 1,
                                mmu::page_floor(s.vaddr + s.filesz + mmu::kPageSize - 1) - s.vaddr - 1};
    for (const uint64_t off : samples) {
      if (off >= s.memsz) continue;
      const uint64_t addr = s.vaddr + bias + off;
      const uint64_t page = mmu::page_floor(addr);
      bool shared = false;
      for (size_t j = 0; j < segs.size() && !shared; ++j) {
        if (j == i) continue;
        const auto [lo, hi] = page_range(segs[j]);
        shared = page >= lo && page < hi;
      }
      if (shared) continue;
      const auto vma = std::find_if(vmas.begin(), vmas.end(), [&](const mmu::Vma& v) { return v.contains(addr); });
      if (vma == vmas.end() || vma->name != vma_name) continue;
      uint8_t got = 0;
      if (!mem.read(0, addr, &got, 1)) continue;  // the pool may be out of frames
      const uint8_t want = off < s.filesz ? static_cast<uint8_t>(file[s.offset + off]) : 0;
      if (got != want)
        fail(kName, "segment " + std::to_string(i) + " byte at offset " + std::to_string(off) + " reads " +
                        std::to_string(got) + ", the file says " + std::to_string(want));
    }
  }
}

struct Fuzzed {
  const ElfImage* image;  // the fuzzed file's image, where it is the exe or the interp
  bool is_interp;
  std::string_view bytes;
};

void load(const Program& prog, bool aslr, const Fuzzed& fuzzed) {
  const GuestArch arch = prog.exe.arch();
  {
    auto space = new_space(arch);
    GuestMemory mem(*space);
    LoadedImage out;
    std::string error;
    if (!load_program(prog, *space, 0, aslr, out, &error)) {
      if (error.empty()) fail(kName, "load_program failed without a reason");
    } else {
      for (const mmu::Vma& v : space->vmas(0))
        if (v.end > space->virt_limit() || v.start >= v.end) fail(kName, "a VMA outside the address space");
      if (fuzzed.image) {
        const uint64_t bias = fuzzed.is_interp ? out.interp_base : out.bias;
        check_loaded_bytes(*fuzzed.image, bias, fuzzed.is_interp ? prog.guest_interp : prog.guest_exe, fuzzed.bytes,
                           *space, mem);
      }
      const uint64_t sp = build_initial_stack(mem, 0, arch, out, prog.execfn, prog.argv, {"FUZZ=1"}, &error);
      if (sp == 0 && error.empty()) fail(kName, "build_initial_stack failed without a reason");
      if (sp % 16 != 0) fail(kName, "initial stack pointer not 16-byte aligned");
    }
  }
  check_pool_empty(kName, small_pool());
}

}  // namespace

int elf_loader(const uint8_t* data, size_t size) {
  init_process();
  References& refs = references();
  (void)small_pool();
  const int fds_before = count_host_fds();
  {
    Input in(data, size);
    const uint8_t mode = in.u8();
    const std::string_view file = in.rest();
    (void)parse_shebang(file.substr(0, kShebangBytes));
    MemFile mf(file);

    ElfError error;
    const std::optional<ElfImage> img = ElfImage::open(mf.path(), &error);
    if (!img) {
      check_rejection(error, "an image");
    } else {
      check_image(*img, file.size());
    }

    if (mode & 1) {
      // As execve would: #! lines and PT_INTERP followed through the host's files.
      ElfError e;
      const std::optional<Program> prog = open_program(mf.path(), {mf.path(), "a1"}, Sysroot(), &e);
      if (!prog) {
        check_rejection(e, "a program");
      } else {
        const bool ours = prog->exe.path() == mf.path();
        load(*prog, mode & 4, {ours ? &prog->exe : nullptr, false, file});
      }
    } else if (img) {
      Program prog{*img, std::nullopt, {"/fuzz/exe"}, "/fuzz/exe", "/fuzz/exe", mf.path(), {}};
      load(prog, mode & 4, {&prog.exe, false, file});
    }
    if ((mode & 2) && img) {
      // The same image as the dynamic linker of an executable of its class.
      const ElfImage& exe = img->arch() == GuestArch::I386 ? *refs.image32 : *refs.image64;
      Program prog{exe, *img, {"/fuzz/exe"}, "/fuzz/exe", "/fuzz/exe", exe.path(), "/fuzz/ld.so"};
      load(prog, mode & 4, {&*prog.interp, true, file});
    }
  }
  if (count_host_fds() != fds_before) fail(kName, "host fds leaked");
  return 0;
}

}  // namespace emu::fuzz
