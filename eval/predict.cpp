// `train_cxr predict` (see predict.h).
#include "eval/predict.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>

#include "data/image_io.h"
#include "data/normalize.h"
#include "data/resize.h"
#include "kernels/cpu/frozen_weights.h"
#include "eval/cam.h"
#include "eval/evaluate.h"
#include "eval/overlay.h"
#include "eval/progress.h"

namespace cxr {
namespace fs = std::filesystem;

namespace {

// Overlays of the last forward's images (the last originals.size() entries of names, probs and
// boxes): CAMs from the model's feature map and cls_head weights (eval/cam.h).
std::size_t write_overlays(CxrModel& model, const CheckpointMeta& meta, const std::vector<data::GrayImage>& originals,
                           const std::vector<std::string>& names, const std::vector<float>& probs,
                           const std::vector<float>& boxes, const std::map<std::string, std::vector<data::Box>>& truth,
                           const fs::path& dir) {
  const Tensor features = model.feature_map().to(Device::CPU).contiguous();            // (n, K, h, w)
  const Tensor weight = model.cls_head().weight().value.to(Device::CPU).contiguous();  // (C, K)
  const int K = static_cast<int>(features.size(1)), h = static_cast<int>(features.size(2)),
            w = static_cast<int>(features.size(3));
  const int C = static_cast<int>(meta.class_names.size());
  const std::size_t n = originals.size(), first = names.size() - n;
  const float* fp = features.f32();
  const float* wp = weight.f32();
  for (std::size_t i = 0; i < n; ++i) {
    OverlayInput in;
    in.image = &originals[i];
    in.name = names[first + i];
    in.class_names = meta.class_names;
    in.probs.assign(probs.begin() + static_cast<std::ptrdiff_t>((first + i) * C),
                    probs.begin() + static_cast<std::ptrdiff_t>((first + i + 1) * C));
    in.thresholds = meta.thresholds;
    in.boxes.assign(boxes.begin() + static_cast<std::ptrdiff_t>((first + i) * C * 4),
                    boxes.begin() + static_cast<std::ptrdiff_t>((first + i + 1) * C * 4));
    in.cam_h = h;
    in.cam_w = w;
    const float* fi = fp + i * static_cast<std::size_t>(K) * h * w;
    for (int c = 0; c < C; ++c) {
      const auto cam = class_activation_map(fi, K, h, w, wp + static_cast<std::size_t>(c) * K);
      in.cams.insert(in.cams.end(), cam.begin(), cam.end());
    }
    if (auto it = truth.find(in.name); it != truth.end()) in.truth = it->second;
    write_png((dir / (fs::path(in.name).stem().string() + ".png")).string(), render_overlay(in));
  }
  return n;
}

// One batch's images read, decoded, resized to S x S and normalised into x (n, channels, S, S),
// the images in parallel, one per thread at a time (at the small training sizes, decoding the
// 1024 x 1024 originals is most of predict's time: docs/speed.md). Returns the decoded
// originals. An image that cannot be read fails the batch with its own error (the first in
// order, naming the file), after every thread has finished.
std::vector<data::GrayImage> decode_batch(const std::vector<std::string>& paths, int S,
                                          const data::NormalizeOptions& norm, float* x) {
  const std::int64_t n = static_cast<std::int64_t>(paths.size());
  const std::int64_t image_floats = static_cast<std::int64_t>(norm.channels) * S * S;
  std::vector<data::GrayImage> originals(paths.size());
  std::vector<std::exception_ptr> errors(paths.size());
#pragma omp parallel for schedule(dynamic, 1) if (n > 1)
  for (std::int64_t i = 0; i < n; ++i) {
    const auto k = static_cast<std::size_t>(i);
    try {
      originals[k] = data::decode_gray8_file(paths[k]);
      const data::GrayImage r = data::resize_gray8(originals[k], S, S);
      data::normalize_gray8(r.pixels.data(), static_cast<std::int64_t>(S) * S, 1.f, 1.f, norm, x + i * image_floats);
    } catch (...) {
      errors[k] = std::current_exception();
    }
  }
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
  return originals;
}

}  // namespace

std::vector<std::string> pick_images_with_boxes(const std::vector<std::string>& names, const std::string& box_list,
                                                std::size_t n) {
  const auto truth = fs::exists(box_list) ? read_truth_boxes(box_list, names)
                                          : std::map<std::string, std::vector<data::Box>>{};
  std::vector<std::string> with, without;
  for (const auto& name : names) (truth.count(name) ? with : without).push_back(name);
  with.insert(with.end(), without.begin(), without.end());
  if (with.size() > n) with.resize(n);
  return with;
}

PredictSummary predict_images(const PredictOptions& o, std::ostream& out) {
  if (o.checkpoint.empty()) throw UsageError("--checkpoint is required");
  if (o.out_dir.empty()) throw UsageError("--out is required");
  if (o.images.empty()) throw UsageError("no IMAGE given: name one or more image files");
  if (o.batch_size < 1) throw UsageError("--batch-size must be >= 1");
  if (o.image_size < 0) throw UsageError("--image-size must be positive");
  CXR_CHECK(fs::exists(o.checkpoint), "checkpoint ", o.checkpoint, " does not exist");
  for (const auto& p : o.images) CXR_CHECK(fs::exists(p), "image ", p, " does not exist");

  LoadedModel lm = load_model_for_inference(o.checkpoint, o.device, o.model, o.image_size);
  const int S = static_cast<int>(lm.meta.image_size);
  const int C = static_cast<int>(lm.meta.class_names.size());
  data::NormalizeOptions norm;
  for (std::size_t c = 0; c < std::min<std::size_t>(3, lm.meta.mean.size()); ++c) {
    norm.mean[c] = static_cast<float>(lm.meta.mean[c]);
    norm.std[c] = static_cast<float>(lm.meta.std[c]);
  }

  std::vector<std::string> names;
  std::vector<float> probs, boxes;
  std::vector<std::pair<int, int>> sizes;  // (w, h) of each image as read
  std::map<std::string, std::vector<data::Box>> truth;
  const fs::path overlay_dir = fs::path(o.out_dir) / "overlays";
  std::size_t overlays = 0;
  if (o.overlay) {
    if (!o.boxes_file.empty()) {
      CXR_CHECK(fs::exists(o.boxes_file), "box list ", o.boxes_file, " does not exist");
      std::vector<std::string> all;
      for (const auto& p : o.images) all.push_back(fs::path(p).filename().string());
      truth = read_truth_boxes(o.boxes_file, all);
    }
    fs::create_directories(overlay_dir);
  }
  const double t0 = steady_seconds();
  const cpu::FrozenWeightsScope frozen;  // the weights do not change: each is packed once
  for (std::size_t start = 0; start < o.images.size(); start += static_cast<std::size_t>(o.batch_size)) {
    const std::size_t n = std::min(o.images.size() - start, static_cast<std::size_t>(o.batch_size));
    Tensor x = Tensor::empty({static_cast<std::int64_t>(n), norm.channels, S, S});
    const std::vector<std::string> paths(o.images.begin() + static_cast<std::ptrdiff_t>(start),
                                         o.images.begin() + static_cast<std::ptrdiff_t>(start + n));
    std::vector<data::GrayImage> originals = decode_batch(paths, S, norm, x.f32());
    for (std::size_t i = 0; i < n; ++i) {
      names.push_back(fs::path(paths[i]).filename().string());
      sizes.emplace_back(originals[i].width, originals[i].height);
    }
    if (!o.overlay) originals.clear();  // kept for the overlays only
    Prediction p = lm.model->predict(x.to(o.device));
    const auto pv = p.probs.to_vector();
    const auto bv = p.boxes.to_vector();
    probs.insert(probs.end(), pv.begin(), pv.end());
    boxes.insert(boxes.end(), bv.begin(), bv.end());
    if (o.overlay) overlays += write_overlays(*lm.model, lm.meta, originals, names, probs, boxes, truth, overlay_dir);
  }
  const double seconds = steady_seconds() - t0;

  fs::create_directories(o.out_dir);
  const std::string pred_path = (fs::path(o.out_dir) / "predictions.csv").string();
  const std::string box_path = (fs::path(o.out_dir) / "boxes.csv").string();
  write_predictions_csv(pred_path, names, probs, lm.meta.class_names, o.no_finding);
  std::ofstream bf(box_path);
  CXR_CHECK(bf, "cannot open ", box_path, " for writing");
  bf << "image,finding,x,y,w,h,score\n" << std::fixed << std::setprecision(1);
  PredictSummary s;
  s.images = names.size();
  s.overlays = overlays;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const double W = sizes[i].first, H = sizes[i].second;
    for (int c = 0; c < C; ++c) {
      const float p = probs[i * static_cast<std::size_t>(C) + static_cast<std::size_t>(c)];
      if (!o.all_boxes && p < lm.meta.thresholds[static_cast<std::size_t>(c)]) continue;
      const float* b = &boxes[(i * static_cast<std::size_t>(C) + static_cast<std::size_t>(c)) * 4];
      bf << names[i] << "," << lm.meta.class_names[static_cast<std::size_t>(c)] << "," << (b[0] - b[2] / 2) * W << ","
         << (b[1] - b[3] / 2) * H << "," << b[2] * W << "," << b[3] * H << "," << std::setprecision(4) << p
         << std::setprecision(1) << "\n";
      ++s.boxes;
    }
  }
  CXR_CHECK(bf.good(), "writing ", box_path, " failed");
  if (!o.quiet) {
    out << "predicted " << s.images << " images with " << lm.meta.architecture << " at " << S << "x" << S << " ("
        << std::setprecision(3) << (seconds > 0 ? s.images / seconds : 0.0) << " img/s); " << s.boxes
        << " boxes\nwrote " << pred_path << " and " << box_path << "\n";
    if (o.overlay) out << "wrote " << overlays << " overlays in " << overlay_dir.string() << "\n";
  }
  return s;
}

}  // namespace cxr
