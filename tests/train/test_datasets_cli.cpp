// train_cxr on other data sets than NIH: data-info of a CheXpert folder, training on two sets
// at once (the union label space, recorded in the checkpoint), cross-data-set eval, and a
// 14-class NIH checkpoint (metadata as every earlier version wrote it) evaluated on another set.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "checkpoint/checkpoint.h"
#include "cli/cmd_data.h"
#include "cli/cmd_train.h"
#include "data/labels.h"
#include "data/normalize.h"
#include "layers/init.h"
#include "models/model_factory.h"
#include "tests/data/data_test_util.h"
#include "tensor/error.h"
#include "tests/train/train_test_util.h"

using namespace cxr;
namespace fs = std::filesystem;

namespace {

void write_png8(const std::string& path, int size, int value) {
  fs::create_directories(fs::path(path).parent_path());
  std::vector<std::uint16_t> px(static_cast<std::size_t>(size) * size);
  for (std::size_t i = 0; i < px.size(); ++i) px[i] = static_cast<std::uint16_t>((value + i * 7) % 256);
  test::write_bytes(path, test::encode_png(px, size, size, 1, 8));
}

// A class-folder set with PNEUMONIA, Fracture and NORMAL: 24 patients, one image each.
void write_folder_set(const std::string& dir) {
  const char* classes[3] = {"NORMAL", "PNEUMONIA", "Fracture"};
  for (int p = 0; p < 24; ++p)
    write_png8(dir + "/" + (p < 18 ? "train/" : "test/") + classes[p % 3] + "/person" + std::to_string(p) + "_a.png",
               40, 20 * p);
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  return nlohmann::json::parse(f);
}

}  // namespace

