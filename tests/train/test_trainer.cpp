// The training subcommands end to end on tiny synthetic data: train -> eval -> predict files
// and columns, the loss going down on a fixed batch, bit-identical resumption, usage errors.
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "data/dataset.h"
#include "data/loader.h"
#include "data/splits.h"
#include "kernels/execution.h"
#include "layers/init.h"
#include "models/model_factory.h"
#include "tests/data/data_test_util.h"
#include "tests/train/train_test_util.h"
#include "checkpoint/checkpoint.h"
#include "cli/cli_args.h"
#include "cli/cmd_train.h"
#include "checkpoint/safetensors.h"
#include "train/trainer.h"

using namespace cxr;
namespace fs = std::filesystem;

namespace {

std::string first_line(const std::string& path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  return line;
}

std::vector<std::string> train_args(const std::string& out, int epochs) {
  return {"--data", test::small_synth_dir(), "--out", out, "--model", "resnet18", "--image-size", "32",
          "--epochs", std::to_string(epochs), "--batch-size", "8", "--workers", "2", "--seed", "3",
          "--lr", "0.001", "--warmup", "2", "--quiet"};
}

}  // namespace

TEST_SUITE("train") {

TEST_CASE("trainer: the loss goes down on a fixed batch") {
  data::Report report(data::Report::Echo::Off);
  const data::Dataset ds = data::Dataset::load(test::small_synth_dir(), report);
  std::vector<std::int64_t> idx;
  for (std::int64_t i = 0; i < 8; ++i) idx.push_back(i);
  data::LoaderOptions lo;
  lo.batch_size = 8;
  lo.image_size = 32;
  lo.workers = 1;
  data::DataLoader loader(ds, idx, lo, report);
  loader.start_epoch(0);
  const data::Batch* b = loader.next();
  REQUIRE(b != nullptr);
  const Tensor x = b->images.clone(), y = b->labels.clone(), t = b->boxes.clone(), m = b->box_mask.clone();
  loader.stop();
  manual_seed(1);
  auto model = make_model("resnet18");
  model->train();
  model->set_input_grad(false);
  // The trainer's step (train/train_step.h): AdamW without weight decay, positive weights 1.
  Optimizer optim(*model, {.kind = OptimizerKind::adamw, .weight_decay = 0.0});
  TrainStep step(*model, optim, {.pos_weight = Tensor::full({y.size(1)}, 1.f, x.device())});
  data::Batch fixed;
  fixed.images = x;
  fixed.labels = y;
  fixed.boxes = t;
  fixed.box_mask = m;
  std::vector<float> losses;
  for (int s = 1; s <= 6; ++s) {
    const StepOutcome r = step.run(fixed, 1e-3, s);
    REQUIRE(r.applied);
    losses.push_back(static_cast<float>(r.loss));
  }
  MESSAGE("losses: " << losses.front() << " -> " << losses.back());
  CHECK(losses.back() < losses.front());
  CHECK(losses.back() < 0.8f * losses.front());
}

TEST_CASE("train -> eval -> predict: files, columns and metrics keys") {
  test::TempDir dir("trainer_e2e");
  const std::string runp = dir / "run";
  REQUIRE(test::run_command(cli::run_train, train_args(runp, 1)) == 0);
  for (const char* f : {"last.safetensors", "best.safetensors", "metrics.csv", "log.txt"})
    CHECK_MESSAGE(fs::exists(fs::path(runp) / f), f);
  const std::string header = first_line(runp + "/metrics.csv");
  CHECK(header.rfind("epoch,step,lr,train_loss,val_loss,val_mean_auroc,val_mean_ap", 0) == 0);
  CHECK(header.find("auroc_Pleural_Thickening") != std::string::npos);

  Checkpoint best = load_checkpoint(runp + "/best.safetensors");
  CHECK(best.meta.architecture == "resnet18");
  CHECK(best.meta.image_size == 32);
  CHECK(best.meta.class_names.size() == 14);
  CHECK(best.meta.thresholds.size() == 14);
  CHECK(best.meta.mean.size() == 3);
  CHECK(best.meta.extra.at("precision") == "fp32");
  CHECK(best.meta.extra.at("tf32") == "0");
  CHECK(best.file.find("optimizer.conv1.weight.exp_avg") == nullptr);
  Checkpoint last = load_checkpoint(runp + "/last.safetensors");
  CHECK(last.file.find("optimizer.conv1.weight.exp_avg") != nullptr);
  CHECK(last.meta.epoch == 1);

  const std::string evalp = dir / "eval";
  std::string text;
  const std::vector<std::string> eval_args = {"--checkpoint", runp + "/best.safetensors", "--data",
                                              test::small_synth_dir(), "--out", evalp, "--workers", "1", "--quiet"};
  REQUIRE(test::run_command(cli::run_eval, eval_args) == 0);
  std::ifstream jf(evalp + "/metrics.json");
  const nlohmann::json j = nlohmann::json::parse(jf);
  for (const char* k : {"mean_auroc", "mean_ap", "mean_accuracy", "mean_abs_bias", "classes", "localisation", "images"})
    CHECK_MESSAGE(j.contains(k), k);
  CHECK(j["classes"].size() == 14);
  CHECK(j["classes"]["Atelectasis"].contains("auroc"));
  CHECK(j["classes"]["Atelectasis"].contains("bias"));
  CHECK(j["localisation"]["accuracy_iobb"].contains("0.25"));
  const std::string ph = first_line(evalp + "/predictions.csv");
  CHECK(ph.rfind("Image Index,Atelectasis,Cardiomegaly", 0) == 0);
  CHECK(ph.find(",Hernia,No Finding") != std::string::npos);

  data::Report report(data::Report::Echo::Off);
  const data::Dataset ds = data::Dataset::load(test::small_synth_dir(), report);
  const std::string predp = dir / "pred";
  REQUIRE(test::run_command(cli::run_predict, {"--checkpoint", runp + "/best.safetensors", "--out", predp,
                                               ds.image_path(0), "--all-boxes", ds.image_path(1), "--quiet"}) == 0);
  CHECK(first_line(predp + "/predictions.csv") == ph);
  CHECK(first_line(predp + "/boxes.csv") == "image,finding,x,y,w,h,score");
  std::ifstream bf(predp + "/boxes.csv");
  int lines = 0;
  for (std::string l; std::getline(bf, l);) ++lines;
  CHECK(lines == 1 + 2 * 14);

  // A batch of four decoded in parallel: the predictions of one image at a time (to float
  // rounding: a batch takes other convolution panels), in the order given; an unreadable image
  // in the batch fails it with its own name, whichever thread met it.
  const std::vector<std::string> four = {ds.image_path(2), ds.image_path(0), ds.image_path(3), ds.image_path(1)};
  const auto predict_four = [&](const std::string& out, const std::string& batch) {
    std::vector<std::string> args = {"--checkpoint", runp + "/best.safetensors", "--out", out, "--batch-size", batch,
                                     "--quiet"};
    args.insert(args.end(), four.begin(), four.end());
    REQUIRE(test::run_command(cli::run_predict, args) == 0);
    return test::prediction_probabilities(out + "/predictions.csv");
  };
  const std::vector<double> batched = predict_four(dir / "pred4", "4"), single = predict_four(dir / "pred1", "1");
  REQUIRE(batched.size() == 4 * 15);  // 14 findings and No Finding
  REQUIRE(single.size() == batched.size());
  for (std::size_t i = 0; i < batched.size(); ++i) CHECK(batched[i] == doctest::Approx(single[i]).epsilon(1e-5));
  {
    std::ofstream bad(dir / "broken.png", std::ios::binary);
    bad << "\x89PNG not really";
  }
  CHECK_THROWS_WITH_AS(test::run_command(cli::run_predict, {"--checkpoint", runp + "/best.safetensors", "--out",
                                                            dir / "pred_bad", four[0], dir / "broken.png", four[1]}),
                       doctest::Contains("broken.png"), Error);

  // --tf32 on the (emulated) CUDA device: the tensor-core path, within TF32 accuracy of the CPU
  // and visibly not the fp32 one; the mode ends with the command.
  const auto probabilities = [&](const std::string& device, bool tf32) {
    const std::string out = dir / ("pred_" + device + (tf32 ? "_tf32" : ""));
    std::vector<std::string> words = {"--checkpoint", runp + "/best.safetensors", "--out", out, "--device", device,
                                      ds.image_path(0), "--quiet"};
    if (tf32) words.push_back("--tf32");
    REQUIRE(test::run_command(cli::run_predict, words) == 0);
    std::ifstream f(out + "/predictions.csv");
    std::string line;
    std::getline(f, line);
    std::getline(f, line);
    std::vector<double> p;
    std::stringstream ss(line);
    std::string cell;
    std::getline(ss, cell, ',');  // Image Index
    while (std::getline(ss, cell, ',')) p.push_back(std::stod(cell));
    return p;
  };
  const std::vector<double> cpu = probabilities("cpu", false), emu = probabilities("cuda-emu", false),
                            emu_tf32 = probabilities("cuda-emu", true);
  REQUIRE(cpu.size() == 15);
  REQUIRE(emu_tf32.size() == 15);
  double tf32_vs_cpu = 0, tf32_vs_fp32 = 0;
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    CHECK(emu[i] == doctest::Approx(cpu[i]).epsilon(1e-4));
    tf32_vs_cpu = std::max(tf32_vs_cpu, std::abs(emu_tf32[i] - cpu[i]));
    tf32_vs_fp32 = std::max(tf32_vs_fp32, std::abs(emu_tf32[i] - emu[i]));
  }
  MESSAGE("--tf32 on cuda-emu: max |p - p_cpu| = " << tf32_vs_cpu);
  CHECK(tf32_vs_cpu < 1e-2);
  CHECK(tf32_vs_fp32 > 0);
  CHECK_FALSE(allow_tf32());
}

