// JPEG through libjpeg-turbo (data/jpeg_decode.h): the real NIH radiographs re-encoded by the
// test with tjCompress2 and decoded back, colour to luminance as the PNG path does, progressive,
// refusals (truncated, corrupt, CMYK, 12-bit) naming the file; format detection; 16-bit PNG in
// the same range as 8-bit.
#include <doctest/doctest.h>

#include <turbojpeg.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "data/image_io.h"
#include "data/jpeg_decode.h"
#include "tensor/error.h"
#include "tests/data/data_test_util.h"

using namespace cxr;
using namespace cxr::data;

namespace {

// ../shared/data/nih-released (6 real 1024 x 1024 radiographs, one RGBA), or "" when absent.
std::string nih_released_dir() {
  std::string base;
  if (const char* env = std::getenv("CXR_SHARED_DATA"); env && *env) base = env;
#ifdef CXR_SHARED_DATA_DIR
  else base = CXR_SHARED_DATA_DIR;
#endif
  const std::filesystem::path dir = std::filesystem::path(base) / "nih-released";
  std::error_code ec;
  return !base.empty() && std::filesystem::is_regular_file(dir / "00000004_000.png", ec) ? dir.string() : "";
}

const char* const kReleased[] = {"00000001_001.png", "00000002_000.png", "00000003_003.png",
                                 "00000004_000.png", "00000013_003.png", "00000013_004.png"};

// libjpeg-turbo's encoder: `pixel_format` TJPF_GRAY / TJPF_RGB / TJPF_CMYK samples, row-major.
std::vector<std::uint8_t> encode_jpeg(const std::vector<std::uint8_t>& px, int w, int h, int pixel_format,
                                      int subsamp, int quality, int flags = 0) {
  std::unique_ptr<void, int (*)(tjhandle)> tj(tjInitCompress(), tjDestroy);
  REQUIRE(tj != nullptr);
  unsigned char* out = nullptr;
  unsigned long size = 0;
  const int rc = tjCompress2(tj.get(), px.data(), w, 0, h, pixel_format, &out, &size, subsamp, quality,
                             flags | TJFLAG_ACCURATEDCT);
  INFO(tjGetErrorStr2(tj.get()));
  REQUIRE(rc == 0);
  std::vector<std::uint8_t> bytes(out, out + size);
  tjFree(out);
  return bytes;
}

struct Diff {
  int max_abs = 0;
  double mean_abs = 0;
};
Diff compare(const GrayImage& a, const GrayImage& b) {
  REQUIRE(a.pixels.size() == b.pixels.size());
  Diff e;
  for (std::size_t i = 0; i < a.pixels.size(); ++i) {
    const int d = std::abs(int(a.pixels[i]) - int(b.pixels[i]));
    e.max_abs = std::max(e.max_abs, d);
    e.mean_abs += d;
  }
  e.mean_abs /= static_cast<double>(a.pixels.size());
  return e;
}

}  // namespace

