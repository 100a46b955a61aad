// --kernels cxr|library (kernels/library.h) where the library path cannot run: the CPU and the
// emulated device. Every command refuses it before reading data or writing a file, naming the
// reason; the ops refuse it too on the emulated device; the default (cxr) is recorded in the
// checkpoint. The library path itself runs on a real GPU only (tests/models/test_library_kernels.cpp).
#include <doctest/doctest.h>

#include <filesystem>
#include <random>

#include "checkpoint/checkpoint.h"
#include "cli/cli_args.h"
#include "cli/cmd_train.h"
#include "kernels/batch_norm.h"
#include "kernels/conv2d.h"
#include "kernels/execution.h"
#include "kernels/library.h"
#include "kernels/linear.h"
#include "tensor/backend.h"
#include "tests/data/data_test_util.h"
#include "tests/op_check.h"
#include "tests/train/train_test_util.h"

using namespace cxr;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> tiny_run(const std::string& out, const std::string& device) {
  return {"--data", test::small_synth_dir(), "--out", out, "--model", "resnet18", "--image-size", "16", "--epochs",
          "1", "--batch-size", "8", "--limit", "8", "--workers", "1", "--device", device, "--quiet"};
}

std::vector<std::string> with(std::vector<std::string> args, const std::vector<std::string>& extra) {
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

}  // namespace

TEST_CASE("--kernels library on the CPU: train, eval and predict refuse it, naming the device" *
          doctest::test_suite("train")) {
  test::TempDir dir("kernels_cpu");
  const std::string run = dir / "run";
  CHECK_THROWS_WITH_AS(test::run_command(cli::run_train, with(tiny_run(run, "cpu"), {"--kernels", "library"})),
                       doctest::Contains("--kernels library runs cuDNN and cuBLASLt on a CUDA device; this run is "
                                         "on the cpu"),
                       Error);
  CHECK_FALSE(fs::exists(fs::path(run) / "log.txt"));  // refused before anything was written
  CHECK(kernel_choice() == KernelChoice::Cxr);          // the scope did not leak
  CHECK_THROWS_WITH_AS(test::run_command(cli::run_eval, {"--checkpoint", dir / "none.safetensors", "--data",
                                                         test::small_synth_dir(), "--out", dir / "eval", "--kernels",
                                                         "library"}),
                       doctest::Contains("this run is on the cpu"), Error);
  CHECK_THROWS_WITH_AS(test::run_command(cli::run_predict, {"--checkpoint", dir / "none.safetensors", "--out",
                                                            dir / "pred", "--kernels", "library", "x.png"}),
                       doctest::Contains("this run is on the cpu"), Error);
  CHECK(kernel_choice() == KernelChoice::Cxr);
}

TEST_CASE("--kernels takes cxr or library only" * doctest::test_suite("train")) {
  test::TempDir dir("kernels_usage");
  CHECK_THROWS_WITH_AS(test::run_command(cli::run_train, with(tiny_run(dir / "run", "cpu"), {"--kernels", "cudnn"})),
                       doctest::Contains("--kernels must be cxr or library, got 'cudnn'"), cli::UsageError);
}

TEST_CASE("--kernels cxr (the default) is recorded in the checkpoint" * doctest::test_suite("train")) {
  test::TempDir dir("kernels_meta");
  const std::string run = dir / "run";
  REQUIRE(test::run_command(cli::run_train, tiny_run(run, "cpu")) == 0);
  CHECK(load_checkpoint(run + "/last.safetensors").meta.extra.at("kernels") == "cxr");
  const std::string explicit_run = dir / "run_cxr";
  REQUIRE(test::run_command(cli::run_train, with(tiny_run(explicit_run, "cpu"), {"--kernels", "cxr"})) == 0);
  CHECK(load_checkpoint(explicit_run + "/last.safetensors").meta.extra.at("kernels") == "cxr");
}

TEST_CASE("--kernels library on the emulated device: the commands and the ops refuse it, naming the device" *
          doctest::test_suite(test::gpu_suite()) * doctest::skip(!backend::is_emulated())) {
  test::TempDir dir("kernels_emu");
  const std::string run = dir / "run";
  CHECK_THROWS_WITH_AS(test::run_command(cli::run_train, with(tiny_run(run, "cuda"), {"--kernels", "library"})),
                       doctest::Contains("the emulated CUDA device (cuda-emu) runs only the hand-written kernels"),
                       Error);
  CHECK_FALSE(fs::exists(fs::path(run) / "log.txt"));
  CHECK_THROWS_WITH_AS(library::require(Device::CUDA), doctest::Contains("cuDNN and cuBLASLt need a real GPU"), Error);
  // The dispatch of each op routes a device tensor to the library, which refuses; CPU tensors
  // ignore the setting.
  std::mt19937_64 rng(1);
  const Tensor x = Tensor::randn({2, 3, 6, 6}, rng), w = Tensor::randn({4, 3, 3, 3}, rng);
  const Tensor xd = x.to(Device::CUDA), wd = w.to(Device::CUDA);
  const Tensor ones = Tensor::full({3}, 1.f, Device::CUDA), zeros = Tensor::zeros({3}, DType::F32, Device::CUDA);
  const ExecutionScope library({.kernels = KernelChoice::Library});
  CHECK_NOTHROW(conv2d_forward(x, w, Tensor(), {}));
  CHECK_THROWS_WITH_AS(conv2d_forward(xd, wd, Tensor(), {}), doctest::Contains("emulated CUDA device"), Error);
  CHECK_THROWS_WITH_AS(linear(Tensor::randn({2, 3}, rng).to(Device::CUDA), Tensor::randn({4, 3}, rng).to(Device::CUDA),
                              Tensor()),
                       doctest::Contains("emulated CUDA device"), Error);
  Tensor rm, rv;
  CHECK_THROWS_WITH_AS(batch_norm2d_train(BnActivation::ReLU, xd, ones, zeros, rm, rv),
                       doctest::Contains("emulated CUDA device"), Error);
}
