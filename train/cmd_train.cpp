// train, eval, predict and demo: option parsing around trainer / evaluate / predict.
#include "train/cmd_train.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <set>

#include "data/metadata.h"
#include "data/synth.h"
#include "kernels/execution.h"
#include "train/cli_args.h"
#include "train/evaluate.h"
#include "train/predict.h"
#include "train/report_html.h"
#include "train/trainer.h"

namespace cxr::cli {
namespace fs = std::filesystem;

namespace {

Device device_arg(const Args& a) {
  const std::string d = a.get("device");
  if (d != "cpu" && d != "cuda" && d != "cuda-emu") throw UsageError("--device must be cpu or cuda, got '" + d + "'");
  return parse_device(d);
}

// --tf32: fp32 convolutions and matrix products on the GPU may use TF32 tensor cores
// (kernels/execution.h; PyTorch's cuDNN default). Off: device results match the CPU to fp32.
constexpr const char* kTf32Help = "GPU: let fp32 convolutions and matmuls use TF32 tensor cores (faster, ~1e-3 relative error)";
// Holds for the command's scope, so a test that runs several commands in one process is not
// left in TF32 mode.
ExecutionScope math_mode(const Args& a) { return ExecutionScope({.allow_tf32 = a.flag_set("tf32")}); }

// --precision bf16: mixed precision (kernels/execution.h), convolutions and linear layers with
// bf16 operands and f32 accumulation, f32 master weights; like torch.autocast(bfloat16).
constexpr const char* kPrecisionHelp =
    "fp32, or bf16: mixed precision (conv/linear operands in bf16, f32 accumulation and weights)";
ExecutionScope precision_mode(const Args& a) {
  const std::string p = a.get("precision");
  if (p != "fp32" && p != "bf16") throw UsageError("--precision must be fp32 or bf16, got '" + p + "'");
  return ExecutionScope({.precision = p == "bf16" ? Precision::BF16 : Precision::FP32});
}

int int_arg(const Args& a, const std::string& name) { return static_cast<int>(a.get_int(name)); }

std::string join_command(const std::string& cmd, int argc, const char* const* argv) {
  std::string s = "train_cxr " + cmd;
  for (int i = 0; i < argc; ++i) s += std::string(" ") + argv[i];
  return s;
}

// A number of a metrics object, NaN when null (undefined).
double json_num(const nlohmann::json& j, const char* key) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : std::nan("");
}

}  // namespace

