// Activation memory of a training forward: the device bytes a model keeps from its forward for
// its backward, per image, at each precision. This is what grows with the batch and what sets
// the largest batch that fits (issue 8, point 5: "at no more memory" than PyTorch).
//
//   kept(B) = device bytes in use after forward_heads on a batch of B images (train mode, no
//             input gradient, as the trainer) - bytes in use before it (weights, gradients, input)
//   peak(B) = the allocator's high-water mark over forward, the fused loss and backward_heads,
//             less the same bytes in use before: what the step needs beyond the model's state
//   per image = (kept(B2) - kept(B1)) / (B2 - B1), and the same for the peak
// The difference cancels what does not grow with the batch (the bf16 weight copies under
// autocast, the statistics of batch norm). The allocator counts requested bytes rounded to its
// granules (tensor/allocator.h: 512 B below 1 MiB, 2 MiB above), as torch's allocator does.
// The numbers do not depend on the speed of the device, so the emulated device gives the same
// figures as a GPU (slowly: resnet50 at 64 px on 1 and 2 images takes about a minute).
// The peak is above the kept bytes by what the backward holds at once: the gradients flowing
// between layers and the workspaces, while the kept tensors are released layer by layer.
// scripts/activation-memory puts them beside PyTorch's (saved tensors of autograd).
//
//   bench_activation_memory [--models resnet50,efficientnet_b0] [--pixels 224] [--batches 1,2]
//                           [--json FILE]
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/cxr_loss.h"
#include "kernels/execution.h"
#include "layers/init.h"
#include "models/model_factory.h"
#include "tensor/allocator.h"
#include "tensor/backend.h"
#include "tensor/tensor.h"

using namespace cxr;

namespace {

constexpr int kClasses = 14;

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

struct Options {
  std::vector<std::string> models = {"resnet50", "efficientnet_b0"};
  std::vector<std::string> precisions = {"fp32", "bf16"};
  int pixels = 224;
  int batch_small = 1, batch_large = 2;
  std::string json;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_activation_memory: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--models") o.models = split(value());
    else if (a == "--precisions") o.precisions = split(value());
    else if (a == "--pixels") o.pixels = std::atoi(value().c_str());
    else if (a == "--batches") {
      const auto b = split(value());
      if (b.size() != 2) {
        std::fprintf(stderr, "bench_activation_memory: --batches wants two sizes, e.g. 1,2\n");
        std::exit(2);
      }
      o.batch_small = std::atoi(b[0].c_str());
      o.batch_large = std::atoi(b[1].c_str());
    } else if (a == "--json") o.json = value();
    else {
      std::fprintf(stderr,
                   "usage: bench_activation_memory [--models a,b] [--precisions fp32,bf16] [--pixels P] "
                   "[--batches B1,B2] [--json FILE]\n");
      std::exit(a == "-h" || a == "--help" ? 0 : 2);
    }
  }
  if (o.pixels < 32 || o.batch_small < 1 || o.batch_large <= o.batch_small) {
    std::fprintf(stderr, "bench_activation_memory: want --pixels >= 32 and batches 1 <= B1 < B2\n");
    std::exit(2);
  }
  return o;
}

struct StepMemory {
  std::size_t kept = 0;  // in use after the forward, beyond what was in use before it
  std::size_t peak = 0;  // high-water mark over forward, loss and backward, beyond the same
};

// The bytes a training step on `batch` images holds on the device, beyond the model's state.
StepMemory step_memory(const std::string& arch, int pixels, int batch) {
  manual_seed(0);
  std::unique_ptr<CxrModel> model = make_model(arch, kClasses);
  model->to(Device::CUDA);
  model->train();
  model->set_input_grad(false);
  model->zero_grad();  // the gradient buffers exist before the step, as in training
  std::mt19937_64 rng(1);
  const Tensor x = Tensor::randn({batch, 3, pixels, pixels}, rng, 0.f, 1.f, Device::CUDA);
  const Tensor y = Tensor::zeros({batch, kClasses}, DType::F32, Device::CUDA);
  const Tensor t = Tensor::zeros({batch, kClasses, kBoxCoords}, DType::F32, Device::CUDA);
  const Tensor pw = Tensor::full({kClasses}, 1.f, Device::CUDA);
  backend::synchronize();
  reset_peak_device_memory();
  const std::size_t before = device_memory_stats().in_use;
  StepMemory m;
  {
    HeadOutputs out = model->forward_heads(x);
    backend::synchronize();
    m.kept = device_memory_stats().in_use - before;
    CxrLoss l = cxr_loss(out.logits, y, pw, out.boxes, t, y, 1.f);
    model->backward_heads(l.dz, l.db);
    backend::synchronize();
  }
  m.peak = device_memory_stats().peak_in_use - before;
  return m;
}

int run(const Options& o) {
  if (!backend::has_device()) {
    std::fprintf(stderr, "bench_activation_memory: no CUDA device (real or emulated)\n");
    return 77;
  }
  const double MiB = 1024.0 * 1024.0;
  nlohmann::json rows = nlohmann::json::array();
  std::printf("# device %s, %d x %d px; kept = device bytes held after a training forward\n",
              backend::is_emulated() ? "cuda-emu (emulated)" : "CUDA", o.pixels, o.pixels);
  std::printf("%-16s %-5s %12s %12s %15s %15s\n", "model", "prec", "kept@B1 MiB", "kept@B2 MiB", "kept MiB/image",
              "peak MiB/image");
  for (const std::string& arch : o.models)
    for (const std::string& prec : o.precisions) {
      if (prec != "fp32" && prec != "bf16") {
        std::fprintf(stderr, "bench_activation_memory: precision '%s' is not fp32 or bf16\n", prec.c_str());
        return 2;
      }
      ExecutionScope bf16({.precision = prec == "bf16" ? Precision::BF16 : Precision::FP32});
      const StepMemory m1 = step_memory(arch, o.pixels, o.batch_small);
      const StepMemory m2 = step_memory(arch, o.pixels, o.batch_large);
      const auto per_image = [&](std::size_t a, std::size_t b) {
        return (static_cast<double>(b) - static_cast<double>(a)) / (o.batch_large - o.batch_small);
      };
      const double kept = per_image(m1.kept, m2.kept), peak = per_image(m1.peak, m2.peak);
      std::printf("%-16s %-5s %12.1f %12.1f %15.2f %15.2f\n", arch.c_str(), prec.c_str(), m1.kept / MiB,
                  m2.kept / MiB, kept / MiB, peak / MiB);
      std::fflush(stdout);
      rows.push_back({{"model", arch},
                      {"precision", prec},
                      {"pixels", o.pixels},
                      {"batches", {o.batch_small, o.batch_large}},
                      {"kept_bytes", {m1.kept, m2.kept}},
                      {"peak_bytes", {m1.peak, m2.peak}},
                      {"bytes_per_image", kept},
                      {"peak_bytes_per_image", peak}});
    }
  if (!o.json.empty()) {
    std::ofstream f(o.json);
    f << nlohmann::json{{"device", backend::is_emulated() ? "cuda-emu" : "cuda"}, {"rows", rows}}.dump(2) << "\n";
    if (!f) {
      std::fprintf(stderr, "bench_activation_memory: cannot write %s\n", o.json.c_str());
      return 1;
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_activation_memory: %s\n", e.what());
    return 1;
  }
}
