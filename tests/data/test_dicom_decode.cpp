// DICOM through DCMTK (data/dicom_decode.h): files written by the test (tests/data/dicom_writer.h)
// with known stored values; the expected 8-bit pixels are computed here from those values with
// the math written out: rescale y = slope x + intercept; the linear window of PS3.3 C.11.2.1.2;
// the VOI LUT; the percentile fallback; MONOCHROME1 inverted.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <thread>

#include "data/dicom_decode.h"
#include "data/image_io.h"
#include "tensor/error.h"
#include "tests/data/data_test_util.h"
#include "tests/data/dicom_writer.h"
#include "tests/golden.h"

using namespace cxr;
using namespace cxr::data;
using test::DicomSpec;

namespace {

// The linear VOI window of PS3.3 C.11.2.1.2 to 0..255 as dcmimgle renders it: x <= c - 0.5 -
// (w - 1) / 2 -> 0; x > c - 0.5 + (w - 1) / 2 -> 255; else ((x - (c - 0.5)) / (w - 1) + 0.5) * 255,
// truncated. MONOCHROME1 renders 255 minus that (before truncation).
int window8(double x, double c, double w, bool invert = false) {
  double y;
  if (x <= c - 0.5 - (w - 1) / 2) y = 0;
  else if (x > c - 0.5 + (w - 1) / 2) y = 255;
  else y = ((x - (c - 0.5)) / (w - 1) + 0.5) * 255;
  return static_cast<int>(invert ? 255 - y : y);
}

// A ramp over the stored range [lo, hi] with a few values outside the middle.
std::vector<std::int32_t> ramp(int n, std::int32_t lo, std::int32_t hi) {
  std::vector<std::int32_t> v(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) v[i] = lo + static_cast<std::int32_t>((static_cast<std::int64_t>(hi - lo) * ((i * 7) % n)) / (n - 1));
  return v;
}

GrayImage decode(const DicomSpec& spec, ImageInfo* info = nullptr, const std::string& name = "t.dcm") {
  const auto bytes = test::encode_dicom(spec);
  REQUIRE(detect_image_format(bytes.data(), bytes.size()) == ImageFormat::dicom);
  return decode_gray8(bytes.data(), bytes.size(), name, info);
}

// Every pixel within one grey level of `expected(stored value)` (dcmimgle truncates in double
// arithmetic: an exact .0 may land one below).
void check_pixels(const GrayImage& g, const DicomSpec& s, const std::function<int(std::int32_t)>& expected) {
  REQUIRE(g.width == s.width);
  REQUIRE(g.height == s.height);
  int worst = 0;
  for (std::size_t i = 0; i < g.pixels.size(); ++i) {
    const int want = expected(s.values[i]);
    worst = std::max(worst, std::abs(int(g.pixels[i]) - want));
    if (std::abs(int(g.pixels[i]) - want) > 1) {
      CHECK_MESSAGE(false, "pixel " << i << " stored " << s.values[i] << ": got " << int(g.pixels[i]) << ", want "
                                    << want);
      return;
    }
  }
  CHECK(worst <= 1);
}

DicomSpec base(int bits_allocated, int bits_stored, std::int32_t lo, std::int32_t hi) {
  DicomSpec s;
  s.width = 24;
  s.height = 17;
  s.bits_allocated = bits_allocated;
  s.bits_stored = bits_stored;
  s.is_signed = lo < 0;
  s.values = ramp(s.width * s.height, lo, hi);
  return s;
}

}  // namespace