TEST_SUITE("train") {

TEST_CASE("data-info --json on a CheXpert folder: format, missing and uncertain labels, views") {
  test::TempDir dir("info_chexpert");
  test::write_text(dir / "train.csv",
                   "Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Cardiomegaly,Pleural Effusion\n"
                   "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg,Female,68,Frontal,AP,,-1.0,1.0\n"
                   "CheXpert-v1.0-small/train/patient00002/study1/view1_frontal.jpg,Male,40,Frontal,PA,,,0.0\n"
                   "CheXpert-v1.0-small/train/patient00002/study1/view2_lateral.jpg,Male,40,Lateral,,,1.0,\n");
  std::string out;
  REQUIRE(test::run_command(cli::run_data_info, {"--data", dir.path(), "--json", "--uncertain", "ones"}, &out) == 0);
  const auto j = nlohmann::json::parse(out);
  CHECK(j["format"] == "chexpert");
  CHECK(j["images"] == 3);
  CHECK(j["patients"] == 2);
  CHECK(j["missing_images"] == 3);
  CHECK(j["labels"].size() == 2);
  CHECK(j["labels"]["Cardiomegaly"] == 2);  // U-Ones: the -1.0 counts as positive
  CHECK(j["uncertain_labels"]["Cardiomegaly"] == 1);
  CHECK(j["missing_labels"]["Cardiomegaly"] == 1);
  CHECK(j["missing_labels"]["Effusion"] == 1);
  CHECK(j["views"]["PA"] == 1);
  CHECK(j["views"]["LL"] == 1);
  REQUIRE(test::run_command(cli::run_data_info, {"--data", dir.path(), "--frontal-only"}, &out) == 0);
  CHECK(out.find("format          chexpert") != std::string::npos);
  CHECK(out.find("images          2") != std::string::npos);
  CHECK(out.find("uncertain") != std::string::npos);
  CHECK_THROWS_WITH_AS(test::run_command(cli::run_data_info, {"--data", dir.path(), "--uncertain", "maybe"}, &out),
                       doctest::Contains("--uncertain"), UsageError);
  CHECK_THROWS_WITH_AS(test::run_command(cli::run_data_info, {"--data", dir.path(), "--format", "dicomdir"}, &out),
                       doctest::Contains("unknown format 'dicomdir'"), UsageError);
}

TEST_CASE("train --data NIH --data FOLDERS:2: the union label space in the heads and checkpoint; eval on each set") {
  test::TempDir dir("two_sets");
  write_folder_set(dir / "folders");
  const std::string runp = dir / "run";
  std::string log;
  REQUIRE(test::run_command(cli::run_train,
                            {"--data", test::small_synth_dir(), "--data", dir / "folders:2", "--out", runp, "--image-size",
                             "32", "--epochs", "1", "--batch-size", "8", "--workers", "1", "--seed", "2", "--quiet"},
                            &log) == 0);
  const Checkpoint best = load_checkpoint(runp + "/best.safetensors");
  REQUIRE(best.meta.class_names.size() == 15);  // NIH's 14 + Fracture
  CHECK(best.meta.class_names[6] == "Pneumonia");
  CHECK(best.meta.class_names[14] == "Fracture");
  CHECK(best.meta.thresholds.size() == 15);
  CHECK(best.file.at("cls_head.weight").size(0) == 15);
  CHECK(best.meta.extra.at("data_format") == "nih+folders");
  CHECK(test::read_all(runp + "/log.txt").find("label space of 15 findings") != std::string::npos);

  // Cross-data-set eval: each set on the labels it has.
  const std::string evalp = dir / "eval";
  std::string text;
  REQUIRE(test::run_command(cli::run_eval,
                            {"--checkpoint", runp + "/best.safetensors", "--data", test::small_synth_dir(), "--data",
                             dir / "folders", "--out", evalp, "--workers", "1"},
                            &text) == 0);
  const auto j = read_json(evalp + "/metrics.json");
  REQUIRE(j["datasets"].size() == 2);
  const auto& nih = j["datasets"][0]["metrics"];
  const auto& folders = j["datasets"][1]["metrics"];
  CHECK(folders["format"] == "folders");
  CHECK(folders["images"] == 6);
  // The folder set has Pneumonia and Fracture only: Effusion is missing everywhere, undefined.
  CHECK(folders["classes"]["Effusion"]["auroc"].is_null());
  CHECK(folders["classes"]["Effusion"]["missing"] == 6);
  CHECK(folders["classes"]["Pneumonia"]["positives"] == 2);
  CHECK(folders["classes"]["Pneumonia"]["negatives"] == 4);
  CHECK(folders["classes"]["Pneumonia"]["auroc"].is_number());
  CHECK(folders["classes"]["Fracture"]["auroc"].is_number());
  // The NIH set has no Fracture label.
  CHECK(nih["classes"]["Fracture"]["auroc"].is_null());
  CHECK(nih["classes"]["Fracture"]["missing"] == nih["images"]);
  CHECK(nih["mean_auroc"].is_number());
  CHECK_FALSE(nih["classes"]["Atelectasis"].contains("missing"));
  const auto& table = j["cross_dataset"];
  CHECK(table["auroc"]["Pneumonia"].size() == 2);
  CHECK(table["auroc"]["Fracture"][0].is_null());
  CHECK(table["auroc"]["Fracture"][1] == folders["classes"]["Fracture"]["auroc"]);
  CHECK(table["mean_auroc"][1] == folders["mean_auroc"]);
  CHECK(fs::exists(evalp + "/2/predictions.csv"));
  // labels.csv: a missing label is an empty cell.
  std::ifstream lf(evalp + "/2/labels.csv");
  std::string header, row;
  std::getline(lf, header);
  std::getline(lf, row);
  CHECK(row.find(",,") != std::string::npos);
  CHECK(text.find("cross-data-set AUROC") != std::string::npos);
  CHECK(text.find("Fracture") != std::string::npos);
}

TEST_CASE("a 14-class NIH checkpoint (today's metadata) loads and is evaluated on another set's shared labels") {
  test::TempDir dir("legacy_ckpt");
  write_folder_set(dir / "folders");
  // A checkpoint as every earlier version wrote it: 14 NIH class names, 14-wide heads.
  manual_seed(4);
  auto model = make_model("resnet18", data::kNumClasses);
  CheckpointMeta meta;
  meta.architecture = "resnet18";
  meta.image_size = 32;
  meta.class_names.assign(data::kClassNames.begin(), data::kClassNames.end());
  const data::NormalizeOptions n;
  meta.mean.assign(n.mean.begin(), n.mean.end());
  meta.std.assign(n.std.begin(), n.std.end());
  meta.thresholds.assign(14, 0.5);
  const std::string ck = dir / "nih14.safetensors";
  save_checkpoint(ck, model_state(*model), meta);

  const std::string evalp = dir / "eval";
  REQUIRE(test::run_command(cli::run_eval, {"--checkpoint", ck, "--data", dir / "folders", "--out", evalp, "--workers",
                                            "1", "--quiet"}) == 0);
  const auto j = read_json(evalp + "/metrics.json");
  CHECK(j["classes"].size() == 14);
  CHECK(j["classes"]["Pneumonia"]["auroc"].is_number());  // the one label both have
  CHECK(j["undefined_classes"].size() == 13);
  CHECK(j["mean_auroc"] == j["classes"]["Pneumonia"]["auroc"]);
  // And on its own kind of data, every class as before.
  REQUIRE(test::run_command(cli::run_eval, {"--checkpoint", ck, "--data", test::small_synth_dir(), "--out",
                                            dir / "eval_nih", "--workers", "1", "--quiet"}) == 0);
  const auto k = read_json(dir / "eval_nih/metrics.json");
  CHECK_FALSE(k.contains("format"));
  CHECK(k["classes"]["Hernia"].contains("auroc"));
  CHECK_FALSE(k["classes"]["Hernia"].contains("missing"));
}

}  // TEST_SUITE
