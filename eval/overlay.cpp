// Prediction overlays (see overlay.h).
#include "eval/overlay.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "data/report.h"
#include "tensor/error.h"
#include "eval/cam.h"

namespace cxr {

std::vector<int> overlay_findings(const OverlayInput& in, const OverlayOptions& o) {
  const int C = static_cast<int>(in.class_names.size());
  std::vector<int> picked;
  for (int c = 0; c < C; ++c) {
    const bool above = in.probs[static_cast<std::size_t>(c)] >= in.thresholds[static_cast<std::size_t>(c)];
    const bool truth = std::any_of(in.truth.begin(), in.truth.end(), [&](const data::Box& b) { return b.label == c; });
    if (above || truth) picked.push_back(c);
  }
  auto ratio = [&](int c) {
    const double t = std::max(in.thresholds[static_cast<std::size_t>(c)], 1e-6);
    return in.probs[static_cast<std::size_t>(c)] / t;
  };
  std::stable_sort(picked.begin(), picked.end(), [&](int a, int b) { return ratio(a) > ratio(b); });
  if (static_cast<int>(picked.size()) > o.max_panels) picked.resize(static_cast<std::size_t>(std::max(o.max_panels, 0)));
  return picked;
}

namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// One panel: the radiograph, the finding's CAM and boxes (finding < 0: the radiograph and
// every truth box only).
RgbImage render_panel(const OverlayInput& in, int finding, int W, int H, int scale, const OverlayOptions& o) {
  RgbImage p = gray_to_rgb(*in.image, W, H);
  const double sx = static_cast<double>(W) / in.image->width, sy = static_cast<double>(H) / in.image->height;
  const int thick = std::max(1, scale);
  for (const data::Box& b : in.truth) {
    if (finding >= 0 && b.label != finding) continue;
    draw_rect(p, static_cast<int>(std::lround(b.x * sx)), static_cast<int>(std::lround(b.y * sy)),
              static_cast<int>(std::lround((b.x + b.w) * sx)) - 1, static_cast<int>(std::lround((b.y + b.h) * sy)) - 1,
              kTruthColor, thick);
    if (finding < 0 && b.label >= 0 && b.label < static_cast<int>(in.class_names.size()))
      draw_text_box(p, static_cast<int>(b.x * sx), static_cast<int>((b.y + b.h) * sy) + 1,
                    in.class_names[static_cast<std::size_t>(b.label)], kTruthColor, Rgb{0, 0, 0}, scale);
  }
  if (finding < 0) {
    draw_text_box(p, 0, 0, "no finding at or above its threshold", Rgb{255, 255, 255}, Rgb{0, 0, 0}, scale);
    return p;
  }
  const std::size_t c = static_cast<std::size_t>(finding);
  if (in.cam_h > 0 && in.cam_w > 0 && in.cams.size() >= (c + 1) * static_cast<std::size_t>(in.cam_h) * in.cam_w) {
    const std::size_t hw = static_cast<std::size_t>(in.cam_h) * in.cam_w;
    std::vector<float> cam(in.cams.begin() + static_cast<std::ptrdiff_t>(c * hw),
                           in.cams.begin() + static_cast<std::ptrdiff_t>((c + 1) * hw));
    const std::vector<float> map = normalize_min_max(upsample_bilinear(cam, in.cam_h, in.cam_w, H, W));
    blend_heat_map(p, map, o.max_alpha);
    const PixelBox cb = threshold_box(map, W, H, o.cam_fraction);
    if (!cb.empty()) draw_rect(p, cb.x0, cb.y0, cb.x1, cb.y1, kCamBoxColor, thick, /*dashed=*/true);
  }
  // Redraw the truth box of this finding above the heat map.
  for (const data::Box& b : in.truth)
    if (b.label == finding)
      draw_rect(p, static_cast<int>(std::lround(b.x * sx)), static_cast<int>(std::lround(b.y * sy)),
                static_cast<int>(std::lround((b.x + b.w) * sx)) - 1,
                static_cast<int>(std::lround((b.y + b.h) * sy)) - 1, kTruthColor, thick);
  if (in.boxes.size() >= (c + 1) * 4) {
    const float* b = &in.boxes[c * 4];
    draw_rect(p, static_cast<int>(std::lround((b[0] - b[2] / 2) * W)), static_cast<int>(std::lround((b[1] - b[3] / 2) * H)),
              static_cast<int>(std::lround((b[0] + b[2] / 2) * W)) - 1,
              static_cast<int>(std::lround((b[1] + b[3] / 2) * H)) - 1, kBoxHeadColor, thick);
  }
  const float prob = in.probs[c];
  const double thr = in.thresholds[c];
  const std::string label = in.class_names[c] + " " + fmt("%.2f", prob) + (prob >= thr ? " >= " : " < ") +
                            fmt("%.2f", thr);
  draw_text_box(p, 0, 0, label, prob >= thr ? Rgb{255, 255, 255} : Rgb{180, 180, 180}, Rgb{0, 0, 0}, scale);
  return p;
}

}  // namespace

