// train_cxr demo: synthetic data -> training -> evaluation -> predictions -> report, on the CPU.
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>

#include "cli/cmd_train.h"
#include "cli/common_flags.h"
#include "data/metadata.h"
#include "data/synth.h"
#include "eval/evaluate.h"
#include "eval/predict.h"
#include "report/report_html.h"
#include "train/trainer.h"

namespace cxr::cli {
namespace fs = std::filesystem;
namespace {

// A number of a metrics object, NaN when null (undefined).
double json_num(const nlohmann::json& j, const char* key) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : std::nan("");
}

}  // namespace

int run_demo(int argc, const char* const* argv, std::ostream& out) {
  Args args("train_cxr demo",
            "The whole pipeline on the CPU in a few minutes: a synthetic data set, a short resnet18 training,\n"
            "evaluation on the test split, predictions with overlays for a few test images, and RUN/report.html.");
  args.option("out", "DIR", "output folder (its data/, run/, eval/, predict/ are replaced)", "runs/demo")
      .option("images", "N", "synthetic images", "400")
      .option("size", "S", "image side (synthetic and network input)", "64")
      .option("epochs", "E", "training epochs", "10")
      .option("seed", "S", "seed", "0");
  add_workers(args);
  add_precision(args);
  add_quiet(args, "no progress bar");
  if (auto code = parse_command_line(args, argc, argv, out, std::cerr)) return *code;
  // The run records its precision (TrainOptions); evaluation and prediction run in the same math.
  const MathScope math(args);
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
  t.workers = workers_arg(args);
  t.seed = args.get_u64("seed");
  t.val_fraction = 0.15;
  t.quiet = quiet_arg(args);
  t.precision = precision_arg(args);
  t.command_line = "train_cxr demo";
  out << "demo: 2/4 training resnet18 on the CPU" << (t.precision == Precision::BF16 ? " (bf16 mixed precision)" : "") << "\n";
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
