// Shared by the image-decoder fuzz targets: what every successful decode must hold.
#pragma once

#include <cstdint>

#include "data/image_io.h"
#include "fuzz/fuzz_check.h"

// A positive size within the decoders' pixel limit, and exactly width x height pixels.
inline void check_decoded_geometry(const cxr::data::GrayImage& img) {
  FUZZ_CHECK(img.width > 0 && img.height > 0, "decoded %dx%d", img.width, img.height);
  FUZZ_CHECK(static_cast<std::uint64_t>(img.width) * static_cast<std::uint64_t>(img.height) <=
                 cxr::data::kMaxImagePixels,
             "decoded %dx%d, more than the limit", img.width, img.height);
  FUZZ_CHECK(img.pixels.size() == static_cast<std::size_t>(img.width) * img.height, "%zu pixels for %dx%d",
             img.pixels.size(), img.width, img.height);
}