TEST_CASE("train --resume: 1 + 1 epochs give bit-identical weights to 2 epochs") {
  test::TempDir dir("trainer_resume");
  const std::string a = dir / "a", b = dir / "b";
  REQUIRE(test::run_command(cli::run_train, train_args(a, 2)) == 0);
  // The interruption: the same 2-epoch run, stopped after its first epoch (the cosine
  // schedule spans --epochs, so a 1-epoch run would not be the same run).
  TrainOptions o;
  o.data_dir = test::small_synth_dir();
  o.out_dir = b;
  o.model = "resnet18";
  o.image_size = 32;
  o.epochs = 2;
  o.batch_size = 8;
  o.workers = 2;
  o.seed = 3;
  o.lr = 0.001;
  o.warmup_steps = 2;
  o.quiet = true;
  o.stop_after_epochs = 1;
  std::ostringstream sink;
  train_model(o, sink);
  CHECK(load_checkpoint(b + "/last.safetensors").meta.epoch == 1);
  auto resume = train_args(b, 2);
  resume.push_back("--resume");
  REQUIRE(test::run_command(cli::run_train, resume) == 0);

  const SafetensorsFile fa = read_safetensors(a + "/last.safetensors");
  const SafetensorsFile fb = read_safetensors(b + "/last.safetensors");
  REQUIRE(fa.entries.size() == fb.entries.size());
  int differing = 0;
  for (std::size_t i = 0; i < fa.entries.size(); ++i) {
    const auto& ea = fa.entries[i];
    const auto& eb = fb.entries[i];
    REQUIRE(ea.name == eb.name);
    REQUIRE(ea.tensor.nbytes() == eb.tensor.nbytes());
    if (std::memcmp(ea.tensor.raw_data(), eb.tensor.raw_data(), ea.tensor.nbytes()) != 0) {
      if (differing < 5) MESSAGE("differs: " << ea.name);
      ++differing;
    }
  }
  CHECK(differing == 0);
  CHECK(fa.metadata.at("step") == fb.metadata.at("step"));
  // metrics.csv of the resumed run has both epochs.
  std::ifstream f(b + "/metrics.csv");
  int rows = 0;
  for (std::string l; std::getline(f, l);) ++rows;
  CHECK(rows == 3);
}

