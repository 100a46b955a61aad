// CPU training does not depend on the OpenMP thread count: a few resnet18 training steps (32 px,
// batch 4: forward, the fused loss, backward, AdamW) give the same losses, gradient norms,
// weights and batch-norm statistics at 1, 2 and 3 threads, bit for bit; and so does a whole
// `train_cxr train` epoch with gradient clipping at --threads 1, 2 and 3 (every tensor of
// last.safetensors). The ops one by one: tests/ops/test_cpu_threads.cpp.
#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/reduce.h"
#include "layers/init.h"
#include "models/model_factory.h"
#include "tests/data/data_test_util.h"
#include "tests/op_check.h"
#include "tests/train/train_test_util.h"
#include "cli/cmd_train.h"
#include "data/loader.h"
#include "train/train_step.h"
#include "train/trainer.h"

using namespace cxr;
using namespace cxr::test;

namespace {

struct Run {
  std::vector<float> losses, grad_norms;
  std::vector<std::string> names;
  std::vector<std::vector<float>> state;  // parameters, then buffers, in the model's order
};

// Three steps on a fixed batch from the same initialisation, with `threads` OpenMP threads.
Run train_steps(int threads) {
  const ThreadCountScope scope(threads);
  std::mt19937_64 rng(7);
  const std::int64_t N = 4, C = 14;
  const Tensor x = Tensor::randn({N, 3, 32, 32}, rng);
  Tensor y = Tensor::uniform({N, C}, rng, 0.f, 1.f), m = Tensor::uniform({N, C}, rng, 0.f, 1.f);
  for (std::int64_t i = 0; i < N * C; ++i) {
    y.f32()[i] = y.f32()[i] < 0.3f ? 1.f : 0.f;
    m.f32()[i] = y.f32()[i] * (m.f32()[i] < 0.5f ? 1.f : 0.f);
  }
  const Tensor t = Tensor::uniform({N, C, 4}, rng, 0.1f, 0.9f);
  manual_seed(1);
  std::unique_ptr<CxrModel> model = make_model("resnet18", static_cast<int>(C));
  model->train();
  model->set_input_grad(false);
  // The trainer's step (train/train_step.h): AdamW without weight decay, positive weights 1.
  Optimizer optim(*model, {.kind = OptimizerKind::adamw, .weight_decay = 0.0});
  TrainStep train_step(*model, optim, {.pos_weight = Tensor::full({C}, 1.f)});
  data::Batch batch;
  batch.images = x;
  batch.labels = y;
  batch.boxes = t;
  batch.box_mask = m;
  Run r;
  for (int step = 1; step <= 3; ++step) {
    r.losses.push_back(static_cast<float>(train_step.run(batch, 1e-3, step).loss));
    std::vector<Tensor> grads;
    for (auto& [name, p] : model->named_parameters()) grads.push_back(p->grad);
    r.grad_norms.push_back(global_norm(grads).item());
  }
  for (auto& [name, p] : model->named_parameters()) {
    r.names.push_back(name);
    r.state.push_back(p->value.to_vector());
  }
  for (auto& [name, b] : model->named_buffers()) {
    if (b->dtype() != DType::F32) continue;  // num_batches_tracked
    r.names.push_back(name);
    r.state.push_back(b->to_vector());
  }
  return r;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("resnet18 training steps on the CPU: the same weights at 1, 2 and 3 threads, bit for bit" *
          doctest::test_suite("train")) {
  const Run one = train_steps(1);
  CHECK(one.losses.back() < one.losses.front());  // it trained
  for (int threads : {2, 3}) {
    CAPTURE(threads);
    const Run r = train_steps(threads);
    CHECK(same_bits(r.losses, one.losses));
    CHECK(same_bits(r.grad_norms, one.grad_norms));
    REQUIRE(r.names == one.names);
    std::vector<std::string> differ;
    for (std::size_t i = 0; i < r.state.size(); ++i)
      if (!same_bits(r.state[i], one.state[i])) differ.push_back(r.names[i]);
    CHECK_MESSAGE(differ.empty(), differ.size(), " of ", r.names.size(), " tensors differ from 1 thread, first ",
                  (differ.empty() ? std::string() : differ.front()));
  }
}

TEST_CASE("train_cxr train on the CPU: the same checkpoint at --threads 1, 2 and 3" * doctest::test_suite("train")) {
  test::TempDir dir("cpu_threads");
  auto train = [&](int threads) {
    const std::string out = dir / ("threads" + std::to_string(threads));
    const std::vector<std::string> args{"--data", test::small_synth_dir(), "--out", out, "--model", "resnet18",
                                        "--image-size", "32", "--epochs", "1", "--batch-size", "8", "--workers", "2",
                                        "--seed", "3", "--lr", "0.001", "--grad-clip", "1", "--threads",
                                        std::to_string(threads), "--quiet"};
    REQUIRE(test::run_command(cli::run_train, args) == 0);
    return out + "/last.safetensors";
  };
  const std::string one = train(1);
  for (int threads : {2, 3}) {
    CAPTURE(threads);
    const std::vector<std::string> differ = test::differing_tensors(one, train(threads));
    CHECK_MESSAGE(differ.empty(), differ.size(), " tensors differ from --threads 1, first ",
                  (differ.empty() ? std::string() : differ.front()));
  }
}
