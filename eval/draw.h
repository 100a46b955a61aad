// A few drawing primitives on 8-bit RGB images, for the prediction overlays (overlay.h):
// a colour map, alpha blending of a heat map, resizing, rectangles (solid or dashed) and text
// in stb_easy_font's built-in bitmap font (its quads rasterised here, scaled by an integer).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/image_io.h"

namespace cxr {

struct Rgb {
  std::uint8_t r = 0, g = 0, b = 0;
};

struct RgbImage {
  int width = 0, height = 0;
  std::vector<std::uint8_t> pixels;  // width * height * 3, row-major
  RgbImage() = default;
  RgbImage(int w, int h, Rgb fill = {});
  Rgb at(int x, int y) const;
  void set(int x, int y, Rgb c);  // ignores pixels outside the image
};

// Gray -> RGB, resized bilinearly to (W, H).
RgbImage gray_to_rgb(const data::GrayImage& gray, int W, int H);

// The "jet" colour map: 0 dark blue -> blue -> cyan -> yellow -> red -> 1 dark red.
Rgb jet(float t);

// Blends jet(map) over the image: alpha = max_alpha * map (map in [0, 1], W x H of the image),
// so cold regions leave the radiograph visible.
void blend_heat_map(RgbImage& img, const std::vector<float>& map01, float max_alpha = 0.6f);

void fill_rect(RgbImage& img, int x0, int y0, int x1, int y1, Rgb c);  // inclusive corners
// Outline of the rectangle, `thickness` pixels inwards; dashed: dash of 3 * thickness pixels.
void draw_rect(RgbImage& img, int x0, int y0, int x1, int y1, Rgb c, int thickness = 1, bool dashed = false);

// Text at (x, y) (top-left), stb_easy_font's glyphs scaled by `scale` (a glyph is about 6 x 7
// units; a line 12 units); an optional background box behind it.
void draw_text(RgbImage& img, int x, int y, const std::string& text, Rgb c, int scale = 1);
void draw_text_box(RgbImage& img, int x, int y, const std::string& text, Rgb c, Rgb background, int scale = 1);
int text_width(const std::string& text, int scale = 1);
int text_height(const std::string& text, int scale = 1);

// PNG bytes of the image (stb_image_write through data/image_io.h) and a file.
std::vector<std::uint8_t> encode_png(const RgbImage& img);
void write_png(const std::string& path, const RgbImage& img);

}  // namespace cxr
