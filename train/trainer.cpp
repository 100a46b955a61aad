// The training loop (see trainer.h). train_model() reads top to bottom as the run goes:
//   set-up     the run folder and its log; the data and loaders (load_data); the model, the
//              optimiser, the schedule and the step (build_run); --resume (train/resume.h)
//   each epoch train_epoch: the steps through a StepPipeline (train/step_pipeline.h: the CPU
//              runs each step at once, CUDA one step ahead of the host, --cuda-graph replays);
//              then end_epoch: validation, thresholds, checkpoints, metrics.csv, early stop.
// The step itself (forward, loss, backward, norm, guarded update) is train/train_step.h.
// Under mpirun (TrainOptions::comm) the same loop runs on every rank: each rank's loader gives
// its part of the global batch, the step all-reduces the gradients (train/grad_reducer.h), the
// ranks agree on each step's global batch and on interrupts, validation is gathered, and rank 0
// alone writes (train/distributed.h, docs/distributed.md).
#include "train/trainer.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <limits>
#include <optional>
#include <sstream>
#include <utility>

#include <omp.h>

#include "data/class_balance.h"
#include "data/data_sources.h"
#include "data/dataset.h"
#include "data/label_space.h"
#include "data/labels.h"
#include "data/loader.h"
#include "data/splits.h"
#include "dist/communicator.h"
#include "eval/evaluate.h"
#include "eval/metrics.h"
#include "eval/progress.h"
#include "kernels/execution.h"
#include "kernels/library.h"
#include "layers/batch_norm.h"
#include "layers/init.h"
#include "models/model_factory.h"
#include "train/distributed.h"
#include "train/grad_reducer.h"
#include "train/interrupt.h"
#include "train/mask_streams.h"
#include "train/resume.h"
#include "train/run_log.h"
#include "train/schedule.h"
#include "train/step_pipeline.h"

