// DICOM to 8-bit gray through DCMTK (Debian libdcmtk-dev 3.6.7), as a radiologist would see it.
//
// Read from memory (the whole file): Part 10 files with the 128-byte preamble and "DICM", and
// data sets written without preamble / meta header (DCMTK guesses their transfer syntax).
// Pixels, in order:
//   1. decompression when the transfer syntax is encapsulated: JPEG baseline, extended (12-bit)
//      and lossless (dcmjpeg), JPEG-LS (dcmjpls), RLE (dcmdata); deflated data sets (zlib).
//      Refused, naming the file and the transfer syntax's UID and name: every syntax DCMTK has no
//      decoder for (JPEG 2000, JPEG XL, HTJ2K, MPEG / HEVC video: DCMTK's free edition lacks them);
//   2. the modality transform: Rescale Slope / Intercept, or the Modality LUT (dcmimgle);
//   3. the VOI transform, the first of: the VOI LUT Sequence's first LUT; the first Window Center /
//      Width (linear, PS3.3 C.11.2.1.2); otherwise, for 8-bit pixels (Bits Allocated 8) without
//      rescale or Modality LUT, the values as stored (signed ones shifted by 128), exactly; otherwise a percentile window: the 0.5th and 99.5th percentiles (nearest rank,
//      sorted[floor(0.005 (n-1))] and sorted[ceil(0.995 (n-1))]) of the rescaled values map to 0
//      and 255 (window center (lo + hi) / 2 + 0.5, width hi - lo + 1);
//   4. MONOCHROME1 inverted (bright = dense, the MONOCHROME2 convention of every other image);
//   5. output 0..255 (dcmimgle's rendering; it truncates, so a value may be one below the exact
//      linear map).
// Colour (RGB, YBR_*, palette) is rendered to RGB by dcmimage and made gray with the PNG path's
// weights (77 R + 150 G + 29 B) / 256.
// Refused with a cxr::Error naming the file and the problem: not DICOM / unreadable, no Pixel
// Data (7FE0,0010) (Float / Double Float Pixel Data included), multi-frame (Number of Frames > 1:
// a series, not a radiograph), Bits Allocated other than 8 / 16, Bits Stored outside 1..16, a
// non-finite / zero / absurd Rescale Slope or Intercept, more than kMaxImagePixels, pixel data
// shorter than Rows x Columns x samples (truncated), anything dcmimgle rejects.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "data/image_io.h"

namespace cxr::data {

// The percentiles of the fallback window (see above).
inline constexpr double kDicomWindowLowPercentile = 0.5, kDicomWindowHighPercentile = 99.5;

GrayImage decode_dicom_gray8(const std::uint8_t* bytes, std::size_t size, const std::string& name,
                             ImageInfo* info = nullptr);

}  // namespace cxr::data
