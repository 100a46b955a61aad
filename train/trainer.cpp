// The training loop (see trainer.h).
#include "train/trainer.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <limits>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>
#include <omp.h>
#include <unistd.h>

#include "data/class_balance.h"
#include "data/dataset.h"
#include "data/labels.h"
#include "data/loader.h"
#include "data/splits.h"
#include "kernels/cxr_loss.h"
#include "kernels/execution.h"
#include "kernels/optimizer_step.h"
#include "kernels/reduce.h"
#include "tensor/backend.h"
#include "tensor/stream.h"
#include "layers/dropout.h"
#include "layers/init.h"
#include "models/model_factory.h"
#include "train/cli_args.h"
#include "train/evaluate.h"
#include "train/interrupt.h"
#include "train/metrics.h"
#include "train/progress.h"
#include "train/schedule.h"

namespace cxr {
namespace fs = std::filesystem;

NamedTensors model_state(CxrModel& model) {
  NamedTensors s;
  for (auto& [name, p] : model.named_parameters()) s.add(name, p->value);
  for (auto& [name, b] : model.named_buffers()) s.add(name, *b);
  return s;
}

namespace {

// --- dropout mask streams -----------------------------------------------------------------
struct MaskModules {
  std::vector<Dropout*> dropouts;
  std::vector<StochasticDepth*> depths;
};
void collect_masks(Module& m, MaskModules& out) {
  if (auto* d = dynamic_cast<Dropout*>(&m)) out.dropouts.push_back(d);
  if (auto* s = dynamic_cast<StochasticDepth*>(&m)) out.depths.push_back(s);
  for (auto& [name, child] : m.named_children()) collect_masks(*child, out);
}
std::uint64_t mask_seed(std::uint64_t seed, std::uint64_t k) {
  std::uint64_t z = seed * 0x9E3779B97F4A7C15ull + (k + 1) * 0xBF58476D1CE4E5B9ull;
  z ^= z >> 31;
  z *= 0x94D049BB133111EBull;
  return z ^ (z >> 29);
}
// Every mask module gets a seed derived from (seed, its position) and the given offsets.
void set_mask_streams(CxrModel& model, std::uint64_t seed, const std::vector<std::uint64_t>& offsets) {
  MaskModules mm;
  collect_masks(model, mm);
  std::size_t k = 0;
  for (auto* d : mm.dropouts) {
    d->set_rng(mask_seed(seed, k), k < offsets.size() ? offsets[k] : 0);
    ++k;
  }
  for (auto* s : mm.depths) {
    s->set_rng(mask_seed(seed, k), k < offsets.size() ? offsets[k] : 0);
    ++k;
  }
}
// Puts every mask counter on `device` (on a CUDA device they advance in device memory, so
// replays of a captured step draw fresh masks; the capture itself must not upload them).
void place_mask_counters(CxrModel& model, Device device) {
  MaskModules mm;
  collect_masks(model, mm);
  for (auto* d : mm.dropouts) d->place_counter(device);
  for (auto* s : mm.depths) s->place_counter(device);
}
// The counters of the next training forward (read back from the device: a synchronisation).
std::vector<std::uint64_t> mask_offsets(CxrModel& model) {
  MaskModules mm;
  collect_masks(model, mm);
  std::vector<std::uint64_t> o;
  for (auto* d : mm.dropouts) o.push_back(d->offset());
  for (auto* s : mm.depths) o.push_back(s->offset());
  return o;
}

// --- optimiser ----------------------------------------------------------------------------
struct Optimizer {
  bool adamw = true;
  double weight_decay = 0;
  std::vector<std::string> names;
  std::vector<Parameter*> params;
  std::vector<Tensor> m, v;              // adamw: exp_avg, exp_avg_sq; sgd: momentum (m)
  std::vector<std::int64_t> steps;       // per parameter (torch keeps a step per param)

  void init(CxrModel& model, bool use_adamw, double wd) {
    adamw = use_adamw;
    weight_decay = wd;
    for (auto& [name, p] : model.named_parameters()) {
      names.push_back(name);
      params.push_back(p);
      m.push_back(Tensor::zeros(p->value.shape(), DType::F32, p->value.device()));
      if (adamw) v.push_back(Tensor::zeros(p->value.shape(), DType::F32, p->value.device()));
      steps.push_back(0);
    }
  }

  // The trainable parameters that have a gradient.
  std::vector<std::size_t> active() const {
    std::vector<std::size_t> a;
    for (std::size_t i = 0; i < params.size(); ++i)
      if (params[i]->trainable && params[i]->grad.defined()) a.push_back(i);
    return a;
  }
  // The global gradient norm of `active` in one fused pass on the gradients' device, with
  // the clip coefficient when clipping (max_norm 1 otherwise: the coefficient is unused).
  GradNorm global_norm(const std::vector<std::size_t>& active, double grad_clip) const {
    std::vector<Tensor> g;
    for (auto i : active) g.push_back(params[i]->grad);
    return grad_norm(g, grad_clip > 0 ? static_cast<float>(grad_clip) : 1.f);
  }

  // One step over `active`; `scale`: the clip coefficient (undefined: no clipping).
  void step(double lr, const std::vector<std::size_t>& active, const Tensor& scale) {
    if (active.empty()) return;
    for (auto i : active) ++steps[i];
    // Groups of the same (decay, step): one optimiser call each.
    std::vector<bool> done(active.size(), false);
    for (std::size_t a = 0; a < active.size(); ++a) {
      if (done[a]) continue;
      const bool decay = params[active[a]]->weight_decay;
      const std::int64_t st = steps[active[a]];
      std::vector<Tensor> p, g, mm, vv;
      for (std::size_t b = a; b < active.size(); ++b) {
        const std::size_t i = active[b];
        if (done[b] || params[i]->weight_decay != decay || steps[i] != st) continue;
        done[b] = true;
        p.push_back(params[i]->value);
        g.push_back(params[i]->grad);
        mm.push_back(m[i]);
        if (adamw) vv.push_back(v[i]);
      }
      const float wd = decay ? static_cast<float>(weight_decay) : 0.f;
      if (adamw) {
        AdamWOptions o;
        o.lr = static_cast<float>(lr);
        o.weight_decay = wd;
        adamw_step(p, g, mm, vv, st, o, scale);
      } else {
        SgdOptions o;
        o.lr = static_cast<float>(lr);
        o.momentum = 0.9f;
        o.weight_decay = wd;
        sgd_step(p, g, mm, st, o, scale);
      }
    }
  }

