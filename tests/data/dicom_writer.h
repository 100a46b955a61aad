// Small DICOM files written with DCMTK for the tests: any Rows x Columns, 8/12/16 bits, signed,
// MONOCHROME1/2 or RGB, rescale, windows, a VOI LUT, pixel spacing, compressed (RLE, JPEG
// lossless) or a fake JPEG 2000 stream, with or without preamble, plus any attributes by
// keyword (PatientID, ViewPosition, ...) for the data-set readers' tests.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace cxr::test {

struct DicomSpec {
  enum class Encoding {
    explicit_le,      // Explicit VR Little Endian, uncompressed
    implicit_le,      // Implicit VR Little Endian
    rle,              // RLE Lossless (DCMTK's encoder)
    jpeg_lossless,    // JPEG Lossless, process 14, selection value 1 (DCMTK's encoder; unsigned only)
    jpeg_baseline,    // JPEG Baseline (process 1), quality 90: 8-bit only, as RSNA Pneumonia stores it
    jpeg2000_fake,    // JPEG 2000 transfer syntax around a few junk bytes (DCMTK cannot decode it)
  };
  int width = 4, height = 3;
  int samples = 1;                          // 1, or 3 (RGB, interleaved)
  int bits_allocated = 16, bits_stored = 12;
  bool is_signed = false;                   // Pixel Representation 1 (two's complement)
  std::string photometric = "MONOCHROME2";
  std::vector<std::int32_t> values;         // stored values, row-major (samples interleaved)
  std::optional<std::pair<double, double>> rescale;   // slope, intercept
  std::vector<std::pair<double, double>> windows;     // (center, width) pairs, in this order
  struct VoiLut {
    int entries = 0, first_mapped = 0, bits = 16;
    std::vector<std::uint16_t> data;
  };
  std::optional<VoiLut> voi_lut;
  std::string pixel_spacing, imager_pixel_spacing;   // e.g. "0.139\\0.143"; empty: absent
  int frames = 1;                           // > 1 writes Number of Frames and repeats `values`
  bool pixel_data = true;                   // false: no (7FE0,0010) at all
  Encoding encoding = Encoding::explicit_le;
  bool preamble = true;                     // false: the bare data set, no preamble / meta header
  std::vector<std::pair<std::string, std::string>> attributes;  // (DCMTK keyword, value)
};

// The file's bytes. Throws std::runtime_error when DCMTK refuses to write it.
std::vector<std::uint8_t> encode_dicom(const DicomSpec& spec);
void write_dicom(const std::string& path, const DicomSpec& spec);

}  // namespace cxr::test