TEST_SUITE("data") {

TEST_CASE("jpeg: the real NIH radiographs re-encoded at quality 95 and 100 decode back, same geometry") {
  const std::string dir = nih_released_dir();
  if (dir.empty()) {
    MESSAGE("skipped: ../shared/data/nih-released is absent");
    return;
  }
  for (const char* file : kReleased) {
    CAPTURE(file);
    ImageInfo png_info;
    const GrayImage png = decode_gray8_file(dir + "/" + file, &png_info);
    CHECK(png_info.format == ImageFormat::png);
    CHECK(png.width == 1024);
    CHECK(png.height == 1024);
    for (const int quality : {95, 100}) {
      CAPTURE(quality);
      const auto jpeg = encode_jpeg(png.pixels, png.width, png.height, TJPF_GRAY, TJSAMP_GRAY, quality);
      ImageInfo info;
      const GrayImage back = decode_gray8(jpeg.data(), jpeg.size(), "nih.jpg", &info);
      CHECK(info.format == ImageFormat::jpeg);
      CHECK(info.photometric == "GRAY");
      CHECK(info.channels == 1);
      REQUIRE(back.width == png.width);
      REQUIRE(back.height == png.height);
      // Measured (libjpeg-turbo 2.1.5): q95 max 7..8, mean 0.46..0.91; q100 max 1..2, mean < 0.1.
      const Diff e = compare(back, png);
      CHECK(e.max_abs <= (quality == 100 ? 2 : 12));
      CHECK(e.mean_abs < (quality == 100 ? 0.2 : 1.5));
    }
  }
  // The RGBA file's gray as an RGB JPEG (R = G = B, 4:4:4): luminance is that gray again.
  const GrayImage rgba = decode_gray8_file(dir + "/00000004_000.png");
  std::vector<std::uint8_t> rgb;
  for (auto v : rgba.pixels) rgb.insert(rgb.end(), {v, v, v});
  const auto jpeg = encode_jpeg(rgb, rgba.width, rgba.height, TJPF_RGB, TJSAMP_444, 100);
  ImageInfo info;
  const GrayImage back = decode_gray8(jpeg.data(), jpeg.size(), "rgba.jpg", &info);
  CHECK(info.photometric == "YCbCr");
  CHECK(info.channels == 3);
  CHECK(compare(back, rgba).max_abs <= 2);
}

TEST_CASE("jpeg: colour becomes luminance with the PNG path's weights; progressive decodes as baseline") {
  const int w = 48, h = 32;
  std::vector<std::uint8_t> rgb;
  GrayImage luma;  // what the PNG path makes of these RGB pixels: (77 R + 150 G + 29 B) / 256
  luma.width = w;
  luma.height = h;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      // Smooth colour ramps (JPEG's 4:2:0 chroma halves them without ringing).
      const int r = 40 + 4 * x, g = 200 - 5 * y, b = 60 + 2 * x + 2 * y;
      rgb.insert(rgb.end(), {std::uint8_t(r), std::uint8_t(g), std::uint8_t(b)});
      luma.pixels.push_back(static_cast<std::uint8_t>((r * 77 + g * 150 + b * 29) >> 8));
    }
  const auto png = encode_png8(rgb.data(), w, h, 3);
  CHECK(compare(decode_gray8(png.data(), png.size(), "c.png"), luma).max_abs == 0);
  for (const int subsamp : {TJSAMP_444, TJSAMP_420}) {
    CAPTURE(subsamp);
    const auto baseline = encode_jpeg(rgb, w, h, TJPF_RGB, subsamp, 100);
    const GrayImage g = decode_gray8(baseline.data(), baseline.size(), "c.jpg");
    // BT.601 Y vs stb's 8-bit weights differ by < 1 level; quality 100 adds < 1 more.
    CHECK(compare(g, luma).max_abs <= 2);
    const auto progressive = encode_jpeg(rgb, w, h, TJPF_RGB, subsamp, 100, TJFLAG_PROGRESSIVE);
    CHECK(progressive != baseline);
    CHECK(decode_gray8(progressive.data(), progressive.size(), "p.jpg").pixels == g.pixels);
  }
}

