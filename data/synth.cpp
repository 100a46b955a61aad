// Synthetic chest radiographs and the NIH-format files around them.
#include "data/synth.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include "data/random.h"
#include "tensor/error.h"

namespace fs = std::filesystem;

namespace cxr::data {

namespace {

// A float image in [0, 1]; shapes are given in normalised coordinates (0..1 across).
class Canvas {
 public:
  explicit Canvas(int size) : n_(size), v_(static_cast<std::size_t>(size) * size, 0.f) {}
  int size() const { return n_; }
  float& at(int x, int y) { return v_[static_cast<std::size_t>(y) * n_ + x]; }
  float u(int i) const { return (i + 0.5f) / n_; }

  // Adds amp inside an ellipse, fading over `soft` (normalised) at its edge.
  void ellipse(float cx, float cy, float rx, float ry, float amp, float soft = 0.01f, float angle = 0.f) {
    const float c = std::cos(angle), s = std::sin(angle);
    for_box(cx, cy, std::max(rx, ry) + soft, [&](int x, int y) {
      const float dx = u(x) - cx, dy = u(y) - cy;
      const float ex = (c * dx + s * dy) / rx, ey = (-s * dx + c * dy) / ry;
      const float d = (std::sqrt(ex * ex + ey * ey) - 1.f) * std::min(rx, ry);  // ~ distance outside
      at(x, y) += amp * edge(d, soft);
    });
  }
  void gaussian(float cx, float cy, float sigma, float amp) {
    for_box(cx, cy, 3 * sigma, [&](int x, int y) {
      const float dx = u(x) - cx, dy = u(y) - cy;
      at(x, y) += amp * std::exp(-(dx * dx + dy * dy) / (2 * sigma * sigma));
    });
  }
  // A segment of half-width w.
  void line(float x0, float y0, float x1, float y1, float w, float amp) {
    const float lx = x1 - x0, ly = y1 - y0, len2 = lx * lx + ly * ly + 1e-12f;
    for_box(0.5f * (x0 + x1), 0.5f * (y0 + y1), 0.5f * std::sqrt(len2) + 2 * w, [&](int x, int y) {
      const float px = u(x) - x0, py = u(y) - y0;
      const float t = std::clamp((px * lx + py * ly) / len2, 0.f, 1.f);
      const float dx = px - t * lx, dy = py - t * ly;
      at(x, y) += amp * edge(std::sqrt(dx * dx + dy * dy) - w, 0.5f / n_);
    });
  }
  template <typename F>
  void for_box(float cx, float cy, float r, F f) {
    const int x0 = std::max(0, static_cast<int>((cx - r) * n_) - 1), x1 = std::min(n_ - 1, static_cast<int>((cx + r) * n_) + 1);
    const int y0 = std::max(0, static_cast<int>((cy - r) * n_) - 1), y1 = std::min(n_ - 1, static_cast<int>((cy + r) * n_) + 1);
    for (int y = y0; y <= y1; ++y)
      for (int x = x0; x <= x1; ++x) f(x, y);
  }
  std::vector<float>& values() { return v_; }

