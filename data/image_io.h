// Image files in and out: decoding a PNG, JPEG or DICOM file to 8-bit gray, and writing 8-bit
// gray PNGs. The format is found from the file's first bytes (detect_image_format), never from
// its name; each format has its decoder (docs/data.md, "Decoders"):
//   PNG    stb_image (here): 8- or 16-bit samples; gray, gray+alpha, RGB, RGBA, palette. Colour
//          becomes gray with stb's luma weights (77 R + 150 G + 29 B) / 256; alpha is dropped (the
//          NIH RGBA images are opaque); 16-bit samples are rounded to 8 bits (v * 255 / 65535).
//   JPEG   libjpeg-turbo's TurboJPEG API (data/jpeg_decode.h): 8-bit baseline, extended or
//          progressive; colour is decoded straight to luminance (Y). stb_image's JPEG decoder is
//          not compiled in (stb 2.27's is not memory-safe on corrupt files).
//   DICOM  DCMTK (data/dicom_decode.h): rescale, VOI LUT / window / percentile window,
//          MONOCHROME1 inverted, the compressed transfer syntaxes DCMTK decodes.
// Failures (missing file, unknown format, truncated or corrupt data, what a decoder refuses)
// throw cxr::Error naming the file and the reason. Images of more than kMaxImagePixels pixels
// are refused from their header, before any decoding: a corrupt or hostile header cannot make
// the loader allocate gigabytes.
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

// The formats decode_gray8 reads, told apart by their first bytes.
enum class ImageFormat { unknown, png, jpeg, dicom };
const char* format_name(ImageFormat format);  // "PNG", "JPEG", "DICOM", "unknown"
// PNG: its 8-byte signature. JPEG: FF D8 (SOI). DICOM: "DICM" at byte 128 (the Part 10 preamble),
// or a file starting with a group 0002 or 0008 element (a data set written without preamble).
ImageFormat detect_image_format(const std::uint8_t* bytes, std::size_t size);

// Where a DICOM file's linear VOI (window) came from; see ImageInfo.
enum class WindowSource {
  none,          // PNG / JPEG; or an 8-bit DICOM without VOI and without rescale: values as stored
  voi_lut,       // the first item of the VOI LUT Sequence (0028,3010)
  file_window,   // the first Window Center / Window Width (0028,1050 / 0028,1051)
  percentile,    // no VOI in the file: 0.5th..99.5th percentile of the rescaled values (dicom_decode.h)
};
const char* window_source_name(WindowSource source);

// What a decoder found in the file besides the pixels (optional out-parameter of decode_gray8).
// Fields a format does not have keep their defaults.
struct ImageInfo {
  ImageFormat format = ImageFormat::unknown;
  int bits_stored = 0;       // PNG: bit depth (8, 16; 1/2/4 for palette/low-depth gray); JPEG: 8; DICOM: Bits Stored
  int channels = 0;          // samples per pixel in the file: PNG 1..4, JPEG 1 or 3, DICOM 1 or 3
  std::string photometric;   // DICOM Photometric Interpretation ("MONOCHROME1", "MONOCHROME2", "RGB", ...);
                             // JPEG "GRAY", "YCbCr", "RGB"; PNG "GRAY", "GRAY+ALPHA", "RGB", "RGBA"
  // DICOM only.
  bool is_signed = false;              // Pixel Representation 1
  bool inverted = false;               // MONOCHROME1: inverted to the MONOCHROME2 convention (bright = dense)
  double rescale_slope = 1, rescale_intercept = 0;  // as in the file (1, 0 when absent)
  // Pixel Spacing (0028,0030) or, failing that, Imager Pixel Spacing (0018,1164), in mm: row
  // spacing (between rows, vertical) then column spacing (horizontal). 0 when the file has neither.
  double pixel_spacing_row_mm = 0, pixel_spacing_col_mm = 0;
  std::string pixel_spacing_source;    // "PixelSpacing", "ImagerPixelSpacing" or ""
  std::string transfer_syntax_uid;     // e.g. "1.2.840.10008.1.2.4.70"
  std::string transfer_syntax_name;    // DCMTK's name of it, e.g. "JPEG Lossless, Non-hierarchical, First-Order Prediction"
  WindowSource window_source = WindowSource::none;
  // The linear window applied (DICOM PS3.3 C.11.2.1.2 convention), in rescaled units; 0, 0 for a VOI LUT.
  double window_center = 0, window_width = 0;
};

// Decodes a PNG, JPEG or DICOM file held in memory to 8-bit gray; `name` is used in error
// messages only. `info`, when given, receives what the file said (ImageInfo).
GrayImage decode_gray8(const std::uint8_t* bytes, std::size_t size, const std::string& name,
                       ImageInfo* info = nullptr);
GrayImage decode_gray8_file(const std::string& path, ImageInfo* info = nullptr);

// Writes an 8-bit gray PNG (stb_image_write, default compression); throws on failure.
void write_png_gray8(const std::string& path, const GrayImage& image);
// Encodes 8-bit samples with 1..4 channels to PNG bytes in memory (tests, synthetic data).
std::vector<std::uint8_t> encode_png8(const std::uint8_t* pixels, int width, int height, int channels);

}  // namespace cxr::data
