// Inference over a data split and the `train_cxr eval` command's work: metrics.json and
// predictions.csv for a checkpoint on the test (or validation) split of any data set
// (data/formats.h). The checkpoint's outputs are matched to the set's findings by name; a
// finding the set has no label for is missing (NaN in InferenceResult::labels, an empty cell
// in labels.csv) and left out of the metrics, so each set is scored on the labels it has.
//
// metrics.json: {"mean_auroc", "mean_ap", "mean_accuracy", "mean_abs_bias", "classes":
// {name: {auroc, ap, threshold, accuracy, bias, positives, negatives, tpr, fpr}},
// "undefined_classes", "localisation": {boxes, mean_iou, accuracy_iobb: {"0.1", "0.25", "0.5"},
// accuracy_iou: {...}, per_class: {...}}, ...}. Undefined values (NaN) are written as null.
// predictions.csv: "Image Index", the 14 class probabilities under their names, "No Finding";
// labels.csv: "Image Index" and the 14 ground-truth labels (0/1), same rows.
// "No Finding" = prod_k (1 - p_k): the probability that no finding is present if the 14
// outputs were independent (no_finding_rule "max": 1 - max_k p_k instead).
// Localisation: for every ground-truth box (image, class), the model's box for that class
// (box head, whatever the class probability) is compared with it by IoU and IoBB.
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/formats.h"
#include "data/loader.h"
#include "models/heads.h"
#include "checkpoint/checkpoint.h"

namespace cxr {

namespace dist {
class Communicator;
}

struct InferenceResult {
  std::int64_t n = 0;
  std::vector<float> probs, labels;            // (n, C)
  std::vector<float> boxes, target_boxes;      // (n, C, 4): (cx, cy, w, h) in [0, 1]
  std::vector<float> box_mask;                 // (n, C)
  std::vector<std::string> names;              // image file names
  std::vector<std::int64_t> indices;           // data set records
  double loss = 0;                             // mean loss per image (when pos_weight given)
  double seconds = 0;
};

// Runs the model (eval mode) over one epoch of `loader` (no augmentation expected). With a
// defined pos_weight (C), also the loss with box weight `box_weight`.
InferenceResult run_inference(CxrModel& model, data::DataLoader& loader, std::int64_t epoch,
                              const Tensor& pos_weight = Tensor(), float box_weight = 1.f);

struct LoadedModel {
  std::unique_ptr<CxrModel> model;
  CheckpointMeta meta;
};
// Builds the checkpoint's architecture (or `model_name` when given or when the file has no
// cxr metadata), loads its weights strictly, moves it to `device`, eval mode.
LoadedModel load_model_for_inference(const std::string& path, Device device, const std::string& model_name = "",
                                     int image_size = 0);

// "product" (default) or "max"; see above.
float no_finding_probability(const float* probs, int classes, const std::string& rule = "product");

// Writes predictions.csv (Image Index, classes, No Finding).
void write_predictions_csv(const std::string& path, const std::vector<std::string>& names,
                           const std::vector<float>& probs, const std::vector<std::string>& class_names,
                           const std::string& no_finding_rule = "product");

// Writes labels.csv (Image Index, the classes' 0/1 labels): with predictions.csv, what
// `train_cxr report` draws the ROC and precision-recall curves from.
void write_labels_csv(const std::string& path, const std::vector<std::string>& names,
                      const std::vector<float>& labels, const std::vector<std::string>& class_names);

struct EvaluateOptions {
  std::string checkpoint, data_dir, out_dir;
  // Several sets (--data A --data B): each evaluated on its own (OUT/1/, OUT/2/, ...), then
  // OUT/metrics.json holds every set's metrics and the cross-data-set table. Empty: data_dir.
  std::vector<std::string> data_dirs;
  data::ReaderOptions reader;  // --format, --uncertain, --frontal-only
  std::string split = "test";  // test | val
  Device device = Device::CPU;
  int workers = 0;  // loader threads; 0: automatic (data::kAutoWorkers)
  int batch_size = 32;
  std::int64_t limit = 0;       // > 0: the first N images of the split
  std::string no_finding = "product";
  bool quiet = false;
  // A distributed run (mpirun): each rank its shard of the split, the predictions gathered
  // (eval/gather_inference.h); rank 0 writes and prints. Null: one process.
  dist::Communicator* comm = nullptr;
};

// Writes OUT/metrics.json and OUT/predictions.csv; returns the metrics.
nlohmann::json evaluate_checkpoint(const EvaluateOptions& options, std::ostream& out);

// The table researchers report: per set and label, AUROC and AP (null where the set has no
// label for the finding), and each set's mean over the labels it has.
nlohmann::json cross_dataset_table(const std::vector<std::string>& sets, const std::vector<nlohmann::json>& metrics,
                                   const std::vector<std::string>& class_names);
std::string format_cross_table(const nlohmann::json& table);

// Metrics of an inference result (classification at `thresholds`, localisation).
nlohmann::json metrics_json(const InferenceResult& r, const std::vector<std::string>& class_names,
                            const std::vector<double>& thresholds);

}  // namespace cxr