 private:
  // 1 inside (d < 0), 0 outside, linear over `soft`.
  static float edge(float d, float soft) { return std::clamp(0.5f - d / std::max(soft, 1e-6f), 0.f, 1.f); }
  int n_;
  std::vector<float> v_;
};

struct Anatomy {
  float shift_x, shift_y;
  float lung_cx[2], lung_cy, lung_rx, lung_ry;
  float heart_cx, heart_cy, heart_rx, heart_ry;
};

// Smooth inside-lung weight in [0, 1].
float lung_weight(const Anatomy& a, float x, float y) {
  float w = 0.f;
  for (float cx : a.lung_cx) {
    const float ex = (x - cx) / a.lung_rx, ey = (y - a.lung_cy) / a.lung_ry;
    w = std::max(w, std::clamp((1.f - std::sqrt(ex * ex + ey * ey)) * 8.f, 0.f, 1.f));
  }
  return w;
}

Box pixel_box(int label, float x0, float y0, float x1, float y1, int n) {
  x0 = std::clamp(x0, 0.f, 1.f);
  y0 = std::clamp(y0, 0.f, 1.f);
  x1 = std::clamp(x1, 0.f, 1.f);
  y1 = std::clamp(y1, 0.f, 1.f);
  return Box{label, x0 * n, y0 * n, (x1 - x0) * n, (y1 - y0) * n};
}

}  // namespace

GrayImage render_synthetic_chest(int n, LabelMask f, std::uint64_t seed, std::vector<Box>* boxes) {
  Rng rng(hash_seed(seed, 0xC4E57));
  Canvas c(n);
  Anatomy a{};
  a.shift_x = static_cast<float>(rng.uniform(-0.03, 0.03));
  a.shift_y = static_cast<float>(rng.uniform(-0.03, 0.03));
  const bool emphysema = has_label(f, 10);
  a.lung_rx = static_cast<float>(rng.uniform(0.13, 0.15)) * (emphysema ? 1.12f : 1.f);
  a.lung_ry = static_cast<float>(rng.uniform(0.27, 0.30)) * (emphysema ? 1.08f : 1.f);
  a.lung_cx[0] = 0.32f + a.shift_x;
  a.lung_cx[1] = 0.68f + a.shift_x;
  a.lung_cy = 0.46f + a.shift_y;
  const bool cardiomegaly = has_label(f, 1);
  a.heart_rx = static_cast<float>(rng.uniform(0.10, 0.12)) * (cardiomegaly ? 1.55f : 1.f);
  a.heart_ry = static_cast<float>(rng.uniform(0.08, 0.095)) * (cardiomegaly ? 1.25f : 1.f);
  a.heart_cx = 0.55f + a.shift_x + (cardiomegaly ? 0.02f : 0.f);
  a.heart_cy = 0.62f + a.shift_y;
  auto add_box = [&](int label, float x0, float y0, float x1, float y1) {
    if (boxes && label < kNumBoxedClasses) boxes->push_back(pixel_box(label, x0, y0, x1, y1, n));
  };
  // A random point well inside lung `side` (0 right of the image's centre line... left in
  // the image), between the vertical fractions lo..hi of the lung.
  auto lung_point = [&](int side, float lo, float hi, float& x, float& y) {
    x = a.lung_cx[side] + static_cast<float>(rng.uniform(-0.45, 0.45)) * a.lung_rx;
    y = a.lung_cy + static_cast<float>(rng.uniform(lo, hi)) * a.lung_ry;
  };

  // Body, lungs, mediastinum and spine, heart, ribs.
  c.ellipse(0.5f + a.shift_x, 0.56f + a.shift_y, 0.44f, 0.52f, 0.50f, 0.04f);
  const float lung_dark = emphysema ? -0.40f : -0.28f;
  for (float cx : a.lung_cx) c.ellipse(cx, a.lung_cy, a.lung_rx, a.lung_ry, lung_dark, 0.03f);
  c.ellipse(0.5f + a.shift_x, 0.5f + a.shift_y, 0.045f, 0.5f, 0.18f, 0.02f);
  c.ellipse(a.heart_cx, a.heart_cy, a.heart_rx, a.heart_ry, 0.22f, 0.015f);
  const int ribs = emphysema ? 7 : 9;
  for (int r = 0; r < ribs; ++r) {
    const float y = a.lung_cy - a.lung_ry + (r + 0.5f) * (2 * a.lung_ry / ribs);
    for (int side = 0; side < 2; ++side) {
      const float cx = a.lung_cx[side], dir = side == 0 ? -1.f : 1.f;
      c.line(cx - dir * 0.02f, y - 0.02f, cx + dir * a.lung_rx * 1.1f, y + 0.03f, 0.006f, 0.07f);
    }
  }

  float x, y;
  if (has_label(f, 0)) {  // Atelectasis: flat dense plate, lower zone
    lung_point(static_cast<int>(rng.below(2)), 0.2f, 0.6f, x, y);
    const float rx = 0.08f, ry = 0.018f, ang = static_cast<float>(rng.uniform(-0.25, 0.25));
    c.ellipse(x, y, rx, ry, 0.30f, 0.008f, ang);
    add_box(0, x - rx, y - rx * std::abs(std::sin(ang)) - ry, x + rx, y + rx * std::abs(std::sin(ang)) + ry);
  }
  if (cardiomegaly)
    add_box(1, a.heart_cx - a.heart_rx, a.heart_cy - a.heart_ry, a.heart_cx + a.heart_rx, a.heart_cy + a.heart_ry);
  if (has_label(f, 2)) {  // Effusion: fluid in a lung base, meniscus rising laterally
    const int side = static_cast<int>(rng.below(2));
    const float level = a.lung_cy + a.lung_ry * static_cast<float>(rng.uniform(0.35, 0.55));
    const float cx = a.lung_cx[side], dir = side == 0 ? -1.f : 1.f;
    float bx0 = 1, by0 = 1, bx1 = 0, by1 = 0;
    for (int py = 0; py < n; ++py)
      for (int px = 0; px < n; ++px) {
        const float u = c.u(px), v = c.u(py);
        const float lateral = std::clamp(dir * (u - cx) / a.lung_rx, -1.f, 1.f);
        const float surface = level - 0.06f * (lateral + 1.f) * (lateral + 1.f) * 0.5f;
        if (v > surface && lung_weight(a, u, v) > 0.f && std::abs(u - cx) < a.lung_rx * 1.1f) {
          c.at(px, py) += 0.35f * lung_weight(a, u, v);
          bx0 = std::min(bx0, u), by0 = std::min(by0, v), bx1 = std::max(bx1, u), by1 = std::max(by1, v);
        }
      }
    if (bx1 > bx0) add_box(2, bx0, by0, bx1, by1);
  }
  if (has_label(f, 3)) {  // Infiltration: patch of soft blobs
    lung_point(static_cast<int>(rng.below(2)), -0.5f, 0.4f, x, y);
    const float r = 0.07f;
    for (int k = 0; k < 14; ++k)
      c.gaussian(x + static_cast<float>(rng.uniform(-r, r)), y + static_cast<float>(rng.uniform(-r, r)), 0.012f, 0.14f);
    add_box(3, x - r - 0.02f, y - r - 0.02f, x + r + 0.02f, y + r + 0.02f);
  }
  if (has_label(f, 4)) {  // Mass: large sharp disc
    lung_point(static_cast<int>(rng.below(2)), -0.5f, 0.4f, x, y);
    const float r = static_cast<float>(rng.uniform(0.05, 0.07));
    c.ellipse(x, y, r, r, 0.35f, 0.004f);
    add_box(4, x - r, y - r, x + r, y + r);
  }
  if (has_label(f, 5)) {  // Nodule: small sharp dot
    lung_point(static_cast<int>(rng.below(2)), -0.6f, 0.5f, x, y);
    const float r = static_cast<float>(rng.uniform(0.014, 0.02));
    c.ellipse(x, y, r, r, 0.45f, 0.003f);
    add_box(5, x - 2 * r, y - 2 * r, x + 2 * r, y + 2 * r);
  }
  if (has_label(f, 6)) {  // Pneumonia: large soft cloud
    lung_point(static_cast<int>(rng.below(2)), -0.3f, 0.5f, x, y);
    const float s = static_cast<float>(rng.uniform(0.04, 0.055));
    c.gaussian(x, y, s, 0.30f);
    add_box(6, x - 2 * s, y - 2 * s, x + 2 * s, y + 2 * s);
  }
  if (has_label(f, 7)) {  // Pneumothorax: black, rib-less crescent at an apex, pleural line
    const int side = static_cast<int>(rng.below(2));
    const float cx = a.lung_cx[side], top = a.lung_cy - a.lung_ry;
    const float dir = side == 0 ? -1.f : 1.f;
    const float px0 = cx + dir * 0.2f * a.lung_rx, depth = 0.45f * a.lung_ry;
    float bx0 = 1, by0 = 1, bx1 = 0, by1 = 0;
    for (int py = 0; py < n; ++py)
      for (int px = 0; px < n; ++px) {
        const float u = c.u(px), v = c.u(py);
        if (v > top + depth || lung_weight(a, u, v) <= 0.f || dir * (u - px0) < 0) continue;
        const float w = lung_weight(a, u, v);
        c.at(px, py) = (1 - w) * c.at(px, py) + w * 0.04f;
        bx0 = std::min(bx0, u), by0 = std::min(by0, v), bx1 = std::max(bx1, u), by1 = std::max(by1, v);
      }
    c.line(px0, top + 0.02f, px0 + dir * 0.02f, top + depth, 0.004f, 0.25f);
    if (bx1 > bx0) add_box(7, bx0, by0, bx1, by1);
  }
  if (has_label(f, 8)) {  // Consolidation: dense square with ragged edge
    lung_point(static_cast<int>(rng.below(2)), -0.2f, 0.5f, x, y);
    const float h = 0.05f;
    for (int k = 0; k < 5; ++k)
      c.ellipse(x + static_cast<float>(rng.uniform(-0.015, 0.015)), y + static_cast<float>(rng.uniform(-0.015, 0.015)),
                h, h, 0.07f, 0.006f, static_cast<float>(rng.uniform(0, 1.57)));
    for (int py = 0; py < n; ++py)
      for (int px = 0; px < n; ++px)
        if (std::abs(c.u(px) - x) < h && std::abs(c.u(py) - y) < h) c.at(px, py) += 0.12f;
  }
  if (has_label(f, 9)) {  // Edema: perihilar haze both sides, septal lines
    for (int side = 0; side < 2; ++side) {
      const float hx = 0.5f + a.shift_x + (side == 0 ? -0.09f : 0.09f);
      c.gaussian(hx, a.lung_cy, 0.07f, 0.16f);
      const float ex = a.lung_cx[side] + (side == 0 ? -0.8f : 0.8f) * a.lung_rx;
      for (int k = 0; k < 4; ++k) {
        const float ly = a.lung_cy + a.lung_ry * (0.2f + 0.1f * k);
        c.line(ex, ly, ex + (side == 0 ? 0.03f : -0.03f), ly, 0.003f, 0.18f);
      }
    }
  }
  if (has_label(f, 11)) {  // Fibrosis: reticular net in the upper zones
    for (int side = 0; side < 2; ++side)
      for (int k = 0; k < 14; ++k) {
        float x0, y0;
        lung_point(side, -0.85f, -0.2f, x0, y0);
        const float ang = static_cast<float>(rng.uniform(0, 3.14159));
        const float len = 0.04f;
        c.line(x0, y0, x0 + len * std::cos(ang), y0 + len * std::sin(ang), 0.0025f, 0.14f);
      }
  }
  if (has_label(f, 12)) {  // Pleural thickening: band along a lateral wall
    const int side = static_cast<int>(rng.below(2));
    const float dir = side == 0 ? -1.f : 1.f;
    const float wx = a.lung_cx[side] + dir * a.lung_rx * 0.92f;
    c.line(wx, a.lung_cy - 0.6f * a.lung_ry, wx + dir * 0.01f, a.lung_cy + 0.3f * a.lung_ry, 0.012f, 0.28f);
  }
  if (has_label(f, 13)) {  // Hernia: gas bubble with a bright rim below the heart
    const float hx = 0.5f + a.shift_x, hy = a.heart_cy + a.heart_ry * 0.9f;
    c.ellipse(hx, hy, 0.055f, 0.045f, 0.25f, 0.005f);
    c.ellipse(hx, hy, 0.043f, 0.034f, -0.45f, 0.005f);
  }

  // Exposure, film noise, quantisation.
  const float gain = static_cast<float>(rng.uniform(0.9, 1.1)), offset = static_cast<float>(rng.uniform(-0.03, 0.03));
  GrayImage img;
  img.width = img.height = n;
  img.pixels.resize(static_cast<std::size_t>(n) * n);
  auto& v = c.values();
  for (std::size_t i = 0; i < v.size(); ++i) {
    const float val = (0.06f + v[i]) * gain + offset + 0.025f * static_cast<float>(rng.normal());
    img.pixels[i] = static_cast<std::uint8_t>(std::clamp(val, 0.f, 1.f) * 255.f + 0.5f);
  }
  return img;
}

namespace {

LabelMask draw_findings(Rng& rng) {
  if (rng.bernoulli(0.4)) return 0;
  const double u = rng.uniform();
  const int count = u < 0.7 ? 1 : u < 0.95 ? 2 : 3;
  LabelMask m = 0;
  while (__builtin_popcount(m) < count) m = static_cast<LabelMask>(m | (1u << rng.below(kNumClasses)));
  return m;
}

std::string image_name(std::int64_t patient, int follow_up) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%08lld_%03d.png", static_cast<long long>(patient), follow_up);
  return buf;
}

}  // namespace