TEST_SUITE("data") {

TEST_CASE("dicom: 8-bit MONOCHROME2 without a window: the stored values, exactly") {
  DicomSpec s = base(8, 8, 0, 255);
  s.pixel_spacing = "0.139\\0.143";
  ImageInfo info;
  const GrayImage g = decode(s, &info);
  check_pixels(g, s, [](std::int32_t x) { return x; });
  for (std::size_t i = 0; i < g.pixels.size(); ++i) REQUIRE(g.pixels[i] == s.values[i]);
  CHECK(info.format == ImageFormat::dicom);
  CHECK(info.window_source == WindowSource::none);
  CHECK(info.bits_stored == 8);
  CHECK(info.photometric == "MONOCHROME2");
  CHECK(info.transfer_syntax_uid == "1.2.840.10008.1.2.1");
  CHECK(info.pixel_spacing_source == "PixelSpacing");
  CHECK(info.pixel_spacing_row_mm == doctest::Approx(0.139));
  CHECK(info.pixel_spacing_col_mm == doctest::Approx(0.143));
  s.photometric = "MONOCHROME1";
  const GrayImage inv = decode(s, &info);
  for (std::size_t i = 0; i < g.pixels.size(); ++i) REQUIRE(inv.pixels[i] == 255 - s.values[i]);
  CHECK(info.inverted);
}

TEST_CASE("dicom: 12-bit with Window Center / Width; the first window of several is used") {
  DicomSpec s = base(16, 12, 0, 4095);
  s.windows = {{1800, 2000}, {500, 100}};
  s.imager_pixel_spacing = "0.2\\0.25";
  ImageInfo info;
  const GrayImage g = decode(s, &info);
  check_pixels(g, s, [](std::int32_t x) { return window8(x, 1800, 2000); });
  CHECK(info.window_source == WindowSource::file_window);
  CHECK(info.window_center == 1800);
  CHECK(info.window_width == 2000);
  CHECK(info.bits_stored == 12);
  CHECK(info.pixel_spacing_source == "ImagerPixelSpacing");
  CHECK(info.pixel_spacing_row_mm == doctest::Approx(0.2));
  CHECK(info.pixel_spacing_col_mm == doctest::Approx(0.25));
}

TEST_CASE("dicom: signed 16-bit with Rescale Slope / Intercept, then the window in rescaled units") {
  DicomSpec s = base(16, 16, -2000, 3000);
  s.rescale = {{2.0, -1000.0}};
  s.windows = {{0, 4000}};
  ImageInfo info;
  const GrayImage g = decode(s, &info);
  check_pixels(g, s, [](std::int32_t x) { return window8(2.0 * x - 1000.0, 0, 4000); });
  CHECK(info.is_signed);
  CHECK(info.rescale_slope == 2.0);
  CHECK(info.rescale_intercept == -1000.0);
}

TEST_CASE("dicom: MONOCHROME1 is inverted to the MONOCHROME2 convention") {
  DicomSpec s = base(16, 12, 0, 4095);
  s.photometric = "MONOCHROME1";
  s.windows = {{2048, 4096}};
  ImageInfo info;
  const GrayImage g = decode(s, &info);
  check_pixels(g, s, [](std::int32_t x) { return window8(x, 2048, 4096, true); });
  CHECK(info.inverted);
  // The same values as MONOCHROME2: every pixel mirrored.
  DicomSpec m2 = s;
  m2.photometric = "MONOCHROME2";
  const GrayImage g2 = decode(m2);
  for (std::size_t i = 0; i < g.pixels.size(); ++i) CHECK(std::abs(int(g.pixels[i]) + int(g2.pixels[i]) - 255) <= 1);
}

TEST_CASE("dicom: no VOI in the file: the 0.5th..99.5th percentile window of the rescaled values") {
  DicomSpec s = base(16, 16, 0, 60000);
  // A few outliers the percentiles cut away.
  s.values[0] = 65535;
  s.values[1] = 65535;
  s.values[2] = 0;
  s.rescale = {{1.0, -5000.0}};
  for (const std::string photometric : {"MONOCHROME2", "MONOCHROME1"}) {
    CAPTURE(photometric);
    s.photometric = photometric;
    ImageInfo info;
    const GrayImage g = decode(s, &info);
    std::vector<double> y;
    for (auto x : s.values) y.push_back(x - 5000.0);
    std::sort(y.begin(), y.end());
    const double n1 = static_cast<double>(y.size() - 1);
    const double lo = y[static_cast<std::size_t>(std::floor(0.005 * n1))];
    const double hi = y[static_cast<std::size_t>(std::ceil(0.995 * n1))];
    const double c = (lo + hi) / 2 + 0.5, w = hi - lo + 1;  // lo -> 0, hi -> 255
    CHECK(info.window_source == WindowSource::percentile);
    CHECK(info.window_center == doctest::Approx(c));
    CHECK(info.window_width == doctest::Approx(w));
    const bool invert = photometric == "MONOCHROME1";
    check_pixels(g, s, [&](std::int32_t x) { return window8(x - 5000.0, c, w, invert); });
    const auto [mn, mx] = std::minmax_element(g.pixels.begin(), g.pixels.end());
    CHECK(int(*mn) == 0);
    CHECK(int(*mx) == 255);
  }
}

TEST_CASE("dicom: a VOI LUT Sequence takes precedence over the window") {
  DicomSpec s = base(16, 12, 0, 4095);
  s.windows = {{100, 10}};  // would make nearly everything white
  DicomSpec::VoiLut lut;
  lut.entries = 1024;
  lut.first_mapped = 1000;
  lut.bits = 16;
  for (int i = 0; i < lut.entries; ++i)  // a gamma-like curve over 1000..2023
    lut.data.push_back(static_cast<std::uint16_t>(65535.0 * std::sqrt(i / 1023.0)));
  s.voi_lut = lut;
  ImageInfo info;
  const GrayImage g = decode(s, &info);
  CHECK(info.window_source == WindowSource::voi_lut);
  // Input below the first mapped value takes the first entry, above the last the last; the
  // 16-bit output is scaled to 8 bits: v * 256 / 65536.
  check_pixels(g, s, [&](std::int32_t x) {
    const int k = std::clamp(x - lut.first_mapped, 0, lut.entries - 1);
    return static_cast<int>(lut.data[k] * 256.0 / 65536.0);
  });
}

TEST_CASE("dicom: RLE, JPEG lossless and implicit-VR / no-preamble files decode to the same pixels") {
  DicomSpec s = base(16, 12, 0, 4095);
  s.windows = {{2000, 3000}};
  const GrayImage plain = decode(s);
  for (const auto encoding : {DicomSpec::Encoding::rle, DicomSpec::Encoding::jpeg_lossless,
                              DicomSpec::Encoding::implicit_le}) {
    CAPTURE(int(encoding));
    DicomSpec c = s;
    c.encoding = encoding;
    ImageInfo info;
    CHECK(decode(c, &info).pixels == plain.pixels);
    if (encoding == DicomSpec::Encoding::rle) CHECK(info.transfer_syntax_uid == "1.2.840.10008.1.2.5");
    if (encoding == DicomSpec::Encoding::jpeg_lossless) CHECK(info.transfer_syntax_uid == "1.2.840.10008.1.2.4.70");
  }
  DicomSpec bare = s;
  bare.preamble = false;
  bare.encoding = DicomSpec::Encoding::implicit_le;
  const auto bytes = test::encode_dicom(bare);
  REQUIRE(bytes.size() > 4);
  CHECK(std::string(bytes.begin() + 128, bytes.begin() + 132) != "DICM");
  CHECK(detect_image_format(bytes.data(), bytes.size()) == ImageFormat::dicom);
  CHECK(decode_gray8(bytes.data(), bytes.size(), "bare.dcm").pixels == plain.pixels);
}

TEST_CASE("dicom: 8-bit JPEG baseline (RSNA Pneumonia's syntax) decodes within JPEG's loss of the plain file") {
  DicomSpec s;
  s.width = 64;
  s.height = 48;
  s.bits_allocated = s.bits_stored = 8;
  for (int y = 0; y < s.height; ++y)
    for (int x = 0; x < s.width; ++x)  // a smooth ramp (JPEG keeps it well) over all of 0..255: DCMTK's
      // lossy encoder renders monochrome pixels through dcmimgle first, stretching them to 0..255
      s.values.push_back(255 * (x + y) / (s.width + s.height - 2));
  const GrayImage plain = decode(s);
  DicomSpec j = s;
  j.encoding = DicomSpec::Encoding::jpeg_baseline;
  ImageInfo info;
  const GrayImage g = decode(j, &info);
  CHECK(info.transfer_syntax_uid == "1.2.840.10008.1.2.4.50");
  CHECK(info.window_source == WindowSource::none);
  REQUIRE(g.pixels.size() == plain.pixels.size());
  int worst = 0;
  for (std::size_t i = 0; i < g.pixels.size(); ++i) worst = std::max(worst, std::abs(g.pixels[i] - plain.pixels[i]));
  CHECK(worst <= 4);  // quality 90 on a smooth ramp
}

TEST_CASE("dicom: RGB becomes gray with the PNG path's weights") {
  DicomSpec s;
  s.width = 5;
  s.height = 4;
  s.samples = 3;
  s.bits_allocated = s.bits_stored = 8;
  s.photometric = "RGB";
  for (int i = 0; i < s.width * s.height; ++i) s.values.insert(s.values.end(), {i * 12, 255 - i * 9, (i * 37) % 256});
  ImageInfo info;
  const GrayImage g = decode(s, &info);
  REQUIRE(g.pixels.size() == 20u);
  for (int i = 0; i < 20; ++i) {
    const int r = s.values[3 * i], gr = s.values[3 * i + 1], b = s.values[3 * i + 2];
    CHECK(int(g.pixels[i]) == (r * 77 + gr * 150 + b * 29) / 256);
  }
  CHECK(info.channels == 3);
  CHECK(info.photometric == "RGB");
}

TEST_CASE("dicom: refusals name the file and the problem") {
  DicomSpec s = base(16, 12, 0, 4095);
  SUBCASE("no pixel data") {
    DicomSpec n = s;
    n.pixel_data = false;
    const auto bytes = test::encode_dicom(n);
    CHECK_THROWS_WITH_AS(decode_gray8(bytes.data(), bytes.size(), "report.dcm"),
                         doctest::Contains("cannot decode image report.dcm: a DICOM without Pixel Data (7FE0,0010)"),
                         Error);
  }
  SUBCASE("truncated") {
    auto bytes = test::encode_dicom(s);
    for (const std::size_t keep : {bytes.size() - 10, bytes.size() / 2, std::size_t(200), std::size_t(140)}) {
      CAPTURE(keep);
      std::vector<std::uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(keep));
      CHECK_THROWS_WITH_AS(decode_gray8(cut.data(), cut.size(), "cut.dcm"),
                           doctest::Contains("cannot decode image cut.dcm"), Error);
    }
  }
  SUBCASE("JPEG 2000: no decoder in DCMTK") {
    DicomSpec j = s;
    j.encoding = DicomSpec::Encoding::jpeg2000_fake;
    const auto bytes = test::encode_dicom(j);
    CHECK_THROWS_WITH_AS(decode_gray8(bytes.data(), bytes.size(), "j2k.dcm"),
                         doctest::Contains("cannot decode image j2k.dcm: its pixel data is compressed in transfer "
                                           "syntax 1.2.840.10008.1.2.4.91 (JPEG 2000"),
                         Error);
  }
  SUBCASE("multi-frame") {
    DicomSpec m = s;
    m.frames = 3;
    const auto bytes = test::encode_dicom(m);
    CHECK_THROWS_WITH_AS(decode_gray8(bytes.data(), bytes.size(), "cine.dcm"),
                         doctest::Contains("cannot decode image cine.dcm: a multi-frame DICOM (3 frames)"), Error);
  }
  SUBCASE("pixel data shorter than Rows x Columns") {
    DicomSpec m = s;
    m.values.resize(m.values.size() / 2);
    const auto bytes = test::encode_dicom(m);
    CHECK_THROWS_WITH_AS(decode_gray8(bytes.data(), bytes.size(), "short.dcm"),
                         doctest::Contains("cannot decode image short.dcm: truncated DICOM pixel data"), Error);
  }
  SUBCASE("a zero Rescale Slope") {
    DicomSpec z = s;
    z.rescale = {{0.0, 5.0}};
    const auto bytes = test::encode_dicom(z);
    CHECK_THROWS_WITH_AS(decode_gray8(bytes.data(), bytes.size(), "flat.dcm"),
                         doctest::Contains("cannot decode image flat.dcm: DICOM Rescale Slope 0"), Error);
  }
  SUBCASE("DICM but garbage after it") {
    std::vector<std::uint8_t> junk(400, 0xEE);
    std::copy_n("DICM", 4, junk.begin() + 128);
    CHECK_THROWS_WITH_AS(decode_gray8(junk.data(), junk.size(), "junk.dcm"),
                         doctest::Contains("cannot decode image junk.dcm"), Error);
  }
  SUBCASE("a file on disk: the error names its path") {
    test::TempDir dir("dicom");
    DicomSpec n = s;
    n.pixel_data = false;
    test::write_dicom(dir / "sr.dcm", n);
    CHECK_THROWS_WITH_AS(decode_gray8_file(dir / "sr.dcm"), doctest::Contains((dir / "sr.dcm").c_str()), Error);
  }
}