int run_train(int argc, const char* const* argv, std::ostream& out) {
  Args args("train_cxr train",
            "Train a model on an NIH-format data set (patient-wise train/val split). Writes RUN/last.safetensors,\n"
            "RUN/best.safetensors (best validation mean AUROC), RUN/metrics.csv and RUN/log.txt.");
  args.required("data", "DIR", "data set folder")
      .required("out", "RUN", "run folder (created)")
      .option("model", "NAME", "architecture (resnet18, resnet34, resnet50, efficientnet_b0, convnext_tiny)",
              "resnet18")
      .option("image-size", "N", "input side in pixels", "224")
      .option("epochs", "E", "epochs (a resumed run continues up to E)", "10")
      .option("batch-size", "B", "images per step", "16")
      .option("lr", "X", "peak learning rate", "0.001")
      .option("optimizer", "adamw|sgd", "AdamW, or SGD with momentum 0.9", "adamw")
      .option("weight-decay", "X", "weight decay (not on biases and normalisation weights)", "0.0001")
      .option("schedule", "KIND", "cosine | onecycle | step | constant", "cosine")
      .option("warmup", "K", "linear warmup steps", "0")
      .option("device", "cpu|cuda", "where to train", "cpu")
      .option("workers", "W", "data loader threads", "2")
      .option("seed", "S", "seed of the weights, split, order, augmentation and dropout", "0")
      .option("threads", "T", "compute threads (0: all cores; > 1 is not bit-reproducible on the CPU yet)", "1")
      .flag("tf32", kTf32Help)
      .option("precision", "fp32|bf16", kPrecisionHelp, "fp32")
      .flag("resume", "continue RUN from RUN/last.safetensors (same settings)")
      .option("init-from", "F", "initial weights: a torchvision backbone or a cxr checkpoint (safetensors)")
      .option("freeze-backbone-epochs", "K", "train only the heads for the first K epochs", "0")
      .option("pos-weight", "auto|none", "BCE positive weights: negatives/positives per class, or 1", "auto")
      .option("box-loss-weight", "X", "weight of the box regression loss", "1")
      .option("limit", "N", "use at most N images of each split (0: all)", "0")
      .option("cache", "DIR", "decoded-image cache folder")
      .flag("strict", "an unreadable image is an error (default: skipped with a warning)")
      .option("patience", "P", "early stop after P epochs without a better val AUROC (0: never)", "0")
      .option("grad-clip", "X", "clip the global gradient norm at X (0: off)", "0")
      .flag("skip-nonfinite", "skip (count and log) a step whose loss or gradient is NaN/inf instead of stopping")
      .flag("cuda-graph", "CUDA: capture the training step once as a CUDA graph and replay it (docs/speed.md)")
      .flag("no-augment", "no training augmentation")
      .flag("quiet", "no progress bar, only epoch summaries");
  if (auto code = parse_command_line(args, argc, argv, out, std::cerr)) return *code;
  TrainOptions o;
  o.data_dir = args.get("data");
  o.out_dir = args.get("out");
  o.model = args.get("model");
  o.image_size = int_arg(args, "image-size");
  o.epochs = int_arg(args, "epochs");
  o.batch_size = int_arg(args, "batch-size");
  o.lr = args.get_double("lr");
  o.optimizer = args.get("optimizer");
  o.weight_decay = args.get_double("weight-decay");
  o.schedule = args.get("schedule");
  o.warmup_steps = args.get_int("warmup");
  o.device = device_arg(args);
  const ExecutionScope tf32 = math_mode(args);
  const ExecutionScope precision = precision_mode(args);
  o.workers = int_arg(args, "workers");
  o.seed = args.get_u64("seed");
  o.threads = int_arg(args, "threads");
  o.resume = args.flag_set("resume");
  o.init_from = args.has("init-from") ? args.get("init-from") : "";
  o.freeze_backbone_epochs = int_arg(args, "freeze-backbone-epochs");
  const std::string pw = args.get("pos-weight");
  if (pw != "auto" && pw != "none") throw UsageError("--pos-weight must be auto or none, got '" + pw + "'");
  o.pos_weight_auto = pw == "auto";
  o.box_loss_weight = args.get_double("box-loss-weight");
  o.limit = args.get_int("limit");
  o.cache_dir = args.has("cache") ? args.get("cache") : "";
  o.strict = args.flag_set("strict");
  o.patience = int_arg(args, "patience");
  o.grad_clip = args.get_double("grad-clip");
  o.augment = !args.flag_set("no-augment");
  o.skip_nonfinite = args.flag_set("skip-nonfinite");
  o.cuda_graph = args.flag_set("cuda-graph");
  o.quiet = args.flag_set("quiet");
  o.command_line = join_command("train", argc, argv);
  return train_exit_code(train_model(o, out));  // 130 / 143 after SIGINT / SIGTERM (docs/reliability.md)
}

