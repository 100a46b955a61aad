// Fuzzes the DICOM path: arbitrary bytes into data/dicom_decode.h decode_dicom_gray8 (DCMTK's
// dcmdata parser from memory, its RLE / JPEG / JPEG-LS decoders, dcmimgle's modality and VOI
// transforms, our percentile window). Debian's DCMTK is not instrumented for coverage: the
// fuzzer steers by the wrapper's branches (refusals, window sources, colour) and ASan sees the
// heap DCMTK allocates through malloc / new.
// Feeds: bytes as a DICOM file (seeds from fuzz/seed_dicom.cpp: 8/12/16-bit, signed with
// rescale, MONOCHROME1, windows, a VOI LUT, RLE, JPEG lossless and baseline, implicit VR without preamble,
// RGB, no pixel data).
// Checks: no crash, leak, UB, timeout or huge allocation; a failure is a cxr::Error naming the
// file; a decoded image has positive dimensions, at most kMaxImagePixels, width x height pixels;
// ImageInfo says DICOM, 1..16 bits stored, 1 or 3 channels, a transfer syntax, a percentile
// window at least one unit wide, non-negative pixel spacing.
#include <cmath>
#include <cstdint>
#include <string>

#include "data/dicom_decode.h"
#include "fuzz/fuzz_check.h"
#include "fuzz/fuzz_image_check.h"
#include "tensor/error.h"

using namespace cxr::data;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  GrayImage img;
  ImageInfo info;
  try {
    img = decode_dicom_gray8(data, size, "fuzz.dcm", &info);
  } catch (const cxr::Error& e) {
    FUZZ_CHECK(std::string(e.what()).find("fuzz.dcm") != std::string::npos, "error without the file name: %s",
               e.what());
    return 0;
  }
  check_decoded_geometry(img);
  FUZZ_CHECK(info.format == ImageFormat::dicom && info.bits_stored >= 1 && info.bits_stored <= 16 &&
                 (info.channels == 1 || info.channels == 3) && !info.transfer_syntax_uid.empty(),
             "info: format %d, %d bits, %d channels, syntax '%s'", static_cast<int>(info.format), info.bits_stored,
             info.channels, info.transfer_syntax_uid.c_str());
  FUZZ_CHECK(info.window_source != WindowSource::percentile || info.window_width >= 1, "percentile window width %g",
             info.window_width);
  FUZZ_CHECK(info.pixel_spacing_row_mm >= 0 && info.pixel_spacing_col_mm >= 0 &&
                 std::isfinite(info.pixel_spacing_row_mm) && std::isfinite(info.pixel_spacing_col_mm),
             "pixel spacing %g %g", info.pixel_spacing_row_mm, info.pixel_spacing_col_mm);
  return 0;
}
