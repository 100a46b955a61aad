// Drawing on RGB images (see draw.h).
#include "eval/draw.h"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wconversion"
#endif
#include <stb/stb_easy_font.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#include <algorithm>
#include <cmath>
#include <fstream>

#include "data/resize.h"
#include "tensor/error.h"

namespace cxr {

RgbImage::RgbImage(int w, int h, Rgb fill) : width(w), height(h), pixels(static_cast<std::size_t>(w) * h * 3) {
  for (std::size_t i = 0; i < pixels.size(); i += 3) {
    pixels[i] = fill.r;
    pixels[i + 1] = fill.g;
    pixels[i + 2] = fill.b;
  }
}

Rgb RgbImage::at(int x, int y) const {
  const std::size_t i = (static_cast<std::size_t>(y) * width + x) * 3;
  return {pixels[i], pixels[i + 1], pixels[i + 2]};
}

void RgbImage::set(int x, int y, Rgb c) {
  if (x < 0 || y < 0 || x >= width || y >= height) return;
  const std::size_t i = (static_cast<std::size_t>(y) * width + x) * 3;
  pixels[i] = c.r;
  pixels[i + 1] = c.g;
  pixels[i + 2] = c.b;
}

RgbImage gray_to_rgb(const data::GrayImage& gray, int W, int H) {
  const data::GrayImage r =
      (gray.width == W && gray.height == H) ? gray : data::resize_gray8(gray, W, H);
  RgbImage out(W, H);
  for (std::size_t i = 0; i < r.pixels.size(); ++i) out.pixels[3 * i] = out.pixels[3 * i + 1] = out.pixels[3 * i + 2] = r.pixels[i];
  return out;
}

Rgb jet(float t) {
  t = std::clamp(std::isfinite(t) ? t : 0.f, 0.f, 1.f);
  // Piecewise linear: each channel is a trapezoid 4t - k centred at blue 0.25, green 0.5, red 0.75.
  auto ch = [&](float centre) {
    const float v = 1.5f - std::fabs(4.f * t - 4.f * centre);
    return static_cast<std::uint8_t>(std::lround(255.f * std::clamp(v, 0.f, 1.f)));
  };
  return {ch(0.75f), ch(0.5f), ch(0.25f)};
}

void blend_heat_map(RgbImage& img, const std::vector<float>& map01, float max_alpha) {
  CXR_CHECK(map01.size() == static_cast<std::size_t>(img.width) * img.height, "blend_heat_map: the map is ",
            map01.size(), " values for a ", img.width, "x", img.height, " image");
  for (std::size_t i = 0; i < map01.size(); ++i) {
    const float t = std::clamp(std::isfinite(map01[i]) ? map01[i] : 0.f, 0.f, 1.f);
    const float a = max_alpha * t;
    const Rgb c = jet(t);
    const std::uint8_t col[3] = {c.r, c.g, c.b};
    for (int k = 0; k < 3; ++k) {
      std::uint8_t& p = img.pixels[3 * i + static_cast<std::size_t>(k)];
      p = static_cast<std::uint8_t>(std::lround((1.f - a) * p + a * col[k]));
    }
  }
}

void fill_rect(RgbImage& img, int x0, int y0, int x1, int y1, Rgb c) {
  x0 = std::max(x0, 0);
  y0 = std::max(y0, 0);
  x1 = std::min(x1, img.width - 1);
  y1 = std::min(y1, img.height - 1);
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x) img.set(x, y, c);
}

void draw_rect(RgbImage& img, int x0, int y0, int x1, int y1, Rgb c, int thickness, bool dashed) {
  if (x1 < x0) std::swap(x0, x1);
  if (y1 < y0) std::swap(y0, y1);
  const int dash = 3 * std::max(thickness, 1);
  auto on = [&](int along) { return !dashed || (along / dash) % 2 == 0; };
  for (int t = 0; t < thickness; ++t) {
    for (int x = x0; x <= x1; ++x) {
      if (!on(x - x0)) continue;
      img.set(x, y0 + t, c);
      img.set(x, y1 - t, c);
    }
    for (int y = y0; y <= y1; ++y) {
      if (!on(y - y0)) continue;
      img.set(x0 + t, y, c);
      img.set(x1 - t, y, c);
    }
  }
}

namespace {
// stb_easy_font's vertices: x, y, z floats and 4 colour bytes; 4 vertices per quad.
struct EasyFontVertex {
  float x, y, z;
  unsigned char color[4];
};
}  // namespace

void draw_text(RgbImage& img, int x, int y, const std::string& text, Rgb c, int scale) {
  if (text.empty()) return;
  std::vector<EasyFontVertex> buf(text.size() * 70 * 4 + 64);  // generous: < 70 quads per glyph
  std::string copy = text;
  const int quads = stb_easy_font_print(0, 0, copy.data(), nullptr, buf.data(),
                                        static_cast<int>(buf.size() * sizeof(EasyFontVertex)));
  for (int q = 0; q < quads; ++q) {
    const EasyFontVertex* v = &buf[static_cast<std::size_t>(q) * 4];
    float qx0 = v[0].x, qy0 = v[0].y, qx1 = v[0].x, qy1 = v[0].y;
    for (int k = 1; k < 4; ++k) {
      qx0 = std::min(qx0, v[k].x);
      qy0 = std::min(qy0, v[k].y);
      qx1 = std::max(qx1, v[k].x);
      qy1 = std::max(qy1, v[k].y);
    }
    // A quad covers [qx0, qx1) x [qy0, qy1) in font units.
    fill_rect(img, x + static_cast<int>(qx0) * scale, y + static_cast<int>(qy0) * scale,
              x + static_cast<int>(qx1) * scale - 1, y + static_cast<int>(qy1) * scale - 1, c);
  }
}

int text_width(const std::string& text, int scale) {
  std::string copy = text;
  return stb_easy_font_width(copy.data()) * scale;
}

int text_height(const std::string& text, int scale) {
  std::string copy = text;
  return stb_easy_font_height(copy.data()) * scale;
}

void draw_text_box(RgbImage& img, int x, int y, const std::string& text, Rgb c, Rgb background, int scale) {
  const int pad = scale * 2;
  fill_rect(img, x, y, x + text_width(text, scale) + 2 * pad - 1, y + 8 * scale + 2 * pad - 1, background);
  draw_text(img, x + pad, y + pad + scale, text, c, scale);
}

std::vector<std::uint8_t> encode_png(const RgbImage& img) {
  return data::encode_png8(img.pixels.data(), img.width, img.height, 3);
}

void write_png(const std::string& path, const RgbImage& img) {
  const auto bytes = encode_png(img);
  std::ofstream f(path, std::ios::binary);
  CXR_CHECK(f, "cannot open ", path, " for writing");
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  CXR_CHECK(f.good(), "writing ", path, " failed");
}

}  // namespace cxr
