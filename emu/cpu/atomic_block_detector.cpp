#include "emu/cpu/atomic_block_detector.h"

#include <stdexcept>

#include "emu/cpu/capstone_lock.h"

namespace emu {

AtomicBlockDetector::AtomicBlockDetector(GuestArch arch) : arch_(arch), table_(new Entry[kEntries]) {
  std::lock_guard g(capstone_lock());
  if (cs_open(CS_ARCH_X86, arch == GuestArch::I386 ? CS_MODE_32 : CS_MODE_64, &handle_) != CS_ERR_OK)
    throw std::runtime_error("capstone: cannot open an x86 disassembler");
  cs_option(handle_, CS_OPT_DETAIL, CS_OPT_ON);
  insn_ = cs_malloc(handle_);
}

AtomicBlockDetector::~AtomicBlockDetector() {
  if (insn_) cs_free(insn_, 1);
  if (handle_) cs_close(&handle_);
}

namespace {
// Every atomic looked for has a LOCK prefix (0xF0) or is xchg with memory (opcode 0x86 or
// 0x87): a block without any of those bytes has none and needs no disassembly. Most blocks
// are such: without this filter, Capstone (and its lock) took half of the CPU of a
// single-threaded python3 running sqlite once it mapped shared memory (its scans missed the
// block cache over and over on a program with more blocks than the cache holds).
bool may_hold_atomic(std::span<const uint8_t> code) {
  for (const uint8_t b : code)
    if (b == 0xF0 || b == 0x86 || b == 0x87) return true;
  return false;
}
}  // namespace

bool AtomicBlockDetector::contains_atomic(std::span<const uint8_t> code, uint64_t address) {
  if (!may_hold_atomic(code)) return false;
  const uint8_t* p = code.data();
  size_t left = code.size();
  uint64_t pc = address;
  std::lock_guard g(capstone_lock());
  while (left > 0 && cs_disasm_iter(handle_, &p, &left, &pc, insn_)) {
    const cs_x86& x = insn_->detail->x86;
    if (x.prefix[0] == X86_PREFIX_LOCK) return true;
    if (insn_->id == X86_INS_XCHG) {
      for (uint8_t i = 0; i < x.op_count; ++i)
        if (x.operands[i].type == X86_OP_MEM) return true;  // xchg with memory is locked implicitly
    }
  }
  return false;
}

bool AtomicBlockDetector::scan(uint64_t address, uint32_t size, std::span<const uint8_t> code) {
  const bool atomic = contains_atomic(code, address);
  remember(address, size, atomic ? kNeedsGate : kNoAtomics);
  return atomic;
}

bool AtomicBlockDetector::find_sites(std::span<const uint8_t> code, uint64_t address, std::vector<AtomicSite>& sites,
                                     bool* undecoded) {
  if (!may_hold_atomic(code)) return false;
  const uint8_t* p = code.data();
  size_t left = code.size();
  uint64_t pc = address;
  bool any = false;
  std::lock_guard g(capstone_lock());
  while (left > 0 && cs_disasm_iter(handle_, &p, &left, &pc, insn_)) {
    const cs_x86& x = insn_->detail->x86;
    bool atomic = x.prefix[0] == X86_PREFIX_LOCK;
    if (!atomic && insn_->id == X86_INS_XCHG) {
      for (uint8_t i = 0; i < x.op_count; ++i)
        if (x.operands[i].type == X86_OP_MEM) atomic = true;
    }
    if (!atomic) continue;
    any = true;
    AtomicSite site;
    if (decode_atomic_site(*insn_, arch_, &site)) {
      sites.push_back(site);
    } else {
      *undecoded = true;
    }
  }
  return any;
}

}  // namespace emu
