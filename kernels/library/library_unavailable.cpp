// The library path where it cannot exist: the emulated device (libcxr_emu) and a real-GPU build
// without cuDNN's or cuBLASLt's headers. Every entry point of kernels/library.h throws the reason;
// kernels/library.cpp checks the device first, so the CPU gets its own message.
#include "kernels/library.h"

#include "tensor/backend.h"

#ifndef CXR_LIBRARY_MISSING  // set by CMake for the real-GPU build without the headers
#define CXR_LIBRARY_MISSING "not searched"
#endif

namespace cxr::library {

namespace {

[[noreturn]] void unavailable() {
  if (backend::is_emulated())
    CXR_FAIL("--kernels library: the emulated CUDA device (cuda-emu) runs only the hand-written kernels; cuDNN and ",
             "cuBLASLt need a real GPU. Run with --kernels cxr");
  CXR_FAIL("--kernels library: this build has no cuDNN or cuBLASLt (their headers were not found when it was ",
           "configured: ", CXR_LIBRARY_MISSING, "). Install cuDNN 9 and rebuild, or run with --kernels cxr");
}

}  // namespace

namespace detail {
std::string require_libraries() { unavailable(); }
}  // namespace detail

void conv2d_forward(const Conv2dDims&, const Tensor&, const Tensor&, const Tensor&, Tensor&) { unavailable(); }
void conv2d_backward_data(const Conv2dDims&, const Tensor&, const Tensor&, Tensor&) { unavailable(); }
void conv2d_backward_weight(const Conv2dDims&, const Tensor&, const Tensor&, Tensor&) { unavailable(); }
void batch_norm2d_forward_train(const Tensor&, const Tensor&, const Tensor&, Tensor&, Tensor&, Tensor&, Tensor&,
                                Tensor&, float, float) {
  unavailable();
}
void batch_norm2d_forward_eval(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, Tensor&,
                               float) {
  unavailable();
}
void batch_norm2d_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, Tensor&, Tensor&,
                           Tensor&) {
  unavailable();
}
void linear_forward(const Tensor&, const Tensor&, const Tensor&, Tensor&) { unavailable(); }
void linear_backward(const Tensor&, const Tensor&, const Tensor&, Tensor&, Tensor&) { unavailable(); }

}  // namespace cxr::library
