// The options several subcommands share (see common_flags.h).
#include "cli/common_flags.h"

#include "data/loader.h"
#include "kernels/library.h"
#include "tensor/backend.h"

namespace cxr::cli {

Args& add_device(Args& args, const std::string& help) { return args.option("device", "cpu|cuda", help, "cpu"); }

Args& add_workers(Args& args) {
  return args.option("workers", "W|auto",
                     "data loader threads; auto: 2, then per epoch as many as keep up with the model (at most the "
                     "cores)",
                     "auto");
}

Args& add_batch_size(Args& args, const std::string& help, int default_value) {
  return args.option("batch-size", "B", help, std::to_string(default_value));
}

// --precision bf16: mixed precision (kernels/execution.h), convolutions and linear layers with
// bf16 operands and f32 accumulation, f32 master weights; like torch.autocast(bfloat16).
Args& add_precision(Args& args) {
  return args.option("precision", "fp32|bf16",
                     "fp32, or bf16: mixed precision (conv/linear operands in bf16, f32 accumulation and weights)",
                     "fp32");
}

// --tf32: fp32 convolutions and matrix products on the GPU may use TF32 tensor cores
// (kernels/execution.h; PyTorch's cuDNN default). Off: device results match the CPU to fp32.
Args& add_tf32(Args& args) {
  return args.flag("tf32", "GPU: let fp32 convolutions and matmuls use TF32 tensor cores (faster, ~1e-3 relative error)");
}

// --kernels library: cuDNN and cuBLASLt for convolutions, batch norm and linear layers on a GPU
// (kernels/library.h); the default, cxr, runs the hand-written kernels everywhere.
Args& add_kernels(Args& args) {
  return args.option("kernels", "cxr|library",
                     "GPU: convolutions, batch norm and linear layers on the hand-written kernels (cxr) or on cuDNN "
                     "and cuBLASLt (library)",
                     "cxr");
}

Args& add_quiet(Args& args, const std::string& help) { return args.flag("quiet", help); }

Device device_arg(const Args& a) {
  const std::string d = a.get("device");
  if (d != "cpu" && d != "cuda" && d != "cuda-emu") throw UsageError("--device must be cpu or cuda, got '" + d + "'");
  return parse_device(d);
}

int int_arg(const Args& a, const std::string& name) { return static_cast<int>(a.get_int(name)); }

int workers_arg(const Args& a) {
  if (a.get("workers") == "auto") return data::kAutoWorkers;
  const int w = int_arg(a, "workers");
  if (w < 1) throw UsageError("--workers must be a positive number or auto, got " + a.get("workers"));
  return w;
}

int batch_size_arg(const Args& a) { return int_arg(a, "batch-size"); }

Precision precision_arg(const Args& a) {
  const std::string p = a.get("precision");
  if (p != "fp32" && p != "bf16") throw UsageError("--precision must be fp32 or bf16, got '" + p + "'");
  return p == "bf16" ? Precision::BF16 : Precision::FP32;
}

bool tf32_arg(const Args& a) { return a.is_flag("tf32") && a.flag_set("tf32"); }

KernelChoice kernels_arg(const Args& a) {
  const std::string k = a.get("kernels");
  const std::optional<KernelChoice> choice = parse_kernel_choice(k);
  if (!choice) throw UsageError("--kernels must be cxr or library, got '" + k + "'");
  return *choice;
}

bool quiet_arg(const Args& a) { return a.flag_set("quiet"); }

MathScope::MathScope(const Args& args)
    : scope_({.precision = precision_arg(args),
              .allow_tf32 = tf32_arg(args),
              .kernels = args.declares("kernels") ? std::optional(kernels_arg(args)) : std::nullopt}) {}

void require_kernels(const Args& args, Device device, bool quiet, std::ostream& out) {
  if (kernels_arg(args) != KernelChoice::Library) return;
  const std::string libraries = library::require(device);
  if (!quiet) out << "kernels: library (" << libraries << ")\n";
}

std::unique_ptr<dist::Communicator> join_job(Device device, const dist::CommOptions& options) {
  const dist::WorldInfo world = dist::world_from_environment();
  if (world.distributed() && device == Device::CUDA) backend::select_device(world.local_rank);
  return dist::make_communicator(world, options);
}

Args& add_data_format(Args& args) {
  std::string names;
  for (const auto& n : data::format_names()) names += (names.empty() ? "" : "|") + n;
  return args.option("format", "auto|" + names, "data set format (auto: detected from the folder's files)", "auto")
      .option("uncertain", "ignore|zeros|ones",
              "CheXpert/MIMIC uncertain (-1) labels: missing (U-Ignore), negative (U-Zeros), positive (U-Ones)", "ignore")
      .flag("frontal-only", "CheXpert/MIMIC/PadChest: frontal views (PA, AP) only");
}

data::ReaderOptions reader_arg(const Args& args) {
  data::ReaderOptions o;
  o.format = args.get("format");
  bool known = o.format == "auto";
  for (const auto& n : data::format_names()) known |= n == o.format;
  if (!known) throw UsageError("--format: unknown format '" + o.format + "'");
  const std::string u = args.get("uncertain");
  if (u != "ignore" && u != "zeros" && u != "ones")
    throw UsageError("--uncertain must be ignore, zeros or ones, got '" + u + "'");
  o.uncertain = data::parse_uncertain_policy(u);
  o.frontal_only = args.flag_set("frontal-only");
  return o;
}

}  // namespace cxr::cli
