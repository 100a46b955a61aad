// Separable antialiased resize: horizontal pass into f32 rows, vertical pass to u8.
#include "data/resize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "tensor/error.h"

namespace cxr::data {

namespace {

// For each output coordinate: the first input index and `taps` normalised weights.
struct Taps {
  int taps = 0;
  std::vector<int> first;
  std::vector<float> weights;  // out_size * taps, zero-padded
};

Taps make_taps(int in_size, int out_size) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filter_scale = std::max(scale, 1.0);
  const double support = filter_scale;  // triangle of radius 1, widened
  Taps t;
  t.taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  t.first.resize(static_cast<std::size_t>(out_size));
  t.weights.assign(static_cast<std::size_t>(out_size) * t.taps, 0.f);
  for (int o = 0; o < out_size; ++o) {
    const double center = (o + 0.5) * scale;
    const int lo = std::max(static_cast<int>(center - support + 0.5), 0);
    const int hi = std::min(static_cast<int>(center + support + 0.5), in_size);
    double sum = 0;
    float* w = &t.weights[static_cast<std::size_t>(o) * t.taps];
    for (int i = lo; i < hi && i - lo < t.taps; ++i) {
      const double x = (i - center + 0.5) / filter_scale;
      const double v = std::max(0.0, 1.0 - std::abs(x));
      w[i - lo] = static_cast<float>(v);
      sum += v;
    }
    if (sum > 0)
      for (int k = 0; k < t.taps; ++k) w[k] = static_cast<float>(w[k] / sum);
    t.first[static_cast<std::size_t>(o)] = lo;
  }
  return t;
}

}  // namespace

void resize_gray8(const std::uint8_t* src, int src_w, int src_h, std::uint8_t* dst, int dst_w, int dst_h) {
  CXR_CHECK(src_w > 0 && src_h > 0 && dst_w > 0 && dst_h > 0, "resize_gray8: bad sizes ", src_w, "x", src_h,
            " -> ", dst_w, "x", dst_h);
  if (src_w == dst_w && src_h == dst_h) {
    std::memcpy(dst, src, static_cast<std::size_t>(src_w) * src_h);
    return;
  }
  const Taps tx = make_taps(src_w, dst_w), ty = make_taps(src_h, dst_h);
  // Only the input rows some output row reads are filtered horizontally.
  const int row_lo = ty.first.front();
  const int row_hi = std::min(src_h, ty.first.back() + ty.taps);
  std::vector<float> rows(static_cast<std::size_t>(row_hi - row_lo) * dst_w);
  for (int y = row_lo; y < row_hi; ++y) {
    const std::uint8_t* s = src + static_cast<std::size_t>(y) * src_w;
    float* r = &rows[static_cast<std::size_t>(y - row_lo) * dst_w];
    for (int x = 0; x < dst_w; ++x) {
      const int first = tx.first[static_cast<std::size_t>(x)];
      const int n = std::min(tx.taps, src_w - first);
      const float* w = &tx.weights[static_cast<std::size_t>(x) * tx.taps];
      float acc = 0.f;
      for (int k = 0; k < n; ++k) acc += w[k] * s[first + k];
      r[x] = acc;
    }
  }
  std::vector<float> acc(static_cast<std::size_t>(dst_w));
  for (int y = 0; y < dst_h; ++y) {
    const int first = ty.first[static_cast<std::size_t>(y)];
    const int n = std::min(ty.taps, src_h - first);
    const float* w = &ty.weights[static_cast<std::size_t>(y) * ty.taps];
    std::fill(acc.begin(), acc.end(), 0.f);
    for (int k = 0; k < n; ++k) {
      if (w[k] == 0.f) continue;
      const float* r = &rows[static_cast<std::size_t>(first + k - row_lo) * dst_w];
      for (int x = 0; x < dst_w; ++x) acc[static_cast<std::size_t>(x)] += w[k] * r[x];
    }
    std::uint8_t* d = dst + static_cast<std::size_t>(y) * dst_w;
    for (int x = 0; x < dst_w; ++x)
      d[x] = static_cast<std::uint8_t>(std::clamp(acc[static_cast<std::size_t>(x)] + 0.5f, 0.f, 255.f));
  }
}

GrayImage resize_gray8(const GrayImage& src, int dst_w, int dst_h) {
  GrayImage out;
  out.width = dst_w;
  out.height = dst_h;
  out.pixels.resize(static_cast<std::size_t>(dst_w) * dst_h);
  resize_gray8(src.pixels.data(), src.width, src.height, out.pixels.data(), dst_w, dst_h);
  return out;
}

Box scale_box(const Box& b, int from_w, int from_h, int to_w, int to_h) {
  const float sx = static_cast<float>(to_w) / static_cast<float>(from_w);
  const float sy = static_cast<float>(to_h) / static_cast<float>(from_h);
  return Box{b.label, b.x * sx, b.y * sy, b.w * sx, b.h * sy};
}

}  // namespace cxr::data
