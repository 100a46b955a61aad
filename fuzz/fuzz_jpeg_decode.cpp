// Fuzzes the JPEG path: arbitrary bytes into data/jpeg_decode.h decode_jpeg_gray8 (libjpeg-turbo's
// TurboJPEG API, Debian's build: not instrumented for coverage, so the fuzzer steers by the
// wrapper's branches and libjpeg's outcomes, while ASan still sees every heap access through
// the buffers we own and libjpeg's allocations via its malloc).
// Feeds: bytes as a JPEG file (seeds: gray, RGB 4:4:4 / 4:2:0, progressive, optimised Huffman
// tables, restart intervals; fuzz/make_corpus.py).
// Checks: no crash, leak, UB, timeout (progressive scans are capped) or huge allocation (the
// header's size is checked before decoding); a failure is a cxr::Error naming the file; a decoded
// image has positive dimensions, at most kMaxImagePixels, and width x height pixels; ImageInfo
// says JPEG, 8 bits, 1 or 3 channels.
#include <cstdint>
#include <string>

#include "data/jpeg_decode.h"
#include "fuzz/fuzz_check.h"
#include "fuzz/fuzz_image_check.h"
#include "tensor/error.h"

using namespace cxr::data;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  GrayImage img;
  ImageInfo info;
  try {
    img = decode_jpeg_gray8(data, size, "fuzz.jpg", &info);
  } catch (const cxr::Error& e) {
    FUZZ_CHECK(std::string(e.what()).find("fuzz.jpg") != std::string::npos, "error without the file name: %s",
               e.what());
    return 0;
  }
  check_decoded_geometry(img);
  FUZZ_CHECK(info.format == ImageFormat::jpeg && info.bits_stored == 8 && (info.channels == 1 || info.channels == 3),
             "info: format %d, %d bits, %d channels", static_cast<int>(info.format), info.bits_stored, info.channels);
  return 0;
}
