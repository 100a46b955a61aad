// train_cxr eval and predict: option parsing around eval/evaluate.h and eval/predict.h.
#include <filesystem>
#include <iostream>
#include <memory>

#include "cli/cmd_train.h"
#include "cli/common_flags.h"
#include "dist/communicator.h"
#include "eval/evaluate.h"
#include "eval/predict.h"

namespace cxr::cli {
namespace fs = std::filesystem;

int run_eval(int argc, const char* const* argv, std::ostream& out) {
  Args args("train_cxr eval",
            "Evaluate a checkpoint on the test (or validation) split: OUT/metrics.json (per-class and mean AUROC,\n"
            "AP, accuracy and bias at the checkpoint's thresholds, localisation) and OUT/predictions.csv.\n"
            "Any data set format; labels the set lacks are left out. --data given several times: each set in\n"
            "OUT/1, OUT/2, ... and the cross-data-set AUROC table in OUT/metrics.json.");
  args.required("checkpoint", "F", "checkpoint (best.safetensors)")
      .required("data", "DIR", "data set folder (repeatable)")
      .required("out", "DIR", "output folder (created)")
      .option("split", "test|val", "which split", "test")
      .option("limit", "N", "at most N images (0: all)", "0")
      .option("no-finding", "product|max", "No Finding = prod(1 - p) or 1 - max p", "product");
  add_data_format(args);
  add_batch_size(args, "images per batch", 32);
  add_device(args, "where to run");
  add_workers(args);
  add_precision(args);
  add_tf32(args);
  add_kernels(args);
  add_quiet(args, "print nothing");
  if (auto code = parse_command_line(args, argc, argv, out, std::cerr)) return *code;
  const MathScope math(args);
  EvaluateOptions o;
  o.checkpoint = args.get("checkpoint");
  o.data_dir = args.get("data");
  if (args.get_all("data").size() > 1) o.data_dirs = args.get_all("data");
  o.reader = reader_arg(args);
  o.out_dir = args.get("out");
  o.split = args.get("split");
  o.device = device_arg(args);
  require_kernels(args, o.device, quiet_arg(args), out);
  o.workers = workers_arg(args);
  o.batch_size = batch_size_arg(args);
  o.limit = args.get_int("limit");
  o.no_finding = args.get("no-finding");
  o.quiet = quiet_arg(args);
  // Under mpirun / srun: each rank evaluates its shard of the split; rank 0 writes the results.
  const std::unique_ptr<dist::Communicator> comm = join_job(o.device);
  o.comm = comm.get();
  evaluate_checkpoint(o, out);
  return 0;
}

int run_predict(int argc, const char* const* argv, std::ostream& out) {
  Args args("train_cxr predict",
            "Predict findings and boxes for image files: OUT/predictions.csv and OUT/boxes.csv.\n"
            "usage: train_cxr predict --checkpoint F --out DIR [options] IMAGE...");
  args.required("checkpoint", "F", "checkpoint (best.safetensors)")
      .required("out", "DIR", "output folder (created)")
      .option("model", "NAME", "architecture, when the checkpoint does not name it")
      .option("image-size", "N", "input side, when the checkpoint does not give it", "0")
      .option("no-finding", "product|max", "No Finding = prod(1 - p) or 1 - max p", "product")
      .flag("all-boxes", "a box for every finding (default: findings at or above their threshold)")
      .flag("overlay", "also write OUT/overlays/<image>.png: CAMs, boxes, probabilities (docs/visualisation.md)")
      .option("data", "DIR", "overlays: ground-truth boxes from DIR/BBox_List_2017.csv")
      .option("boxes", "FILE", "overlays: ground-truth boxes from FILE (BBox_List_2017.csv format)");
  add_batch_size(args, "images per batch", 16);
  add_device(args, "where to run");
  add_precision(args);
  add_tf32(args);
  add_kernels(args);
  add_quiet(args, "print nothing");
  // Positional IMAGE words are taken out before the options are parsed.
  std::vector<const char*> words;
  std::vector<std::string> images;
  for (int i = 0; i < argc; ++i) {
    const std::string w = argv[i];
    if (w.size() > 1 && w[0] == '-') {
      words.push_back(argv[i]);
      const bool takes_value = w != "-h" && w != "--help" && !args.is_flag(w.substr(w.rfind('-', 1) + 1)) &&
                               w.find('=') == std::string::npos;
      if (takes_value && i + 1 < argc) words.push_back(argv[++i]);
    } else {
      images.push_back(w);
    }
  }
  if (auto code = parse_command_line(args, static_cast<int>(words.size()), words.data(), out, std::cerr)) return *code;
  const MathScope math(args);
  PredictOptions o;
  o.checkpoint = args.get("checkpoint");
  o.out_dir = args.get("out");
  o.model = args.has("model") ? args.get("model") : "";
  o.image_size = int_arg(args, "image-size");
  o.device = device_arg(args);
  require_kernels(args, o.device, quiet_arg(args), out);
  o.batch_size = batch_size_arg(args);
  o.no_finding = args.get("no-finding");
  if (o.no_finding != "product" && o.no_finding != "max")
    throw UsageError("--no-finding must be product or max, got '" + o.no_finding + "'");
  o.all_boxes = args.flag_set("all-boxes");
  o.quiet = quiet_arg(args);
  o.images = images;
  o.overlay = args.flag_set("overlay");
  if (args.has("boxes")) o.boxes_file = args.get("boxes");
  else if (args.has("data") && fs::exists(fs::path(args.get("data")) / "BBox_List_2017.csv"))
    o.boxes_file = (fs::path(args.get("data")) / "BBox_List_2017.csv").string();
  predict_images(o, out);
  return 0;
}

}  // namespace cxr::cli