TEST_CASE("train / eval / predict: bad arguments give clear errors") {
  test::TempDir dir("trainer_bad");
  std::string text;
  CHECK(test::run_command(cli::run_train, {"--out", dir / "r"}) == cli::kExitUsage);  // --data missing
  auto with = [&](std::vector<std::string> extra) {
    auto a = train_args(dir / "r", 1);
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  CHECK_THROWS_WITH_AS(test::run_command(cli::run_train, with({"--optimizer", "adam"})),
                       doctest::Contains("adamw or sgd"), cli::UsageError);
  CHECK_THROWS_WITH_AS(test::run_command(cli::run_train, with({"--model", "vgg"})),
                       doctest::Contains("unknown model 'vgg'"), cli::UsageError);
  CHECK_THROWS_WITH_AS(test::run_command(cli::run_train, with({"--schedule", "linear"})),
                       doctest::Contains("--schedule"), cli::UsageError);
  CHECK_THROWS_WITH_AS(test::run_command(cli::run_train, with({"--pos-weight", "2"})),
                       doctest::Contains("--pos-weight"), cli::UsageError);
  CHECK_THROWS_WITH_AS(test::run_command(cli::run_train, with({"--epochs", "0"})), doctest::Contains("--epochs"),
                       cli::UsageError);
  CHECK_THROWS_WITH_AS(test::run_command(cli::run_train, with({"--epochs", "two"})), doctest::Contains("--epochs"),
                       cli::UsageError);
  CHECK_THROWS_WITH_AS(test::run_command(cli::run_train, with({"--workers", "0"})),
                       doctest::Contains("--workers must be a positive number or auto, got 0"), cli::UsageError);
  CHECK_THROWS_WITH_AS(test::run_command(cli::run_train, with({"--workers", "many"})), doctest::Contains("--workers"),
                       cli::UsageError);
  CHECK_THROWS_AS(test::run_command(cli::run_train, {"--data", dir / "nothing", "--out", dir / "r2", "--quiet"}),
                  Error);
  CHECK_THROWS_WITH_AS(test::run_command(cli::run_train, with({"--resume"})), doctest::Contains("nothing to resume"),
                       Error);
  CHECK_THROWS_WITH_AS(test::run_command(cli::run_eval, {"--checkpoint", dir / "x.safetensors", "--data", dir.path(),
                                                         "--out", dir / "e", "--split", "train"}),
                       doctest::Contains("--split"), cli::UsageError);
  CHECK_THROWS_WITH_AS(test::run_command(cli::run_eval, {"--checkpoint", dir / "x.safetensors", "--data", dir.path(),
                                                         "--out", dir / "e"}),
                       doctest::Contains("does not exist"), Error);
  CHECK_THROWS_WITH_AS(test::run_command(cli::run_predict, {"--checkpoint", dir / "x.safetensors", "--out", dir / "p"}),
                       doctest::Contains("no IMAGE"), cli::UsageError);
  CHECK(test::run_command(cli::run_predict, {"--out", dir / "p", "a.png"}) == cli::kExitUsage);  // --checkpoint missing
  CHECK(test::run_command(cli::run_demo, {"--bogus"}) == cli::kExitUsage);
}

}  // TEST_SUITE
