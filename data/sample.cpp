// prepare_sample: resize, augment, normalise one image and its targets.
#include "data/sample.h"

#include <algorithm>

#include "data/labels.h"
#include "data/resize.h"

namespace cxr::data {

void prepare_sample(const std::uint8_t* src, int src_w, int src_h, int box_ref_w, int box_ref_h,
                    const ImageRecord& record, std::int64_t index, std::int64_t epoch, const SampleOptions& o,
                    SampleScratch& scratch, const SampleSlot& out) {
  const int S = o.image_size;
  const std::size_t n = static_cast<std::size_t>(S) * S;
  const std::uint8_t* pixels = src;
  if (src_w != S || src_h != S) {
    scratch.resized.resize(n);
    resize_gray8(src, src_w, src_h, scratch.resized.data(), S, S);
    pixels = scratch.resized.data();
  }
  AugmentParams p;
  if (o.augment) p = sample_augment(o.augment_options, o.seed, epoch, index, S, S);
  if (!p.is_geometric_identity()) {
    scratch.warped.resize(n);
    warp_affine_gray8(pixels, scratch.warped.data(), S, S, p);
    pixels = scratch.warped.data();
  }
  normalize_gray8(pixels, static_cast<std::int64_t>(n), p.brightness, p.contrast, o.normalize, out.image);

  const int K = o.classes();
  const LabelMask present = o.set_findings & record.known;
  auto finding_of = [&](int k) { return o.label_findings.empty() ? k : o.label_findings[static_cast<std::size_t>(k)]; };
  for (int k = 0; k < K; ++k) {
    const int g = finding_of(k);
    out.labels[k] = g >= 0 && has_label(record.labels, g) ? 1.f : 0.f;
    if (out.label_mask) out.label_mask[k] = g >= 0 && has_label(present, g) ? 1.f : 0.f;
  }
  std::fill(out.boxes, out.boxes + K * 4, 0.f);
  std::fill(out.box_mask, out.box_mask + K, 0.f);
  for (const Box& original : record.boxes) {
    int k = -1;
    for (int j = 0; j < K && original.label >= 0; ++j)
      if (finding_of(j) == original.label) k = j;
    if (k < 0 || out.box_mask[k] != 0.f || box_ref_w <= 0 || box_ref_h <= 0) continue;
    Box b = scale_box(original, box_ref_w, box_ref_h, S, S);
    if (!p.is_geometric_identity() && !transform_box(b, S, S, p)) continue;
    float* d = out.boxes + k * 4;
    d[0] = (b.x + 0.5f * b.w) / S;
    d[1] = (b.y + 0.5f * b.h) / S;
    d[2] = b.w / S;
    d[3] = b.h / S;
    out.box_mask[k] = 1.f;
  }
}

}  // namespace cxr::data
