// The training loop of train_cxr: data set, patient-wise splits, loader, model, fused loss,
// optimiser, schedule, validation metrics, checkpoints, early stopping and resumption.
//
//   TrainOptions o;  o.data_dir = "data/nih";  o.out_dir = "runs/r18";  o.model = "resnet18";
//   TrainResult r = train_model(o, std::cout);
//
// Each epoch: one pass over the training split (loss + optimiser step per batch), then the
// validation split in eval mode: loss, per-class and mean AUROC / AP, per-class thresholds
// (Youden's J on validation). Files in out_dir:
//   last.safetensors   the model after the epoch + everything needed to resume: optimiser
//                      state under "optimizer." (exp_avg / exp_avg_sq or momentum), and in
//                      the metadata the step, epoch, best AUROC, early-stopping counter,
//                      dropout mask offsets and the settings that must not change.
//   best.safetensors   the model of the epoch with the best validation mean AUROC, with its
//                      thresholds (no optimiser state).
//   metrics.csv        one row per epoch;   log.txt   the run's messages.
// Determinism (CPU): the weights depend on (seed, settings) only: manual_seed(seed) before
// the model is built (weights and dropout seeds), the loader's order and augmentation are
// functions of (seed, epoch), the learning rate a function of the step. A run resumed from
// last.safetensors ends with bit-identical weights to an uninterrupted one.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "data/formats.h"

#include "kernels/execution.h"
#include "tensor/dtype.h"
#include "train/train_step.h"

namespace cxr {

namespace dist {
class Communicator;
}

struct TrainOptions {
  std::string data_dir, out_dir;
  // Several data sets (--data A --data B:W, data/data_sources.h): every one, data_dir unused;
  // empty: data_dir alone. The run's label space is the union of their findings.
  std::vector<std::string> data_dirs;
  data::ReaderOptions reader;       // --format, --uncertain, --frontal-only
  std::string model = "resnet18";
  int image_size = 224;
  int epochs = 10;
  int batch_size = 16;
  double lr = 1e-3;
  std::string optimizer = "adamw";  // adamw | sgd (momentum 0.9)
  double weight_decay = 1e-4;
  std::string schedule = "cosine";  // cosine | onecycle | step | constant
  std::int64_t warmup_steps = 0;    // linear warmup, in optimiser steps
  Device device = Device::CPU;
  int workers = 0;  // loader threads; 0: automatic (data::kAutoWorkers)
  std::uint64_t seed = 0;
  bool resume = false;
  std::string init_from;            // safetensors: backbone (ImageNet) or a whole cxr checkpoint
  int freeze_backbone_epochs = 0;   // train the heads only for the first K epochs
  bool pos_weight_auto = true;      // negatives / positives per class (training split); else 1
  double box_loss_weight = 1.0;
  std::int64_t limit = 0;           // > 0: at most N images per split (quick runs)
  std::string cache_dir;
  bool strict = false;              // an unreadable image is an error (else skipped)
  int patience = 0;                 // > 0: stop after P epochs without a better val AUROC
  bool quiet = false;
  bool augment = true;
  double val_fraction = 0.1;
  double grad_clip = 0.0;           // > 0: clip the global gradient norm
  std::string command_line;         // recorded in the checkpoints
  // The math of the run (kernels/execution.h), set for the run's scope and recorded in the
  // checkpoints' metadata ("precision", "tf32"): fp32, or bf16 mixed precision (autocast); TF32
  // tensor cores for fp32 convolutions and matrix products on the GPU.
  Precision precision = Precision::FP32;
  bool tf32 = false;
  // Which kernels run the convolutions, batch norms and linear layers on a GPU (--kernels;
  // kernels/library.h): the hand-written ones, or cuDNN and cuBLASLt. Recorded in the
  // checkpoints' metadata ("kernels"); the weights are the same either way, so a checkpoint of
  // one loads, resumes and predicts with the other. Library on the CPU or the emulated device:
  // train_model throws, naming why, before it reads anything.
  KernelChoice kernels = KernelChoice::Cxr;
  // OpenMP threads of the compute kernels during training; 0 (the default): OpenMP's default,
  // every core (OMP_NUM_THREADS where set). CPU results are bit-identical at any thread count
  // (every CPU sum runs in an order that does not depend on it; tests/ops/test_cpu_threads.cpp).
  int threads = 0;
  int stop_after_epochs = 0;        // > 0: return after this many epochs of this call, as if
                                    // interrupted (tests of --resume); the schedule still spans
                                    // `epochs`
  // Non-finite loss or gradient (checked every step through the global gradient norm): false
  // stops training with an error naming the step and the parameter; true skips the step (no
  // optimiser update, batch-norm statistics restored), counts and logs it. docs/reliability.md
  bool skip_nonfinite = false;
  // CUDA only (train_cxr --cuda-graph): after kGraphWarmupSteps eager steps, the step
  // (forward, loss, backward, norm, guarded optimiser) is captured once as a CUDA graph and
  // replayed; the batch is copied into static device buffers first. Partial batches run
  // eagerly; a change of the trainable set recaptures. Not with dropout / stochastic depth
  // (their mask counters live on the host). docs/speed.md, "CUDA graphs".
  bool cuda_graph = false;
  // Data-parallel training (docs/distributed.md): this process's communicator (null: one
  // process). batch_size is then per rank, the global batch batch_size x ranks; rank 0 alone
  // writes the run folder. sync_bn: batch-norm statistics over the global batch (SyncBatchNorm).
  dist::Communicator* comm = nullptr;
  bool sync_bn = false;
  double bucket_mb = 25;  // gradient bucket size of the all-reduce (DDP's bucket_cap_mb)
  TrainHooks hooks;                 // tests only
};

struct EpochRecord {
  int epoch = 0;  // 1-based
  std::int64_t step = 0;
  double lr = 0, train_loss = 0, val_loss = 0, val_auc = 0, val_ap = 0;
  double images_per_second = 0, seconds = 0;
  std::vector<double> class_auc;
};

struct TrainResult {
  std::vector<EpochRecord> epochs;  // the epochs run by this call
  double best_auc = 0;
  int best_epoch = 0;
  int last_epoch = 0;
  bool stopped_early = false;
  std::int64_t skipped_steps = 0;   // non-finite steps skipped (skip_nonfinite)
  int interrupted_by = 0;           // SIGINT / SIGTERM when a signal stopped the run, else 0
};

// The exit code of `train_cxr train` for a result: 0, or 128 + the signal (130 SIGINT,
// 143 SIGTERM) when it was interrupted (RUN/last.safetensors then holds the resume state).
int train_exit_code(const TrainResult& result);

// Checks the options (UsageError on a bad value), then trains. Progress and messages go
// to `out` (and RUN/log.txt).
TrainResult train_model(const TrainOptions& options, std::ostream& out);
void validate_train_options(const TrainOptions& options);

}  // namespace cxr