TEST_CASE("dicom: extra attributes by keyword round trip (for the data-set readers' tests)") {
  DicomSpec s = base(8, 8, 0, 255);
  s.attributes = {{"PatientID", "p00042"}, {"ViewPosition", "PA"}};
  const auto bytes = test::encode_dicom(s);
  const std::string text(bytes.begin(), bytes.end());
  CHECK(text.find("p00042") != std::string::npos);
  CHECK(decode_gray8(bytes.data(), bytes.size(), "attr.dcm").width == s.width);
}


// Files written by pydicom (tests/gen/dicom_pydicom.py): another writer, Explicit VR Big Endian and
// pydicom's own RLE encoder. Stored value of pixel (x, y): (x * 37 + y * 101) % 4096.
TEST_CASE("dicom: pydicom's files (big endian MONOCHROME1 with rescale and window; RLE without VOI)") {
  DicomSpec s;  // the stored values, for check_pixels
  s.width = 20;
  s.height = 16;
  for (int y = 0; y < s.height; ++y)
    for (int x = 0; x < s.width; ++x) s.values.push_back((x * 37 + y * 101) % 4096);

  ImageInfo info;
  const GrayImage be = decode_gray8_file(test::golden_path("pydicom_mono1_window_be.dcm"), &info);
  CHECK(info.transfer_syntax_uid == "1.2.840.10008.1.2.2");
  CHECK(info.window_source == WindowSource::file_window);
  CHECK(info.inverted);
  CHECK(info.rescale_intercept == -1024);
  CHECK(info.pixel_spacing_row_mm == doctest::Approx(0.15));
  CHECK(info.pixel_spacing_col_mm == doctest::Approx(0.16));
  check_pixels(be, s, [](std::int32_t x) { return window8(x - 1024.0, 0, 3000, true); });

  const GrayImage rle = decode_gray8_file(test::golden_path("pydicom_rle_percentile.dcm"), &info);
  CHECK(info.transfer_syntax_uid == "1.2.840.10008.1.2.5");
  CHECK(info.window_source == WindowSource::percentile);
  CHECK(info.pixel_spacing_source == "ImagerPixelSpacing");
  std::vector<double> v(s.values.begin(), s.values.end());
  std::sort(v.begin(), v.end());
  const double n1 = static_cast<double>(v.size() - 1);
  const double lo = v[static_cast<std::size_t>(std::floor(0.005 * n1))];
  const double hi = v[static_cast<std::size_t>(std::ceil(0.995 * n1))];
  check_pixels(rle, s, [&](std::int32_t x) { return window8(x, (lo + hi) / 2 + 0.5, hi - lo + 1); });
}