RgbImage render_overlay(const OverlayInput& in, const OverlayOptions& o) {
  CXR_CHECK(in.image && in.image->width > 0 && in.image->height > 0, "render_overlay: no image");
  const std::size_t C = in.class_names.size();
  CXR_CHECK(in.probs.size() == C && in.thresholds.size() == C, "render_overlay: ", C, " classes but ",
            in.probs.size(), " probabilities and ", in.thresholds.size(), " thresholds");
  const int longest = std::max(in.image->width, in.image->height);
  const int side = o.panel_size > 0 ? std::max(o.panel_size, 64) : std::clamp(4 * longest, 256, 512);
  const double aspect = static_cast<double>(in.image->width) / in.image->height;
  const int W = aspect >= 1 ? side : std::max(1, static_cast<int>(std::lround(side * aspect)));
  const int H = aspect >= 1 ? std::max(1, static_cast<int>(std::lround(side / aspect))) : side;
  const int scale = std::max(1, static_cast<int>(std::lround(side / 192.0)));  // 256: 1, 384 and 512: 2 or 3
  const int gap = 2 * scale, line = 12 * scale;

  std::vector<int> findings = overlay_findings(in, o);
  if (findings.empty()) findings.push_back(-1);
  const int n = static_cast<int>(findings.size());
  const int header = line + 2 * scale, footer = line + 4 * scale;
  const int total_w = n * W + (n + 1) * gap;
  const std::string legend_a = "box head", legend_b = "CAM >= " + fmt("%.1f", o.cam_fraction) + " max",
                    legend_c = "ground truth";
  const int legend_w = text_width(legend_a + legend_b + legend_c, scale) + 3 * (6 * scale + 8 * scale) + 40 * scale;
  RgbImage out(std::max(total_w, legend_w), header + H + footer + 2 * gap, Rgb{24, 24, 24});
  draw_text(out, gap, gap + scale, in.name, Rgb{230, 230, 230}, scale);
  for (int i = 0; i < n; ++i) {
    const RgbImage p = render_panel(in, findings[static_cast<std::size_t>(i)], W, H, scale, o);
    const int ox = gap + i * (W + gap), oy = header + gap;
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x) out.set(ox + x, oy + y, p.at(x, y));
  }
  // Legend.
  int x = gap;
  const int y = header + gap + H + 2 * scale, sw = 12 * scale, sh = 8 * scale;
  auto key = [&](const std::string& text, Rgb c, bool dashed) {
    draw_rect(out, x, y + scale, x + sw, y + scale + sh, c, std::max(1, scale), dashed);
    x += sw + 6 * scale;
    draw_text(out, x, y + 2 * scale, text, Rgb{230, 230, 230}, scale);
    x += text_width(text, scale) + 10 * scale;
  };
  key(legend_a, kBoxHeadColor, false);
  key(legend_b, kCamBoxColor, true);
  key(legend_c, kTruthColor, false);
  return out;
}

std::map<std::string, std::vector<data::Box>> read_truth_boxes(const std::string& path,
                                                               const std::vector<std::string>& names) {
  data::Metadata meta;
  for (const auto& n : names) {
    if (meta.by_name.count(n)) continue;
    data::ImageRecord r;
    r.name = n;
    meta.by_name.emplace(n, static_cast<std::int64_t>(meta.images.size()));
    meta.images.push_back(r);
  }
  data::Report quiet(data::Report::Echo::Off);
  data::read_bbox_list_file(path, meta, quiet);
  std::map<std::string, std::vector<data::Box>> out;
  for (const auto& r : meta.images)
    if (!r.boxes.empty()) out[r.name] = r.boxes;
  return out;
}

}  // namespace cxr