SynthSummary write_synthetic_dataset(const SynthOptions& o) {
  CXR_CHECK(!o.out_dir.empty(), "synth: no output folder given");
  CXR_CHECK(o.images > 0, "synth: the number of images must be positive, got ", o.images);
  CXR_CHECK(o.size >= 32 && o.size <= 4096, "synth: image size must lie in [32, 4096], got ", o.size);
  const fs::path root(o.out_dir);
  fs::create_directories(root / "images");

  // Patients with one to four images each, then their records.
  Rng rng(hash_seed(o.seed, 0x5E7));
  std::vector<ImageRecord> records;
  std::int64_t patient = 0;
  while (static_cast<int>(records.size()) < o.images) {
    ++patient;
    const int count = std::min(o.images - static_cast<int>(records.size()), 1 + static_cast<int>(rng.below(4)));
    const int age = 20 + static_cast<int>(rng.below(60));
    const std::string gender = rng.bernoulli(0.5) ? "M" : "F";
    for (int k = 0; k < count; ++k) {
      ImageRecord r;
      r.patient_id = patient;
      r.follow_up = k;
      r.name = image_name(patient, k);
      r.age_years = age + k / 2;
      r.gender = gender;
      r.view = rng.bernoulli(0.7) ? "PA" : "AP";
      r.original_width = r.original_height = o.size;
      r.labels = draw_findings(rng);
      records.push_back(std::move(r));
    }
  }

  // Render in parallel; image i depends only on (seed, i).
  const int threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::atomic<std::size_t> next{0};
  std::vector<std::string> errors(static_cast<std::size_t>(threads));
  auto work = [&](int t) {
    try {
      for (std::size_t i = next++; i < records.size(); i = next++) {
        auto& r = records[i];
        const GrayImage img = render_synthetic_chest(o.size, r.labels, hash_seed(o.seed, i), &r.boxes);
        write_png_gray8((root / "images" / r.name).string(), img);
      }
    } catch (const std::exception& e) {
      errors[static_cast<std::size_t>(t)] = e.what();
      next = records.size();
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work, t);
  work(0);
  for (auto& t : pool) t.join();
  for (const auto& e : errors) CXR_CHECK(e.empty(), "synth: ", e);

  SynthSummary summary;
  summary.images = static_cast<int>(records.size());
  summary.patients = static_cast<int>(patient);
  {
    std::ofstream out(root / "Data_Entry_2017.csv");
    out << "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
           "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],\n";
    for (const auto& r : records) {
      std::string labels;
      for (int k = 0; k < kNumClasses; ++k)
        if (has_label(r.labels, k)) labels += (labels.empty() ? "" : "|") + std::string(kClassNames[k]);
      char age[8];
      std::snprintf(age, sizeof age, "%03dY", r.age_years);
      out << r.name << ',' << (labels.empty() ? std::string(kNoFinding) : labels) << ',' << r.follow_up << ','
          << r.patient_id << ',' << age << ',' << r.gender << ',' << r.view << ',' << r.original_width << ','
          << r.original_height << ",0.143,0.143,\n";
    }
    CXR_CHECK(out.good(), "synth: cannot write ", (root / "Data_Entry_2017.csv").string());
  }
  {
    std::ofstream out(root / "BBox_List_2017.csv");
    out << "Image Index,Finding Label,Bbox [x,y,w,h],,,\n";
    for (const auto& r : records)
      for (const auto& b : r.boxes) {
        const std::string_view label = b.label == 3 ? "Infiltrate" : kClassNames[static_cast<std::size_t>(b.label)];
        out << r.name << ',' << label << ',' << b.x << ',' << b.y << ',' << b.w << ',' << b.h << '\n';
        ++summary.boxes;
      }
    CXR_CHECK(out.good(), "synth: cannot write ", (root / "BBox_List_2017.csv").string());
  }
  {
    // Patient-wise official split: a seeded choice of test patients.
    std::vector<std::int64_t> patients;
    for (std::int64_t p = 1; p <= patient; ++p) patients.push_back(p);
    Rng split_rng(hash_seed(o.seed, 0x7E57));
    shuffle(patients.data(), patients.size(), split_rng);
    const auto n_test = static_cast<std::size_t>(std::llround(o.test_fraction * static_cast<double>(patients.size())));
    std::vector<char> is_test(static_cast<std::size_t>(patient) + 1, 0);
    for (std::size_t i = 0; i < n_test; ++i) is_test[static_cast<std::size_t>(patients[i])] = 1;
    std::ofstream train(root / "train_val_list.txt"), test(root / "test_list.txt");
    for (const auto& r : records) (is_test[static_cast<std::size_t>(r.patient_id)] ? test : train) << r.name << '\n';
    CXR_CHECK(train.good() && test.good(), "synth: cannot write the split lists in ", o.out_dir);
  }
  return summary;
}

}  // namespace cxr::data