int run_eval(int argc, const char* const* argv, std::ostream& out) {
  Args args("train_cxr eval",
            "Evaluate a checkpoint on the test (or validation) split: OUT/metrics.json (per-class and mean AUROC,\n"
            "AP, accuracy and bias at the checkpoint's thresholds, localisation) and OUT/predictions.csv.");
  args.required("checkpoint", "F", "checkpoint (best.safetensors)")
      .required("data", "DIR", "data set folder")
      .required("out", "DIR", "output folder (created)")
      .option("split", "test|val", "which split", "test")
      .option("device", "cpu|cuda", "where to run", "cpu")
      .option("workers", "W", "data loader threads", "2")
      .option("batch-size", "B", "images per batch", "32")
      .option("limit", "N", "at most N images (0: all)", "0")
      .option("no-finding", "product|max", "No Finding = prod(1 - p) or 1 - max p", "product")
      .flag("tf32", kTf32Help)
      .option("precision", "fp32|bf16", kPrecisionHelp, "fp32")
      .flag("quiet", "print nothing");
  if (auto code = parse_command_line(args, argc, argv, out, std::cerr)) return *code;
  const ExecutionScope tf32 = math_mode(args);
  const ExecutionScope precision = precision_mode(args);
  EvaluateOptions o;
  o.checkpoint = args.get("checkpoint");
  o.data_dir = args.get("data");
  o.out_dir = args.get("out");
  o.split = args.get("split");
  o.device = device_arg(args);
  o.workers = int_arg(args, "workers");
  o.batch_size = int_arg(args, "batch-size");
  o.limit = args.get_int("limit");
  o.no_finding = args.get("no-finding");
  o.quiet = args.flag_set("quiet");
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
      .option("device", "cpu|cuda", "where to run", "cpu")
      .option("batch-size", "B", "images per batch", "16")
      .option("no-finding", "product|max", "No Finding = prod(1 - p) or 1 - max p", "product")
      .flag("all-boxes", "a box for every finding (default: findings at or above their threshold)")
      .flag("overlay", "also write OUT/overlays/<image>.png: CAMs, boxes, probabilities (docs/visualisation.md)")
      .option("data", "DIR", "overlays: ground-truth boxes from DIR/BBox_List_2017.csv")
      .option("boxes", "FILE", "overlays: ground-truth boxes from FILE (BBox_List_2017.csv format)")
      .flag("tf32", kTf32Help)
      .option("precision", "fp32|bf16", kPrecisionHelp, "fp32")
      .flag("quiet", "print nothing");
  // Positional IMAGE words are taken out before the options are parsed.
  static const std::set<std::string> flags = {"--all-boxes", "--overlay", "--tf32", "--quiet", "-h", "--help"};
  std::vector<const char*> words;
  std::vector<std::string> images;
  for (int i = 0; i < argc; ++i) {
    const std::string w = argv[i];
    if (w.size() > 1 && w[0] == '-') {
      words.push_back(argv[i]);
      if (!flags.count(w) && w.find('=') == std::string::npos && i + 1 < argc) words.push_back(argv[++i]);
    } else {
      images.push_back(w);
    }
  }
  if (auto code = parse_command_line(args, static_cast<int>(words.size()), words.data(), out, std::cerr)) return *code;
  const ExecutionScope tf32 = math_mode(args);
  const ExecutionScope precision = precision_mode(args);
  PredictOptions o;
  o.checkpoint = args.get("checkpoint");
  o.out_dir = args.get("out");
  o.model = args.has("model") ? args.get("model") : "";
  o.image_size = int_arg(args, "image-size");
  o.device = device_arg(args);
  o.batch_size = int_arg(args, "batch-size");
  o.no_finding = args.get("no-finding");
  if (o.no_finding != "product" && o.no_finding != "max")
    throw UsageError("--no-finding must be product or max, got '" + o.no_finding + "'");
  o.all_boxes = args.flag_set("all-boxes");
  o.quiet = args.flag_set("quiet");
  o.images = images;
  o.overlay = args.flag_set("overlay");
  if (args.has("boxes")) o.boxes_file = args.get("boxes");
  else if (args.has("data") && fs::exists(fs::path(args.get("data")) / "BBox_List_2017.csv"))
    o.boxes_file = (fs::path(args.get("data")) / "BBox_List_2017.csv").string();
  predict_images(o, out);
  return 0;
}

