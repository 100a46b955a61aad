// Affine warp and box transform for augmentation.
#include "data/augment.h"

#include <algorithm>
#include <cmath>

#include "data/random.h"

namespace cxr::data {

AugmentParams sample_augment(const AugmentOptions& o, std::uint64_t seed, std::int64_t epoch, std::int64_t index,
                             int width, int height) {
  Rng rng(hash_seed(seed, 0xA06, static_cast<std::uint64_t>(epoch), static_cast<std::uint64_t>(index)));
  AugmentParams p;
  // Always draw every value, so turning one option off does not change the others.
  const double angle = rng.uniform(-1, 1) * o.rotation_deg * (3.14159265358979323846 / 180.0);
  const double tx = rng.uniform(-1, 1) * o.translate * width;
  const double ty = rng.uniform(-1, 1) * o.translate * height;
  const double scale = rng.uniform(o.scale_min, o.scale_max);
  const bool flip = rng.bernoulli(0.5);
  const double brightness = 1.0 + rng.uniform(-1, 1) * o.brightness;
  const double contrast = 1.0 + rng.uniform(-1, 1) * o.contrast;
  p.angle = static_cast<float>(angle);
  p.tx = static_cast<float>(tx);
  p.ty = static_cast<float>(ty);
  p.scale = o.scale_min == o.scale_max ? o.scale_min : static_cast<float>(scale);
  p.flip = o.hflip && flip;
  p.brightness = static_cast<float>(brightness);
  p.contrast = static_cast<float>(contrast);
  return p;
}

namespace {

// Forward map of a point.
void forward(const AugmentParams& p, float cx, float cy, float width, float x, float y, float& ox, float& oy) {
  if (p.flip) x = width - x;
  const float c = std::cos(p.angle), s = std::sin(p.angle);
  const float dx = x - cx, dy = y - cy;
  ox = cx + p.scale * (c * dx - s * dy) + p.tx;
  oy = cy + p.scale * (s * dx + c * dy) + p.ty;
}

}  // namespace

void warp_affine_gray8(const std::uint8_t* src, std::uint8_t* dst, int width, int height, const AugmentParams& p) {
  const float cx = width * 0.5f, cy = height * 0.5f;
  const float c = std::cos(p.angle), s = std::sin(p.angle);
  const float inv = 1.f / p.scale;
  // Inverse map: q = R(-angle) (p' - c - t) / s + c, then unflip. It is affine in the output
  // x, so each row starts at its first pixel's source point and steps by (step_x, step_y).
  // The source point is shifted by -0.5 so that pixel centres fall on integers.
  const float flip_sign = p.flip ? -1.f : 1.f;
  const float step_x = flip_sign * inv * c, step_y = -inv * s;
  auto px = [&](int xi, int yi) -> float {
    if (xi < 0 || yi < 0 || xi >= width || yi >= height) return 0.f;
    return src[static_cast<std::size_t>(yi) * width + xi];
  };
  for (int oy = 0; oy < height; ++oy) {
    const float dy = oy + 0.5f - cy - p.ty;
    const float dx0 = 0.5f - cx - p.tx;
    float x = cx + inv * (c * dx0 + s * dy);
    if (p.flip) x = width - x;
    x -= 0.5f;
    float y = cy + inv * (-s * dx0 + c * dy) - 0.5f;
    std::uint8_t* row = dst + static_cast<std::size_t>(oy) * width;
    for (int ox = 0; ox < width; ++ox, x += step_x, y += step_y) {
      // floor() for x, y > -65536 without a libm call.
      const int x0 = static_cast<int>(x + 65536.f) - 65536, y0 = static_cast<int>(y + 65536.f) - 65536;
      const float ax = x - static_cast<float>(x0), ay = y - static_cast<float>(y0);
      float v00, v01, v10, v11;
      if (x0 >= 0 && y0 >= 0 && x0 + 1 < width && y0 + 1 < height) {
        const std::uint8_t* q = src + static_cast<std::size_t>(y0) * width + x0;
        v00 = q[0];
        v01 = q[1];
        v10 = q[width];
        v11 = q[width + 1];
      } else {
        v00 = px(x0, y0);
        v01 = px(x0 + 1, y0);
        v10 = px(x0, y0 + 1);
        v11 = px(x0 + 1, y0 + 1);
      }
      const float v = (1 - ay) * (v00 + ax * (v01 - v00)) + ay * (v10 + ax * (v11 - v10));
      row[ox] = static_cast<std::uint8_t>(std::clamp(v + 0.5f, 0.f, 255.f));
    }
  }
}

bool transform_box(Box& b, int width, int height, const AugmentParams& p) {
  const float cx = width * 0.5f, cy = height * 0.5f;
  const float xs[2] = {b.x, b.x + b.w}, ys[2] = {b.y, b.y + b.h};
  float x0 = 1e30f, y0 = 1e30f, x1 = -1e30f, y1 = -1e30f;
  for (float x : xs)
    for (float y : ys) {
      float ox, oy;
      forward(p, cx, cy, static_cast<float>(width), x, y, ox, oy);
      x0 = std::min(x0, ox);
      y0 = std::min(y0, oy);
      x1 = std::max(x1, ox);
      y1 = std::max(y1, oy);
    }
  const float full = (x1 - x0) * (y1 - y0);
  x0 = std::max(x0, 0.f);
  y0 = std::max(y0, 0.f);
  x1 = std::min(x1, static_cast<float>(width));
  y1 = std::min(y1, static_cast<float>(height));
  if (x1 <= x0 || y1 <= y0 || (x1 - x0) * (y1 - y0) < 0.25f * full) return false;
  b.x = x0;
  b.y = y0;
  b.w = x1 - x0;
  b.h = y1 - y0;
  return true;
}

}  // namespace cxr::data
