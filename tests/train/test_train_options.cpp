// train_cxr train's options, each checked by what it does on a tiny synthetic data set
// (tests/data: 48 images; efficientnet_b0, the smallest model (4 M parameters: its checkpoints
// are the cheapest to write), at 16 x 16 on the first 16 training images, two steps an epoch,
// so that an epoch costs about 0.3 s):
// --patience, --init-from, --cache, --schedule onecycle|step, --optimizer sgd,
// --freeze-backbone-epochs, --pos-weight none|auto. Runs go through the command line
// (cli::run_train), as a user's would; two runs serve several tests (shared_run).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

#include "data/class_balance.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/splits.h"
#include "layers/init.h"
#include "models/model_factory.h"
#include "tensor/error.h"
#include "checkpoint/checkpoint.h"
#include "cli/cli_args.h"
#include "cli/cmd_train.h"
#include "eval/evaluate.h"
#include "checkpoint/safetensors.h"
#include "train/schedule.h"
#include "train/trainer.h"
#include "tests/data/data_test_util.h"

using namespace cxr;
namespace fs = std::filesystem;

namespace {

const std::string kModel = "efficientnet_b0";
constexpr int kSeed = 3;
constexpr int kImage = 16;
constexpr int kBatch = 8;
constexpr int kLimit = 16;  // training images (and at most that many validation images)

std::vector<std::string> base_args(const std::string& data, const std::string& out, int epochs) {
  return {"--data", data, "--out", out, "--model", kModel, "--image-size", std::to_string(kImage),
          "--epochs", std::to_string(epochs), "--batch-size", std::to_string(kBatch), "--limit",
          std::to_string(kLimit), "--workers", "1", "--seed", std::to_string(kSeed), "--quiet"};
}

std::vector<std::string> with(std::vector<std::string> args, const std::vector<std::string>& extra) {
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// Runs train_cxr train with these words; returns what it printed.
std::string train(const std::vector<std::string>& words) {
  std::vector<const char*> argv;
  for (const auto& w : words) argv.push_back(w.c_str());
  std::ostringstream os;
  const int code = cli::run_train(static_cast<int>(argv.size()), argv.data(), os);
  REQUIRE(code == 0);
  return os.str();
}

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// metrics.csv: the header's columns and one map per row.
struct Metrics {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
  double at(std::size_t row, const std::string& column) const {
    for (std::size_t c = 0; c < columns.size(); ++c)
      if (columns[c] == column) return std::stod(rows.at(row).at(c));
    FAIL("no column " << column);
    return 0;
  }
  std::size_t size() const { return rows.size(); }
};
std::vector<std::string> split_commas(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream s(line);
  for (std::string w; std::getline(s, w, ',');) out.push_back(w);
  return out;
}
Metrics read_metrics(const std::string& run) {
  std::ifstream f(run + "/metrics.csv");
  REQUIRE(f.good());
  Metrics m;
  std::string line;
  std::getline(f, line);
  m.columns = split_commas(line);
  while (std::getline(f, line))
    if (!line.empty()) m.rows.push_back(split_commas(line));
  return m;
}

// The F32 tensors (parameters) of a state, by name, as host vectors.
std::vector<float> values(const SafetensorsFile& f, const std::string& name) { return f.at(name).to_vector(); }

bool is_head(const std::string& name) {
  for (const auto& p : head_prefixes())
    if (name.rfind(p, 0) == 0) return true;
  return false;
}

// Names of the model's parameters (not buffers).
std::vector<std::string> parameter_names() {
  auto model = make_model(kModel);
  std::vector<std::string> names;
  for (auto& [name, p] : model->named_parameters()) names.push_back(name);
  return names;
}

// Counts the parameters whose values differ between two files, backbone and heads apart.
struct Changed {
  int backbone = 0, heads = 0, backbone_total = 0, heads_total = 0;
};
Changed changed(const SafetensorsFile& a, const SafetensorsFile& b) {
  Changed c;
  for (const auto& name : parameter_names()) {
    const bool head = is_head(name);
    (head ? c.heads_total : c.backbone_total)++;
    if (values(a, name) != values(b, name)) (head ? c.heads : c.backbone)++;
  }
  return c;
}

SafetensorsFile initial_weights() {
  manual_seed(kSeed);
  auto model = make_model(kModel);
  std::vector<std::pair<std::string, Tensor>> t;
  for (auto& [name, p] : model->named_parameters()) t.emplace_back(name, p->value);
  SafetensorsFile f;
  for (auto& [name, v] : t) f.entries.push_back({name, v, "F32"});
  return f;
}

// A torchvision-like backbone file: the model's backbone from another seed, with torchvision's
// 1000-class classifier, an fc and a box head of other shapes, which a backbone load leaves out.
std::vector<std::pair<std::string, Tensor>> backbone_file_tensors() {
  manual_seed(99);
  auto donor = make_model(kModel);
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (auto& [name, p] : donor->named_parameters())
    if (!is_head(name)) tensors.emplace_back(name, p->value);
  for (auto& [name, b] : donor->named_buffers())
    if (!is_head(name)) tensors.emplace_back(name, *b);
  tensors.emplace_back("classifier.1.weight", Tensor::zeros({1000, 1280}));
  tensors.emplace_back("classifier.1.bias", Tensor::zeros({1000}));
  tensors.emplace_back("fc.weight", Tensor::zeros({1000, 512}));
  tensors.emplace_back("box_head.weight", Tensor::zeros({3, 3}));
  return tensors;
}

// An easy set for the optimiser tests: no augmentation, a constant learning rate.
const std::vector<std::string> kEasy = {"--no-augment", "--schedule", "constant", "--lr", "0.03"};

// Runs that several tests look at, trained once per test binary on first use:
//   "adamw"   kEasy, AdamW, --pos-weight none, 1 epoch
//   "cached"  --cache <shared>/cache --strict (and --pos-weight auto, the default), 1 epoch
const test::TempDir& shared_dir() {
  static test::TempDir dir("opt_shared");
  return dir;
}
const std::string& shared_run(const std::string& name) {
  static std::map<std::string, std::string> made;
  auto it = made.find(name);
  if (it != made.end()) return it->second;
  const std::string run = shared_dir() / name;
  auto args = base_args(test::small_synth_dir(), run, 1);
  if (name == "adamw") args = with(with(args, kEasy), {"--optimizer", "adamw", "--pos-weight", "none"});
  else if (name == "cached") args = with(args, {"--cache", shared_dir() / "cache", "--strict"});
  else FAIL("no shared run " << name);
  train(args);
  return made.emplace(name, run).first->second;
}

}  // namespace

TEST_SUITE("train") {

TEST_CASE("train --patience: stops after P epochs without a better validation AUROC") {
  test::TempDir dir("opt_patience");
  const std::string run = dir / "run";
  const int epochs = 8, patience = 1;  // it stops long before
  // A large constant learning rate: the validation AUROC does not climb steadily.
  train(with(base_args(test::small_synth_dir(), run, epochs),
             {"--patience", std::to_string(patience), "--lr", "0.01", "--schedule", "constant"}));
  const Metrics m = read_metrics(run);
  // Where the rule says the run stops, from the AUROC column itself.
  double best = -std::numeric_limits<double>::infinity();
  int bad = 0, best_epoch = 0;
  std::size_t expected_rows = m.size();
  for (std::size_t r = 0; r < m.size(); ++r) {
    const double auc = m.at(r, "val_mean_auroc");
    const bool improved = std::isfinite(auc) ? auc > best : best_epoch == 0;
    if (improved) {
      best = std::isfinite(auc) ? auc : best;
      best_epoch = static_cast<int>(r) + 1;
      bad = 0;
    } else if (++bad >= patience && static_cast<int>(r) + 1 < epochs) {
      expected_rows = r + 1;
      break;
    }
  }
  MESSAGE("epochs run: " << m.size() << " of " << epochs);
  REQUIRE(static_cast<int>(m.size()) < epochs);  // it did stop early
  CHECK(m.size() == expected_rows);
  const std::string log = read_text(run + "/log.txt");
  CHECK(log.find("early stop: no better val AUROC for " + std::to_string(patience) + " epochs") != std::string::npos);
  CHECK(load_checkpoint(run + "/last.safetensors").meta.epoch == static_cast<std::int64_t>(m.size()));
}

TEST_CASE("train --cache: the decoded images are cached, and a second run reads the cache with identical results") {
  // The first run (shared) built the cache from the PNG files.
  const std::string a = shared_run("cached");
  const std::string cache = shared_dir() / "cache";
  const std::string cache_file = data::cache_file_path(cache, kImage);
  REQUIRE(fs::exists(cache_file));
  const auto written = fs::last_write_time(cache_file);

  // A copy of the data set whose PNG files are all garbage: only the cache can give the
  // images (--strict: an unreadable image is an error).
  test::TempDir dir("opt_cache");
  const std::string data = dir / "data";
  fs::copy(test::small_synth_dir(), data, fs::copy_options::recursive);
  int spoiled = 0;
  for (const auto& e : fs::recursive_directory_iterator(data))
    if (e.path().extension() == ".png") test::write_text(e.path().string(), "not a png"), ++spoiled;
  REQUIRE(spoiled > 0);
  const std::string b = dir / "b";
  train(with(base_args(data, b, 1), {"--cache", cache, "--strict"}));
  CHECK(fs::last_write_time(cache_file) == written);  // read, not rebuilt

  const Metrics ma = read_metrics(a), mb = read_metrics(b);
  REQUIRE(ma.size() == 1);
  REQUIRE(mb.size() == 1);
  for (const char* col : {"train_loss", "val_loss", "val_mean_auroc", "lr"})
    CHECK_MESSAGE(ma.at(0, col) == mb.at(0, col), col);
  const SafetensorsFile fa = read_safetensors(a + "/last.safetensors"), fb = read_safetensors(b + "/last.safetensors");
  REQUIRE(fa.entries.size() == fb.entries.size());
  int differing = 0;
  for (std::size_t i = 0; i < fa.entries.size(); ++i) {
    Tensor ta = fa.entries[i].tensor, tb = fb.entries[i].tensor;
    REQUIRE(ta.nbytes() == tb.nbytes());
    differing += std::memcmp(ta.raw_data(), tb.raw_data(), ta.nbytes()) != 0;
  }
  CHECK(differing == 0);
  // Without the cache the spoiled files are an error: the second run did read the cache.
  CHECK_THROWS_AS(train(with(base_args(data, dir / "c", 1), {"--strict"})), Error);
}

// The schedule as docs/training.md states it, over `epochs` epochs of `steps_per_epoch` steps:
// step: x0.1 after each third of the run, in whole epochs (ceil(epochs / 3) epochs a level).
ScheduleConfig documented_schedule(const std::string& kind, double lr, std::int64_t steps_per_epoch, int epochs) {
  ScheduleConfig sc;
  sc.kind = parse_schedule_kind(kind);
  sc.base_lr = lr;
  sc.total_steps = steps_per_epoch * epochs;
  sc.step_size = steps_per_epoch * ((epochs + 2) / 3);
  return sc;
}

// Each row's lr (that of the epoch's last step) against the schedule.
void check_lr_column(const Metrics& m, const ScheduleConfig& sc, std::int64_t steps_per_epoch) {
  for (std::size_t r = 0; r < m.size(); ++r) {
    CAPTURE(r);
    CHECK(m.at(r, "step") == static_cast<double>(steps_per_epoch * static_cast<std::int64_t>(r + 1)));
    CHECK(m.at(r, "lr") ==
          doctest::Approx(learning_rate(sc, static_cast<std::int64_t>(m.at(r, "step")) - 1)).epsilon(1e-12));
  }
}

TEST_CASE("train --schedule onecycle: the learning rate follows OneCycleLR over the whole run") {
  test::TempDir dir("opt_onecycle");
  const std::string run = dir / "run";
  const double lr = 0.002;
  const int epochs = 2;
  train(with(base_args(test::small_synth_dir(), run, epochs), {"--schedule", "onecycle", "--lr", "0.002"}));
  const Metrics m = read_metrics(run);
  REQUIRE(m.size() == static_cast<std::size_t>(epochs));
  const auto steps_per_epoch = static_cast<std::int64_t>(m.at(0, "step"));
  REQUIRE(steps_per_epoch == kLimit / kBatch);
  check_lr_column(m, documented_schedule("onecycle", lr, steps_per_epoch, epochs), steps_per_epoch);
  // Past the peak in epoch 1; the run ends at max_lr / div_factor / final_div_factor.
  CHECK(m.at(0, "lr") < lr);
  CHECK(m.at(0, "lr") > m.at(1, "lr"));
  CHECK(m.at(1, "lr") == doctest::Approx(lr / 25 / 1e4).epsilon(1e-9));
}

TEST_CASE("train --schedule step: x0.1 after each third of the run") {
  test::TempDir dir("opt_step");
  const std::string run = dir / "run";
  const double lr = 0.001;
  const int epochs = 4;  // thirds of 4 epochs: 2 epochs at lr, 2 at 0.1 lr (not 4 levels)
  train(with(base_args(test::small_synth_dir(), run, epochs), {"--schedule", "step", "--lr", "0.001"}));
  const Metrics m = read_metrics(run);
  REQUIRE(m.size() == static_cast<std::size_t>(epochs));
  const auto steps_per_epoch = static_cast<std::int64_t>(m.at(0, "step"));
  check_lr_column(m, documented_schedule("step", lr, steps_per_epoch, epochs), steps_per_epoch);
  CHECK(m.at(0, "lr") == doctest::Approx(lr).epsilon(1e-12));
  CHECK(m.at(1, "lr") == doctest::Approx(lr).epsilon(1e-12));
  CHECK(m.at(2, "lr") == doctest::Approx(lr * 0.1).epsilon(1e-12));
  CHECK(m.at(3, "lr") == doctest::Approx(lr * 0.1).epsilon(1e-12));
}

TEST_CASE("train --optimizer sgd: the loss goes down, and the run differs from adamw") {
  test::TempDir dir("opt_sgd");
  const std::string sgd = dir / "sgd";
  train(with(with(base_args(test::small_synth_dir(), sgd, 2), kEasy), {"--optimizer", "sgd", "--pos-weight", "none"}));
  const Metrics m = read_metrics(sgd);
  REQUIRE(m.size() == 2);
  MESSAGE("sgd train loss: " << m.at(0, "train_loss") << " -> " << m.at(1, "train_loss"));
  CHECK(m.at(1, "train_loss") < m.at(0, "train_loss"));
  const SafetensorsFile f_sgd = read_safetensors(sgd + "/last.safetensors");
  CHECK(f_sgd.find("optimizer.features.0.0.weight.momentum_buffer") != nullptr);
  CHECK(f_sgd.find("optimizer.features.0.0.weight.exp_avg") == nullptr);

  // AdamW with the same settings: the same weights and batches in epoch 1 (a constant lr),
  // so a different mean loss over it comes from the optimiser.
  const std::string adamw = shared_run("adamw");
  CHECK(read_safetensors(adamw + "/last.safetensors").find("optimizer.features.0.0.weight.exp_avg") != nullptr);
  MESSAGE("epoch 1 train loss: sgd " << m.at(0, "train_loss") << ", adamw " << read_metrics(adamw).at(0, "train_loss"));
  CHECK(read_metrics(adamw).at(0, "train_loss") != m.at(0, "train_loss"));
}

TEST_CASE("train --init-from F --freeze-backbone-epochs K: the file's backbone, heads left out, frozen for K epochs") {
  test::TempDir dir("opt_init_freeze");
  const std::string file = dir / "backbone.safetensors";
  write_safetensors(file, backbone_file_tensors());
  const SafetensorsFile backbone = read_safetensors(file);
  const SafetensorsFile init = initial_weights();  // the model's own initialisation (seed)

  // Epoch 1 (K = 1): the backbone stays the file's; the heads, absent from the file, train.
  const std::string run = dir / "run";
  train(with(base_args(test::small_synth_dir(), run, 1), {"--init-from", file, "--freeze-backbone-epochs", "1"}));
  const std::string log = read_text(run + "/log.txt");
  CHECK(log.find("init from " + file + ": loaded") != std::string::npos);
  CHECK(log.find("skipped 4 (") != std::string::npos);
  for (const char* head : {"classifier.1.weight", "classifier.1.bias", "fc.weight", "box_head.weight"})
    CHECK_MESSAGE(log.find(head) != std::string::npos, head, " not reported as skipped");
  CHECK(log.find("backbone frozen") != std::string::npos);
  const SafetensorsFile e1 = read_safetensors(run + "/last.safetensors");
  int backbone_total = 0, from_file = 0, unlike_seed = 0;
  for (const auto& name : parameter_names()) {
    if (is_head(name)) continue;
    ++backbone_total;
    CHECK_MESSAGE(values(e1, name) == values(backbone, name), name, " is not the file's value");
    from_file += values(e1, name) == values(backbone, name);
    unlike_seed += values(e1, name) != values(init, name);
  }
  CHECK(from_file == backbone_total);
  // The file's values, not the seed's (they differ for every convolution and linear layer;
  // the batch norm weights and biases start at 1 and 0 in both).
  CHECK(unlike_seed >= 20);
  const Changed heads = changed(init, e1);
  CHECK(heads.heads > 0);
  CHECK(values(e1, "cls_head.weight") != values(init, "cls_head.weight"));

  // Epoch 2 (past K): the backbone trains too.
  train(with(base_args(test::small_synth_dir(), run, 2), {"--freeze-backbone-epochs", "1", "--resume"}));
  const SafetensorsFile e2 = read_safetensors(run + "/last.safetensors");
  const Changed c2 = changed(e1, e2);
  MESSAGE("epoch 2: backbone " << c2.backbone << "/" << c2.backbone_total << " parameters changed");
  CHECK(c2.backbone == c2.backbone_total);
  CHECK(values(e2, "cls_head.weight") != values(e1, "cls_head.weight"));
}

TEST_CASE("train --init-from: a tensor of the wrong shape is a clear error naming it") {
  test::TempDir dir("opt_init_bad");
  auto tensors = backbone_file_tensors();
  for (auto& [name, t] : tensors)
    if (name == "features.0.0.weight") t = Tensor::zeros({32, 3, 5, 5});
  const std::string file = dir / "bad.safetensors";
  write_safetensors(file, tensors);
  CHECK_THROWS_WITH_AS(train(with(base_args(test::small_synth_dir(), dir / "run", 1), {"--init-from", file})),
                       doctest::Contains("'features.0.0.weight' has shape [32, 3, 5, 5] in the file but "
                                         "[32, 3, 3, 3] in the model"),
                       Error);
  CHECK_FALSE(fs::exists(dir / "run/last.safetensors"));
}

TEST_CASE("train --pos-weight none / auto: the loss uses pos_weight 1 or negatives/positives") {
  data::Report report(data::Report::Echo::Off);
  const data::Dataset ds = data::Dataset::load(test::small_synth_dir(), report);
  data::SplitOptions so;
  so.seed = kSeed;
  const data::Splits splits = data::make_splits(ds, so, report);
  std::vector<std::int64_t> train_idx = splits.train, val_idx = splits.val;  // --limit: the first images
  train_idx.resize(std::min<std::size_t>(train_idx.size(), kLimit));
  val_idx.resize(std::min<std::size_t>(val_idx.size(), kLimit));
  const auto pw_auto = data::positive_weights(data::count_classes(ds, train_idx));
  bool some_not_one = false;
  for (float w : pw_auto) some_not_one |= w != 1.f;
  REQUIRE(some_not_one);
  const Tensor ones = Tensor::full({data::kNumClasses}, 1.f);
  const Tensor computed = Tensor::from_vector(std::vector<float>(pw_auto.begin(), pw_auto.end()), {data::kNumClasses});

  // The validation loss of metrics.csv, recomputed from last.safetensors with either weight.
  data::LoaderOptions lo;
  lo.batch_size = kBatch;
  lo.image_size = kImage;
  lo.workers = 1;
  auto val_loss_with = [&](const std::string& run, const Tensor& pw) {
    auto model = make_model(kModel);
    NamedTensors state = model_state(*model);
    load_state(state, read_safetensors(run + "/last.safetensors"), model_options(), run);
    model->eval();
    data::DataLoader loader(ds, val_idx, lo, report);
    return run_inference(*model, loader, 0, pw, 1.f).loss;
  };
  // "adamw" was trained with --pos-weight none, "cached" with the default, auto.
  for (const std::string mode : {"none", "auto"}) {
    CAPTURE(mode);
    const std::string run = shared_run(mode == "none" ? "adamw" : "cached");
    const double logged = read_metrics(run).at(0, "val_loss");
    const double with_ones = val_loss_with(run, ones), with_computed = val_loss_with(run, computed);
    MESSAGE("val loss " << logged << ": with 1 " << with_ones << ", with neg/pos " << with_computed);
    CHECK(with_ones != doctest::Approx(with_computed).epsilon(1e-3));
    CHECK(logged == doctest::Approx(mode == "none" ? with_ones : with_computed).epsilon(1e-6));
  }
}

}  // TEST_SUITE
