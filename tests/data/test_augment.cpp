// Augmentation and normalisation: parameters are a pure function of (seed, epoch, index);
// boxes move with the image; the default normalisation is torchvision's ImageNet one.
#include <doctest/doctest.h>

#include <cmath>

#include "data/augment.h"
#include "data/normalize.h"
#include "data/sample.h"

using namespace cxr;
using namespace cxr::data;

TEST_SUITE("data") {

TEST_CASE("augmentation parameters depend only on (seed, epoch, index); flip off by default") {
  const AugmentOptions o;
  const AugmentParams a = sample_augment(o, 1, 2, 3, 224, 224);
  const AugmentParams b = sample_augment(o, 1, 2, 3, 224, 224);
  CHECK(a.angle == b.angle);
  CHECK(a.tx == b.tx);
  CHECK(a.scale == b.scale);
  CHECK(a.brightness == b.brightness);
  CHECK(sample_augment(o, 1, 2, 4, 224, 224).angle != a.angle);
  CHECK(sample_augment(o, 1, 3, 3, 224, 224).angle != a.angle);
  CHECK(sample_augment(o, 2, 2, 3, 224, 224).angle != a.angle);
  int flips = 0;
  for (int i = 0; i < 200; ++i) {
    const AugmentParams p = sample_augment(o, 0, 0, i, 224, 224);
    flips += p.flip;
    CHECK(std::abs(p.angle) <= o.rotation_deg * 3.1416f / 180.f);
    CHECK(std::abs(p.tx) <= o.translate * 224 + 1e-3f);
    CHECK(p.scale >= o.scale_min);
    CHECK(p.scale <= o.scale_max);
    CHECK(p.brightness >= 0.9f - 1e-6f);
    CHECK(p.contrast <= 1.1f + 1e-6f);
  }
  CHECK(flips == 0);
  AugmentOptions with_flip;
  with_flip.hflip = true;
  flips = 0;
  for (int i = 0; i < 200; ++i) flips += sample_augment(with_flip, 0, 0, i, 224, 224).flip;
  CHECK(flips > 60);
  CHECK(flips < 140);
}

TEST_CASE("the warp moves a bright square and its box alike") {
  const int S = 64;
  std::vector<std::uint8_t> img(S * S, 0), out(S * S);
  for (int y = 10; y < 20; ++y)
    for (int x = 40; x < 50; ++x) img[y * S + x] = 255;
  for (const bool flip : {false, true}) {
    AugmentParams p;
    p.angle = 0.3f;
    p.tx = 3.f;
    p.ty = -2.f;
    p.scale = 1.1f;
    p.flip = flip;
    warp_affine_gray8(img.data(), out.data(), S, S, p);
    Box b{4, 40, 10, 10, 10};
    REQUIRE(transform_box(b, S, S, p));
    // The bright pixels' centroid lies at the transformed box's centre.
    double sx = 0, sy = 0, sw = 0;
    for (int y = 0; y < S; ++y)
      for (int x = 0; x < S; ++x) {
        sx += out[y * S + x] * (x + 0.5);
        sy += out[y * S + x] * (y + 0.5);
        sw += out[y * S + x];
      }
    CHECK(sx / sw == doctest::Approx(b.x + b.w / 2).epsilon(0.02));
    CHECK(sy / sw == doctest::Approx(b.y + b.h / 2).epsilon(0.02));
    // A rotated 10x10 square needs a larger axis-aligned box.
    CHECK(b.w > 11.f);
  }
  // Identity parameters copy the image.
  warp_affine_gray8(img.data(), out.data(), S, S, AugmentParams{});
  CHECK(out == img);
  // A box shifted out of the image is dropped.
  AugmentParams far;
  far.tx = 60.f;
  Box b{0, 40, 10, 10, 10};
  CHECK_FALSE(transform_box(b, S, S, far));
}

TEST_CASE("normalisation defaults to torchvision's ImageNet preprocessing, configurable") {
  const std::uint8_t px[3] = {0, 128, 255};
  float out[9];
  normalize_gray8(px, 3, 1.f, 1.f, NormalizeOptions{}, out);
  const float mean[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 3; ++i) CHECK(out[c * 3 + i] == doctest::Approx((px[i] / 255.f - mean[c]) / sd[c]).epsilon(1e-6));
  NormalizeOptions one;
  one.channels = 1;
  one.mean = {0.5f, 0, 0};
  one.std = {0.5f, 1, 1};
  normalize_gray8(px, 3, 1.f, 1.f, one, out);
  CHECK(out[0] == doctest::Approx(-1.f));
  CHECK(out[2] == doctest::Approx(1.f));
  // Brightness scales, contrast stretches about the mean (here 127.67).
  NormalizeOptions raw;
  raw.channels = 1;
  raw.scale = 1.f;
  raw.mean = {0, 0, 0};
  raw.std = {1, 1, 1};
  normalize_gray8(px, 3, 0.5f, 1.f, raw, out);
  CHECK(out[1] == doctest::Approx(64.f));
  normalize_gray8(px, 3, 1.f, 0.5f, raw, out);
  CHECK(out[0] == doctest::Approx(127.667f / 2).epsilon(1e-3));
}

TEST_CASE("prepare_sample: labels, boxes as normalised (cx, cy, w, h) and a box mask") {
  ImageRecord r;
  r.labels = static_cast<LabelMask>((1u << 1) | (1u << 9));
  r.boxes.push_back(Box{1, 256, 512, 512, 256});  // in the 1024 x 1024 source
  std::vector<std::uint8_t> src(1024 * 1024, 50);
  SampleOptions o;
  o.image_size = 32;
  std::vector<float> image(3 * 32 * 32), labels(14), boxes(56), mask(14);
  SampleScratch scratch;
  prepare_sample(src.data(), 1024, 1024, 1024, 1024, r, 0, 0, o, scratch,
                 SampleSlot{image.data(), labels.data(), boxes.data(), mask.data()});
  CHECK(labels[1] == 1.f);
  CHECK(labels[9] == 1.f);
  CHECK(labels[0] == 0.f);
  CHECK(mask[1] == 1.f);
  CHECK(mask[9] == 0.f);
  CHECK(boxes[4] == doctest::Approx(0.5));   // cx = (256 + 256) / 1024
  CHECK(boxes[5] == doctest::Approx(0.625));  // cy = (512 + 128) / 1024
  CHECK(boxes[6] == doctest::Approx(0.5));
  CHECK(boxes[7] == doctest::Approx(0.25));
  CHECK(image[0] == doctest::Approx((50 / 255.f - 0.485f) / 0.229f));
}

}  // TEST_SUITE