namespace cxr {
namespace fs = std::filesystem;

namespace {

std::string fmt(double v, int prec = 4) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(prec) << v;
  return os.str();
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

std::vector<std::int64_t> limited(std::vector<std::int64_t> v, std::int64_t limit) {
  if (limit > 0 && static_cast<std::int64_t>(v.size()) > limit) v.resize(static_cast<std::size_t>(limit));
  return v;
}

// ---- set-up --------------------------------------------------------------------------------

// The data of a run: the data set, its patient-wise splits and the two loaders.
struct RunData {
  data::Report report;
  data::Dataset dataset;
  data::Splits splits;
  data::DataSets sets;        // which records came from which --data (dataset moved out of it)
  data::LabelSpace space;     // the run's outputs: one set's findings, or the union of several
  std::vector<std::int64_t> train_idx, val_idx;
  data::LoaderOptions loader_options;
  std::unique_ptr<data::DataLoader> train_loader, val_loader;
};

std::unique_ptr<RunData> load_data(const TrainOptions& opt, dist::Communicator& comm, RunLog& log) {
  auto d = std::make_unique<RunData>();
  d->report.set_echo_prefix(comm.world().message_prefix());
  data::SplitOptions so;
  so.seed = opt.seed;
  so.val_fraction = opt.val_fraction;
  std::vector<data::DataSource> sources;
  for (const auto& a : opt.data_dirs.empty() ? std::vector<std::string>{opt.data_dir} : opt.data_dirs)
    sources.push_back(data::parse_data_source(a));
  d->sets = data::load_data_sets(sources, opt.reader, so, d->report);
  d->dataset = std::move(d->sets.dataset);
  d->splits = d->sets.splits;
  d->space = data::choose_label_space(d->sets.findings);
  d->train_idx = limited(d->splits.train, opt.limit);
  d->val_idx = limited(d->splits.val, opt.limit);
  const std::int64_t global_batch = static_cast<std::int64_t>(opt.batch_size) * comm.size();
  CXR_CHECK(!d->train_idx.empty(), opt.data_dir, ": the training split is empty");
  CXR_CHECK(!d->val_idx.empty(), opt.data_dir, ": the validation split is empty (more patients or a larger "
                                               "validation fraction are needed)");
  if (sources.size() > 1 || d->dataset.format != "nih") {
    std::string names;
    for (const auto& n : d->space.names()) names += (names.empty() ? "" : ", ") + n;
    log.say("data: " + d->dataset.format + ", label space of " + std::to_string(d->space.size()) + " findings (" +
            names + ")");
  }
  log.say("data: " + std::to_string(d->dataset.size()) + " images (" + d->splits.source + "), train " +
          std::to_string(d->train_idx.size()) + ", val " + std::to_string(d->val_idx.size()) + ", test " +
          std::to_string(d->splits.test.size()));

  data::LoaderOptions& lo = d->loader_options;
  lo.batch_size = opt.batch_size;
  lo.image_size = opt.image_size;
  lo.workers = opt.workers;
  lo.seed = opt.seed;
  lo.strict = opt.strict;
  lo.device = opt.device;
  lo.cache_dir = opt.cache_dir;
  lo.label_findings = d->space.findings();
  data::LoaderOptions train_lo = lo;
  train_lo.sample_weights = data::source_sample_weights(d->sets, sources, d->train_idx);
  train_lo.augment = opt.augment;
  train_lo.shuffle = true;
  // A last batch of one image would make BatchNorm's batch statistics degenerate. Several
  // ranks: each gets its part of every global batch (the last partial one dropped likewise).
  train_lo.drop_last = static_cast<std::int64_t>(d->train_idx.size()) > global_batch;
  train_lo.rank = comm.rank();
  train_lo.world_size = comm.size();
  CXR_CHECK(train_lo.drop_last || static_cast<std::int64_t>(d->train_idx.size()) >= 2 * comm.size(), "the training "
            "split (", d->train_idx.size(), " images) is too small for ", comm.size(), " ranks");
  // --cache with several ranks: rank 0 builds the decoded-image cache, the others then open it.
  const bool wait_for_cache = !opt.cache_dir.empty() && comm.size() > 1;
  if (wait_for_cache && comm.rank() != 0) comm.barrier();
  d->train_loader = std::make_unique<data::DataLoader>(d->dataset, d->train_idx, train_lo, d->report);
  if (wait_for_cache && comm.rank() == 0) comm.barrier();
  // Validation: each rank its contiguous shard of the split; the predictions are gathered.
  const auto [vb, ve] = data::shard_range(0, static_cast<std::int64_t>(d->val_idx.size()), comm.rank(), comm.size());
  CXR_CHECK(ve > vb, "the validation split (", d->val_idx.size(), " images) is too small for ", comm.size(), " ranks");
  d->val_loader = std::make_unique<data::DataLoader>(
      d->dataset, std::vector<std::int64_t>(d->val_idx.begin() + vb, d->val_idx.begin() + ve), lo, d->report);
  return d;
}

// The model: every random choice from the seed; weights from --init-from unless resuming.
std::unique_ptr<CxrModel> build_model(const TrainOptions& opt, int classes, dist::Communicator& comm, RunLog& log) {
  manual_seed(opt.seed);
  std::unique_ptr<CxrModel> model = make_model(opt.model, classes);
  set_mask_streams(*model, opt.seed, {});
  if (!opt.init_from.empty() && !opt.resume) {
    const SafetensorsFile f = read_safetensors(opt.init_from);
    NamedTensors state = model_state(*model);
    const bool whole = f.find("cls_head.weight") != nullptr;
    const LoadReport r = load_state(state, f, whole ? model_options() : backbone_options(), opt.init_from);
    log.say("init from " + opt.init_from + ": " + r.summary());
  }
  model->to(opt.device);
  broadcast_state(comm, *model);  // every rank starts from rank 0's weights (as DDP)
  model->set_input_grad(false);
  place_mask_counters(*model, opt.device);
  return model;
}

ScheduleConfig make_schedule(const TrainOptions& opt, std::int64_t steps_per_epoch) {
  ScheduleConfig sc;
  sc.kind = parse_schedule_kind(opt.schedule);
  sc.base_lr = opt.lr;
  sc.total_steps = steps_per_epoch * opt.epochs;
  sc.warmup_steps = std::min<std::int64_t>(opt.warmup_steps, std::max<std::int64_t>(0, sc.total_steps - 1));
  sc.step_size = steps_per_epoch * ((opt.epochs + 2) / 3);  // x0.1 after each third of the run (whole epochs)
  sc.min_lr = 0.0;
  validate_schedule(sc);
  return sc;
}

// What every checkpoint of the run says about it (docs/training.md, "Checkpoints").
CheckpointMeta base_metadata(const TrainOptions& opt, const RunData& d) {
  const data::LoaderOptions& lo = d.loader_options;
  CheckpointMeta m;
  m.architecture = opt.model;
  m.image_size = opt.image_size;
  m.class_names = d.space.names();  // the label space (NIH alone: the 14 NIH names, as ever)
  if (d.dataset.format != "nih") {
    m.extra["data_format"] = d.dataset.format;
    m.extra["uncertain"] = data::uncertain_policy_name(opt.reader.uncertain);
  }
  m.mean.assign(lo.normalize.mean.begin(), lo.normalize.mean.end());
  m.std.assign(lo.normalize.std.begin(), lo.normalize.std.end());
  m.extra["split_seed"] = std::to_string(opt.seed);
  m.extra["val_fraction"] = exact(opt.val_fraction);
  if (!opt.command_line.empty()) m.extra["command"] = opt.command_line;
  // The math the run trained with (--precision, --tf32); the weights are fp32 either way.
  m.extra["precision"] = precision_name(opt.precision);
  m.extra["tf32"] = opt.tf32 ? "1" : "0";
  m.extra["kernels"] = kernel_choice_name(opt.kernels);
  return m;
}

// ---- the epoch ------------------------------------------------------------------------------

// What the per-epoch parts share: the run's pieces, built by train_model.
struct Run {
  const TrainOptions& opt;
  std::string last_path, best_path;
  Progress& progress;
  RunLog& log;
  RunData& data;
  CxrModel& model;
  Optimizer& optim;
  const ScheduleConfig& schedule;
  StepPipeline& pipeline;
  const Tensor& pos_weight;
  const CheckpointMeta& base_meta;
  MetricsCsv& csv;
  StepLog& step_log;
  RunState& state;
  TrainResult& result;
  dist::Communicator& comm;
  GradientReducer* reducer;  // several ranks only
  TrainStep& step;
  bool writes() const { return comm.rank() == 0; }  // rank 0 alone writes the run folder
};

// The training pass of one epoch.
struct EpochPass {
  EpochPosition end;  // batches done (next batch), loss sum, images and skipped steps
  double lr = 0;      // of the last step
  double start = 0, train_seconds = 0;
};

[[noreturn]] void stop_training(Run& r, const std::string& what, const std::string& how) {
  r.log.say(what);
  CXR_FAIL(what, ". Training stopped ", how, "; ",
           fs::exists(r.last_path) ? r.last_path + " (the last good checkpoint) was left as it was"
                                   : std::string("no checkpoint was written yet"),
           ". Lower --lr, set --grad-clip, check those images, or pass --skip-nonfinite to skip such steps");
}

// The heads train from the first epoch; the backbone after --freeze-backbone-epochs. True: frozen.
bool set_trainable_for_epoch(CxrModel& model, int e, const TrainOptions& opt) {
  const bool frozen = e < opt.freeze_backbone_epochs;
  model.set_trainable(!frozen);
  if (frozen) {
    model.cls_head().set_trainable(true);
    model.box_head().set_trainable(true);
  }
  return frozen;
}

// --workers auto: says when the training loader will change its number of workers for the
// next epoch, and from what (data::choose_workers; stats() is complete once the epoch ended).
void note_auto_workers(Run& r, int e, const data::DataLoader& loader) {
  const data::EpochStats& st = loader.stats();
  if (r.opt.workers != data::kAutoWorkers || st.workers == 0 || st.batches == 0 || e + 1 >= r.opt.epochs) return;
  const int next = data::choose_workers(st, data::max_auto_workers());
  if (next == st.workers) return;
  r.log.say("data: " + std::to_string(next) + (next == 1 ? " loader worker" : " loader workers") + " from epoch " +
            std::to_string(e + 2) + " (a batch took " + fmt(1000 * data::prepare_seconds_per_batch(st), 1) +
            " ms to prepare, " + fmt(1000 * data::train_seconds_per_batch(st), 1) + " ms to train)");
}

// Epoch e (0-based) from the saved position (a resumed run's first epoch) or its start.
EpochPass train_epoch(Run& r, int e) {
  data::DataLoader& loader = *r.data.train_loader;
  EpochPass pass;
  pass.start = steady_seconds();
  const EpochPosition from = std::exchange(r.state.position, EpochPosition{});
  pass.end = from;
  r.model.train();
  const bool several = r.comm.size() > 1;
  r.progress.begin_epoch(e + 1, r.opt.epochs, loader.batches_per_epoch());
  // The host's side of a step once its outcome is known (at once on the CPU, a step late on CUDA).
  auto record = [&](const StepDone& d) {
    if (d.outcome.applied) {
      pass.end.loss_sum += d.outcome.loss * static_cast<double>(d.ticket.size);
      pass.end.images += d.ticket.size;
    } else {
      if (!r.opt.skip_nonfinite) stop_training(r, d.description, d.stopped);
      r.log.say("skipped " + d.description + " (--skip-nonfinite)");
      ++pass.end.skipped;
      ++r.result.skipped_steps;
    }
    r.progress.update(d.ticket.k, d.ticket.size, d.outcome.loss);
    r.step_log.write(d.ticket.epoch, d.ticket.step, d.ticket.lr, d.outcome.loss, r.progress.images_per_second());
  };
  std::int64_t k = 0;
  if (from.samples >= 0) loader.start_epoch_at_sample(e, from.samples);  // resumed with another world size
  else loader.start_epoch(e, from.batch);
  for (const data::Batch* bp = loader.next(); bp != nullptr; bp = loader.next()) {
    const data::Batch& b = *bp;
    std::int64_t rows = b.size();
    if (several) {  // the global batch's size and boxes, this rank's rows in it, and any interrupt
      const StepAgreement a = agree_on_step(r.comm, b.size(), b.box_count, InterruptHandlers::pending(), b.label_count);
      if (a.signal != 0) {
        InterruptHandlers::raise_pending(a.signal);  // every rank stops before the same step
        break;
      }
      rows = a.rows;
      r.step.set_loss_share({.rows = a.rows, .boxes = a.boxes, .labels = a.labels});
      set_mask_shard({.row_begin = a.row_begin, .global_rows = a.rows});
    }
    pass.lr = learning_rate(r.schedule, r.state.step);
    pass.end.batch = b.number + 1;
    pass.end.samples = loader.position_after(b.number);
    StepTicket t{.step = r.state.step + 1, .epoch = e + 1, .k = ++k, .batch_number = b.number,
                 .size = rows, .lr = pass.lr, .names = b.names};
    std::optional<StepDone> done = r.pipeline.submit(b, std::move(t));
    ++r.state.step;
    if (done) record(*done);
    if (r.opt.hooks.after_step) r.opt.hooks.after_step(r.state.step);
    if (!several && InterruptHandlers::pending() != 0) break;
  }
  if (several) {  // a signal that arrived on some rank during the epoch's last step: all stop here
    if (const int sig = agree_on_signal(r.comm, InterruptHandlers::pending())) InterruptHandlers::raise_pending(sig);
  }
  set_mask_shard({});
  if (auto done = r.pipeline.drain()) record(*done);  // before a checkpoint, validation or exit
  r.pipeline.settle(r.state.step);
  pass.train_seconds = steady_seconds() - pass.start;
  note_auto_workers(r, e, loader);
  return pass;
}

// last.safetensors: the model, the optimiser state and what --resume needs.
void save_last(Run& r, CheckpointMeta meta) {
  if (!r.writes()) return;
  NamedTensors full = model_state(r.model);
  r.optim.add_state(full);
  add_resume_state(meta, r.opt, r.state, r.optim, r.model);
  save_checkpoint(r.last_path, full, meta);
}

// After SIGINT / SIGTERM mid-epoch: last.safetensors with the position in epoch e (0-based).
void save_interrupted(Run& r, int e, const EpochPass& pass, int sig) {
  r.data.train_loader->stop();
  r.state.position = pass.end;
  save_last(r, r.base_meta);
  r.progress.end_epoch("epoch " + std::to_string(e + 1) + "/" + std::to_string(r.opt.epochs) + ": interrupted");
  r.log.say(std::string("interrupted by ") + signal_name(sig) + " at step " + std::to_string(r.state.step) +
            " (epoch " + std::to_string(e + 1) + ", batch " + std::to_string(pass.end.batch) + " of " +
            std::to_string(r.data.train_loader->batches_per_epoch()) + "): saved " + r.last_path +
            "; train_cxr train ... --resume continues from there");
  r.result.interrupted_by = sig;
}

// The end of epoch e: validation, thresholds, checkpoints and metrics. False: stop the run.
bool end_epoch(Run& r, int e, const EpochPass& pass, bool frozen) {
  const TrainOptions& opt = r.opt;
  if (pass.end.skipped > 0) {
    r.log.say("epoch " + std::to_string(e + 1) + ": " + std::to_string(pass.end.skipped) +
              " steps skipped for non-finite values (--skip-nonfinite)");
    CXR_CHECK(pass.end.images > 0, "epoch ", e + 1, ": every step had non-finite values (", pass.end.skipped,
              " skipped): stopping; lower --lr or check the data");
  }
  broadcast_buffers(r.comm, r.model);  // rank 0's running statistics, as DDP
  r.model.eval();
  // Each rank its shard of the split; the whole split's predictions on every rank (rank order
  // is split order), so the metrics are those of a single-process evaluation.
  InferenceResult vr = gather_inference(
      r.comm, run_inference(r.model, *r.data.val_loader, 0, r.pos_weight, static_cast<float>(opt.box_loss_weight)));
  check_replicas(r.comm, r.model, "after epoch " + std::to_string(e + 1));
  const auto classes = static_cast<std::int64_t>(r.base_meta.class_names.size());
  const std::vector<double> thresholds = select_thresholds(vr.probs, vr.labels, classes, ThresholdRule::youden);
  const ClassificationReport rep =
      evaluate_classification(vr.probs, vr.labels, classes, r.base_meta.class_names, thresholds);

  EpochRecord rec;
  rec.epoch = e + 1;
  rec.step = r.state.step;
  rec.lr = pass.lr;
  rec.train_loss = pass.end.images > 0 ? pass.end.loss_sum / static_cast<double>(pass.end.images) : 0;
  rec.val_loss = vr.loss;
  rec.val_auc = rep.mean_auc;
  rec.val_ap = rep.mean_ap;
  rec.seconds = steady_seconds() - pass.start;
  rec.images_per_second = pass.train_seconds > 0 ? static_cast<double>(pass.end.images) / pass.train_seconds : 0;
  for (const auto& c : rep.classes) rec.class_auc.push_back(c.auc);

  RunState& s = r.state;
  const bool improved = std::isfinite(rep.mean_auc) ? rep.mean_auc > s.best_auc : s.best_epoch == 0;
  if (improved) {
    s.best_auc = std::isfinite(rep.mean_auc) ? rep.mean_auc : s.best_auc;
    s.best_epoch = e + 1;
    s.bad_epochs = 0;
  } else {
    ++s.bad_epochs;
  }
  s.epochs_done = e + 1;

  CheckpointMeta meta = r.base_meta;
  meta.thresholds = thresholds;
  meta.epoch = s.epochs_done;
  meta.step = s.step;
  meta.extra["val_auroc"] = exact(rep.mean_auc);
  meta.extra["val_ap"] = exact(rep.mean_ap);
  if (improved && r.writes()) save_checkpoint(r.best_path, model_state(r.model), meta);
  save_last(r, meta);
  if (r.writes()) r.csv.write(rec);

  const std::string summary = "epoch " + std::to_string(e + 1) + "/" + std::to_string(opt.epochs) +
                              ": train loss " + fmt(rec.train_loss) + " | val loss " + fmt(rec.val_loss) +
                              " | val AUROC " + fmt(rec.val_auc) + " AP " + fmt(rec.val_ap) + " | " +
                              fmt(rec.images_per_second, 1) + " img/s | " + fmt(rec.seconds, 1) + " s" +
                              (improved ? " | best" : "") + (frozen ? " | backbone frozen" : "");
  r.progress.end_epoch(summary);
  r.log.line(summary);
  if (r.reducer != nullptr && r.reducer->stats().steps > 0) {
    const GradientReducer::Stats& st = r.reducer->stats();
    const double per_step = 1e3 / static_cast<double>(st.steps);
    r.log.line("all-reduce (" + std::string(dist::backend_name(r.comm.backend())) + ", " +
               std::to_string(r.comm.size()) + " ranks, " + std::to_string(r.reducer->bucket_count()) + " buckets, " +
               fmt(static_cast<double>(st.bytes) / 1e6, 1) + " MB per step): " +
               fmt(st.comm_seconds * per_step, 1) + " ms per step, " + fmt(st.exposed_seconds * per_step, 1) +
               " ms of it after backward (" +
               fmt(st.comm_seconds > 0 ? 100.0 * (1.0 - std::min(1.0, st.exposed_seconds / st.comm_seconds)) : 0.0, 0) +
               "% overlapped)");
  }
  r.result.epochs.push_back(rec);
  r.result.last_epoch = e + 1;

  if (const int sig = agree_on_signal(r.comm, InterruptHandlers::pending())) {  // during validation: the epoch is saved
    r.log.say(std::string("interrupted by ") + signal_name(sig) + " after epoch " + std::to_string(e + 1) +
              ": saved " + r.last_path + "; train_cxr train ... --resume continues from there");
    r.result.interrupted_by = sig;
    return false;
  }
  if (opt.stop_after_epochs > 0 && static_cast<int>(r.result.epochs.size()) >= opt.stop_after_epochs &&
      e + 1 < opt.epochs) {
    r.log.say("stopped after " + std::to_string(r.result.epochs.size()) + " epochs (as asked); --resume continues");
    return false;
  }
  if (opt.patience > 0 && s.bad_epochs >= opt.patience && e + 1 < opt.epochs) {
    r.log.say("early stop: no better val AUROC for " + std::to_string(s.bad_epochs) + " epochs (best " +
              fmt(s.best_auc) + " at epoch " + std::to_string(s.best_epoch) + ")");
    r.result.stopped_early = true;
    return false;
  }
  return true;
}

// The run folder: a new run, or the one --resume continues.
void prepare_run_folder(const TrainOptions& opt, const std::string& last_path, bool writes) {
  if (opt.resume) {
    CXR_CHECK(fs::exists(last_path), "--resume: ", last_path, " does not exist (nothing to resume)");
  } else {
    CXR_CHECK(!fs::exists(last_path), opt.out_dir, " already holds a run (", last_path,
              "): pass --resume to continue it or choose another --out");
  }
  if (!writes) return;
  std::error_code ec;
  fs::create_directories(opt.out_dir, ec);
  CXR_CHECK(!ec, "cannot create the run folder ", opt.out_dir, ": ", ec.message());
}

std::string describe_resume(const TrainOptions& opt, const RunState& s) {
  return "resumed " + opt.out_dir + " after epoch " + std::to_string(s.epochs_done) +
         (s.position.batch > 0 ? " and " + std::to_string(s.position.batch) + " batches of epoch " +
                                     std::to_string(s.epochs_done + 1)
                               : std::string()) +
         " (step " + std::to_string(s.step) + ", best val AUROC " + fmt(s.best_auc) + ")";
}

}  // namespace

int train_exit_code(const TrainResult& r) { return r.interrupted_by != 0 ? 128 + r.interrupted_by : 0; }

void validate_train_options(const TrainOptions& o) {

  if (o.data_dir.empty()) throw UsageError("--data is required");
  if (o.out_dir.empty()) throw UsageError("--out is required");
  if (o.image_size < 16 || o.image_size > 4096)
    throw UsageError("--image-size must be in [16, 4096], got " + std::to_string(o.image_size));
  if (o.epochs < 1) throw UsageError("--epochs must be >= 1, got " + std::to_string(o.epochs));
  if (o.batch_size < 1) throw UsageError("--batch-size must be >= 1, got " + std::to_string(o.batch_size));
  if (!(o.lr > 0) || !std::isfinite(o.lr)) throw UsageError("--lr must be a positive number, got " + exact(o.lr));
  parse_optimizer_kind(o.optimizer);
  if (!(o.weight_decay >= 0)) throw UsageError("--weight-decay must be >= 0");
  if (o.schedule != "cosine" && o.schedule != "onecycle" && o.schedule != "step" && o.schedule != "constant")
    throw UsageError("--schedule must be cosine, onecycle, step or constant, got '" + o.schedule + "'");
  if (o.warmup_steps < 0) throw UsageError("--warmup must be >= 0");
  if (o.workers < 1 && o.workers != data::kAutoWorkers) throw UsageError("--workers must be >= 1 or auto");
  if (o.freeze_backbone_epochs < 0) throw UsageError("--freeze-backbone-epochs must be >= 0");
  if (!(o.box_loss_weight >= 0)) throw UsageError("--box-loss-weight must be >= 0");
  if (o.limit < 0) throw UsageError("--limit must be >= 0");
  if (o.patience < 0) throw UsageError("--patience must be >= 0");
  if (o.threads < 0) throw UsageError("--threads must be >= 0");
  if (!(o.bucket_mb > 0)) throw UsageError("--bucket-mb must be positive");
  if (o.cuda_graph && o.device != Device::CUDA) throw UsageError("--cuda-graph needs --device cuda");
  if (o.comm != nullptr && o.comm->size() > 1 && o.cuda_graph)
    throw UsageError("--cuda-graph is not available in a distributed run yet (the loss's global batch size changes "
                     "per step, and the captured step would keep the first one)");
  const auto names = model_names();
  if (std::find(names.begin(), names.end(), o.model) == names.end()) {
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    throw UsageError("--model: unknown model '" + o.model + "' (known: " + list + ")");
  }
}

TrainResult train_model(const TrainOptions& opt, std::ostream& out) {
  validate_train_options(opt);
  // --kernels library: the device and the libraries first (cuDNN and cuBLASLt found, new enough).
  const std::string libraries = opt.kernels == KernelChoice::Library ? library::require(opt.device) : "";
  InterruptHandlers interrupts;
  const ThreadScope threads(opt.threads);
  const ExecutionScope math({.precision = opt.precision, .allow_tf32 = opt.tf32, .kernels = opt.kernels});
  const fs::path dir(opt.out_dir);
  const std::string last_path = (dir / "last.safetensors").string(), best_path = (dir / "best.safetensors").string();
  // One process, or this rank of a distributed job (rank 0 alone writes the run folder and the
  // console; the others stay silent unless they fail).
  std::unique_ptr<dist::Communicator> single;
  if (opt.comm == nullptr) single = dist::make_communicator(dist::WorldInfo{}, {});
  dist::Communicator& comm = opt.comm != nullptr ? *opt.comm : *single;
  const bool writes = comm.rank() == 0;
  auto file_of = [&](const char* name) { return writes ? (dir / name).string() : std::string(); };
  prepare_run_folder(opt, last_path, writes);
  std::ostream silent(nullptr);
  Progress progress(writes ? out : silent, {.mode = opt.quiet || !writes ? ProgressMode::quiet : ProgressMode::automatic});
  RunLog log(file_of("log.txt"), opt.resume, progress);
  if (!opt.command_line.empty()) log.line("command: " + opt.command_line);

  // Data, class balance, model, optimiser, schedule, and where a resumed run stands.
  std::unique_ptr<RunData> data = load_data(opt, comm, log);
  const int classes = data->space.size();
  std::vector<float> pw(static_cast<std::size_t>(classes), 1.f);
  if (opt.pos_weight_auto)
    pw = data::positive_weights(data::count_classes(data->dataset, data->train_idx), data->space.findings());
  const Tensor pos_weight = Tensor::from_vector(pw, {classes}).to(opt.device);
  std::unique_ptr<CxrModel> model = build_model(opt, classes, comm, log);
  Optimizer optim(*model, {.kind = parse_optimizer_kind(opt.optimizer), .weight_decay = opt.weight_decay});
  const ScheduleConfig schedule =
      make_schedule(opt, std::max<std::int64_t>(1, data->train_loader->batches_per_epoch()));
  RunState state;
  if (opt.resume) {
    state = load_resume_state(last_path, opt, *model, optim);
    if (state.world_size != comm.size()) {  // another global batch: the schedule's position in this run's steps
      const std::int64_t per_epoch = data->train_loader->batches_per_epoch(), gb = data->train_loader->global_batch();
      const std::int64_t in_epoch = state.position.samples > 0 ? (state.position.samples + gb - 1) / gb : 0;
      log.say("resuming a run of " + std::to_string(state.world_size) + " ranks on " + std::to_string(comm.size()) +
              ": the global batch is now " + std::to_string(gb) + " images; schedule step " +
              std::to_string(state.step) + " -> " + std::to_string(state.epochs_done * per_epoch + in_epoch));
      state.step = state.epochs_done * per_epoch + in_epoch;
    }
    broadcast_state(comm, *model);
    log.say(describe_resume(opt, state));
  }
  log.say("model " + opt.model + " (" + std::to_string(model->parameter_count()) + " parameters) on " +
          device_name(opt.device) + " (" + std::to_string(omp_get_max_threads()) + " compute threads), " +
          opt.optimizer + ", " + describe_schedule(schedule));
  if (opt.kernels == KernelChoice::Library) log.say("kernels: library (" + libraries + ")");
  if (comm.size() > 1)
    log.say("data parallel: " + std::to_string(comm.size()) + " ranks (" + dist::backend_name(comm.backend()) +
            ", launched by " + comm.world().launcher + "), global batch " +
            std::to_string(data->train_loader->global_batch()) + " (" + std::to_string(opt.batch_size) +
            " per rank), batch norm " + (opt.sync_bn ? "synchronised across ranks (--sync-bn)" : "per rank"));

  // What the run writes as it goes.
  const std::string csv_path = (dir / "metrics.csv").string();
  const bool append = opt.resume && fs::exists(csv_path);
  const CheckpointMeta base_meta = base_metadata(opt, *data);
  MetricsCsv csv(file_of("metrics.csv"), append, base_meta.class_names);
  StepLog step_log(file_of("metrics.jsonl"), append);  // per step (eval/progress.h)

  // The step, and how steps are submitted (CUDA: one step ahead of the host, --cuda-graph).
  if (opt.device == Device::CUDA) {
    std::vector<double> lr_per_step;
    for (std::int64_t s = 0; s < schedule.total_steps; ++s) lr_per_step.push_back(learning_rate(schedule, s));
    optim.enable_device_scalars(lr_per_step, state.step);
  }
  TrainStep step(*model, optim,
                 {.pos_weight = pos_weight, .box_loss_weight = static_cast<float>(opt.box_loss_weight),
                  .grad_clip = opt.grad_clip, .skip_nonfinite = opt.skip_nonfinite},
                 &opt.hooks);
  std::unique_ptr<GradientReducer> reducer;
  if (comm.size() > 1) {
    reducer = std::make_unique<GradientReducer>(comm, model->named_parameters(),
                                                static_cast<std::size_t>(opt.bucket_mb * (1 << 20)));
    step.set_data_parallel(&comm, reducer.get());
  }
  const SyncBatchNormScope sync_bn(opt.sync_bn && comm.size() > 1 ? &comm : nullptr);
  StepPipeline pipeline(step, {.cuda_graph = opt.cuda_graph, .full_batch = opt.batch_size},
                        [&](const std::string& line) { log.line(line); });

  TrainResult result;
  result.last_epoch = state.epochs_done;
  Run run{opt,      last_path,  best_path, progress, log,      *data,  *model, optim,   schedule, pipeline,
          pos_weight, base_meta, csv, step_log, state, result, comm, reducer.get(), step};
  if (state.epochs_done >= opt.epochs)
    log.say("nothing to do: the run has " + std::to_string(state.epochs_done) + " epochs (--epochs " +
            std::to_string(opt.epochs) + ")");
  if (const int sig = agree_on_signal(comm, InterruptHandlers::pending())) {  // during the set-up: nothing new to save
    log.say(std::string("interrupted by ") + signal_name(sig) + " before the first step: nothing new to save");
    result.interrupted_by = sig;
  }

  // The epochs.
  for (int e = state.epochs_done; e < opt.epochs && result.interrupted_by == 0; ++e) {
    const bool frozen = set_trainable_for_epoch(*model, e, opt);
    const EpochPass pass = train_epoch(run, e);
    if (const int sig = InterruptHandlers::pending()) {
      save_interrupted(run, e, pass, sig);
      break;
    }
    if (!end_epoch(run, e, pass, frozen)) break;
  }

  data->report.flush_suppressed();
  result.best_auc = state.best_auc;
  result.best_epoch = state.best_epoch;
  if (state.best_epoch > 0)
    log.say("best val AUROC " + fmt(state.best_auc) + " at epoch " + std::to_string(state.best_epoch) +
            "; checkpoints in " + opt.out_dir);
  else
    log.say("no epoch completed yet; checkpoints in " + opt.out_dir);
  return result;
}

}  // namespace cxr