  void add_state(NamedTensors& s) const {
    for (std::size_t i = 0; i < names.size(); ++i) {
      s.add(kOptimizerPrefix + names[i] + (adamw ? ".exp_avg" : ".momentum_buffer"), m[i]);
      if (adamw) s.add(kOptimizerPrefix + names[i] + ".exp_avg_sq", v[i]);
    }
  }
  void load_state(const SafetensorsFile& f, const std::string& what) {
    for (std::size_t i = 0; i < names.size(); ++i) {
      const std::string base = kOptimizerPrefix + names[i];
      const Tensor& a = f.at(base + (adamw ? ".exp_avg" : ".momentum_buffer"));
      CXR_CHECK(a.shape() == m[i].shape(), what, ": optimiser state of ", names[i], " has shape ",
                shape_str(a.shape()), ", expected ", shape_str(m[i].shape()));
      m[i].copy_(a);
      if (adamw) v[i].copy_(f.at(base + ".exp_avg_sq"));
    }
  }
};

// --- helpers ---------------------------------------------------------------------------------
std::string fmt(double v, int prec = 4) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(prec) << v;
  return os.str();
}
std::string exact(double v) {
  std::ostringstream os;
  os << std::setprecision(17) << v;
  return os.str();
}
double parse_double_meta(const CheckpointMeta& m, const std::string& key, double fallback) {
  auto it = m.extra.find(key);
  if (it == m.extra.end()) return fallback;
  try {
    return std::stod(it->second);
  } catch (...) {
    return fallback;
  }
}

// Sets the OpenMP thread count of this thread for the scope.
class ThreadScope {
 public:
  explicit ThreadScope(int threads) : saved_(omp_get_max_threads()) {
    if (threads > 0) omp_set_num_threads(threads);
  }
  ~ThreadScope() { omp_set_num_threads(saved_); }

 private:
  int saved_;
};

class Logger {
 public:
  Logger(const std::string& path, bool append) : path_(path), file_(path, append ? std::ios::app : std::ios::trunc) {
    CXR_CHECK(file_, "cannot open ", path, " for writing: ", std::strerror(errno));
  }
  void line(const std::string& text) {
    file_ << text << "\n" << std::flush;
    CXR_CHECK(file_, "cannot write ", path_, ": ", std::strerror(errno));
  }

 private:
  std::string path_;
  std::ofstream file_;
};

// Settings that a resumed run must share with the run it continues.
std::string resume_settings(const TrainOptions& o) {
  nlohmann::json j;
  j["model"] = o.model;
  j["image_size"] = o.image_size;
  j["batch_size"] = o.batch_size;
  j["lr"] = o.lr;
  j["optimizer"] = o.optimizer;
  j["weight_decay"] = o.weight_decay;
  j["schedule"] = o.schedule;
  j["warmup"] = o.warmup_steps;
  j["seed"] = o.seed;
  j["pos_weight"] = o.pos_weight_auto ? "auto" : "none";
  j["box_loss_weight"] = o.box_loss_weight;
  j["limit"] = o.limit;
  j["freeze_backbone_epochs"] = o.freeze_backbone_epochs;
  j["augment"] = o.augment;
  j["val_fraction"] = o.val_fraction;
  j["grad_clip"] = o.grad_clip;
  return j.dump();
}

std::vector<std::int64_t> limited(std::vector<std::int64_t> v, std::int64_t limit) {
  if (limit > 0 && static_cast<std::int64_t>(v.size()) > limit) v.resize(static_cast<std::size_t>(limit));
  return v;
}

// --- non-finite guard (docs/reliability.md) ---------------------------------------------------
// CPU: the common path costs one grad_norm pass and one read-back per step
// (Optimizer::global_norm); which parameter is at fault is looked for only after the check
// failed. CUDA: the check runs on the device (DeviceStep below) and the host learns the result
// one step later.
std::string list_parameters(const std::vector<std::string>& bad) {
  if (bad.empty()) return "";
  std::string s = bad.front();
  if (bad.size() > 1) s += " (and " + std::to_string(bad.size() - 1) + " more parameters)";
  return s;
}

std::string nonfinite_gradients(const Optimizer& optim, const std::vector<std::size_t>& active) {
  std::vector<std::string> bad;
  for (auto i : active) {
    const double n = grad_norm({optim.params[i]->grad}, 1.f).norm.item();
    if (!std::isfinite(n)) bad.push_back(optim.names[i]);
  }
  return list_parameters(bad);
}

// `which`: the parameters with a non-finite gradient (computed only when the norm is not finite).
std::string describe_nonfinite(std::int64_t step, int epoch, std::int64_t batch_number,
                               const std::vector<std::string>& names, double loss, double norm,
                               const std::function<std::string()>& which_parameters) {
  std::ostringstream os;
  os << "non-finite values at step " << step << " (epoch " << epoch << ", batch " << batch_number + 1 << "): ";
  if (!std::isfinite(loss)) os << "the training loss is " << loss;
  if (!std::isfinite(norm)) {
    const std::string which = which_parameters();
    os << (std::isfinite(loss) ? "" : "; ") << "the gradient norm is " << norm;
    if (!which.empty()) os << ", first in the gradient of " << which;
  }
  os << "; images of the batch: ";
  for (std::size_t i = 0; i < names.size() && i < 4; ++i) os << (i ? ", " : "") << names[i];
  if (names.size() > 4) os << " and " << names.size() - 4 << " more";
  return os.str();
}

// Batch-norm running statistics before a step, so that a skipped step leaves no trace.
struct BufferSnapshot {
  std::vector<Tensor*> live;
  std::vector<Tensor> saved;
  void save(CxrModel& model) {
    if (live.empty())
      for (auto& [name, b] : model.named_buffers()) {
        live.push_back(b);
        saved.push_back(b->clone());
      }
    else
      for (std::size_t i = 0; i < live.size(); ++i) saved[i].copy_(*live[i]);
  }
  void restore() {
    for (std::size_t i = 0; i < live.size(); ++i) live[i]->copy_(saved[i]);
  }
};

// CUDA: the device side of the step without host synchronisation (train_model's enqueue_step):
// the optimiser's device scalars, the status [loss, norm, flag, latch], the batch-norm buffers
// and their copy (skip_nonfinite), and kSlots pinned read-back slots with an event each.
struct DeviceStep {
  static constexpr int kSlots = 2;
  DeviceStepScalars scalars;
  Tensor status;
  std::vector<Tensor> bn_live, bn_saved;  // handles sharing the model's buffers; their copies
  Tensor pinned;                          // (kSlots, 4) page-locked host memory
  std::vector<std::unique_ptr<Event>> events;

