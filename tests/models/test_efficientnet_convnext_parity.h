// Parity of whole models with torchvision (EfficientNet-B0, ConvNeXt-Tiny): shared helpers
// of tests/models/test_efficientnet_parity.cpp and test_convnext_parity.cpp.
//
// The golden files tests/golden/<arch>.json come from tests/gen/models_efficientnet_convnext.py,
// which fills every parameter and buffer of torchvision's model from det_init by the rule that
// det_init_model() below repeats (so no weights are committed), runs eval and one training
// forward/backward of L = sum(logits * R1) + sum(raw boxes * R2), and records probabilities,
// boxes, gradient norms and sampled gradient elements.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "models/heads.h"

// Namespaced apart from other model tests' helpers of similar names.
namespace cxr::test::tv_parity {

// Fills parameters and buffers by name (see the generator's docstring): "<arch>.<key>".
void det_init_model(Module& m, const std::string& arch);

struct TrainRun {
  Tensor probs, boxes;  // sigmoid(logits) (N, 14), sigmoid(raw boxes) (N, 14, 4); CPU
  double loss = 0;
  std::vector<std::pair<std::string, Tensor>> grads;    // every parameter's gradient, CPU
  std::vector<std::pair<std::string, Tensor>> buffers;  // buffers after the step, CPU
};

// Runs on the device the model sits on; inputs from det_init ("<arch>.input", R1, R2).
Prediction eval_run(CxrModel& m, const std::string& arch, const Shape& input_shape);
// eval_run as train_cxr eval and predict run it, inside a FrozenWeightsScope: on the CPU each
// convolution + batch norm then runs with the batch norm folded into its weights
// (kernels/fold_batch_norm.h), which rounds differently from eval_run.
Prediction inference_run(CxrModel& m, const std::string& arch, const Shape& input_shape);
TrainRun train_run(CxrModel& m, const std::string& arch, const Shape& input_shape);

// CHECKs against the golden file: names and shapes of parameters and buffers (in order).
void check_keys(CxrModel& m, const nlohmann::json& golden);
// Eval: probabilities and boxes, max abs <= 1e-4.
void check_eval(const Prediction& p, const nlohmann::json& golden);
// Train: probabilities, boxes, the loss, every gradient norm and sampled element (relative to
// the parameter's gradient norm, 1e-3; or 2x the golden's "yardstick" where it gives one and that
// is larger), sampled running statistics.
void check_train(const TrainRun& r, const nlohmann::json& golden);
// The same model on the CPU and on the CUDA device (emulated or real): eval outputs and one
// training step, every gradient element compared relative to its parameter's gradient norm.
void check_device_against_cpu(const std::function<std::unique_ptr<CxrModel>()>& make, const std::string& arch,
                              const Shape& input_shape);

}  // namespace cxr::test::tv_parity
