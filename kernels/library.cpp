// library::require: the device check shared by every build, then the libraries (kernels/library/).
#include "kernels/library.h"

#include "tensor/backend.h"

namespace cxr::library {

namespace detail {
std::string require_libraries();  // kernels/library/library_context.cpp or library_unavailable.cpp
}

std::string require(Device device) {
  CXR_CHECK(device == Device::CUDA, "--kernels library runs cuDNN and cuBLASLt on a CUDA device; this run is on the ",
            device_name(device), ". Use --device cuda, or --kernels cxr (the hand-written kernels, on every device)");
  return detail::require_libraries();
}

}  // namespace cxr::library