  DeviceStep(const DeviceStepScalars::Config& c, CxrModel& model, const Optimizer& optim, Device device,
             bool skip_nonfinite)
      : scalars(c, static_cast<std::int64_t>(optim.params.size()), device),
        status(make_step_status(device)),
        pinned(Tensor::empty_pinned({kSlots, 4})) {
    if (skip_nonfinite)
      for (auto& [name, b] : model.named_buffers()) {  // once: named_buffers() may synchronise
        bn_live.push_back(*b);
        bn_saved.push_back(b->clone());
      }
    for (int i = 0; i < kSlots; ++i) events.push_back(std::make_unique<Event>());
  }
  // Enqueues the copy of the status into slot `slot` and records its event (no wait).
  void read_back(int slot) {
    backend::copy_async(pinned.f32() + 4 * slot, status.f32(), 4 * sizeof(float), backend::CopyKind::DeviceToHost,
                        Stream::compute().handle());
    events[static_cast<std::size_t>(slot)]->record(Stream::compute());
  }
  // Waits for slot `slot` (the only host synchronisation of a step) and returns its 4 floats.
  const float* wait(int slot) {
    events[static_cast<std::size_t>(slot)]->synchronize();
    return pinned.f32() + 4 * slot;
  }
};

// Where in an epoch a run was saved: batches done, and the partial epoch's loss sums so that
// the resumed epoch reports the same train loss. Stored under "resume.batch" etc.
struct EpochPosition {
  std::int64_t batch = 0;  // the next batch of epoch `meta.epoch` (0-based); 0: the epoch start
  double loss_sum = 0;
  std::int64_t images = 0, skipped = 0;
};

EpochPosition read_resume_position(const CheckpointMeta& m) {
  EpochPosition p;
  auto get = [&](const char* key) -> const std::string* {
    auto it = m.extra.find(key);
    return it == m.extra.end() ? nullptr : &it->second;
  };
  if (auto* v = get("resume.batch")) p.batch = std::stoll(*v);
  if (auto* v = get("resume.epoch_loss_sum")) p.loss_sum = std::stod(*v);
  if (auto* v = get("resume.epoch_images")) p.images = std::stoll(*v);
  if (auto* v = get("resume.epoch_skipped")) p.skipped = std::stoll(*v);
  return p;
}

}  // namespace

int train_exit_code(const TrainResult& r) { return r.interrupted_by != 0 ? 128 + r.interrupted_by : 0; }

void validate_train_options(const TrainOptions& o) {
  using cli::UsageError;
  if (o.data_dir.empty()) throw UsageError("--data is required");
  if (o.out_dir.empty()) throw UsageError("--out is required");
  if (o.image_size < 16 || o.image_size > 4096)
    throw UsageError("--image-size must be in [16, 4096], got " + std::to_string(o.image_size));
  if (o.epochs < 1) throw UsageError("--epochs must be >= 1, got " + std::to_string(o.epochs));
  if (o.batch_size < 1) throw UsageError("--batch-size must be >= 1, got " + std::to_string(o.batch_size));
  if (!(o.lr > 0) || !std::isfinite(o.lr)) throw UsageError("--lr must be a positive number, got " + exact(o.lr));
  if (o.optimizer != "adamw" && o.optimizer != "sgd")
    throw UsageError("--optimizer must be adamw or sgd, got '" + o.optimizer + "'");
  if (!(o.weight_decay >= 0)) throw UsageError("--weight-decay must be >= 0");
  if (o.schedule != "cosine" && o.schedule != "onecycle" && o.schedule != "step" && o.schedule != "constant")
    throw UsageError("--schedule must be cosine, onecycle, step or constant, got '" + o.schedule + "'");
  if (o.warmup_steps < 0) throw UsageError("--warmup must be >= 0");
  if (o.workers < 1) throw UsageError("--workers must be >= 1");
  if (o.freeze_backbone_epochs < 0) throw UsageError("--freeze-backbone-epochs must be >= 0");
  if (!(o.box_loss_weight >= 0)) throw UsageError("--box-loss-weight must be >= 0");
  if (o.limit < 0) throw UsageError("--limit must be >= 0");
  if (o.patience < 0) throw UsageError("--patience must be >= 0");
  if (o.threads < 0) throw UsageError("--threads must be >= 0");
  if (o.cuda_graph && o.device != Device::CUDA) throw UsageError("--cuda-graph needs --device cuda");
  const auto names = model_names();
  if (std::find(names.begin(), names.end(), o.model) == names.end()) {
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    throw UsageError("--model: unknown model '" + o.model + "' (known: " + list + ")");
  }
}

float train_step_for_test(CxrModel& model, const Tensor& images, const Tensor& labels, const Tensor& boxes,
                          const Tensor& box_mask, float lr, std::int64_t step, std::vector<Tensor>& exp_avg,
                          std::vector<Tensor>& exp_avg_sq) {
  model.train();
  model.set_input_grad(false);
  const Tensor pw = Tensor::full({labels.size(1)}, 1.f, images.device());
  HeadOutputs out = model.forward_heads(images);
  CxrLoss l = cxr_loss(out.logits, labels, pw, out.boxes, boxes, box_mask, 1.f);
  model.zero_grad();
  model.backward_heads(l.dz, l.db);
  std::vector<Tensor> p, g;
  for (auto& [name, prm] : model.named_parameters()) {
    p.push_back(prm->value);
    g.push_back(prm->grad);
  }
  if (exp_avg.empty())
    for (auto& t : p) {
      exp_avg.push_back(Tensor::zeros(t.shape(), DType::F32, t.device()));
      exp_avg_sq.push_back(Tensor::zeros(t.shape(), DType::F32, t.device()));
    }
  AdamWOptions o;
  o.lr = lr;
  o.weight_decay = 0.f;
  adamw_step(p, g, exp_avg, exp_avg_sq, step, o);
  return l.loss.item();
}

