// The library path (--kernels library, kernels/library.h) on a real GPU: whole models' training
// forward and backward against the CPU, and checkpoints moving between the two settings. The op
// cases (tests/op_check.cpp) check every op on the library path with the hand-written kernels'
// bounds. Skipped without a GPU and on the emulated device, which has no library path
// (tests/train/test_kernels_option.cpp checks that it says so).
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <string>

#include "checkpoint/checkpoint.h"
#include "cli/cmd_train.h"
#include "data/dataset.h"
#include "kernels/execution.h"
#include "layers/init.h"
#include "models/model_factory.h"
#include "tensor/backend.h"
#include "tests/data/data_test_util.h"
#include "tests/op_check.h"
#include "tests/train/train_test_util.h"

using namespace cxr;
using namespace cxr::test;

namespace {

bool skip_library_cases() { return skip_gpu_cases() || backend::is_emulated(); }

double relative_difference(const std::vector<float>& x, const std::vector<float>& y) {
  REQUIRE(x.size() == y.size());
  double num = 0, den = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i])) return INFINITY;
    num += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
    den += double(y[i]) * y[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

struct Step {
  std::vector<float> logits, boxes;
  std::vector<std::pair<std::string, std::vector<float>>> grads, buffers;
};

// One training-mode forward and backward (batch 4, 64 px): batch statistics, running-statistic
// updates, every parameter's gradient.
Step training_step(const std::string& arch, Device device, KernelChoice kernels, Precision precision) {
  const ExecutionScope math({.precision = precision, .kernels = kernels});
  manual_seed(21);
  std::unique_ptr<CxrModel> m = make_model(arch, 14);
  m->train();
  m->to(device);
  std::mt19937_64 rng(22);
  const Tensor x = Tensor::randn({4, 3, 64, 64}, rng).to(device);
  const Tensor dl = Tensor::randn({4, 14}, rng).to(device), db = Tensor::randn({4, 14, 4}, rng).to(device);
  m->zero_grad();
  const HeadOutputs o = m->forward_heads(x);
  m->backward_heads(dl, db);
  Step s{o.logits.cpu().to_vector(), o.boxes.cpu().to_vector(), {}, {}};
  for (auto& [name, p] : m->named_parameters())
    if (p->grad.defined()) s.grads.emplace_back(name, p->grad.cpu().to_vector());
  for (auto& [name, b] : m->named_buffers())
    if (b->dtype() == DType::F32) s.buffers.emplace_back(name, b->cpu().to_vector());
  return s;
}

// All tensors of a list taken as one vector; the worst single one into *worst.
double list_difference(const std::vector<std::pair<std::string, std::vector<float>>>& a,
                       const std::vector<std::pair<std::string, std::vector<float>>>& b, std::string* worst) {
  REQUIRE(a.size() == b.size());
  std::vector<float> x, y;
  double worst_d = -1;
  for (std::size_t i = 0; i < a.size(); ++i) {
    x.insert(x.end(), a[i].second.begin(), a[i].second.end());
    y.insert(y.end(), b[i].second.begin(), b[i].second.end());
    const double d = relative_difference(a[i].second, b[i].second);
    if (d > worst_d) {
      worst_d = d;
      *worst = a[i].first + " " + std::to_string(d);
    }
  }
  return relative_difference(x, y);
}


}  // namespace

TEST_CASE("--kernels library: each model's training forward and backward on the GPU matches the CPU" *
          doctest::test_suite("cuda") * doctest::skip(skip_library_cases())) {
  // fp32 (FMA math, no TF32): the libraries sum in other orders than the CPU, nothing else.
  for (const std::string arch : {"resnet18", "resnet50", "efficientnet_b0", "convnext_tiny"}) {
    CAPTURE(arch);
    const Step cpu = training_step(arch, Device::CPU, KernelChoice::Cxr, Precision::FP32);
    const Step lib = training_step(arch, Device::CUDA, KernelChoice::Library, Precision::FP32);
    std::string worst_grad, worst_buffer;
    const double logits = relative_difference(lib.logits, cpu.logits), boxes = relative_difference(lib.boxes, cpu.boxes);
    const double grads = list_difference(lib.grads, cpu.grads, &worst_grad);
    const double buffers = list_difference(lib.buffers, cpu.buffers, &worst_buffer);
    MESSAGE(arch << " library vs CPU: logits " << logits << ", boxes " << boxes << ", gradients " << grads
                 << " (worst " << worst_grad << "), running statistics " << buffers << " (worst " << worst_buffer
                 << ")");
    CHECK(logits < 1e-3);
    CHECK(boxes < 1e-3);
    CHECK(grads < 1e-2);
    CHECK(buffers < 1e-4);
  }
}