int run_demo(int argc, const char* const* argv, std::ostream& out) {
  Args args("train_cxr demo",
            "The whole pipeline on the CPU in a few minutes: a synthetic data set, a short resnet18 training,\n"
            "evaluation on the test split, predictions with overlays for a few test images, and RUN/report.html.");
  args.option("out", "DIR", "output folder (its data/, run/, eval/, predict/ are replaced)", "runs/demo")
      .option("images", "N", "synthetic images", "400")
      .option("size", "S", "image side (synthetic and network input)", "64")
      .option("epochs", "E", "training epochs", "10")
      .option("workers", "W", "data loader threads", "2")
      .option("seed", "S", "seed", "0")
      .option("precision", "fp32|bf16", kPrecisionHelp, "fp32")
      .flag("quiet", "no progress bar");
  if (auto code = parse_command_line(args, argc, argv, out, std::cerr)) return *code;
  const ExecutionScope precision = precision_mode(args);
  const fs::path dir(args.get("out"));
  const int size = int_arg(args, "size");
  for (const char* sub : {"data", "run", "eval", "predict"}) fs::remove_all(dir / sub);
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };

  data::SynthOptions so;
  so.out_dir = (dir / "data").string();
  so.images = int_arg(args, "images");
  so.size = size;
  so.seed = args.get_u64("seed") + 1;
  const data::SynthSummary ss = data::write_synthetic_dataset(so);
  out << "demo: 1/4 synthetic data: " << ss.images << " images of " << ss.patients << " patients, " << ss.boxes
      << " boxes, " << size << "x" << size << " in " << so.out_dir << "\n";

  TrainOptions t;
  t.data_dir = so.out_dir;
  t.out_dir = (dir / "run").string();
  t.model = "resnet18";
  t.image_size = size;
  t.epochs = int_arg(args, "epochs");
  t.batch_size = 16;
  t.lr = 2e-3;
  t.schedule = "cosine";
  t.warmup_steps = 10;
  t.workers = int_arg(args, "workers");
  t.seed = args.get_u64("seed");
  t.val_fraction = 0.15;
  t.quiet = args.flag_set("quiet");
  t.command_line = "train_cxr demo";
  out << "demo: 2/4 training resnet18 on the CPU" << (autocast_bf16() ? " (bf16 mixed precision)" : "") << "\n";
  const TrainResult tr = train_model(t, out);

  out << "demo: 3/4 evaluation on the test split\n";
  EvaluateOptions e;
  e.checkpoint = (dir / "run" / "best.safetensors").string();
  e.data_dir = so.out_dir;
  e.out_dir = (dir / "eval").string();
  e.workers = t.workers;
  const nlohmann::json m = evaluate_checkpoint(e, out);

  out << "demo: 4/4 predictions and overlays for 4 test images, and the report\n";
  PredictOptions p;
  p.checkpoint = e.checkpoint;
  p.out_dir = (dir / "predict").string();
  p.overlay = true;
  p.boxes_file = (dir / "data" / "BBox_List_2017.csv").string();
  const auto test = data::read_image_list_file((dir / "data" / "test_list.txt").string());
  for (const auto& name : pick_images_with_boxes(test, p.boxes_file, 4))
    p.images.push_back((dir / "data" / "images" / name).string());
  predict_images(p, out);
  const std::string report = (dir / "run" / "report.html").string();
  ReportOptions ro;
  ro.run_dir = t.out_dir;
  ro.eval_dir = e.out_dir;
  ro.overlay_dir = p.out_dir + "/overlays";
  write_report_file(ro, report, out);

  double ips = 0;
  for (const auto& r : tr.epochs) ips += r.images_per_second;
  if (!tr.epochs.empty()) ips /= static_cast<double>(tr.epochs.size());
  out << std::fixed << std::setprecision(4) << "\ndemo finished in " << std::setprecision(1) << elapsed()
      << " s: training " << ips << " img/s, best val AUROC " << std::setprecision(4) << tr.best_auc << " (epoch "
      << tr.best_epoch << "), test mean AUROC " << json_num(m, "mean_auroc") << ", test mean AP "
      << json_num(m, "mean_ap") << "\n"
      << "  data        " << so.out_dir << "\n"
      << "  checkpoints " << t.out_dir << "/best.safetensors, last.safetensors\n"
      << "  training    " << t.out_dir << "/metrics.csv, log.txt\n"
      << "  evaluation  " << e.out_dir << "/metrics.json, predictions.csv\n"
      << "  prediction  " << p.out_dir << "/predictions.csv, boxes.csv, overlays/\n"
      << "  report      " << report << "\n";
  return 0;
}

}  // namespace cxr::cli
