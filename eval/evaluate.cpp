// Inference over a split, metrics.json and predictions.csv (see evaluate.h).
#include "eval/evaluate.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <limits>
#include <sstream>

#include "data/dataset.h"
#include "data/formats.h"
#include "data/label_space.h"
#include "data/labels.h"
#include "data/splits.h"
#include "dist/communicator.h"
#include "eval/gather_inference.h"
#include "kernels/cpu/frozen_weights.h"
#include "kernels/cxr_loss.h"
#include "models/model_factory.h"
#include "eval/metrics.h"
#include "eval/progress.h"

namespace cxr {
namespace fs = std::filesystem;

InferenceResult run_inference(CxrModel& model, data::DataLoader& loader, std::int64_t epoch, const Tensor& pos_weight,
                              float box_weight) {
  InferenceResult r;
  const double t0 = steady_seconds();
  model.eval();
  NoGradGuard no_grad;  // nothing is cached for a backward
  const cpu::FrozenWeightsScope frozen;  // no weight changes during the pass: each is packed once
  double loss_sum = 0;
  for (const data::Batch& b : loader.epoch(epoch)) {
    HeadOutputs o = model.forward_heads(b.images);
    if (pos_weight.defined()) {
      CxrLoss l = cxr_loss(o.logits, b.labels, pos_weight, o.boxes, b.boxes, b.box_mask, box_weight, {}, b.label_mask);
      loss_sum += static_cast<double>(l.loss.item()) * static_cast<double>(b.size());
    }
    std::vector<float> z = o.logits.to_vector();
    for (float& v : z) v = 1.f / (1.f + std::exp(-v));
    std::vector<float> bx = o.boxes.to_vector();
    for (float& v : bx) v = 1.f / (1.f + std::exp(-v));
    auto append = [](std::vector<float>& dst, const std::vector<float>& src) {
      dst.insert(dst.end(), src.begin(), src.end());
    };
    append(r.probs, z);
    append(r.boxes, bx);
    std::vector<float> y = b.labels.to_vector();
    if (b.label_mask.defined()) {  // missing labels become NaN: left out of every metric
      const std::vector<float> present = b.label_mask.to_vector();
      for (std::size_t k = 0; k < y.size(); ++k)
        if (present[k] == 0.f) y[k] = std::numeric_limits<float>::quiet_NaN();
    }
    append(r.labels, y);
    append(r.target_boxes, b.boxes.to_vector());
    append(r.box_mask, b.box_mask.to_vector());
    r.names.insert(r.names.end(), b.names.begin(), b.names.end());
    r.indices.insert(r.indices.end(), b.indices.begin(), b.indices.end());
    r.n += b.size();
  }
  r.loss = r.n > 0 ? loss_sum / static_cast<double>(r.n) : 0;
  r.seconds = steady_seconds() - t0;
  return r;
}

LoadedModel load_model_for_inference(const std::string& path, Device device, const std::string& model_name,
                                     int image_size) {
  LoadedModel lm;
  SafetensorsFile file = read_safetensors(path);
  const bool has_meta = file.metadata.count("cxr.format") > 0;
  if (has_meta) lm.meta = from_metadata(file.metadata, path);
  if (!model_name.empty()) lm.meta.architecture = model_name;
  if (image_size > 0) lm.meta.image_size = image_size;
  if (lm.meta.architecture.empty())
    throw UsageError(path + " does not say which model it holds: pass --model");
  if (lm.meta.image_size <= 0) throw UsageError(path + " does not give the image size: pass --image-size");
  if (lm.meta.class_names.empty())
    lm.meta.class_names.assign(data::kClassNames.begin(), data::kClassNames.end());
  if (lm.meta.mean.empty()) {
    data::NormalizeOptions n;
    lm.meta.mean.assign(n.mean.begin(), n.mean.end());
    lm.meta.std.assign(n.std.begin(), n.std.end());
  }
  if (lm.meta.thresholds.empty()) lm.meta.thresholds.assign(lm.meta.class_names.size(), 0.5);
  lm.model = make_model(lm.meta.architecture, static_cast<int>(lm.meta.class_names.size()));
  NamedTensors state = model_state(*lm.model);
  load_state(state, file, model_options(), path);
  lm.model->to(device);
  lm.model->set_input_grad(false);
  lm.model->eval();
  return lm;
}

float no_finding_probability(const float* p, int classes, const std::string& rule) {
  if (rule == "max") {
    float m = 0;
    for (int k = 0; k < classes; ++k) m = std::max(m, p[k]);
    return 1.f - m;
  }
  double q = 1;
  for (int k = 0; k < classes; ++k) q *= 1.0 - p[k];
  return static_cast<float>(q);
}

void write_predictions_csv(const std::string& path, const std::vector<std::string>& names,
                           const std::vector<float>& probs, const std::vector<std::string>& class_names,
                           const std::string& rule) {
  std::ofstream f(path);
  CXR_CHECK(f, "cannot open ", path, " for writing");
  const int c = static_cast<int>(class_names.size());
  f << "Image Index";
  for (const auto& n : class_names) f << "," << n;
  f << "," << data::kNoFinding << "\n";
  f << std::setprecision(6);
  for (std::size_t i = 0; i < names.size(); ++i) {
    const float* p = probs.data() + i * static_cast<std::size_t>(c);
    f << names[i];
    for (int k = 0; k < c; ++k) f << "," << p[k];
    f << "," << no_finding_probability(p, c, rule) << "\n";
  }
  CXR_CHECK(f.good(), "writing ", path, " failed");
}

void write_labels_csv(const std::string& path, const std::vector<std::string>& names,
                      const std::vector<float>& labels, const std::vector<std::string>& class_names) {
  std::ofstream f(path);
  CXR_CHECK(f, "cannot open ", path, " for writing");
  const std::size_t c = class_names.size();
  f << "Image Index";
  for (const auto& n : class_names) f << "," << n;
  f << "\n";
  for (std::size_t i = 0; i < names.size(); ++i) {
    f << names[i];
    for (std::size_t k = 0; k < c; ++k) {
      const float y = labels[i * c + k];
      f << ",";
      if (!std::isnan(y)) f << (y != 0.f ? 1 : 0);  // missing: an empty cell
    }
    f << "\n";
  }
  CXR_CHECK(f.good(), "writing ", path, " failed");
}

namespace {
nlohmann::json num(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }
std::string tkey(double t) {
  std::ostringstream os;
  os << t;
  return os.str();
}
}  // namespace

nlohmann::json metrics_json(const InferenceResult& r, const std::vector<std::string>& class_names,
                            const std::vector<double>& thresholds) {
  const int C = static_cast<int>(class_names.size());
  const ClassificationReport rep = evaluate_classification(r.probs, r.labels, C, class_names, thresholds);
  nlohmann::json j;
  j["images"] = r.n;
  j["mean_auroc"] = num(rep.mean_auc);
  j["mean_ap"] = num(rep.mean_ap);
  j["mean_accuracy"] = num(rep.mean_accuracy);
  j["mean_abs_bias"] = num(rep.mean_abs_bias);
  j["undefined_classes"] = rep.undefined;
  nlohmann::json classes = nlohmann::json::object();
  for (const auto& c : rep.classes) {
    const ThresholdStats& s = c.at_threshold;
    classes[c.name] = {{"auroc", num(c.auc)},         {"ap", num(c.ap)},
                       {"threshold", s.threshold},    {"accuracy", num(s.accuracy())},
                       {"bias", num(s.bias())},       {"positives", c.positives},
                       {"negatives", c.negatives},    {"tpr", num(s.tpr())},
                       {"fpr", num(s.fpr())}};
    if (c.missing > 0) classes[c.name]["missing"] = c.missing;
  }
  j["classes"] = classes;

  // Localisation on the boxed images, in the resized image's normalised coordinates
  // (IoU and IoBB are ratios of areas, unchanged by the resize).
  std::vector<LocalisationSample> samples;
  double iou_sum = 0;
  std::vector<double> iou_class_sum(static_cast<std::size_t>(C), 0.0);
  std::vector<std::int64_t> class_count(static_cast<std::size_t>(C), 0);
  auto to_box = [](const float* b) { return Box{b[0] - b[2] / 2, b[1] - b[3] / 2, b[2], b[3]}; };
  for (std::int64_t i = 0; i < r.n; ++i)
    for (int c = 0; c < C; ++c) {
      const std::size_t k = static_cast<std::size_t>(i * C + c);
      if (r.box_mask[k] == 0.f) continue;
      LocalisationSample s;
      s.class_index = c;
      s.truth = to_box(&r.target_boxes[k * 4]);
      s.detected.push_back(to_box(&r.boxes[k * 4]));
      const double v = iou(s.detected[0], s.truth);
      iou_sum += v;
      iou_class_sum[static_cast<std::size_t>(c)] += v;
      ++class_count[static_cast<std::size_t>(c)];
      samples.push_back(std::move(s));
    }
  nlohmann::json loc;
  loc["boxes"] = samples.size();
  loc["mean_iou"] = samples.empty() ? nlohmann::json(nullptr) : nlohmann::json(iou_sum / samples.size());
  const LocalisationResult by_iobb = localisation_accuracy(samples, C, OverlapMeasure::iobb);
  const LocalisationResult by_iou = localisation_accuracy(samples, C, OverlapMeasure::iou);
  nlohmann::json acc_iobb = nlohmann::json::object(), acc_iou = nlohmann::json::object();
  for (std::size_t t = 0; t < by_iobb.thresholds.size(); ++t) {
    acc_iobb[tkey(by_iobb.thresholds[t])] = samples.empty() ? nlohmann::json(nullptr) : num(by_iobb.overall[t]);
    acc_iou[tkey(by_iou.thresholds[t])] = samples.empty() ? nlohmann::json(nullptr) : num(by_iou.overall[t]);
  }
  loc["accuracy_iobb"] = acc_iobb;
  loc["accuracy_iou"] = acc_iou;
  nlohmann::json per = nlohmann::json::object();
  for (int c = 0; c < C; ++c) {
    const auto cc = static_cast<std::size_t>(c);
    if (class_count[cc] == 0) continue;
    nlohmann::json a = nlohmann::json::object();
    for (std::size_t t = 0; t < by_iobb.thresholds.size(); ++t) a[tkey(by_iobb.thresholds[t])] = num(by_iobb.accuracy[cc][t]);
    per[class_names[cc]] = {{"boxes", class_count[cc]},
                            {"mean_iou", iou_class_sum[cc] / static_cast<double>(class_count[cc])},
                            {"accuracy_iobb", a}};
  }
  loc["per_class"] = per;
  j["localisation"] = loc;
  return j;
}

namespace {

std::string fixed(const nlohmann::json& v, int prec) {
  if (!v.is_number()) return "-";
  std::ostringstream os;
  os << std::fixed << std::setprecision(prec) << v.get<double>();
  return os.str();
}

// One data set: inference over its split, metrics.json, predictions.csv and labels.csv in
// out_dir; the printed summary unless quiet. Returns the metrics (rank 0; null on the others).
nlohmann::json evaluate_on(const EvaluateOptions& o, LoadedModel& lm, const std::string& data_dir,
                           const std::string& out_dir, std::ostream& out) {
  data::Report report;
  if (o.comm != nullptr) report.set_echo_prefix(o.comm->world().message_prefix());
  const data::Dataset ds = data::load_dataset(data_dir, o.reader, report);
  data::SplitOptions so;
  auto extra = [&](const char* key) -> const std::string* {
    auto it = lm.meta.extra.find(key);
    return it == lm.meta.extra.end() ? nullptr : &it->second;
  };
  if (auto* s = extra("split_seed")) so.seed = std::stoull(*s);
  if (auto* s = extra("val_fraction")) so.val_fraction = std::stod(*s);
  const data::Splits splits = data::make_splits(ds, so, report);
  std::vector<std::int64_t> idx = data::split_by_name(splits, o.split);
  if (o.limit > 0 && static_cast<std::int64_t>(idx.size()) > o.limit) idx.resize(static_cast<std::size_t>(o.limit));
  CXR_CHECK(!idx.empty(), data_dir, ": the ", o.split, " split is empty");

  // The checkpoint's outputs, found in the data set by finding (its aliases included): the
  // findings the set lacks are missing, not negative.
  const data::LabelSpace space = data::LabelSpace::from_names(lm.meta.class_names);
  data::LoaderOptions lo;
  lo.batch_size = o.batch_size;
  lo.image_size = static_cast<int>(lm.meta.image_size);
  lo.workers = o.workers;
  lo.device = o.device;
  lo.label_findings = space.findings();
  for (std::size_t c = 0; c < std::min<std::size_t>(3, lm.meta.mean.size()); ++c) {
    lo.normalize.mean[c] = static_cast<float>(lm.meta.mean[c]);
    lo.normalize.std[c] = static_cast<float>(lm.meta.std[c]);
  }
  InferenceResult r;
  if (o.comm != nullptr && o.comm->size() > 1) {  // this rank's shard; every rank's predictions, in order
    const auto [b, e] = data::shard_range(0, static_cast<std::int64_t>(idx.size()), o.comm->rank(), o.comm->size());
    CXR_CHECK(e > b, "the ", o.split, " split (", idx.size(), " images) is too small for ", o.comm->size(), " ranks");
    data::DataLoader loader(ds, std::vector<std::int64_t>(idx.begin() + b, idx.begin() + e), lo, report);
    r = gather_inference(*o.comm, run_inference(*lm.model, loader, 0));
  } else {
    data::DataLoader loader(ds, idx, lo, report);
    r = run_inference(*lm.model, loader, 0);
  }
  report.flush_suppressed();
  if (o.comm != nullptr && o.comm->rank() != 0) return nlohmann::json();  // rank 0 writes

  nlohmann::json j = metrics_json(r, lm.meta.class_names, lm.meta.thresholds);
  j["checkpoint"] = o.checkpoint;
  j["architecture"] = lm.meta.architecture;
  j["image_size"] = lm.meta.image_size;
  j["split"] = o.split;
  j["no_finding_rule"] = o.no_finding;
  j["images_per_s"] = r.seconds > 0 ? static_cast<double>(r.n) / r.seconds : 0.0;
  if (ds.format != "nih") {
    j["data"] = data_dir;
    j["format"] = ds.format;
  }
  fs::create_directories(out_dir);
  const std::string metrics_path = (fs::path(out_dir) / "metrics.json").string();
  write_file_atomic(metrics_path, j.dump(2) + "\n");
  write_predictions_csv((fs::path(out_dir) / "predictions.csv").string(), r.names, r.probs, lm.meta.class_names,
                        o.no_finding);
  write_labels_csv((fs::path(out_dir) / "labels.csv").string(), r.names, r.labels, lm.meta.class_names);
  if (!o.quiet) {
    const ClassificationReport rep =
        evaluate_classification(r.probs, r.labels, static_cast<std::int64_t>(lm.meta.class_names.size()),
                                lm.meta.class_names, lm.meta.thresholds);
    out << "eval " << o.checkpoint << " on " << o.split;
    if (ds.format != "nih") out << " of " << data_dir << " (" << ds.format << ")";
    out << " (" << r.n << " images, " << std::setprecision(4) << (r.seconds > 0 ? r.n / r.seconds : 0.0)
        << " img/s)\n"
        << format_report(rep);
    const auto& loc = j["localisation"];
    auto fixed3 = [](const nlohmann::json& v) { return v.is_number() ? fixed(v, 3) : std::string("n/a"); };
    out << "localisation: " << loc["boxes"] << " boxes, mean IoU " << fixed3(loc["mean_iou"]) << ", accuracy at IoBB";
    for (const auto& [threshold, accuracy] : loc["accuracy_iobb"].items())
      out << " " << threshold << ": " << fixed3(accuracy);
    out << "\n";
    out << "wrote " << metrics_path << " and " << (fs::path(out_dir) / "predictions.csv").string() << "\n";
  }
  return j;
}

}  // namespace

nlohmann::json cross_dataset_table(const std::vector<std::string>& sets, const std::vector<nlohmann::json>& metrics,
                                   const std::vector<std::string>& class_names) {
  nlohmann::json t;
  t["sets"] = sets;
  nlohmann::json auroc = nlohmann::json::object(), ap = nlohmann::json::object();
  for (const auto& name : class_names) {
    nlohmann::json a = nlohmann::json::array(), p = nlohmann::json::array();
    for (const auto& m : metrics) {
      const auto& c = m["classes"][name];
      a.push_back(c["auroc"]);
      p.push_back(c["ap"]);
    }
    auroc[name] = a;
    ap[name] = p;
  }
  t["auroc"] = auroc;
  t["ap"] = ap;
  nlohmann::json mean = nlohmann::json::array();
  for (const auto& m : metrics) mean.push_back(m["mean_auroc"]);
  t["mean_auroc"] = mean;
  return t;
}

std::string format_cross_table(const nlohmann::json& t) {
  std::ostringstream os;
  const auto& sets = t["sets"];
  os << std::left << std::setw(28) << "AUROC";
  for (std::size_t k = 0; k < sets.size(); ++k) os << std::right << std::setw(10) << ("set " + std::to_string(k + 1));
  os << "\n";
  for (const auto& [name, row] : t["auroc"].items()) {
    os << std::left << std::setw(28) << name;
    for (const auto& v : row) os << std::right << std::setw(10) << fixed(v, 4);
    os << "\n";
  }
  os << std::left << std::setw(28) << "mean (labels the set has)";
  for (const auto& v : t["mean_auroc"]) os << std::right << std::setw(10) << fixed(v, 4);
  os << "\n";
  for (std::size_t k = 0; k < sets.size(); ++k) os << "set " << k + 1 << ": " << sets[k].get<std::string>() << "\n";
  os << "- : the set has no label for the finding, or no positive or no negative in the split\n";
  return os.str();
}

nlohmann::json evaluate_checkpoint(const EvaluateOptions& o, std::ostream& out) {
  if (o.checkpoint.empty()) throw UsageError("--checkpoint is required");
  if (o.data_dir.empty() && o.data_dirs.empty()) throw UsageError("--data is required");
  if (o.out_dir.empty()) throw UsageError("--out is required");
  if (o.split != "test" && o.split != "val") throw UsageError("--split must be test or val, got '" + o.split + "'");
  if (o.no_finding != "product" && o.no_finding != "max")
    throw UsageError("--no-finding must be product or max, got '" + o.no_finding + "'");
  if (o.batch_size < 1) throw UsageError("--batch-size must be >= 1");
  if (o.workers < 1 && o.workers != data::kAutoWorkers) throw UsageError("--workers must be >= 1 or auto");
  CXR_CHECK(fs::exists(o.checkpoint), "checkpoint ", o.checkpoint, " does not exist");

  LoadedModel lm = load_model_for_inference(o.checkpoint, o.device);
  const std::vector<std::string> dirs = o.data_dirs.empty() ? std::vector<std::string>{o.data_dir} : o.data_dirs;
  if (dirs.size() == 1) return evaluate_on(o, lm, dirs[0], o.out_dir, out);

  // Several sets: each in its own folder OUT/<k>/, then the table of AUROC per set and label.
  std::vector<nlohmann::json> all;
  for (std::size_t k = 0; k < dirs.size(); ++k)
    all.push_back(evaluate_on(o, lm, dirs[k], (fs::path(o.out_dir) / std::to_string(k + 1)).string(), out));
  if (o.comm != nullptr && o.comm->rank() != 0) return nlohmann::json();
  nlohmann::json j;
  j["checkpoint"] = o.checkpoint;
  j["split"] = o.split;
  j["datasets"] = nlohmann::json::array();
  for (std::size_t k = 0; k < dirs.size(); ++k)
    j["datasets"].push_back({{"data", dirs[k]}, {"folder", std::to_string(k + 1)}, {"metrics", all[k]}});
  j["cross_dataset"] = cross_dataset_table(dirs, all, lm.meta.class_names);
  fs::create_directories(o.out_dir);
  const std::string path = (fs::path(o.out_dir) / "metrics.json").string();
  write_file_atomic(path, j.dump(2) + "\n");
  if (!o.quiet) out << "\ncross-data-set AUROC on the " << o.split << " splits\n" << format_cross_table(j["cross_dataset"])
                    << "wrote " << path << "\n";
  return j;
}

}  // namespace cxr
