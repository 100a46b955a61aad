// Fuzzes the image decode path: arbitrary bytes into decode_gray8 (data/image_io.h: the format
// from the first bytes, then stb_image's PNG decoder, libjpeg-turbo or DCMTK) and the conversion
// to 8-bit gray, then the antialiased resize (data/resize.h) as the loader runs it, and the box
// scaling. (fuzz_jpeg_decode and fuzz_dicom_decode feed the other two decoders directly.)
// Feeds: arbitrary bytes as an image file (PNG 8/16-bit gray, gray+alpha, RGB, RGBA and
// palette and one JPEG seed it; this target found stb 2.27's JPEG bugs, so stb's JPEG decoder
// is not compiled in). The last two bytes also pick a resize
// target (1..64 x 1..64), the way the loader resizes to --image-size.
// Checks: no crash, leak, UB or huge allocation (decode_gray8 refuses images larger than
// kMaxImagePixels before decoding); a failure is a cxr::Error; a decoded image has positive
// dimensions and width x height pixels; resizing to the same size returns it unchanged;
// a resized image has the requested size; a scaled box stays inside the resized image.
#include <cmath>
#include <cstdint>
#include <string>

#include "data/image_io.h"
#include "data/resize.h"
#include "fuzz/fuzz_check.h"
#include "fuzz/fuzz_image_check.h"
#include "tensor/error.h"

using namespace cxr::data;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  GrayImage img;
  try {
    img = decode_gray8(data, size, "fuzz.png");
  } catch (const cxr::Error&) {
    return 0;
  }
  check_decoded_geometry(img);

  const GrayImage same = resize_gray8(img, img.width, img.height);
  FUZZ_CHECK(same.pixels == img.pixels, "resize to the same size changed pixels");

  const int dst_w = 1 + (size >= 1 ? data[size - 1] % 64 : 0);
  const int dst_h = 1 + (size >= 2 ? data[size - 2] % 64 : 0);
  const GrayImage small = resize_gray8(img, dst_w, dst_h);
  FUZZ_CHECK(small.width == dst_w && small.height == dst_h && small.pixels.size() == std::size_t(dst_w) * dst_h,
             "resized to %dx%d, asked %dx%d", small.width, small.height, dst_w, dst_h);

  const Box whole{0, 0.f, 0.f, static_cast<float>(img.width), static_cast<float>(img.height)};
  const Box b = scale_box(whole, img.width, img.height, dst_w, dst_h);
  FUZZ_CHECK(std::isfinite(b.x) && std::isfinite(b.w) && std::abs(b.x + b.w - dst_w) < 1e-3f * dst_w + 1e-3f &&
                 std::abs(b.y + b.h - dst_h) < 1e-3f * dst_h + 1e-3f,
             "whole-image box scaled to %g %g %g %g in %dx%d", b.x, b.y, b.w, b.h, dst_w, dst_h);
  return 0;
}
