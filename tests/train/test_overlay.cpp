// Class activation maps (eval/cam.h), drawing (eval/draw.h) and the prediction overlays
// (eval/overlay.h): a hand-built feature map and weights give a known CAM, the CAM box sits on
// the hot spot, text and boxes land where they should, and predict --overlay writes PNGs.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "data/image_io.h"
#include "eval/cam.h"
#include "eval/draw.h"
#include "eval/overlay.h"

using namespace cxr;

TEST_SUITE("train") {

TEST_CASE("cam: CAM_c = sum_k w_ck F_k, a known map from a hand-built feature map") {
  // K = 2 channels of 2 x 3: F_0 is 1 at (0, 2), F_1 is 1 everywhere.
  const float F[2 * 6] = {0, 0, 1, 0, 0, 0,  //
                          1, 1, 1, 1, 1, 1};
  const float w[2] = {3.f, -0.5f};
  const auto cam = class_activation_map(F, 2, 2, 3, w);
  REQUIRE(cam.size() == 6);
  const float expect[6] = {-0.5f, -0.5f, 2.5f, -0.5f, -0.5f, -0.5f};
  for (int i = 0; i < 6; ++i) CHECK(cam[static_cast<std::size_t>(i)] == doctest::Approx(expect[i]));
  // The mean of the CAM is the pooled logit without bias: (3 * 1/6 - 0.5 * 1).
  double mean = 0;
  for (float v : cam) mean += v / 6.0;
  CHECK(mean == doctest::Approx(3.0 / 6 - 0.5));
}

TEST_CASE("cam: bilinear upsampling (align_corners = false) and min-max normalisation") {
  // 1 x 2 -> 1 x 4: pixel centres at source x = -0.25 (clamped 0), 0.25, 0.75, 1.25 (clamped 1).
  const auto up = upsample_bilinear({0.f, 4.f}, 1, 2, 1, 4);
  REQUIRE(up.size() == 4);
  CHECK(up[0] == doctest::Approx(0));
  CHECK(up[1] == doctest::Approx(1));
  CHECK(up[2] == doctest::Approx(3));
  CHECK(up[3] == doctest::Approx(4));
  // Same size: identity.
  const auto same = upsample_bilinear({1.f, 2.f, 3.f, 4.f}, 2, 2, 2, 2);
  CHECK(same == std::vector<float>{1.f, 2.f, 3.f, 4.f});
  const auto n = normalize_min_max({-1.f, 1.f, 3.f});
  CHECK(n[0] == 0.f);
  CHECK(n[1] == doctest::Approx(0.5));
  CHECK(n[2] == 1.f);
  CHECK(normalize_min_max({2.f, 2.f}) == std::vector<float>{0.f, 0.f});
}

TEST_CASE("cam: the thresholded box is where the hot spot is") {
  // A 4 x 4 feature map, one channel, hot at row 1, column 2; upsampled to 64 x 64.
  std::vector<float> F(16, 0.f);
  F[1 * 4 + 2] = 10.f;
  const float w = 1.f;
  const auto cam = class_activation_map(F.data(), 1, 4, 4, &w);
  const auto map = normalize_min_max(upsample_bilinear(cam, 4, 4, 64, 64));
  const PixelBox b = threshold_box(map, 64, 64, 0.5f);
  REQUIRE_FALSE(b.empty());
  // Cell (row 1, col 2) covers x 32..47, y 16..31; the >= 0.5 region is centred on it.
  CHECK((b.x0 + b.x1) / 2.0 == doctest::Approx(39.5).epsilon(0.05));
  CHECK((b.y0 + b.y1) / 2.0 == doctest::Approx(23.5).epsilon(0.05));
  CHECK(b.width() <= 32);
  CHECK(b.height() <= 32);
  CHECK(b.x0 >= 24);
  CHECK(b.y1 <= 40);
  // A flat map has no box above 0.5.
  CHECK(threshold_box(std::vector<float>(16, 0.f), 4, 4).empty());
}

TEST_CASE("draw: jet colours, rectangles, dashed rectangles, text, PNG round trip") {
  CHECK(jet(0).b > 100);
  CHECK(jet(0).r == 0);
  CHECK(jet(1).r > 100);
  CHECK(jet(1).b == 0);
  CHECK(jet(0.5f).g == 255);
  RgbImage img(40, 30, Rgb{10, 10, 10});
  draw_rect(img, 5, 5, 20, 15, Rgb{255, 0, 0}, 1);
  CHECK(img.at(5, 5).r == 255);
  CHECK(img.at(20, 15).r == 255);
  CHECK(img.at(12, 10).r == 10);  // inside: untouched
  RgbImage d(40, 30);
  draw_rect(d, 0, 0, 39, 0, Rgb{0, 255, 0}, 1, /*dashed=*/true);
  CHECK(d.at(0, 0).g == 255);
  CHECK(d.at(4, 0).g == 0);  // the first gap of a 3-pixel dash
  RgbImage t(80, 20);
  draw_text(t, 2, 2, "AB", Rgb{255, 255, 255}, 2);
  int lit = 0;
  for (int y = 0; y < 20; ++y)
    for (int x = 0; x < 80; ++x) lit += t.at(x, y).r == 255;
  CHECK(lit > 20);
  CHECK(text_width("AB", 2) == 2 * text_width("AB", 1));
  const auto png = encode_png(img);
  const data::GrayImage back = data::decode_gray8(png.data(), png.size(), "overlay.png");
  CHECK(back.width == 40);
  CHECK(back.height == 30);
}

TEST_CASE("overlay: panels for findings above threshold or with truth boxes, heat map on the hot spot") {
  data::GrayImage g;
  g.width = 128;
  g.height = 128;
  g.pixels.assign(128 * 128, 100);
  OverlayInput in;
  in.image = &g;
  in.name = "x.png";
  in.class_names = {"A", "B", "C"};
  in.probs = {0.9f, 0.1f, 0.2f};
  in.thresholds = {0.5, 0.5, 0.5};
  in.boxes = {0.25f, 0.25f, 0.2f, 0.2f, 0.5f, 0.5f, 0.1f, 0.1f, 0.5f, 0.5f, 0.1f, 0.1f};
  in.cam_h = in.cam_w = 2;
  in.cams = {0, 0, 0, 5,   // A: hot bottom-right
             1, 0, 0, 0,   // B
             0, 0, 0, 0};  // C
  in.truth.push_back({2, 10.f, 10.f, 20.f, 20.f});  // a truth box of C: C gets a panel too
  OverlayOptions o;
  o.panel_size = 256;
  const auto f = overlay_findings(in, o);
  REQUIRE(f.size() == 2);
  CHECK(f[0] == 0);  // above threshold first
  CHECK(f[1] == 2);
  const RgbImage img = render_overlay(in, o);
  CHECK(img.width >= 2 * 256);
  CHECK(img.height > 256);
  // Panel 1 (A): bottom-right is red-ish (hot), top-left keeps the gray radiograph.
  const int header = 12 * 1 + 2 + 2;  // scale = 256 / 192 = 1
  const Rgb hot = img.at(2 + 230, header + 230), cold = img.at(2 + 60, header + 120);
  CHECK(hot.r > hot.b);
  CHECK(cold.r == cold.g);
  // Ground-truth colour appears in the image (C's panel).
  bool green = false;
  for (int y = 0; y < img.height && !green; ++y)
    for (int x = 0; x < img.width; ++x)
      if (img.at(x, y).r == kTruthColor.r && img.at(x, y).g == kTruthColor.g && img.at(x, y).b == kTruthColor.b) {
        green = true;
        break;
      }
  CHECK(green);
  // No finding: one plain panel.
  in.probs = {0.1f, 0.1f, 0.1f};
  in.truth.clear();
  CHECK(overlay_findings(in, o).empty());
  CHECK(render_overlay(in, o).width > 0);
}

TEST_CASE("overlay: truth boxes from a BBox_List_2017.csv file, for the images named") {
  const auto dir = std::filesystem::temp_directory_path() / "cxr_test_overlay_boxes";
  std::filesystem::create_directories(dir);
  const auto path = (dir / "BBox_List_2017.csv").string();
  {
    std::ofstream f(path);
    f << "Image Index,Finding Label,Bbox [x,y,w,h],,,\n"
      << "a.png,Infiltrate,10,20,30,40\n"
      << "a.png,Mass,1,2,3,4\n"
      << "b.png,Nodule,5,6,7,8\n"
      << "a.png,Unknown,1,1,1,1\n";
  }
  const auto t = read_truth_boxes(path, {"a.png", "c.png"});
  REQUIRE(t.count("a.png") == 1);
  CHECK(t.count("b.png") == 0);
  CHECK(t.at("a.png").size() == 2);
  CHECK(t.at("a.png")[0].label == 3);  // Infiltration
  CHECK(t.at("a.png")[0].w == 30.f);
  std::filesystem::remove_all(dir);
}

}  // TEST_SUITE