TEST_CASE("dicom: decoding in several threads at once (the loader's workers) gives the same pixels") {
  DicomSpec w = base(16, 12, 0, 4095);
  w.windows = {{2000, 3000}};
  DicomSpec r = w;
  r.encoding = DicomSpec::Encoding::rle;
  DicomSpec p = base(16, 16, -2000, 3000);
  const std::vector<std::vector<std::uint8_t>> files = {test::encode_dicom(w), test::encode_dicom(r),
                                                        test::encode_dicom(p)};
  std::vector<std::vector<std::uint8_t>> want;
  for (const auto& f : files) want.push_back(decode_gray8(f.data(), f.size(), "one.dcm").pixels);
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 30; ++i) {
        const std::size_t k = static_cast<std::size_t>(i + t) % files.size();
        if (decode_gray8(files[k].data(), files[k].size(), "mt.dcm").pixels != want[k]) ++mismatches[t];
      }
    });
  for (auto& th : threads) th.join();
  CHECK(mismatches == std::vector<int>(4, 0));
}

// fuzz_dicom_decode: an element declaring a 3 GB value in a 781-byte file made DCMTK's
// memory-buffer reader allocate 3 GB before finding the bytes missing. DCMTK's file reader checks
// the length against the bytes left first, so the decoder hands DCMTK a file (data/dicom_decode.cpp).
TEST_CASE("fuzz regression: a DICOM element declaring more bytes than the file holds is refused, not allocated") {
  DicomSpec s;
  s.pixel_data = false;
  auto bytes = test::encode_dicom(s);
  // (0009,0010) UN with a 4-byte length of 0xB7B7B7B7 (about 3 GB), then a few bytes.
  const std::uint8_t element[] = {0x09, 0x00, 0x10, 0x00, 'U', 'N', 0x00, 0x00, 0xB7, 0xB7, 0xB7, 0xB7, 1, 2, 3, 4};
  bytes.insert(bytes.end(), element, element + sizeof element);
  CHECK_THROWS_WITH_AS(decode_gray8(bytes.data(), bytes.size(), "huge_element.dcm"),
                       doctest::Contains("cannot decode image huge_element.dcm: not a readable DICOM file"), Error);
}

