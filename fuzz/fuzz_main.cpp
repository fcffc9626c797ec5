// One libFuzzer target: EMU_FUZZ_HARNESS names the harness (harness.h) this binary runs.
#include "fuzz/harness.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  emu::fuzz::init_process();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return emu::fuzz::EMU_FUZZ_HARNESS(data, size);
}