TEST_CASE("--kernels library --precision bf16: resnet18's training step on the GPU matches the CPU's bf16 step" *
          doctest::test_suite("cuda") * doctest::skip(skip_library_cases())) {
  // The floor as in tests/models/test_mixed_precision.cpp: two bf16 runs round differently; the
  // library's bf16 gradients are also rounded to bf16 once (cuDNN's one type per convolution).
  const Step cpu = training_step("resnet18", Device::CPU, KernelChoice::Cxr, Precision::BF16);
  const Step lib = training_step("resnet18", Device::CUDA, KernelChoice::Library, Precision::BF16);
  const Step hand = training_step("resnet18", Device::CUDA, KernelChoice::Cxr, Precision::BF16);
  std::string worst, ignored;
  const double grads = list_difference(lib.grads, cpu.grads, &worst);
  const double floor = list_difference(hand.grads, cpu.grads, &ignored);
  MESSAGE("resnet18 bf16 library vs CPU: logits " << relative_difference(lib.logits, cpu.logits) << ", gradients "
                                                  << grads << " (worst " << worst << "); hand-written kernels vs CPU "
                                                  << floor);
  CHECK(relative_difference(lib.logits, cpu.logits) < 2e-2);
  CHECK(grads < std::max(0.1, 2 * floor));
}

TEST_CASE("a checkpoint trained with --kernels library predicts with cxr, and the reverse" *
          doctest::test_suite("cuda") * doctest::skip(skip_library_cases())) {
  TempDir dir("kernels_checkpoints");
  data::Report report(data::Report::Echo::Off);
  const data::Dataset ds = data::Dataset::load(small_synth_dir(), report);
  for (const std::string trained : {"library", "cxr"}) {
    CAPTURE(trained);
    const std::string run = dir / ("run_" + trained);
    REQUIRE(run_command(cli::run_train, {"--data", small_synth_dir(), "--out", run, "--model", "resnet18",
                                         "--image-size", "32", "--epochs", "1", "--batch-size", "8", "--workers", "2",
                                         "--seed", "3", "--device", "cuda", "--kernels", trained, "--quiet"}) == 0);
    CHECK(load_checkpoint(run + "/best.safetensors").meta.extra.at("kernels") == trained);
    std::vector<std::vector<double>> p;
    for (const std::string kernels : {"cxr", "library"}) {
      const std::string out = dir / ("pred_" + trained + "_" + kernels);
      REQUIRE(run_command(cli::run_predict, {"--checkpoint", run + "/best.safetensors", "--out", out, "--device",
                                             "cuda", "--kernels", kernels, ds.image_path(0), ds.image_path(1),
                                             "--quiet"}) == 0);
      p.push_back(prediction_probabilities(out + "/predictions.csv"));
    }
    const std::string out = dir / ("pred_" + trained + "_cpu");
    REQUIRE(run_command(cli::run_predict, {"--checkpoint", run + "/best.safetensors", "--out", out,
                                           ds.image_path(0), ds.image_path(1), "--quiet"}) == 0);
    const std::vector<double> cpu = prediction_probabilities(out + "/predictions.csv");
    REQUIRE(cpu.size() == p[0].size());
    REQUIRE(cpu.size() == p[1].size());
    double worst = 0;
    for (std::size_t i = 0; i < cpu.size(); ++i)
      worst = std::max({worst, std::abs(p[0][i] - cpu[i]), std::abs(p[1][i] - cpu[i])});
    MESSAGE("trained with " << trained << ": max |p - p_cpu| over cxr and library predictions " << worst);
    CHECK(worst < 1e-4);
  }
}