TEST_CASE("jpeg: truncated, corrupt, CMYK and 12-bit files are refused naming the file") {
  std::vector<std::uint8_t> px(64 * 64);
  for (std::size_t i = 0; i < px.size(); ++i) px[i] = static_cast<std::uint8_t>(i * 37 % 251);
  const auto jpeg = encode_jpeg(px, 64, 64, TJPF_GRAY, TJSAMP_GRAY, 90);
  REQUIRE(decode_gray8(jpeg.data(), jpeg.size(), "ok.jpg").width == 64);

  auto cut = jpeg;
  cut.resize(jpeg.size() * 2 / 3);
  CHECK_THROWS_WITH_AS(decode_gray8(cut.data(), cut.size(), "cut.jpg"),
                       doctest::Contains("cannot decode image cut.jpg: truncated or corrupt JPEG data"), Error);
  // Only the first bytes: SOI and part of the headers.
  CHECK_THROWS_WITH_AS(decode_gray8(jpeg.data(), 40, "head.jpg"), doctest::Contains("cannot decode image head.jpg"),
                       Error);
  const std::vector<std::uint8_t> soi_eoi = {0xFF, 0xD8, 0xFF, 0xD9};
  CHECK_THROWS_WITH_AS(decode_gray8(soi_eoi.data(), soi_eoi.size(), "tiny.jpg"),
                       doctest::Contains("cannot decode image tiny.jpg: corrupt JPEG header: 0 x 0 pixels"), Error);

  // A restart marker written into the entropy-coded data where none belongs.
  auto damaged = jpeg;
  for (std::size_t k = damaged.size() / 2; k < damaged.size() / 2 + 8; ++k) damaged[k] = k % 2 ? 0xD3 : 0xFF;
  CHECK_THROWS_WITH_AS(decode_gray8(damaged.data(), damaged.size(), "damaged.jpg"),
                       doctest::Contains("cannot decode image damaged.jpg"), Error);

  std::vector<std::uint8_t> cmyk(16 * 16 * 4, 128);
  const auto ycck = encode_jpeg(cmyk, 16, 16, TJPF_CMYK, TJSAMP_444, 90);
  CHECK_THROWS_WITH_AS(decode_gray8(ycck.data(), ycck.size(), "print.jpg"),
                       doctest::Contains("cannot decode image print.jpg: a YCCK JPEG (print colour)"), Error);

  // SOF1 (extended), precision 12, 16 x 16, one component: refused from the frame header.
  const std::vector<std::uint8_t> twelve = {0xFF, 0xD8, 0xFF, 0xC1, 0x00, 0x0B, 0x0C, 0x00, 0x10,
                                            0x00, 0x10, 0x01, 0x01, 0x11, 0x00, 0xFF, 0xD9};
  CHECK_THROWS_WITH_AS(decode_gray8(twelve.data(), twelve.size(), "ct12.jpg"),
                       doctest::Contains("cannot decode image ct12.jpg: a 12-bit JPEG"), Error);
  // A header claiming 60000 x 60000 pixels: refused before any allocation.
  auto huge = jpeg;
  for (std::size_t k = 2; k + 9 < huge.size(); ++k)
    if (huge[k] == 0xFF && huge[k + 1] == 0xC0) {
      huge[k + 5] = huge[k + 7] = 0xEA;  // height and width 0xEA60 = 60000
      huge[k + 6] = huge[k + 8] = 0x60;
      break;
    }
  CHECK_THROWS_WITH_AS(decode_gray8(huge.data(), huge.size(), "huge.jpg"),
                       doctest::Contains("huge.jpg: its header says 60000 x 60000 pixels"), Error);
}

TEST_CASE("decode: the format comes from the first bytes, not the name; unknown bytes are named") {
  std::vector<std::uint8_t> px(8 * 8, 77);
  const auto png = encode_png8(px.data(), 8, 8, 1);
  const auto jpeg = encode_jpeg(px, 8, 8, TJPF_GRAY, TJSAMP_GRAY, 95);
  CHECK(detect_image_format(png.data(), png.size()) == ImageFormat::png);
  CHECK(detect_image_format(jpeg.data(), jpeg.size()) == ImageFormat::jpeg);
  test::TempDir dir("fmt");
  test::write_bytes(dir / "really_a_jpeg.png", jpeg);
  test::write_bytes(dir / "really_a_png.jpg", png);
  ImageInfo info;
  CHECK(decode_gray8_file(dir / "really_a_jpeg.png", &info).width == 8);
  CHECK(info.format == ImageFormat::jpeg);
  CHECK(decode_gray8_file(dir / "really_a_png.jpg", &info).pixels == px);
  CHECK(info.format == ImageFormat::png);
  CHECK(info.bits_stored == 8);
  const std::string gif = "GIF89a....";
  CHECK_THROWS_WITH_AS(decode_gray8(reinterpret_cast<const std::uint8_t*>(gif.data()), gif.size(), "x.gif"),
                       doctest::Contains("x.gif: not a PNG, JPEG or DICOM file (it starts with bytes 47 49 46 38"),
                       Error);
}

TEST_CASE("png: a 16-bit copy (v * 257) of a real radiograph decodes to the same 8-bit pixels") {
  const std::string dir = nih_released_dir();
  if (dir.empty()) {
    MESSAGE("skipped: ../shared/data/nih-released is absent");
    return;
  }
  const GrayImage g8 = decode_gray8_file(dir + "/00000013_004.png");
  std::vector<std::uint16_t> s(g8.pixels.begin(), g8.pixels.end());
  for (auto& v : s) v = static_cast<std::uint16_t>(v * 257);
  const auto png16 = test::encode_png(s, g8.width, g8.height, 1, 16);
  ImageInfo info;
  const GrayImage g16 = decode_gray8(png16.data(), png16.size(), "padchest_like.png", &info);
  CHECK(info.bits_stored == 16);
  CHECK(info.photometric == "GRAY");
  CHECK(g16.pixels == g8.pixels);
}

}  // TEST_SUITE
