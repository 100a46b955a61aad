#include "tensor/dtype.h"

#include "tensor/backend.h"
#include "tensor/error.h"

namespace cxr {

std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::BF16: return 2;
    case DType::F16: return 2;
    case DType::U8: return 1;
    case DType::I32: return 4;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::BF16: return "bf16";
    case DType::F16: return "f16";
    case DType::U8: return "u8";
    case DType::I32: return "i32";
  }
  return "?";
}

std::string device_name(Device d) {
  if (d == Device::CPU) return "cpu";
  return backend::is_emulated() ? "cuda-emu" : "cuda";
}

Device parse_device(const std::string& name) {
  if (name == "cpu") return Device::CPU;
  if (name == "cuda" || name == "gpu" || name == "cuda-emu") {
    CXR_CHECK(backend::has_device(), "device '", name, "' requested but no CUDA device is available (",
              backend::device_description(), "); use --device cpu");
    return Device::CUDA;
  }
  CXR_FAIL("unknown device '", name, "': expected cpu or cuda");
}

}  // namespace cxr
