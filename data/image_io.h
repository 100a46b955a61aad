// Image files in and out: decoding any PNG stb_image reads to 8-bit gray, and writing 8-bit
// gray PNGs. JPEG is refused with an error saying so (stb_image 2.27's JPEG decoder is not
// memory-safe on corrupt files: see decode_gray8).
//
// Decoding: 8- or 16-bit samples; gray, gray+alpha, RGB or RGBA. Colour becomes gray with
// stb's luma weights (77 R + 150 G + 29 B) / 256; alpha is dropped (the NIH RGBA images are
// opaque); 16-bit samples are rounded to 8 bits (v * 255 / 65535). Failures (missing file,
// truncated or corrupt data) throw cxr::Error naming the file and stb's reason. Images of
// more than kMaxImagePixels pixels are refused from their header, before any decoding: a
// corrupt or hostile header cannot make the loader allocate gigabytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace cxr::data {

// A single-channel 8-bit image, row-major, no padding.
struct GrayImage {
  int width = 0, height = 0;
  std::vector<std::uint8_t> pixels;  // width * height
  std::uint8_t at(int x, int y) const { return pixels[static_cast<std::size_t>(y) * width + x]; }
};

// The largest image decode_gray8 accepts: 64 Mpx (8192 x 8192; NIH scans are at most ~3000 x 3000).
inline constexpr std::uint64_t kMaxImagePixels = 1ull << 26;

std::vector<std::uint8_t> read_file_bytes(const std::string& path);

// `name` is used in error messages only.
GrayImage decode_gray8(const std::uint8_t* bytes, std::size_t size, const std::string& name);
GrayImage decode_gray8_file(const std::string& path);

// Writes an 8-bit gray PNG (stb_image_write, default compression); throws on failure.
void write_png_gray8(const std::string& path, const GrayImage& image);
// Encodes 8-bit samples with 1..4 channels to PNG bytes in memory (tests, synthetic data).
std::vector<std::uint8_t> encode_png8(const std::uint8_t* pixels, int width, int height, int channels);

}  // namespace cxr::data
