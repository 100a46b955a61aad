// The options that several subcommands of train_cxr share, each declared (name, value, help,
// default) and checked here once:
//   --device cpu|cuda      train, eval, predict
//   --workers W|auto       train, eval, demo
//   --batch-size B         train, eval, predict (each with its own default)
//   --precision fp32|bf16  train, eval, predict, demo   (kernels/execution.h)
//   --tf32                 train, eval, predict
//   --kernels cxr|library  train, eval, predict   (kernels/library.h)
//   --quiet                every command that shows progress
//   --format, --uncertain, --frontal-only   train, eval, data-info (data/formats.h)
//
//   add_device(args, "where to train");  ...  args.parse(...);
//   o.device = device_arg(args);
#pragma once

#include <memory>
#include <ostream>
#include <string>

#include "cli/cli_args.h"
#include "data/formats.h"
#include "dist/communicator.h"
#include "kernels/execution.h"
#include "tensor/dtype.h"

namespace cxr::cli {

Args& add_device(Args& args, const std::string& help);
Args& add_workers(Args& args);
Args& add_batch_size(Args& args, const std::string& help, int default_value);
Args& add_precision(Args& args);
Args& add_tf32(Args& args);
Args& add_kernels(Args& args);
Args& add_quiet(Args& args, const std::string& help);
Args& add_data_format(Args& args);

Device device_arg(const Args& args);         // UsageError unless cpu, cuda or cuda-emu
int workers_arg(const Args& args);
int batch_size_arg(const Args& args);
Precision precision_arg(const Args& args);  // fp32 | bf16; UsageError otherwise
bool tf32_arg(const Args& args);
KernelChoice kernels_arg(const Args& args);  // cxr | library; UsageError otherwise
bool quiet_arg(const Args& args);
data::ReaderOptions reader_arg(const Args& args);  // UsageError on an unknown format or policy

// The math of a command that records nothing (eval, predict): --precision, --tf32 and --kernels
// (where declared) set for the command's scope, so a process that runs several commands (the tests)
// is not left in another mode. train carries them in TrainOptions instead (the checkpoint records them).
class MathScope {
 public:
  explicit MathScope(const Args& args);

 private:
  ExecutionScope scope_;
};

// --kernels library (eval, predict): throws, naming why, where the libraries cannot run on
// `device`; otherwise says which were found (unless quiet). Nothing for --kernels cxr.
void require_kernels(const Args& args, Device device, bool quiet, std::ostream& out);

int int_arg(const Args& args, const std::string& name);

// This process's place in a distributed job (mpirun / srun; a single process otherwise): on
// --device cuda it takes GPU local rank % GPUs first, then joins with the back end asked for.
std::unique_ptr<dist::Communicator> join_job(Device device, const dist::CommOptions& options = {});

}  // namespace cxr::cli
