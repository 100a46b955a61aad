// train_cxr data-info and synth through their command functions: the synth -> data-info
// round trip, the --json keys, and usage errors (exit code 2).
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "data/dataset.h"
#include "tests/data/data_test_util.h"
#include "tests/train/train_test_util.h"
#include "cli/cli_args.h"
#include "cli/cmd_data.h"

using namespace cxr;
namespace fs = std::filesystem;

namespace {

}  // namespace

TEST_SUITE("data") {

TEST_CASE("synth -> data-info --json: the counts of what was written, with every key") {
  test::TempDir dir("synth_cli");
  std::string out;
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(test::run_command(cli::run_synth, {"--out", dir.path(), "--images", "200", "--size", "128", "--seed", "5"},
                            &out) == 0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("synth: 200 images of 128x128 in " << seconds << " s");
  CHECK(out.find("wrote 200 images") != std::string::npos);
  for (const char* f : {"Data_Entry_2017.csv", "BBox_List_2017.csv", "train_val_list.txt", "test_list.txt"})
    CHECK(fs::exists(dir / f));

  REQUIRE(test::run_command(cli::run_data_info, {"--data", dir.path(), "--json"}, &out) == 0);
  const auto j = nlohmann::json::parse(out);  // exactly one JSON object
  for (const char* key : {"images", "patients", "no_finding", "labels", "boxes", "boxed_images", "box_labels",
                          "missing_images", "splits"})
    CHECK_MESSAGE(j.contains(key), key);
  CHECK(j["images"] == 200);
  CHECK(j["missing_images"] == 0);
  CHECK(j["patients"].get<int>() > 40);   // several images per patient
  CHECK(j["patients"].get<int>() < 120);
  CHECK(j["labels"].size() == 14);
  CHECK(j["box_labels"].size() == 14);
  int label_sum = 0, boxed_positive = 0;
  for (std::size_t k = 0; k < 14; ++k) {
    const std::string name(data::kClassNames[k]);
    CHECK(j["labels"][name].get<int>() > 0);  // every finding occurs
    label_sum += j["labels"][name].get<int>();
    if (k < 8) boxed_positive += j["labels"][name].get<int>();
    if (k >= 8) CHECK(j["box_labels"][name] == 0);
    else CHECK(j["box_labels"][name] == j["labels"][name]);  // every boxed finding has its box
  }
  CHECK(j["no_finding"].get<int>() > 40);
  CHECK(label_sum >= 200 - j["no_finding"].get<int>());
  CHECK(j["boxes"] == boxed_positive);
  const auto& s = j["splits"];
  CHECK(s["train"].get<int>() + s["val"].get<int>() + s["test"].get<int>() == 200);
  CHECK(j["split_source"] == "official lists");

  // Text output names the folder and every finding.
  REQUIRE(test::run_command(cli::run_data_info, {"--data", dir.path()}, &out) == 0);
  CHECK(out.find("images          200") != std::string::npos);
  CHECK(out.find("Pleural_Thickening") != std::string::npos);
}

TEST_CASE("data-info on the real metadata: the JSON counts of the NIH release") {
  const auto nih = test::nih_dir();
  if (!nih) {
    MESSAGE("skipped: ../shared/data/nih is absent");
    return;
  }
  std::string out;
  REQUIRE(test::run_command(cli::run_data_info, {"--data", *nih, "--json"}, &out) == 0);
  const auto j = nlohmann::json::parse(out);
  CHECK(j["images"] == 112120);
  CHECK(j["patients"] == 30805);
  CHECK(j["no_finding"] == 60361);
  CHECK(j["boxes"] == 984);
  CHECK(j["boxed_images"] == 880);
  CHECK(j["box_labels"]["Infiltration"] == 123);
  CHECK(j["labels"]["Hernia"] == 227);
  CHECK(j["missing_images"] == 112117);
}

TEST_CASE("command-line options: --help, unknown options and bad values") {
  std::string out;
  CHECK(test::run_command(cli::run_synth, {"--help"}, &out) == 0);
  CHECK(out.find("usage: train_cxr synth --out DIR") != std::string::npos);
  CHECK(test::run_command(cli::run_synth, {"--out", "/tmp/x", "--colour", "red"}, &out) == cli::kExitUsage);
  CHECK(test::run_command(cli::run_data_info, {}, &out) == cli::kExitUsage);  // --data is required
  cli::Args args("t", "test");
  args.option("n", "N", "a number", "3").flag("json", "json").required("data", "DIR", "d");
  const char* ok[] = {"--data=/x", "--n", "7", "--json"};
  args.parse(4, ok);
  CHECK(args.get("data") == "/x");
  CHECK(args.get_int("n") == 7);
  CHECK(args.flag_set("json"));
  cli::Args bad("t", "test");
  bad.option("n", "N", "a number", "3");
  const char* words[] = {"--n", "seven"};
  bad.parse(2, words);
  CHECK_THROWS_WITH_AS(bad.get_int("n"), doctest::Contains("--n expects an integer, got 'seven'"), cli::UsageError);
  const char* positional[] = {"extra"};
  CHECK_THROWS_AS(bad.parse(1, positional), cli::UsageError);
  const char* missing_value[] = {"--n"};
  CHECK_THROWS_WITH_AS(cli::Args("t", "x").option("n", "N", "n").parse(1, missing_value), doctest::Contains("needs a value"),
                       cli::UsageError);
}

}  // TEST_SUITE