TrainResult train_model(const TrainOptions& opt, std::ostream& out) {
  validate_train_options(opt);
  InterruptHandlers interrupts;
  ThreadScope threads(opt.threads);
  const fs::path run(opt.out_dir);
  const std::string last_path = (run / "last.safetensors").string();
  const std::string best_path = (run / "best.safetensors").string();
  if (opt.resume) {
    CXR_CHECK(fs::exists(last_path), "--resume: ", last_path, " does not exist (nothing to resume)");
  } else {
    CXR_CHECK(!fs::exists(last_path), opt.out_dir, " already holds a run (", last_path,
              "): pass --resume to continue it or choose another --out");
  }
  {
    std::error_code ec;
    fs::create_directories(run, ec);
    CXR_CHECK(!ec, "cannot create the run folder ", opt.out_dir, ": ", ec.message());
  }
  Logger log((run / "log.txt").string(), opt.resume);
  Progress progress(out, {.mode = opt.quiet ? ProgressMode::quiet : ProgressMode::automatic});
  auto say = [&](const std::string& s) {
    progress.message(s);
    log.line(s);
  };
  if (!opt.command_line.empty()) log.line("command: " + opt.command_line);

  // Data.
  data::Report report;
  const data::Dataset ds = data::Dataset::load(opt.data_dir, report);
  data::SplitOptions so;
  so.seed = opt.seed;
  so.val_fraction = opt.val_fraction;
  const data::Splits splits = data::make_splits(ds, so, report);
  const auto train_idx = limited(splits.train, opt.limit);
  const auto val_idx = limited(splits.val, opt.limit);
  CXR_CHECK(!train_idx.empty(), opt.data_dir, ": the training split is empty");
  CXR_CHECK(!val_idx.empty(), opt.data_dir, ": the validation split is empty (more patients or a larger "
                                            "validation fraction are needed)");
  say("data: " + std::to_string(ds.size()) + " images (" + splits.source + "), train " +
      std::to_string(train_idx.size()) + ", val " + std::to_string(val_idx.size()) + ", test " +
      std::to_string(splits.test.size()));

  data::LoaderOptions lo;
  lo.batch_size = opt.batch_size;
  lo.image_size = opt.image_size;
  lo.workers = opt.workers;
  lo.seed = opt.seed;
  lo.strict = opt.strict;
  lo.device = opt.device;
  lo.cache_dir = opt.cache_dir;
  data::LoaderOptions train_lo = lo;
  train_lo.augment = opt.augment;
  train_lo.shuffle = true;
  // A last batch of one image would make BatchNorm's batch statistics degenerate.
  train_lo.drop_last = static_cast<std::int64_t>(train_idx.size()) > opt.batch_size;
  data::DataLoader train_loader(ds, train_idx, train_lo, report);
  data::DataLoader val_loader(ds, val_idx, lo, report);

  // Class balance.
  std::array<float, data::kNumClasses> pw{};
  pw.fill(1.f);
  if (opt.pos_weight_auto) pw = data::positive_weights(data::count_classes(ds, train_idx));
  const Tensor pos_weight =
      Tensor::from_vector(std::vector<float>(pw.begin(), pw.end()), {data::kNumClasses}).to(opt.device);

  // Model: every random choice from the seed.
  manual_seed(opt.seed);
  std::unique_ptr<CxrModel> model = make_model(opt.model, data::kNumClasses);
  set_mask_streams(*model, opt.seed, {});
  if (!opt.init_from.empty() && !opt.resume) {
    const SafetensorsFile f = read_safetensors(opt.init_from);
    NamedTensors state = model_state(*model);
    const bool whole = f.find("cls_head.weight") != nullptr;
    const LoadReport r = load_state(state, f, whole ? model_options() : backbone_options(), opt.init_from);
    say("init from " + opt.init_from + ": " + r.summary());
  }
  model->to(opt.device);
  model->set_input_grad(false);
  place_mask_counters(*model, opt.device);

  Optimizer optim;
  optim.init(*model, opt.optimizer == "adamw", opt.weight_decay);

  // Schedule.
  const std::int64_t steps_per_epoch = std::max<std::int64_t>(1, train_loader.batches_per_epoch());
  ScheduleConfig sc;
  sc.kind = parse_schedule_kind(opt.schedule);
  sc.base_lr = opt.lr;
  sc.total_steps = steps_per_epoch * opt.epochs;
  sc.warmup_steps = std::min<std::int64_t>(opt.warmup_steps, std::max<std::int64_t>(0, sc.total_steps - 1));
  sc.step_size = steps_per_epoch * ((opt.epochs + 2) / 3);  // x0.1 after each third of the run (whole epochs)
  sc.min_lr = 0.0;
  validate_schedule(sc);

  // Run state.
  std::int64_t step = 0;
  int start_epoch = 0, best_epoch = 0, bad_epochs = 0;
  EpochPosition resume_pos;  // mid-epoch resumption (after an interrupt)
  double best_auc = -std::numeric_limits<double>::infinity();
  if (opt.resume) {
    Checkpoint ck = load_checkpoint(last_path);
    auto setting = ck.meta.extra.find("resume.settings");
    CXR_CHECK(setting != ck.meta.extra.end(), last_path, " has no resume state");
    if (setting->second != resume_settings(opt))
      throw cli::UsageError("--resume: the settings differ from those of the run in " + opt.out_dir + ": " +
                            setting->second + " vs " + resume_settings(opt));
    NamedTensors state = model_state(*model);
    load_state(state, ck.file, model_options(), last_path);
    optim.load_state(ck.file, last_path);
    const auto steps = nlohmann::json::parse(ck.meta.extra.at("resume.param_steps")).get<std::vector<std::int64_t>>();
    CXR_CHECK(steps.size() == optim.steps.size(), last_path, ": optimiser step counts do not match the model");
    optim.steps = steps;
    set_mask_streams(*model, opt.seed,
                     nlohmann::json::parse(ck.meta.extra.at("resume.mask_offsets")).get<std::vector<std::uint64_t>>());
    step = ck.meta.step;
    start_epoch = static_cast<int>(ck.meta.epoch);
    resume_pos = read_resume_position(ck.meta);
    best_auc = parse_double_meta(ck.meta, "resume.best_auc", best_auc);
    best_epoch = static_cast<int>(parse_double_meta(ck.meta, "resume.best_epoch", 0));
    bad_epochs = static_cast<int>(parse_double_meta(ck.meta, "resume.bad_epochs", 0));
    say("resumed " + opt.out_dir + " after epoch " + std::to_string(start_epoch) +
        (resume_pos.batch > 0 ? " and " + std::to_string(resume_pos.batch) + " batches of epoch " +
                                    std::to_string(start_epoch + 1)
                              : std::string()) +
        " (step " + std::to_string(step) + ", best val AUROC " + fmt(best_auc) + ")");
  }
  say("model " + opt.model + " (" + std::to_string(model->parameter_count()) + " parameters) on " +
      device_name(opt.device) + " (" + std::to_string(omp_get_max_threads()) + " compute threads), " + opt.optimizer + ", " + describe_schedule(sc));

  // metrics.csv
  const std::string csv_path = (run / "metrics.csv").string();
  const bool csv_new = !(opt.resume && fs::exists(csv_path));
  std::ofstream csv(csv_path, csv_new ? std::ios::trunc : std::ios::app);
  CXR_CHECK(csv, "cannot open ", csv_path, " for writing");
  if (csv_new) {
    csv << "epoch,step,lr,train_loss,val_loss,val_mean_auroc,val_mean_ap,images_per_s,seconds";
    for (auto n : data::kClassNames) csv << ",auroc_" << n;
    csv << "\n" << std::flush;
  }
  StepLog step_log((run / "metrics.jsonl").string(), /*append=*/!csv_new);  // per step (progress.h)

  std::vector<std::string> class_names(data::kClassNames.begin(), data::kClassNames.end());
  CheckpointMeta base_meta;
  base_meta.architecture = opt.model;
  base_meta.image_size = opt.image_size;
  base_meta.class_names = class_names;
  base_meta.mean.assign(lo.normalize.mean.begin(), lo.normalize.mean.end());
  base_meta.std.assign(lo.normalize.std.begin(), lo.normalize.std.end());
  base_meta.extra["split_seed"] = std::to_string(opt.seed);
  base_meta.extra["val_fraction"] = exact(opt.val_fraction);
  if (!opt.command_line.empty()) base_meta.extra["command"] = opt.command_line;
  // The math the run trained with (--precision, --tf32); the weights are fp32 either way.
  base_meta.extra["precision"] = autocast_bf16() ? "bf16" : "fp32";
  base_meta.extra["tf32"] = allow_tf32() ? "1" : "0";

  TrainResult result;
  result.last_epoch = start_epoch;
  if (start_epoch >= opt.epochs) {
    say("nothing to do: the run has " + std::to_string(start_epoch) + " epochs (--epochs " +
        std::to_string(opt.epochs) + ")");
  }
  const float box_w = static_cast<float>(opt.box_loss_weight);

  // The resume state of last.safetensors (shared by the epoch-end and the interrupt saves).
  auto add_resume_state = [&](CheckpointMeta& meta) {
    meta.extra["resume.settings"] = resume_settings(opt);
    meta.extra["resume.param_steps"] = nlohmann::json(optim.steps).dump();
    meta.extra["resume.mask_offsets"] = nlohmann::json(mask_offsets(*model)).dump();
    meta.extra["resume.best_auc"] = exact(best_auc);
    meta.extra["resume.best_epoch"] = std::to_string(best_epoch);
    meta.extra["resume.bad_epochs"] = std::to_string(bad_epochs);
    meta.extra["resume.optimizer"] = opt.optimizer;
  };

  // One training step with the non-finite guard (docs/reliability.md): forward, loss, backward,
  // the global gradient norm (one fused pass) and the loss read back, then the optimiser step
  // only if both are finite. Otherwise an error naming the step and the parameter, or with
  // skip_nonfinite a skipped step: no update, batch-norm statistics restored.
  // This is the CPU form; on CUDA the same step runs without a host synchronisation
  // (enqueue_step / finish_step below).
  struct StepOutcome {
    bool applied = true;
    double loss = 0;
  };
  BufferSnapshot snapshot;
  auto stop_error = [&](const std::string& what, const std::string& how) {
    say(what);
    CXR_FAIL(what, ". Training stopped ", how, "; ",
             fs::exists(last_path) ? last_path + " (the last good checkpoint) was left as it was"
                                   : std::string("no checkpoint was written yet"),
             ". Lower --lr, set --grad-clip, check those images, or pass --skip-nonfinite to skip such steps");
  };
  auto guarded_step = [&](const data::Batch& b, double lr, std::int64_t this_step, int epoch) -> StepOutcome {
    if (opt.hooks.before_forward) opt.hooks.before_forward(this_step, b);
    if (opt.skip_nonfinite) snapshot.save(*model);
    HeadOutputs o = model->forward_heads(b.images);
    CxrLoss l = cxr_loss(o.logits, b.labels, pos_weight, o.boxes, b.boxes, b.box_mask, box_w);
    model->zero_grad();
    model->backward_heads(l.dz, l.db);
    if (opt.hooks.after_backward) opt.hooks.after_backward(this_step, *model);
    const std::vector<std::size_t> active = optim.active();
    GradNorm gn;
    if (!active.empty()) gn = optim.global_norm(active, opt.grad_clip);
    const double lv = l.loss.item();
    const double norm = gn.norm.defined() ? static_cast<double>(gn.norm.item()) : 0.0;
    if (std::isfinite(lv) && std::isfinite(norm)) {
      optim.step(lr, active, opt.grad_clip > 0 ? gn.clip_coef : Tensor());
      return {true, lv};
    }
    const std::string what = describe_nonfinite(this_step, epoch, b.number, b.names, lv, norm,
                                                [&] { return nonfinite_gradients(optim, active); });
    if (!opt.skip_nonfinite) stop_error(what, "without an update");
    snapshot.restore();
    say("skipped " + what + " (--skip-nonfinite)");
    return {false, lv};
  };

  // --- CUDA: the step without host synchronisation (docs/reliability.md, "On the GPU") -----
  // enqueue_step launches forward, loss, backward, the fused norm, the device status
  // [loss, norm, flag], the guarded batch-norm restore and the guarded optimiser step, then an
  // asynchronous copy of the status into pinned memory and an event; it never waits. The host
  // reads step t's status (finish_step) only after step t+1 has been enqueued, or before a
  // checkpoint, validation or exit (drain).
  const bool on_device = opt.device == Device::CUDA;
  std::unique_ptr<DeviceStep> dstep;
  if (on_device) {
    DeviceStepScalars::Config dc;
    dc.adamw = optim.adamw;
    dc.adam.weight_decay = static_cast<float>(opt.weight_decay);
    dc.sgd.momentum = 0.9f;
    dc.sgd.weight_decay = static_cast<float>(opt.weight_decay);
    for (std::int64_t s = 0; s < sc.total_steps; ++s) dc.lr_per_step.push_back(learning_rate(sc, s));
    dc.max_count = sc.total_steps;
    dstep = std::make_unique<DeviceStep>(dc, *model, optim, opt.device, opt.skip_nonfinite);
    dstep->scalars.set_state(step, optim.steps);
  }
  struct PendingStep {
    std::int64_t step = 0, k = 0, batch_number = 0, size = 0;
    int epoch = 0, slot = 0;
    double lr = 0;
    std::vector<std::string> names;   // the batch's images, for the message of a bad step
    std::vector<std::size_t> active;  // the parameters the step updates
  };
  std::int64_t enqueued = 0;
  // The device work of one step on (images, labels, boxes, mask): capturable, no host wait.
  auto device_step = [&](const Tensor& images, const Tensor& labels, const Tensor& boxes, const Tensor& mask,
                         std::int64_t this_step, bool hooks, std::vector<std::size_t>& active) {
    DeviceStep& d = *dstep;
    if (opt.skip_nonfinite) copy_tensors_(d.bn_saved, d.bn_live);  // device to device, one launch
    HeadOutputs o = model->forward_heads(images);
    CxrLoss l = cxr_loss(o.logits, labels, pos_weight, o.boxes, boxes, mask, box_w);
    model->zero_grad();
    model->backward_heads(l.dz, l.db);
    if (hooks && opt.hooks.after_backward) opt.hooks.after_backward(this_step, *model);
    active = optim.active();
    std::vector<int> index;
    std::vector<bool> decay;
    std::vector<Tensor> pv, g, mm, vv;
    for (auto i : active) {
      index.push_back(static_cast<int>(i));
      decay.push_back(optim.params[i]->weight_decay);
      pv.push_back(optim.params[i]->value);
      g.push_back(optim.params[i]->grad);
      mm.push_back(optim.m[i]);
      if (optim.adamw) vv.push_back(optim.v[i]);
    }
    d.scalars.set_active(index, decay);  // an upload only when the trainable set changed
    GradNorm gn;
    if (!active.empty()) gn = optim.global_norm(active, opt.grad_clip);
    step_status_(d.status, l.loss, gn.norm, /*latch=*/!opt.skip_nonfinite);
    d.scalars.mark_nonfinite(g, d.status);  // only does work on a bad step
    if (opt.skip_nonfinite) restore_if_skipped_(d.bn_live, d.bn_saved, d.status);
    const Tensor scale = opt.grad_clip > 0 && gn.clip_coef.defined() ? gn.clip_coef : Tensor();
    if (optim.adamw)
      d.scalars.adamw_step(pv, g, mm, vv, scale, d.status);
    else
      d.scalars.sgd_step(pv, g, mm, scale, d.status);
  };
  // --cuda-graph: static batch buffers, the captured step, and what it was captured for.
  struct GraphStep {
    std::unique_ptr<Graph> graph;
    Tensor images, labels, boxes, mask;
    std::vector<std::size_t> active;  // the trainable set it updates
    int warm = 0;                     // eager steps since the last (re)start
    std::int64_t replays = 0, captures = 0, uncounted_forwards = 0;
  } gs;
  auto copy_into = [](Tensor& dst, const Tensor& src) {
    if (!dst.defined() || dst.shape() != src.shape()) dst = Tensor::empty(src.shape(), src.dtype(), src.device());
    backend::copy_async(dst.raw_data(), src.raw_data(), src.nbytes(), backend::CopyKind::DeviceToDevice,
                        Stream::compute().handle());
  };
  auto enqueue_step = [&](const data::Batch& b, double lr, std::int64_t this_step, int epoch,
                          std::int64_t k) -> PendingStep {
    if (opt.hooks.before_forward) opt.hooks.before_forward(this_step, b);
    PendingStep p;
    const bool full = b.size() == opt.batch_size;
    if (!opt.cuda_graph || !full) {
      device_step(b.images, b.labels, b.boxes, b.box_mask, this_step, true, p.active);
    } else {
      const std::vector<std::size_t> trainable = [&] {
        std::vector<std::size_t> a;
        for (std::size_t i = 0; i < optim.params.size(); ++i)
          if (optim.params[i]->trainable) a.push_back(i);
        return a;
      }();
      if (gs.graph && (trainable != gs.active || gs.images.shape() != b.images.shape())) {
        gs.graph.reset();  // recapture after a new warm-up (its pool goes back to the cache)
        gs.warm = 0;
      }
      copy_into(gs.images, b.images);
      copy_into(gs.labels, b.labels);
      copy_into(gs.boxes, b.boxes);
      copy_into(gs.mask, b.box_mask);
      if (gs.graph) {
        gs.graph->replay();
        ++gs.replays;
        ++gs.uncounted_forwards;
        p.active = gs.active;
      } else if (gs.warm < kGraphWarmupSteps) {
        device_step(gs.images, gs.labels, gs.boxes, gs.mask, this_step, true, p.active);
        ++gs.warm;
      } else {
        auto g = std::make_unique<Graph>();
        g->begin_capture(Stream::compute());
        try {
          device_step(gs.images, gs.labels, gs.boxes, gs.mask, this_step, false, p.active);
        } catch (...) {
          try {
            g->end_capture();
          } catch (const Error&) {
          }
          throw;
        }
        g->end_capture();
        CXR_CHECK(p.active == trainable, "--cuda-graph: the captured step updates other parameters than the "
                                         "trainable ones");
        gs.graph = std::move(g);
        gs.active = p.active;
        ++gs.captures;
        gs.graph->replay();  // capturing ran nothing: this step runs now
        ++gs.replays;
        log.line("--cuda-graph: captured the training step at step " + std::to_string(this_step) +
                 " (batch shape " + shape_str(b.images.shape()) + "); replayed from then on");
      }
    }
    p.slot = static_cast<int>(enqueued++ % DeviceStep::kSlots);
    dstep->read_back(p.slot);
    p.step = this_step;
    p.k = k;
    p.epoch = epoch;
    p.lr = lr;
    p.batch_number = b.number;
    p.size = b.size();
    p.names = b.names;
    return p;
  };
  // BatchNorm2d counts its forward passes on the host; a replay runs them without the host:
  // add the replays to num_batches_tracked (before anything reads or saves the buffers).
  auto account_replays = [&] {
    if (gs.uncounted_forwards == 0) return;
    for (auto& [name, buf] : model->named_buffers()) {
      if (name.size() < 19 || name.compare(name.size() - 19, 19, "num_batches_tracked") != 0) continue;
      Tensor h = buf->cpu();
      h.data<std::int32_t>()[0] += static_cast<std::int32_t>(gs.uncounted_forwards);
      buf->copy_(h);
    }
    gs.uncounted_forwards = 0;
  };
  // Waits for step p's status (normally long done) and applies it on the host.
  auto finish_step = [&](const PendingStep& p) -> StepOutcome {
    const float* h = dstep->wait(p.slot);
    const double lv = h[0], norm = h[1];
    if (h[2] != 0.f) {
      for (auto i : p.active) ++optim.steps[i];
      return {true, lv};
    }
    const std::string what = describe_nonfinite(p.step, p.epoch, p.batch_number, p.names, lv, norm, [&] {
      std::vector<std::string> bad;
      for (int k : dstep->scalars.nonfinite_of_step(p.step)) bad.push_back(optim.names[p.active[static_cast<std::size_t>(k)]]);
      return list_parameters(bad);
    });
    if (!opt.skip_nonfinite)
      stop_error(what, "at step " + std::to_string(std::max(step, p.step)) + " (the host learns of a step one step late) without an update from step " +
                           std::to_string(p.step) + " or after");
    say("skipped " + what + " (--skip-nonfinite)");
    return {false, lv};
  };

  // last.safetensors: the model, the optimiser state and what --resume needs.
  auto save_last = [&](CheckpointMeta meta) {
    NamedTensors full = model_state(*model);
    optim.add_state(full);
    add_resume_state(meta);
    save_checkpoint(last_path, full, meta);
  };

  // After SIGINT / SIGTERM mid-epoch: last.safetensors with the position in epoch e (0-based).
  auto save_interrupted = [&](int e, const EpochPosition& pos) {
    CheckpointMeta meta = base_meta;
    meta.epoch = e;  // completed epochs
    meta.step = step;
    meta.extra["resume.batch"] = std::to_string(pos.batch);
    meta.extra["resume.epoch_loss_sum"] = exact(pos.loss_sum);
    meta.extra["resume.epoch_images"] = std::to_string(pos.images);
    meta.extra["resume.epoch_skipped"] = std::to_string(pos.skipped);
    save_last(meta);
  };

  if (const int sig = InterruptHandlers::pending()) {  // during the set-up: nothing new to save
    say(std::string("interrupted by ") + signal_name(sig) + " before the first step: nothing new to save");
    result.interrupted_by = sig;
  }
  for (int e = start_epoch; e < opt.epochs && result.interrupted_by == 0; ++e) {
    const bool frozen = e < opt.freeze_backbone_epochs;
    model->set_trainable(!frozen);
    if (frozen) {
      model->cls_head().set_trainable(true);
      model->box_head().set_trainable(true);
    }
    model->train();
    const double t0 = steady_seconds();
    progress.begin_epoch(e + 1, opt.epochs, train_loader.batches_per_epoch());
    double loss_sum = 0;
    std::int64_t images = 0, k = 0;
    double lr = 0;
    // Mid-epoch resumption: the loader starts at the saved batch (same order and augmentation).
    const EpochPosition from = e == start_epoch ? resume_pos : EpochPosition{};
    loss_sum = from.loss_sum;
    images = from.images;
    std::int64_t epoch_skipped = from.skipped, next_batch = from.batch;
    // The host's side of a step once its loss is known (at once on the CPU, one step late on CUDA).
    auto record = [&](const StepOutcome& so, std::int64_t at_step, std::int64_t at_k, std::int64_t size,
                      double at_lr) {
      if (so.applied) {
        loss_sum += so.loss * static_cast<double>(size);
        images += size;
      } else {
        ++epoch_skipped;
        ++result.skipped_steps;
      }
      progress.update(at_k, size, so.loss);
      step_log.write(e + 1, at_step, at_lr, so.loss, progress.images_per_second());
    };
    std::optional<PendingStep> pending;  // CUDA: the step enqueued last, not yet read back
    auto drain = [&] {
      if (!pending) return;
      const PendingStep p = std::move(*pending);
      pending.reset();
      record(finish_step(p), p.step, p.k, p.size, p.lr);
    };
    for (const data::Batch& b : train_loader.epoch(e, from.batch)) {
      lr = learning_rate(sc, step);
      ++k;
      next_batch = b.number + 1;
      if (on_device) {
        PendingStep now = enqueue_step(b, lr, step + 1, e + 1, k);
        ++step;
        if (opt.hooks.after_enqueue) opt.hooks.after_enqueue(step);
        drain();  // step - 1: finished on the device by now, or soon
        pending = std::move(now);
      } else {
        const StepOutcome so = guarded_step(b, lr, step + 1, e + 1);
        ++step;
        record(so, step, k, b.size(), lr);
      }
      if (opt.hooks.after_step) opt.hooks.after_step(step);
      if (InterruptHandlers::pending() != 0) break;
    }
    drain();  // before a checkpoint, validation or exit
    account_replays();
    if (on_device) {  // the host's step counts must agree with the device's
      const std::vector<std::int64_t> dev_counts = dstep->scalars.counts();
      CXR_CHECK(dev_counts == optim.steps && dstep->scalars.global_step() == step,
                "internal error: the optimiser step counts on the device differ from the host's");
    }
    if (const int sig = InterruptHandlers::pending()) {
      train_loader.stop();
      save_interrupted(e, {next_batch, loss_sum, images, epoch_skipped});
      progress.end_epoch("epoch " + std::to_string(e + 1) + "/" + std::to_string(opt.epochs) + ": interrupted");
      say(std::string("interrupted by ") + signal_name(sig) + " at step " + std::to_string(step) + " (epoch " +
          std::to_string(e + 1) + ", batch " + std::to_string(next_batch) + " of " +
          std::to_string(train_loader.batches_per_epoch()) + "): saved " + last_path +
          "; train_cxr train ... --resume continues from there");
      result.interrupted_by = sig;
      break;
    }
    if (epoch_skipped > 0) {
      say("epoch " + std::to_string(e + 1) + ": " + std::to_string(epoch_skipped) +
          " steps skipped for non-finite values (--skip-nonfinite)");
      CXR_CHECK(images > 0, "epoch ", e + 1, ": every step had non-finite values (", epoch_skipped,
                " skipped): stopping; lower --lr or check the data");
    }
    const double train_seconds = steady_seconds() - t0;

    // Validation.
    model->eval();
    InferenceResult vr = run_inference(*model, val_loader, 0, pos_weight, box_w);
    const std::vector<double> thresholds =
        select_thresholds(vr.probs, vr.labels, data::kNumClasses, ThresholdRule::youden);
    const ClassificationReport rep =
        evaluate_classification(vr.probs, vr.labels, data::kNumClasses, class_names, thresholds);

    EpochRecord rec;
    rec.epoch = e + 1;
    rec.step = step;
    rec.lr = lr;
    rec.train_loss = images > 0 ? loss_sum / static_cast<double>(images) : 0;
    rec.val_loss = vr.loss;
    rec.val_auc = rep.mean_auc;
    rec.val_ap = rep.mean_ap;
    rec.seconds = steady_seconds() - t0;
    rec.images_per_second = train_seconds > 0 ? static_cast<double>(images) / train_seconds : 0;
    for (const auto& c : rep.classes) rec.class_auc.push_back(c.auc);

    const bool improved = std::isfinite(rep.mean_auc) ? rep.mean_auc > best_auc : best_epoch == 0;
    if (improved) {
      best_auc = std::isfinite(rep.mean_auc) ? rep.mean_auc : best_auc;
      best_epoch = e + 1;
      bad_epochs = 0;
    } else {
      ++bad_epochs;
    }

    // Checkpoints.
    CheckpointMeta meta = base_meta;
    meta.thresholds = thresholds;
    meta.epoch = e + 1;
    meta.step = step;
    meta.extra["val_auroc"] = exact(rep.mean_auc);
    meta.extra["val_ap"] = exact(rep.mean_ap);
    if (improved) save_checkpoint(best_path, model_state(*model), meta);
    save_last(meta);

    csv << rec.epoch << "," << rec.step << "," << exact(rec.lr) << "," << exact(rec.train_loss) << ","
        << exact(rec.val_loss) << "," << exact(rec.val_auc) << "," << exact(rec.val_ap) << ","
        << fmt(rec.images_per_second, 2) << "," << fmt(rec.seconds, 2);
    for (double a : rec.class_auc) csv << "," << exact(a);
    csv << "\n" << std::flush;
    CXR_CHECK(csv, "cannot write ", csv_path, ": ", std::strerror(errno));

    const std::string summary = "epoch " + std::to_string(e + 1) + "/" + std::to_string(opt.epochs) +
                                ": train loss " + fmt(rec.train_loss) + " | val loss " + fmt(rec.val_loss) +
                                " | val AUROC " + fmt(rec.val_auc) + " AP " + fmt(rec.val_ap) + " | " +
                                fmt(rec.images_per_second, 1) + " img/s | " + fmt(rec.seconds, 1) + " s" +
                                (improved ? " | best" : "") + (frozen ? " | backbone frozen" : "");
    progress.end_epoch(summary);
    log.line(summary);
    result.epochs.push_back(rec);
    result.last_epoch = e + 1;
    if (const int sig = InterruptHandlers::pending()) {  // arrived during validation: the epoch is saved
      say(std::string("interrupted by ") + signal_name(sig) + " after epoch " + std::to_string(e + 1) + ": saved " +
          last_path + "; train_cxr train ... --resume continues from there");
      result.interrupted_by = sig;
      break;
    }
    if (opt.stop_after_epochs > 0 && static_cast<int>(result.epochs.size()) >= opt.stop_after_epochs &&
        e + 1 < opt.epochs) {
      say("stopped after " + std::to_string(result.epochs.size()) + " epochs (as asked); --resume continues");
      break;
    }
    if (opt.patience > 0 && bad_epochs >= opt.patience && e + 1 < opt.epochs) {
      say("early stop: no better val AUROC for " + std::to_string(bad_epochs) + " epochs (best " + fmt(best_auc) +
          " at epoch " + std::to_string(best_epoch) + ")");
      result.stopped_early = true;
      break;
    }
  }
  report.flush_suppressed();
  result.best_auc = best_auc;
  result.best_epoch = best_epoch;
  if (best_epoch > 0)
    say("best val AUROC " + fmt(best_auc) + " at epoch " + std::to_string(best_epoch) + "; checkpoints in " +
        opt.out_dir);
  else
    say("no epoch completed yet; checkpoints in " + opt.out_dir);
  return result;
}

}  // namespace cxr
