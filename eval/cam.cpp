// Class activation maps on the CPU (see cam.h).
#include "eval/cam.h"

#include <algorithm>
#include <cmath>

#include "tensor/error.h"

namespace cxr {

std::vector<float> class_activation_map(const float* features, int K, int h, int w, const float* weights) {
  CXR_CHECK(K > 0 && h > 0 && w > 0, "class_activation_map: bad shape (", K, ", ", h, ", ", w, ")");
  const std::size_t hw = static_cast<std::size_t>(h) * static_cast<std::size_t>(w);
  std::vector<double> acc(hw, 0.0);
  for (int k = 0; k < K; ++k) {
    const float* fk = features + static_cast<std::size_t>(k) * hw;
    const double wk = weights[k];
    for (std::size_t i = 0; i < hw; ++i) acc[i] += wk * fk[i];
  }
  return std::vector<float>(acc.begin(), acc.end());
}

std::vector<float> upsample_bilinear(const std::vector<float>& map, int h, int w, int H, int W) {
  CXR_CHECK(h > 0 && w > 0 && H > 0 && W > 0 && map.size() == static_cast<std::size_t>(h) * w,
            "upsample_bilinear: bad sizes");
  std::vector<float> out(static_cast<std::size_t>(H) * W);
  const double sy = static_cast<double>(h) / H, sx = static_cast<double>(w) / W;
  for (int Y = 0; Y < H; ++Y) {
    // Source coordinate of this pixel's centre, clamped to the first / last pixel centre.
    const double fy = std::clamp((Y + 0.5) * sy - 0.5, 0.0, static_cast<double>(h - 1));
    const int y0 = static_cast<int>(fy), y1 = std::min(y0 + 1, h - 1);
    const double ty = fy - y0;
    for (int X = 0; X < W; ++X) {
      const double fx = std::clamp((X + 0.5) * sx - 0.5, 0.0, static_cast<double>(w - 1));
      const int x0 = static_cast<int>(fx), x1 = std::min(x0 + 1, w - 1);
      const double tx = fx - x0;
      auto at = [&](int y, int x) { return static_cast<double>(map[static_cast<std::size_t>(y) * w + x]); };
      const double top = at(y0, x0) * (1 - tx) + at(y0, x1) * tx;
      const double bottom = at(y1, x0) * (1 - tx) + at(y1, x1) * tx;
      out[static_cast<std::size_t>(Y) * W + X] = static_cast<float>(top * (1 - ty) + bottom * ty);
    }
  }
  return out;
}

std::vector<float> normalize_min_max(const std::vector<float>& map) {
  std::vector<float> out(map.size(), 0.f);
  if (map.empty()) return out;
  const auto [lo, hi] = std::minmax_element(map.begin(), map.end());
  const float a = *lo, range = *hi - *lo;
  if (!(range > 0) || !std::isfinite(range)) return out;
  for (std::size_t i = 0; i < map.size(); ++i) out[i] = (map[i] - a) / range;
  return out;
}

PixelBox threshold_box(const std::vector<float>& map01, int W, int H, float fraction) {
  PixelBox b{W, H, -1, -1};
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      if (!(map01[static_cast<std::size_t>(y) * W + x] >= fraction)) continue;
      b.x0 = std::min(b.x0, x);
      b.y0 = std::min(b.y0, y);
      b.x1 = std::max(b.x1, x);
      b.y1 = std::max(b.y1, y);
    }
  if (b.x1 < 0) return PixelBox{};
  return b;
}

}  // namespace cxr
