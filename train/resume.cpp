// The resume state of last.safetensors (see resume.h).
#include "train/resume.h"

#include <iomanip>
#include <sstream>

#include <nlohmann/json.hpp>

#include "dist/communicator.h"
#include "train/mask_streams.h"
#include "train/trainer.h"

namespace cxr {

std::string exact(double v) {
  std::ostringstream os;
  os << std::setprecision(17) << v;
  return os.str();
}

std::string resume_settings(const TrainOptions& o) {
  nlohmann::json j;
  j["model"] = o.model;
  j["image_size"] = o.image_size;
  // The global batch (per rank x ranks): a run may resume on another number of ranks with the
  // same global batch (docs/distributed.md).
  j["batch_size"] = o.batch_size * (o.comm != nullptr ? o.comm->size() : 1);
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

void add_resume_state(CheckpointMeta& meta, const TrainOptions& o, const RunState& s, const Optimizer& optim,
                      Module& model) {
  meta.epoch = s.epochs_done;
  meta.step = s.step;
  meta.extra["resume.settings"] = resume_settings(o);
  meta.extra["resume.param_steps"] = nlohmann::json(optim.steps()).dump();
  meta.extra["resume.mask_offsets"] = nlohmann::json(mask_offsets(model)).dump();
  meta.extra["resume.best_auc"] = exact(s.best_auc);
  meta.extra["resume.best_epoch"] = std::to_string(s.best_epoch);
  meta.extra["resume.bad_epochs"] = std::to_string(s.bad_epochs);
  meta.extra["resume.optimizer"] = o.optimizer;
  if (o.comm != nullptr && o.comm->size() > 1) meta.extra["resume.world_size"] = std::to_string(o.comm->size());
  if (s.position.batch > 0) {  // saved mid-epoch (interrupted)
    meta.extra["resume.batch"] = std::to_string(s.position.batch);
    meta.extra["resume.epoch_samples"] = std::to_string(s.position.samples);
    meta.extra["resume.epoch_loss_sum"] = exact(s.position.loss_sum);
    meta.extra["resume.epoch_images"] = std::to_string(s.position.images);
    meta.extra["resume.epoch_skipped"] = std::to_string(s.position.skipped);
  }
}

namespace {

const std::string* find_extra(const CheckpointMeta& m, const char* key) {
  auto it = m.extra.find(key);
  return it == m.extra.end() ? nullptr : &it->second;
}

double extra_double(const CheckpointMeta& m, const char* key, double fallback) {
  const std::string* v = find_extra(m, key);
  if (!v) return fallback;
  try {
    return std::stod(*v);
  } catch (...) {
    return fallback;
  }
}

}  // namespace

RunState load_resume_state(const std::string& last_path, const TrainOptions& o, CxrModel& model, Optimizer& optim) {
  Checkpoint ck = load_checkpoint(last_path);
  const std::string* settings = find_extra(ck.meta, "resume.settings");
  CXR_CHECK(settings, last_path, " has no resume state");
  if (*settings != resume_settings(o))
    throw UsageError("--resume: the settings differ from those of the run in " + o.out_dir + ": " + *settings +
                     " vs " + resume_settings(o));
  NamedTensors state = model_state(model);
  load_state(state, ck.file, model_options(), last_path);
  optim.load_state(ck.file, nlohmann::json::parse(ck.meta.extra.at("resume.param_steps")).get<std::vector<std::int64_t>>(),
                   last_path);
  set_mask_streams(model, o.seed,
                   nlohmann::json::parse(ck.meta.extra.at("resume.mask_offsets")).get<std::vector<std::uint64_t>>());
  RunState s;
  s.step = ck.meta.step;
  s.epochs_done = static_cast<int>(ck.meta.epoch);
  if (auto* v = find_extra(ck.meta, "resume.batch")) s.position.batch = std::stoll(*v);
  if (auto* v = find_extra(ck.meta, "resume.world_size")) s.world_size = std::stoi(*v);
  const int world = o.comm != nullptr ? o.comm->size() : 1;
  if (s.world_size != world && s.position.batch > 0) {  // another global batch: continue at the sample
    auto* v = find_extra(ck.meta, "resume.epoch_samples");
    CXR_CHECK(v != nullptr, last_path, " was saved mid-epoch by ", s.world_size, " ranks without its position in "
              "samples: resume it with ", s.world_size, " ranks");
    s.position.samples = std::stoll(*v);
  }
  if (auto* v = find_extra(ck.meta, "resume.epoch_loss_sum")) s.position.loss_sum = std::stod(*v);
  if (auto* v = find_extra(ck.meta, "resume.epoch_images")) s.position.images = std::stoll(*v);
  if (auto* v = find_extra(ck.meta, "resume.epoch_skipped")) s.position.skipped = std::stoll(*v);
  s.best_auc = extra_double(ck.meta, "resume.best_auc", s.best_auc);
  s.best_epoch = static_cast<int>(extra_double(ck.meta, "resume.best_epoch", 0));
  s.bad_epochs = static_cast<int>(extra_double(ck.meta, "resume.bad_epochs", 0));
  return s;
}

}  // namespace cxr
