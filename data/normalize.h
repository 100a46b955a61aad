// From an 8-bit gray image to the network's input: brightness/contrast (augmentation),
// scaling, replication to C channels and per-channel standardisation, in one pass.
//
//   v = clamp(brightness * (contrast * (u - mean(u)) + mean(u)), 0, 255)   u: the pixel
//   out[c] = (v * scale - mean[c]) / std[c]
//
// Defaults are torchvision's ImageNet preprocessing (ToTensor then Normalize): scale 1/255,
// three channels, mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225); ImageNet-pretrained
// weights expect exactly this. Implemented with a 256-entry table per channel.
#pragma once

#include <array>
#include <cstdint>

namespace cxr::data {

struct NormalizeOptions {
  float scale = 1.f / 255.f;
  int channels = 3;  // 1 or 3
  std::array<float, 3> mean = {0.485f, 0.456f, 0.406f};
  std::array<float, 3> std = {0.229f, 0.224f, 0.225f};
};

// src: n pixels; dst: (channels, n) f32.
void normalize_gray8(const std::uint8_t* src, std::int64_t n, float brightness, float contrast,
                     const NormalizeOptions& options, float* dst);

}  // namespace cxr::data
