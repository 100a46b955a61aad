// Parameter initialisation as PyTorch does it, from one process-wide generator.
//
//   manual_seed(0);                      // like torch.manual_seed: fixes every init below
//   kaiming_normal_fan_out(w);           // torchvision ResNet / EfficientNet convolutions
//   kaiming_uniform_default(w, fan_in);  // nn.Conv2d / nn.Linear default (a = sqrt(5))
//
// Layers create their parameters on the CPU with PyTorch's default init; a model applies
// its own scheme afterwards (as torchvision's constructors do), then moves with to().
// Dropout-like layers draw their mask seed from the same generator (next_layer_seed), so
// a model built after manual_seed(s) drops the same elements on every device.
// The values are not PyTorch's (a different generator); the distributions are.
#pragma once

#include <cstdint>
#include <random>

#include "tensor/tensor.h"

namespace cxr {

void manual_seed(std::uint64_t seed);
std::mt19937_64& init_generator();
std::uint64_t next_layer_seed();

// fan_in = size(1) * receptive field, fan_out = size(0) * receptive field (torch's rule).
std::int64_t fan_in(const Shape& s);
std::int64_t fan_out(const Shape& s);

// All act in place on CPU f32 tensors.
void uniform_(Tensor& t, float lo, float hi);
void normal_(Tensor& t, float mean, float stddev);
// Normal(mean, std) resampled until inside [lo, hi] (absolute bounds, as torch's).
void trunc_normal_(Tensor& t, float mean, float stddev, float lo = -2.f, float hi = 2.f);
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)): kaiming_uniform_(a = sqrt(5)) of weights, and biases.
void kaiming_uniform_default(Tensor& t, std::int64_t fan_in);
// N(0, 2 / fan_out): kaiming_normal_(mode="fan_out", nonlinearity="relu").
void kaiming_normal_fan_out(Tensor& t);

}  // namespace cxr
