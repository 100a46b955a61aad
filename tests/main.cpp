// Test driver for cxr_tests_emu (CPU + emulated CUDA device) and cxr_tests_cuda (real GPU).
//
// cxr_tests_cuda exits with 77 (ctest: "Skipped") when no GPU exists, so a machine without
// a GPU never reports GPU cases as passed. CXR_REQUIRE_GPU=1 turns a missing GPU into a failure.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>

#include "tensor/backend.h"
#include "tests/op_check.h"

int main(int argc, char** argv) {
  // Fresh device allocations are filled with NaN so unwritten outputs fail comparisons.
  setenv("CXR_POISON_DEVICE_MEMORY", "1", 0);
  const bool emulated = cxr::backend::is_emulated();
  std::printf("cxr tests: CUDA device: %s%s\n", emulated ? "emulated " : "",
              cxr::backend::device_description().c_str());
  doctest::Context context;
  context.applyCommandLine(argc, argv);
  const int result = context.run();
  if (context.shouldExit()) return result;
  if (!emulated && !cxr::backend::has_device()) {
    if (cxr::test::gpu_required()) {
      std::printf("CXR_REQUIRE_GPU=1 but no GPU was found: failing.\n");
      return result != 0 ? result : 1;
    }
    std::printf("No GPU: the CUDA cases were skipped (set CXR_REQUIRE_GPU=1 to make this an error).\n");
    return result != 0 ? result : 77;
  }
  return result;
}
