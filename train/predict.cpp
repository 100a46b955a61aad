// `train_cxr predict` (see predict.h).
#include "train/predict.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>

#include "data/image_io.h"
#include "data/normalize.h"
#include "data/resize.h"
#include "train/cli_args.h"
#include "train/evaluate.h"
#include "train/progress.h"

namespace cxr {
namespace fs = std::filesystem;

PredictSummary predict_images(const PredictOptions& o, std::ostream& out) {
  if (o.checkpoint.empty()) throw cli::UsageError("--checkpoint is required");
  if (o.out_dir.empty()) throw cli::UsageError("--out is required");
  if (o.images.empty()) throw cli::UsageError("no IMAGE given: name one or more image files");
  if (o.batch_size < 1) throw cli::UsageError("--batch-size must be >= 1");
  if (o.image_size < 0) throw cli::UsageError("--image-size must be positive");
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
  const double t0 = steady_seconds();
  for (std::size_t start = 0; start < o.images.size(); start += static_cast<std::size_t>(o.batch_size)) {
    const std::size_t n = std::min(o.images.size() - start, static_cast<std::size_t>(o.batch_size));
    Tensor x = Tensor::empty({static_cast<std::int64_t>(n), norm.channels, S, S});
    float* px = x.f32();
    for (std::size_t i = 0; i < n; ++i) {
      const std::string& path = o.images[start + i];
      const data::GrayImage img = data::decode_gray8_file(path);
      const data::GrayImage r = data::resize_gray8(img, S, S);
      data::normalize_gray8(r.pixels.data(), static_cast<std::int64_t>(S) * S, 1.f, 1.f, norm,
                            px + i * static_cast<std::size_t>(norm.channels) * S * S);
      names.push_back(fs::path(path).filename().string());
      sizes.emplace_back(img.width, img.height);
    }
    Prediction p = lm.model->predict(x.to(o.device));
    const auto pv = p.probs.to_vector();
    const auto bv = p.boxes.to_vector();
    probs.insert(probs.end(), pv.begin(), pv.end());
    boxes.insert(boxes.end(), bv.begin(), bv.end());
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
  }
  return s;
}

}  // namespace cxr
