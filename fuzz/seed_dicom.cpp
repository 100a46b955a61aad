// Writes the seed corpus of fuzz_dicom_decode with DCMTK, through the tests' writer
// (tests/data/dicom_writer.h):   build-fuzz/seed_dicom fuzz/corpus/dicom_decode
// Small files (16 x 12 pixels, under 2 KB each): one per case the decoder tells apart.
#include <cstdio>
#include <string>
#include <vector>

#include "tests/data/dicom_writer.h"

using cxr::test::DicomSpec;

namespace {

DicomSpec spec(int bits_allocated, int bits_stored, int lo, int hi) {
  DicomSpec s;
  s.width = 16;
  s.height = 12;
  s.bits_allocated = bits_allocated;
  s.bits_stored = bits_stored;
  s.is_signed = lo < 0;
  for (int i = 0; i < s.width * s.height; ++i) s.values.push_back(lo + (hi - lo) * ((i * 7) % 192) / 191);
  s.pixel_spacing = "0.139\\0.139";
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: seed_dicom OUT_DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  std::vector<std::pair<std::string, DicomSpec>> seeds;
  seeds.emplace_back("mono2_8bit.dcm", spec(8, 8, 0, 255));
  DicomSpec w12 = spec(16, 12, 0, 4095);
  w12.windows = {{1800, 2000}, {500, 100}};
  seeds.emplace_back("window_12bit.dcm", w12);
  DicomSpec rescaled = spec(16, 16, -2000, 3000);
  rescaled.rescale = {{2.0, -1000.0}};
  seeds.emplace_back("signed_rescale_percentile.dcm", rescaled);
  DicomSpec mono1 = spec(16, 12, 0, 4095);
  mono1.photometric = "MONOCHROME1";
  mono1.windows = {{2048, 4096}};
  mono1.imager_pixel_spacing = "0.2\\0.2";
  seeds.emplace_back("mono1_window.dcm", mono1);
  DicomSpec lut = spec(16, 12, 0, 4095);
  DicomSpec::VoiLut v;
  v.entries = 32;
  v.first_mapped = 1000;
  for (int i = 0; i < 32; ++i) v.data.push_back(static_cast<std::uint16_t>(i * 2000));
  lut.voi_lut = v;
  seeds.emplace_back("voi_lut.dcm", lut);
  DicomSpec rle = w12;
  rle.encoding = DicomSpec::Encoding::rle;
  seeds.emplace_back("rle.dcm", rle);
  DicomSpec jpeg = w12;
  jpeg.encoding = DicomSpec::Encoding::jpeg_lossless;
  seeds.emplace_back("jpeg_lossless.dcm", jpeg);
  DicomSpec baseline = spec(8, 8, 0, 255);
  baseline.encoding = DicomSpec::Encoding::jpeg_baseline;
  seeds.emplace_back("jpeg_baseline_8bit.dcm", baseline);
  DicomSpec bare = spec(16, 16, 0, 60000);
  bare.encoding = DicomSpec::Encoding::implicit_le;
  bare.preamble = false;
  seeds.emplace_back("implicit_no_preamble.dcm", bare);
  DicomSpec rgb = spec(8, 8, 0, 255);
  rgb.samples = 3;
  rgb.photometric = "RGB";
  rgb.values.clear();
  for (int i = 0; i < 16 * 12; ++i) rgb.values.insert(rgb.values.end(), {i % 256, (255 - i) % 256, (i * 37) % 256});
  seeds.emplace_back("rgb.dcm", rgb);
  DicomSpec none = spec(16, 12, 0, 4095);
  none.pixel_data = false;
  seeds.emplace_back("no_pixel_data.dcm", none);
  for (const auto& [name, s] : seeds) {
    cxr::test::write_dicom(dir + "/" + name, s);
    std::printf("%s/%s\n", dir.c_str(), name.c_str());
  }
  return 0;
}
