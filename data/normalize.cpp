// Table-driven normalisation of 8-bit gray pixels.
#include "data/normalize.h"

#include <algorithm>

#include "tensor/error.h"

namespace cxr::data {

void normalize_gray8(const std::uint8_t* src, std::int64_t n, float brightness, float contrast,
                     const NormalizeOptions& o, float* dst) {
  CXR_CHECK(o.channels == 1 || o.channels == 3, "normalize: channels must be 1 or 3, got ", o.channels);
  double mean = 0;
  if (contrast != 1.f) {
    std::int64_t hist[256] = {};
    for (std::int64_t i = 0; i < n; ++i) ++hist[src[i]];
    for (int v = 0; v < 256; ++v) mean += static_cast<double>(v) * static_cast<double>(hist[v]);
    mean /= static_cast<double>(std::max<std::int64_t>(n, 1));
  }
  const float m = static_cast<float>(mean);
  for (int c = 0; c < o.channels; ++c) {
    float table[256];
    for (int u = 0; u < 256; ++u) {
      const float v = std::clamp(brightness * (contrast * (static_cast<float>(u) - m) + m), 0.f, 255.f);
      table[u] = (v * o.scale - o.mean[static_cast<std::size_t>(c)]) / o.std[static_cast<std::size_t>(c)];
    }
    float* out = dst + c * n;
    for (std::int64_t i = 0; i < n; ++i) out[i] = table[src[i]];
  }
}

}  // namespace cxr::data
