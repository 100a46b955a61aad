// Element types and devices.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace cxr {

// f32 is what the kernels compute in; bf16 holds the operands of mixed precision (--precision
// bf16: convolutions and matrix products read bf16, accumulate in f32); u8 images, i32
// indices; f16 is a storage type only (safetensors).
enum class DType : std::uint8_t { F32, BF16, F16, U8, I32 };

std::size_t dtype_size(DType t);
const char* dtype_name(DType t);

template <typename T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::F32; }
template <> constexpr DType dtype_of<std::uint8_t>() { return DType::U8; }
// bf16 tensors are read and written as their 16 bits (tensor/bf16.h converts).
template <> constexpr DType dtype_of<std::uint16_t>() { return DType::BF16; }
template <> constexpr DType dtype_of<std::int32_t>() { return DType::I32; }

// CPU, or the CUDA device this program was linked with: the real GPU (libcxr_cuda) or the
// emulated one (libcxr_emu), which device_name() reports as "cuda-emu".
enum class Device : std::uint8_t { CPU, CUDA };

std::string device_name(Device d);
// "cpu", "cuda" (or "cuda-emu") -> Device; throws cxr::Error on anything else.
Device parse_device(const std::string& name);

}  // namespace cxr
