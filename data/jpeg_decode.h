// JPEG to 8-bit gray through libjpeg-turbo's TurboJPEG API (Debian libturbojpeg0-dev 2.1).
//
// Accepted: 8-bit JPEG, baseline, extended or progressive (at most 500 scans: TJFLAG_LIMITSCANS),
// gray, YCbCr or RGB, any chroma subsampling. Colour becomes gray by decoding straight to
// luminance: for YCbCr files that is the Y plane (Y = 0.299 R + 0.587 G + 0.114 B, the same
// ITU-R BT.601 weights as the PNG path's (77 R + 150 G + 29 B) / 256, within one grey level);
// RGB files are converted with those weights by libjpeg-turbo. The accurate integer IDCT is used.
// Refused, with a cxr::Error naming the file: CMYK / YCCK files; 12-bit (and 16-bit lossless)
// JPEG, which the TurboJPEG 2.1 API does not decode; images over kMaxImagePixels (from the
// header, before decoding); and any file libjpeg reports a warning or error for (truncated data,
// corrupt entropy-coded data, bad markers) -- libjpeg would otherwise fill the missing part grey.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "data/image_io.h"

namespace cxr::data {

GrayImage decode_jpeg_gray8(const std::uint8_t* bytes, std::size_t size, const std::string& name,
                            ImageInfo* info = nullptr);

}  // namespace cxr::data
