// The library path's run-time loading (kernels/library/library_api.h), which needs no GPU: cuDNN
// and cuBLASLt open by soname (or by the path CMake found), every function of the tables
// resolves, and the versions pass the check. Runs in cxr_tests_cuda wherever it is built (on a
// machine without a GPU too, before the binary reports the GPU cases as skipped).
#include <doctest/doctest.h>

#include "kernels/library.h"
#include "kernels/library/library_api.h"

using namespace cxr;

TEST_CASE("--kernels library: cuDNN and cuBLASLt load, every function resolves, the versions pass" *
          doctest::test_suite("cuda")) {
  const library::LibraryApi& api = library::library_api();
  MESSAGE("loaded: " << api.description);
  CHECK(api.cudnn.cudnnGetVersion() >= static_cast<std::size_t>(library::kMinCudnnVersion));
  CHECK(api.lt.cublasLtGetVersion() / 10000 == CUBLAS_VER_MAJOR);
  CHECK(std::string(api.cudnn.cudnnGetErrorString(CUDNN_STATUS_BAD_PARAM)).find("BAD_PARAM") != std::string::npos);
  // Every pointer of both tables is set (a missing symbol would have thrown, naming it).
#define CXR_CHECK_SET(name) CHECK_MESSAGE(static_cast<bool>(api.cudnn.name), #name);
  CXR_CUDNN_FUNCTIONS(CXR_CHECK_SET)
#undef CXR_CHECK_SET
#define CXR_CHECK_SET(name) CHECK_MESSAGE(static_cast<bool>(api.lt.name), #name);
  CXR_CUBLASLT_FUNCTIONS(CXR_CHECK_SET)
#undef CXR_CHECK_SET
  CHECK(library::version_string(91900) == "9.19.0");
}
