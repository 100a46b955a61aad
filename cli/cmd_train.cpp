// train_cxr train: option parsing around train/trainer.h.
#include "cli/cmd_train.h"

#include <csignal>
#include <cstdio>
#include <functional>
#include <memory>
#include <cstdlib>
#include <iostream>

#include "cli/common_flags.h"
#include "dist/communicator.h"
#include "train/trainer.h"

namespace cxr::cli {
namespace {

std::string join_command(const std::string& cmd, int argc, const char* const* argv) {
  std::string s = "train_cxr " + cmd;
  for (int i = 0; i < argc; ++i) s += std::string(" ") + argv[i];
  return s;
}

// Fault injection for the tests of distributed runs (tests/dist/run_dist_tests), after an
// optimiser step: CXR_TEST_KILL_AT="RANK:STEP" makes that rank kill itself (SIGKILL, nothing
// saved); CXR_TEST_INTERRUPT_AT="STEP" raises SIGINT in every rank (as Ctrl-C through mpirun).
std::function<void(std::int64_t)> fault_hook(int rank) {
  int r = -1;
  long long kill_step = -1, interrupt_step = -1;
  if (const char* v = std::getenv("CXR_TEST_KILL_AT"); v && (std::sscanf(v, "%d:%lld", &r, &kill_step) != 2 || r != rank))
    kill_step = -1;
  if (const char* v = std::getenv("CXR_TEST_INTERRUPT_AT"); v && std::sscanf(v, "%lld", &interrupt_step) != 1)
    interrupt_step = -1;
  if (kill_step < 0 && interrupt_step < 0) return {};
  return [kill_step, interrupt_step](std::int64_t s) {
    if (s == kill_step) std::raise(SIGKILL);
    if (s == interrupt_step) std::raise(SIGINT);
  };
}

}  // namespace

int run_train(int argc, const char* const* argv, std::ostream& out) {
  Args args("train_cxr train",
            "Train a model on a data set (patient-wise train/val split). Writes RUN/last.safetensors,\n"
            "RUN/best.safetensors (best validation mean AUROC), RUN/metrics.csv and RUN/log.txt.\n"
            "--data given several times trains on all the sets at once, over the union of their findings\n"
            "(a label a set lacks is masked out of the loss); DIR:W samples that set with weight W.");
  args.required("data", "DIR[:W]", "data set folder (repeatable; :W a sampling weight)")
      .required("out", "RUN", "run folder (created)")
      .option("model", "NAME", "architecture (resnet18, resnet34, resnet50, efficientnet_b0, convnext_tiny, densenet121)",
              "resnet18")
      .option("image-size", "N", "input side in pixels", "224")
      .option("epochs", "E", "epochs (a resumed run continues up to E)", "10")
      .option("lr", "X", "peak learning rate", "0.001")
      .option("optimizer", "adamw|sgd", "AdamW, or SGD with momentum 0.9", "adamw")
      .option("weight-decay", "X", "weight decay (not on biases and normalisation weights)", "0.0001")
      .option("schedule", "KIND", "cosine | onecycle | step | constant", "cosine")
      .option("warmup", "K", "linear warmup steps", "0")
      .option("seed", "S", "seed of the weights, split, order, augmentation and dropout", "0")
      .option("threads", "T", "compute threads (0: all cores; CPU results are bit-identical at any count)", "0")
      .flag("resume", "continue RUN from RUN/last.safetensors (same settings)")
      .option("init-from", "F", "initial weights: a torchvision backbone or a cxr checkpoint (safetensors)")
      .option("freeze-backbone-epochs", "K", "train only the heads for the first K epochs", "0")
      .option("pos-weight", "auto|none", "BCE positive weights: negatives/positives per class, or 1", "auto")
      .option("box-loss-weight", "X", "weight of the box regression loss", "1")
      .option("limit", "N", "use at most N images of each split (0: all)", "0")
      .option("cache", "DIR", "decoded-image cache folder")
      .flag("strict", "an unreadable image is an error (default: skipped with a warning)")
      .option("patience", "P", "early stop after P epochs without a better val AUROC (0: never)", "0")
      .option("grad-clip", "X", "clip the global gradient norm at X (0: off)", "0")
      .flag("skip-nonfinite", "skip (count and log) a step whose loss or gradient is NaN/inf instead of stopping")
      .flag("cuda-graph", "CUDA: capture the training step once as a CUDA graph and replay it (docs/speed.md)")
      .flag("no-augment", "no training augmentation")
      .flag("sync-bn", "distributed runs: batch-norm statistics over all ranks' images (SyncBatchNorm)")
      .option("dist-backend", "mpi|nccl", "distributed runs (mpirun/srun): how gradients travel", "mpi")
      .option("dist-timeout", "S", "distributed runs: a collective not done in S seconds ends the job", "60")
      .option("bucket-mb", "MB", "distributed runs: gradients are all-reduced in buckets of about MB megabytes", "25");
  add_data_format(args);
  add_batch_size(args, "images per step", 16);
  add_device(args, "where to train");
  add_workers(args);
  add_precision(args);
  add_tf32(args);
  add_kernels(args);
  add_quiet(args, "no progress bar, only epoch summaries");
  if (auto code = parse_command_line(args, argc, argv, out, std::cerr)) return *code;
  TrainOptions o;
  o.data_dir = args.get("data");
  o.data_dirs = args.get_all("data");
  o.reader = reader_arg(args);
  o.out_dir = args.get("out");
  o.model = args.get("model");
  o.image_size = int_arg(args, "image-size");
  o.epochs = int_arg(args, "epochs");
  o.batch_size = batch_size_arg(args);
  o.lr = args.get_double("lr");
  o.optimizer = args.get("optimizer");
  o.weight_decay = args.get_double("weight-decay");
  o.schedule = args.get("schedule");
  o.warmup_steps = args.get_int("warmup");
  o.device = device_arg(args);
  o.precision = precision_arg(args);
  o.tf32 = tf32_arg(args);
  o.kernels = kernels_arg(args);
  o.workers = workers_arg(args);
  o.seed = args.get_u64("seed");
  o.threads = int_arg(args, "threads");
  o.resume = args.flag_set("resume");
  o.init_from = args.has("init-from") ? args.get("init-from") : "";
  o.freeze_backbone_epochs = int_arg(args, "freeze-backbone-epochs");
  const std::string pw = args.get("pos-weight");
  if (pw != "auto" && pw != "none") throw UsageError("--pos-weight must be auto or none, got '" + pw + "'");
  o.pos_weight_auto = pw == "auto";
  o.box_loss_weight = args.get_double("box-loss-weight");
  o.limit = args.get_int("limit");
  o.cache_dir = args.has("cache") ? args.get("cache") : "";
  o.strict = args.flag_set("strict");
  o.patience = int_arg(args, "patience");
  o.grad_clip = args.get_double("grad-clip");
  o.augment = !args.flag_set("no-augment");
  o.skip_nonfinite = args.flag_set("skip-nonfinite");
  o.cuda_graph = args.flag_set("cuda-graph");
  o.quiet = quiet_arg(args);
  o.command_line = join_command("train", argc, argv);
  o.sync_bn = args.flag_set("sync-bn");
  o.bucket_mb = args.get_double("bucket-mb");

  // Distributed (mpirun / srun): one process per device.
  const std::unique_ptr<dist::Communicator> comm = join_job(
      o.device, {.backend = dist::parse_backend(args.get("dist-backend")), .timeout_seconds = args.get_double("dist-timeout")});
  if (comm->size() == 1 && o.sync_bn)
    out << "note: --sync-bn has no effect in a single process (start the run with mpirun -np N)\n";
  o.comm = comm.get();
  o.hooks.after_step = fault_hook(comm->rank());
  return train_exit_code(train_model(o, out));  // 130 / 143 after SIGINT / SIGTERM (docs/reliability.md)
}

}  // namespace cxr::cli
