// What last.safetensors keeps of a run so that `train_cxr train --resume` continues it
// bit-identically (docs/reliability.md): the weights, the optimiser state and step counts, the
// mask-stream offsets, the position in the schedule and in the epoch, the best epoch so far,
// and the settings that must not change. The metadata keys are "resume.*".
#pragma once

#include <cstdint>
#include <limits>
#include <string>

#include "checkpoint/checkpoint.h"
#include "models/heads.h"
#include "train/optimizer.h"

namespace cxr {

struct TrainOptions;

// Where in an epoch a run was saved: batches done, and the partial epoch's loss sums so that
// the resumed epoch reports the same train loss.
struct EpochPosition {
  std::int64_t batch = 0;  // the next batch of the epoch (0-based); 0: the epoch's start
  // The next sample's position in the epoch order, over all ranks. Resuming with another number
  // of ranks (another global batch) continues from here; -1: from `batch`.
  std::int64_t samples = -1;
  double loss_sum = 0;
  std::int64_t images = 0, skipped = 0;
};

// Where a run stands between steps.
struct RunState {
  std::int64_t step = 0;  // optimiser steps done (the schedule's position)
  int epochs_done = 0;    // completed epochs
  EpochPosition position;  // within epoch epochs_done + 1 (an interrupted run)
  double best_auc = -std::numeric_limits<double>::infinity();
  int best_epoch = 0, bad_epochs = 0;
  int world_size = 1;  // of the run that saved the state
};

// The settings a resumed run must share with the run it continues (a JSON string).
std::string resume_settings(const TrainOptions& o);

// Adds the resume state to meta (epoch, step, "resume.*").
void add_resume_state(CheckpointMeta& meta, const TrainOptions& o, const RunState& s, const Optimizer& optim,
                      Module& model);
// Loads RUN/last.safetensors into model and optim (on their device) and returns the state it
// saved; UsageError when the settings differ.
RunState load_resume_state(const std::string& last_path, const TrainOptions& o, CxrModel& model, Optimizer& optim);

// A double as written into the metadata (17 digits: read back exactly).
std::string exact(double v);

}  // namespace cxr
