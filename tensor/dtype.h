// Element types and devices.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace cxr {

// f32 is what the kernels compute in today; the others are storage types the design takes
// (u8 images, bf16/f16 for mixed precision, i32 indices).
enum class DType : std::uint8_t { F32, BF16, F16, U8, I32 };

std::size_t dtype_size(DType t);
const char* dtype_name(DType t);

template <typename T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::F32; }
template <> constexpr DType dtype_of<std::uint8_t>() { return DType::U8; }
template <> constexpr DType dtype_of<std::int32_t>() { return DType::I32; }

// CPU, or the CUDA device this program was linked with: the real GPU (libcxr_cuda) or the
// emulated one (libcxr_emu), which device_name() reports as "cuda-emu".
enum class Device : std::uint8_t { CPU, CUDA };

std::string device_name(Device d);
// "cpu", "cuda" (or "cuda-emu") -> Device; throws cxr::Error on anything else.
Device parse_device(const std::string& name);

}  // namespace cxr