// fuzz_dicom_decode (CI, 2026-12-06): a JPEG fragment with a TEM marker (FF01) before its
// frame header hung DCMTK 3.6.7's precision scan (DJCodecDecoder::scanJpegDataForBitDepth does
// not move past FF01). The decoder now walks the fragment the same way first and refuses it.
TEST_CASE("fuzz regression: a JPEG fragment with a TEM marker before its frame header is refused, not a hang") {
  DicomSpec s;
  s.width = 16;
  s.height = 8;
  s.bits_allocated = s.bits_stored = 8;
  for (int i = 0; i < s.width * s.height; ++i) s.values.push_back(i * 2);
  s.encoding = DicomSpec::Encoding::jpeg_baseline;
  auto bytes = test::encode_dicom(s);
  REQUIRE_NOTHROW(decode_gray8(bytes.data(), bytes.size(), "baseline.dcm"));
  // The fragment's SOI (FF D8), then its first marker segment: make that marker a TEM.
  const std::uint8_t soi[] = {0xFF, 0xD8, 0xFF};
  const auto at = std::search(bytes.begin(), bytes.end(), soi, soi + 3);
  REQUIRE(at != bytes.end());
  at[3] = 0x01;
  CHECK_THROWS_WITH_AS(decode_gray8(bytes.data(), bytes.size(), "tem.dcm"),
                       doctest::Contains("cannot decode image tem.dcm: corrupt compressed pixel data"), Error);
  CHECK_THROWS_WITH_AS(decode_gray8(bytes.data(), bytes.size(), "tem.dcm"),
                       doctest::Contains("TEM marker (FF01)"), Error);
}

}  // TEST_SUITE
