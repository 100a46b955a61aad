// Images: decoding every PNG flavour to 8-bit gray, the real radiographs, broken files,
// antialiased resize (identity at the same size) and box scaling.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>

#include "data/image_io.h"
#include "data/resize.h"
#include "tensor/error.h"
#include "tests/data/data_test_util.h"

using namespace cxr;
using namespace cxr::data;

namespace {

// A 6 x 5 ramp in [0, 255].
std::uint8_t ramp(int x, int y) { return static_cast<std::uint8_t>(x * 40 + y * 7); }

}  // namespace

TEST_SUITE("data") {

TEST_CASE("decode: 8-bit gray, gray+alpha, RGB and RGBA PNGs all become 8-bit gray") {
  const int w = 6, h = 5;
  for (int channels = 1; channels <= 4; ++channels) {
    CAPTURE(channels);
    std::vector<std::uint8_t> px;
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        for (int c = 0; c < channels; ++c) {
          const bool alpha = (channels == 2 && c == 1) || (channels == 4 && c == 3);
          px.push_back(alpha ? 255 : ramp(x, y));
        }
    const auto png = encode_png8(px.data(), w, h, channels);
    const GrayImage g = decode_gray8(png.data(), png.size(), "t.png");
    REQUIRE(g.width == w);
    REQUIRE(g.height == h);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) CHECK(std::abs(int(g.at(x, y)) - int(ramp(x, y))) <= 1);  // luma rounding
  }
}

TEST_CASE("decode: 16-bit gray and 16-bit RGB PNGs are rounded to 8 bits") {
  const int w = 4, h = 3;
  for (int channels : {1, 2, 3, 4}) {
    CAPTURE(channels);
    std::vector<std::uint16_t> s;
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        for (int c = 0; c < channels; ++c) {
          const bool alpha = (channels == 2 && c == 1) || (channels == 4 && c == 3);
          s.push_back(alpha ? 65535 : static_cast<std::uint16_t>(ramp(x, y) * 257));
        }
    const auto png = test::encode_png(s, w, h, channels, 16);
    const GrayImage g = decode_gray8(png.data(), png.size(), "t16.png");
    REQUIRE(g.width == w);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) CHECK(std::abs(int(g.at(x, y)) - int(ramp(x, y))) <= 1);
  }
  // Exact 16 -> 8 rounding on gray.
  const auto png = test::encode_png({0, 128, 32767, 65535}, 4, 1, 1, 16);
  const GrayImage g = decode_gray8(png.data(), png.size(), "r.png");
  CHECK(g.pixels == std::vector<std::uint8_t>{0, 0, 127, 255});
}

TEST_CASE("decode: the three real radiographs") {
  const auto nih = test::nih_dir();
  if (!nih) {
    MESSAGE("skipped: ../shared/data/nih is absent");
    return;
  }
  const std::pair<const char*, int> files[] = {
      {"00009285_000.png", 1024}, {"00000001_000.png", 512}, {"00027426_000.png", 512}};
  for (const auto& [name, size] : files) {
    CAPTURE(name);
    const GrayImage g = decode_gray8_file(*nih + "/images/" + name);
    CHECK(g.width == size);
    CHECK(g.height == size);
    double mean = 0;
    for (auto v : g.pixels) mean += v;
    mean /= static_cast<double>(g.pixels.size());
    CHECK(mean > 40);  // a radiograph, not a blank
    CHECK(mean < 220);
  }
}

TEST_CASE("decode: missing, empty, truncated and non-image files fail with the file's name") {
  test::TempDir dir("broken");
  std::vector<std::uint8_t> px(64 * 64, 100);
  auto png = encode_png8(px.data(), 64, 64, 1);
  png.resize(png.size() / 2);
  test::write_bytes(dir / "truncated.png", png);
  test::write_bytes(dir / "empty.png", {});
  test::write_text(dir / "text.png", "not a png at all");
  CHECK_THROWS_WITH_AS(decode_gray8_file(dir / "absent.png"), doctest::Contains("absent.png"), Error);
  CHECK_THROWS_WITH_AS(decode_gray8_file(dir / "truncated.png"), doctest::Contains("truncated.png"), Error);
  CHECK_THROWS_WITH_AS(decode_gray8_file(dir / "empty.png"), doctest::Contains("empty.png"), Error);
  CHECK_THROWS_WITH_AS(decode_gray8_file(dir / "text.png"), doctest::Contains("text.png"), Error);
}

TEST_CASE("resize: the same size leaves every pixel as it was; PNG round trip is lossless") {
  GrayImage img;
  img.width = 37;
  img.height = 23;
  for (int i = 0; i < img.width * img.height; ++i) img.pixels.push_back(static_cast<std::uint8_t>((i * 73) % 256));
  const GrayImage same = resize_gray8(img, 37, 23);
  CHECK(same.pixels == img.pixels);
  test::TempDir dir("png");
  write_png_gray8(dir / "x.png", img);
  CHECK(decode_gray8_file(dir / "x.png").pixels == img.pixels);
}

TEST_CASE("resize: antialiased, mean preserving, constant images stay constant") {
  // A one-pixel checkerboard shrunk 4x must become flat grey, not aliased stripes.
  GrayImage checker;
  checker.width = checker.height = 64;
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x) checker.pixels.push_back((x + y) % 2 ? 255 : 0);
  const GrayImage small = resize_gray8(checker, 16, 16);
  for (auto v : small.pixels) CHECK(std::abs(int(v) - 128) <= 2);
  GrayImage flat;
  flat.width = 50;
  flat.height = 30;
  flat.pixels.assign(1500, 77);
  for (auto [w, h] : {std::pair{17, 9}, std::pair{100, 61}, std::pair{50, 7}})
    for (auto v : resize_gray8(flat, w, h).pixels) CHECK(v == 77);
  // Shrinking by exactly 2 averages 2x2 blocks... with the triangle filter, a weighted 4x4.
  GrayImage ramp_img;
  ramp_img.width = ramp_img.height = 8;
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 8; ++x) ramp_img.pixels.push_back(static_cast<std::uint8_t>(x * 32));
  const GrayImage half = resize_gray8(ramp_img, 4, 4);
  CHECK(half.at(1, 1) == 80);  // 0.125*32 + 0.375*64 + 0.375*96 + 0.125*128 = 80
}

TEST_CASE("box scaling: from the image's own pixels to the resized image") {
  const Box b{2, 100.f, 200.f, 300.f, 50.f};
  const Box s = scale_box(b, 1024, 1024, 224, 224);
  CHECK(s.label == 2);
  CHECK(s.x == doctest::Approx(100 * 224 / 1024.0));
  CHECK(s.y == doctest::Approx(200 * 224 / 1024.0));
  CHECK(s.w == doctest::Approx(300 * 224 / 1024.0));
  CHECK(s.h == doctest::Approx(50 * 224 / 1024.0));
  const Box r = scale_box(b, 2000, 1000, 500, 500);  // non-square source
  CHECK(r.x == doctest::Approx(25));
  CHECK(r.y == doctest::Approx(100));
}

}  // TEST_SUITE
