// The batch norm's pieces for a batch split over processes (kernels/batch_norm_sync.h):
//  - op cases (tests/op_check.h) of each piece, every activation: on the CPU against the
//    double-precision reference, on the device against the CPU (forward-only ops: their outputs
//    are parts of a gradient, so there are no finite differences);
//  - the composition, on the CPU and on the device: x split along N into 2 or 3 parts,
//    (a) the parts' (mean, var, count) combined with Chan's formula are the whole batch's mean
//        and variance,
//    (b) backward_elemt of each part, with the sums of backward_reduce over all parts and the
//        whole count, is that part's rows of batch_norm2d_backward's dx on the whole batch,
//    (c) the sums over parts of backward_reduce's outputs are batch_norm2d_backward's dbias and
//        dweight on the whole batch;
//    each within a bound derived from float rounding (see check_split);
//  - on the CPU, one part (the whole batch): batch_stats' mean is batch_norm2d_train's
//    saved_mean and backward_reduce's sums its dbias / dweight, bit for bit (the same loops);
//  - a bf16 x: the CPU gives the f32 op on the widened x bit for bit, the device the CPU's
//    values within f32 tolerance;
//  - a part with no images (zero sums, empty dx) and argument checks.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/batch_norm.h"
#include "kernels/batch_norm_sync.h"
#include "kernels/cast.h"
#include "tensor/backend.h"
#include "tests/op_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {

constexpr float kEps = 1e-5f;
constexpr double kUnitRoundoff = 0x1p-24;  // f32, round to nearest
const BnActivation kActivations[] = {BnActivation::Identity, BnActivation::ReLU, BnActivation::SiLU};

std::int64_t values_per_channel(const Shape& s) { return s[0] * s[2] * s[3]; }

// dy act'(z) in double, the activation chosen at run time.
double act_grad(BnActivation act, double dy, double z) {
  switch (act) {
    case BnActivation::Identity: return bn_act_grad<BnActivation::Identity>(dy, z);
    case BnActivation::ReLU: return bn_act_grad<BnActivation::ReLU>(dy, z);
    case BnActivation::SiLU: return bn_act_grad<BnActivation::SiLU>(dy, z);
  }
  return 0;
}

// ---- op cases ----------------------------------------------------------------------------------

// x as the batch norm tests draw it; mean and invstd near x's (0.5, 1/2), as the whole batch's
// statistics would be; none differentiable (forward-only ops).
Input x_input(const Shape& s) { return {s, normal(0.5f, 2.f), false}; }
Input dy_input(const Shape& s) { return {s, normal(), false}; }
Input channel_input(std::int64_t C, float lo, float hi) { return {{C}, uniform(lo, hi), false}; }
// weight, bias, mean, invstd.
std::vector<Input> parameter_inputs(std::int64_t C) {
  return {channel_input(C, 0.5f, 1.5f), channel_input(C, -0.5f, 0.5f), channel_input(C, 0.3f, 0.7f),
          channel_input(C, 0.4f, 0.6f)};
}

OpCase stats_case(Shape shape) {
  OpCase c;
  c.inputs = {x_input(shape)};
  c.forward = [](Tensors& in) {
    const BatchStats s = batch_norm2d_batch_stats(in[0]);
    return Tensors{s.mean, s.var};
  };
  c.reference = [shape](const Doubles& in) {
    std::vector<double> mean(shape[1]), var(shape[1]);
    cpu::batch_norm2d_batch_stats<double>(in[0].data(), mean.data(), var.data(), shape[0], shape[1],
                                          shape[2] * shape[3]);
    return Doubles{mean, var};
  };
  // CPU: double sums rounded once. Device: float Welford chains and merges (var ~ 4: rtol).
  c.forward_tol = {1e-6, 1e-6};
  c.device_tol = {1e-5, 1e-5};
  return c;
}

// Inputs: dy, x, weight, bias, mean, invstd.
OpCase reduce_case(BnActivation act, Shape shape) {
  OpCase c;
  c.inputs = {dy_input(shape), x_input(shape)};
  for (const Input& p : parameter_inputs(shape[1])) c.inputs.push_back(p);
  c.forward = [act](Tensors& in) {
    const BatchNormGradSums s = batch_norm2d_backward_reduce(act, in[0], in[1], in[2], in[3], in[4], in[5]);
    return Tensors{s.sum_g, s.sum_gxhat};
  };
  c.reference = [act, shape](const Doubles& in) {
    std::vector<double> sg(shape[1]), sgxh(shape[1]);
    cpu::batch_norm2d_backward_reduce<double>(act, in[0].data(), in[1].data(), in[2].data(), in[3].data(),
                                              in[4].data(), in[5].data(), sg.data(), sgxh.data(), shape[0], shape[1],
                                              shape[2] * shape[3]);
    return Doubles{sg, sgxh};
  };
  // Sums of M terms of size ~1 that cancel to ~sqrt(M): an absolute bound that grows with M.
  // CPU: each term in f32 (z, silu') within a few ulps, summed in double: <= 4 u M.
  // Device: float sums, the rounding of each partial sum: <= 64 u M (tree depth + chain).
  const double M = static_cast<double>(values_per_channel(shape));
  c.forward_tol = {4 * kUnitRoundoff * M + 1e-6, 1e-5};
  c.device_tol = {64 * kUnitRoundoff * M + 1e-6, 1e-4};
  return c;
}

// Inputs: dy, x, weight, bias, mean, invstd, sum_g, sum_gxhat; count = 3 M (this part is a third
// of the batch), the global sums of size ~sqrt(count).
OpCase elemt_case(BnActivation act, Shape shape) {
  OpCase c;
  const std::int64_t count = 3 * values_per_channel(shape);
  const float sum_scale = std::sqrt(static_cast<float>(count));
  c.inputs = {dy_input(shape), x_input(shape)};
  for (const Input& p : parameter_inputs(shape[1])) c.inputs.push_back(p);
  c.inputs.push_back({{shape[1]}, normal(0.f, sum_scale), false});
  c.inputs.push_back({{shape[1]}, normal(0.f, sum_scale), false});
  c.forward = [act, count](Tensors& in) {
    return Tensors{batch_norm2d_backward_elemt(act, in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7], count)};
  };
  c.reference = [act, shape, count](const Doubles& in) {
    std::vector<double> dx(in[0].size());
    cpu::batch_norm2d_backward_elemt<double>(act, in[0].data(), in[1].data(), in[2].data(), in[3].data(),
                                             in[4].data(), in[5].data(), in[6].data(), in[7].data(), dx.data(),
                                             shape[0], shape[1], shape[2] * shape[3], count);
    return Doubles{dx};
  };
  // Elementwise, dx ~ 1: the CPU rounds z and g to f32 (a few ulps), the device also the
  // coefficients of dx = c0 g + c1 x + c2 (a few ulps of the terms, ~4).
  c.forward_tol = {1e-6, 1e-5};
  c.device_tol = {1e-5, 1e-4};
  return c;
}

// ---- the composition over parts ----------------------------------------------------------------

// check_split's bounds, as multiples K of the unit roundoff u = 2^-24 times the
// size of what is rounded (first-order error analysis; P parts):
//  (a) the part's statistics: CPU double sums rounded once (<= u), device float Welford chains
//      and merges (<= ~(values per thread + 8 + S) u, S the blocks per channel; < 40 here);
//      scale of part p: s_p = |mean_p| + sqrt(var_p); mean +- K u sum_p w_p s_p, var +- K u
//      sum_p w_p (s_p^2 + 2 |mean_p - mean| s_p), w_p = M_p / M. Chan's formula in double.
//  (b), (c) G = sum |g|, H = sum |g xhat| over the channel's M values. The sums over parts are
//      f32 sums of P f32 values, each a rounded sum (CPU: of a double sum, <= u; device: a float
//      tree + chain, as (a)), and the whole batch's sums are rounded the same way:
//      |sum error| <= K u G (H). dx = a (g - sum_g / M - xhat sum_gxhat / M), a = weight invstd,
//      differs by a (|d sum_g| + |xhat| |d sum_gxhat|) / M plus the roundings of dx itself (CPU:
//      one each side) or of its coefficients (device: c2 = -a sum_g / M + a invstd dw mean / M,
//      so the term |mean| invstd H / M):
//      |d dx| <= K u |a| (|g| + (G + (|xhat| + |mean| invstd + 1) H) / M).
//  CPU: K = P + 3 (P + 1 roundings of the sums, one of dx each side, one to spare); device:
//  K = 32 (the longest chain of float operations in a sum here: <= 8 values per thread, 8 tree
//  levels, S <= 10 partials (the whole 4x2x70x70); 26 < 32). Measured on the emulated device:
//  errors <= 0.06 of these bounds (<= 2 u of the scale); on the CPU <= 0.25 (<= 1.2 u).

// The parts' images along N: [first, first + count).
struct Part {
  std::int64_t first, count;
};

void check_split(Device dev, BnActivation act, const Shape& shape, const std::vector<std::int64_t>& sizes) {
  const std::int64_t N = shape[0], C = shape[1], HW = shape[2] * shape[3], M = N * HW;
  std::string what = std::string(bn_activation_name(act)) + " " + shape_str(shape) + " split";
  std::vector<Part> parts;
  for (std::int64_t first = 0; std::int64_t n : sizes) {
    parts.push_back({first, n});
    first += n;
    what += " " + std::to_string(n);
  }
  what += std::string(" on ") + device_name(dev);
  CAPTURE(what);
  const double P = static_cast<double>(parts.size());
  const double K = dev == Device::CPU ? P + 3 : 32.0;
  const double u = kUnitRoundoff;

  std::mt19937_64 rng(41 + 7 * static_cast<int>(act) + static_cast<int>(parts.size()));
  const Tensor x_cpu = Tensor::randn(shape, rng, 0.5f, 2.f), dy_cpu = Tensor::randn(shape, rng);
  const Tensor w_cpu = Tensor::uniform({C}, rng, 0.5f, 1.5f), b_cpu = Tensor::uniform({C}, rng, -0.5f, 0.5f);
  const Tensor x = x_cpu.to(dev), dy = dy_cpu.to(dev), w = w_cpu.to(dev), b = b_cpu.to(dev);

  // The whole batch: batch_norm2d_train (statistics), batch_norm2d_backward.
  Tensor no_rm, no_rv;
  const BatchNormOutput fwd = batch_norm2d_train(act, x, w, b, no_rm, no_rv, 0.1f, kEps);
  const BatchNormGrads whole = batch_norm2d_backward(act, dy, x, w, b, fwd.saved_mean, fwd.saved_invstd);
  const std::vector<float> mean = fwd.saved_mean.cpu().to_vector(), invstd = fwd.saved_invstd.cpu().to_vector();
  const std::vector<float> dx_whole = whole.dx.cpu().to_vector(), dw_whole = whole.dweight.cpu().to_vector(),
                           db_whole = whole.dbias.cpu().to_vector();

  // The reference statistics, and G, H and g per element, in double.
  const std::vector<double> xd = to_doubles(x_cpu), dyd = to_doubles(dy_cpu);
  const std::vector<float> wv = w_cpu.to_vector(), bv = b_cpu.to_vector();
  std::vector<double> ref_mean(C), ref_var(C);
  cpu::channel_mean_var<double>(xd.data(), ref_mean.data(), ref_var.data(), N, C, HW);
  std::vector<double> g(xd.size()), G(C, 0.0), H(C, 0.0);
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t c = 0; c < C; ++c)
      for (std::int64_t i = 0; i < HW; ++i) {
        const std::int64_t k = (n * C + c) * HW + i;
        const double xhat = (xd[k] - mean[c]) * invstd[c];
        g[k] = act_grad(act, dyd[k], xhat * wv[c] + bv[c]);
        G[c] += std::abs(g[k]);
        H[c] += std::abs(g[k] * xhat);
      }

  // The pieces on each part; the sums over parts in f32, in part order (as an all-reduce).
  std::vector<std::vector<float>> part_mean, part_var;
  std::vector<float> sum_g(C, 0.f), sum_gxhat(C, 0.f);
  for (const Part& p : parts) {
    const Tensor xp = x.narrow(0, p.first, p.count), dyp = dy.narrow(0, p.first, p.count);
    const BatchStats s = batch_norm2d_batch_stats(xp);
    part_mean.push_back(s.mean.cpu().to_vector());
    part_var.push_back(s.var.cpu().to_vector());
    const BatchNormGradSums r =
        batch_norm2d_backward_reduce(act, dyp, xp, w, b, fwd.saved_mean, fwd.saved_invstd);
    const std::vector<float> sg = r.sum_g.cpu().to_vector(), sgxh = r.sum_gxhat.cpu().to_vector();
    for (std::int64_t c = 0; c < C; ++c) {
      sum_g[c] += sg[c];
      sum_gxhat[c] += sgxh[c];
    }
  }

  // (a) Chan's parallel formula over the parts.
  for (std::int64_t c = 0; c < C; ++c) {
    double m = 0, scale_mean = 0;
    for (std::size_t q = 0; q < parts.size(); ++q) {
      const double wq = static_cast<double>(parts[q].count * HW) / static_cast<double>(M);
      m += wq * part_mean[q][c];
      scale_mean += wq * (std::abs(part_mean[q][c]) + std::sqrt(part_var[q][c]));
    }
    double v = 0, scale_var = 0;
    for (std::size_t q = 0; q < parts.size(); ++q) {
      const double wq = static_cast<double>(parts[q].count * HW) / static_cast<double>(M);
      const double d = part_mean[q][c] - m, s = std::abs(part_mean[q][c]) + std::sqrt(part_var[q][c]);
      v += wq * (part_var[q][c] + d * d);
      scale_var += wq * (s * s + 2 * std::abs(d) * s);
    }
    const double bound_mean = K * u * scale_mean, bound_var = K * u * scale_var;
    CHECK_MESSAGE(std::abs(m - ref_mean[c]) <= bound_mean, "mean[", c, "] ", m, " vs ", ref_mean[c], " bound ",
                  bound_mean);
    CHECK_MESSAGE(std::abs(v - ref_var[c]) <= bound_var, "var[", c, "] ", v, " vs ", ref_var[c], " bound ",
                  bound_var);
  }

  // (c) the sums over parts are the whole batch's dbias and dweight.
  for (std::int64_t c = 0; c < C; ++c) {
    const double bg = K * u * G[c], bh = K * u * H[c];
    CHECK_MESSAGE(std::abs(sum_g[c] - db_whole[c]) <= bg, "sum of sum_g[", c, "] ", sum_g[c], " vs dbias ",
                  db_whole[c], " bound ", bg);
    CHECK_MESSAGE(std::abs(sum_gxhat[c] - dw_whole[c]) <= bh, "sum of sum_gxhat[", c, "] ", sum_gxhat[c],
                  " vs dweight ", dw_whole[c], " bound ", bh);
  }

  // (b) backward_elemt of each part with the global sums: the whole batch's dx, row by row.
  const Tensor sg_all = Tensor::from_vector(sum_g, {C}).to(dev), sgxh_all = Tensor::from_vector(sum_gxhat, {C}).to(dev);
  std::int64_t bad = 0;
  for (const Part& p : parts) {
    const Tensor xp = x.narrow(0, p.first, p.count), dyp = dy.narrow(0, p.first, p.count);
    const Tensor dxp = batch_norm2d_backward_elemt(act, dyp, xp, w, b, fwd.saved_mean, fwd.saved_invstd, sg_all,
                                                   sgxh_all, M);
    REQUIRE(dxp.shape() == xp.shape());
    const std::vector<float> got = dxp.cpu().to_vector();
    for (std::int64_t n = 0; n < p.count; ++n)
      for (std::int64_t c = 0; c < C; ++c)
        for (std::int64_t i = 0; i < HW; ++i) {
          const std::int64_t k = ((p.first + n) * C + c) * HW + i, kp = (n * C + c) * HW + i;
          const double xhat = std::abs((xd[k] - mean[c]) * invstd[c]);
          const double a = std::abs(static_cast<double>(wv[c]) * invstd[c]);
          const double scale =
              a * (std::abs(g[k]) + (G[c] + (xhat + std::abs(mean[c]) * invstd[c] + 1) * H[c]) / M);
          const double bound_dx = K * u * scale + 1e-30;
          const double err = std::abs(static_cast<double>(got[kp]) - dx_whole[k]);
          if (!(err <= bound_dx) && bad++ < 5)
            CHECK_MESSAGE(false, "dx[", k, "] ", got[kp], " vs ", dx_whole[k], " bound ", bound_dx);
        }
  }
  CHECK_MESSAGE(bad == 0, bad, " values of dx outside their bounds");
}

void check_all_splits(Device dev) {
  for (BnActivation act : kActivations) {
    check_split(dev, act, {4, 5, 7, 9}, {4});  // one part: the whole batch
    check_split(dev, act, {4, 5, 7, 9}, {2, 2});
    check_split(dev, act, {6, 3, 11, 13}, {1, 2, 3});
    check_split(dev, act, {5, 16, 1, 1}, {2, 3});     // one value per image and channel
    check_split(dev, act, {4, 2, 70, 70}, {2, 2});     // channels over several blocks on the device
    check_split(dev, act, {3, 4, 33, 31}, {1, 1, 1});  // three single images
  }
}

}  // namespace

CXR_OP_CASE("batch_norm2d_batch_stats 2x3x5x5") { return stats_case({2, 3, 5, 5}); }
CXR_OP_CASE("batch_norm2d_batch_stats 3x16x1x1") { return stats_case({3, 16, 1, 1}); }
CXR_OP_CASE("batch_norm2d_batch_stats 1x4x1x1 (one value per channel)") { return stats_case({1, 4, 1, 1}); }
CXR_OP_CASE("batch_norm2d_batch_stats 2x2x70x70 (split channels)") { return stats_case({2, 2, 70, 70}); }

CXR_OP_CASE("batch_norm2d_backward_reduce identity 2x3x5x5") {
  return reduce_case(BnActivation::Identity, {2, 3, 5, 5});
}
CXR_OP_CASE("batch_norm2d_backward_reduce relu 3x5x7x3") { return reduce_case(BnActivation::ReLU, {3, 5, 7, 3}); }
CXR_OP_CASE("batch_norm2d_backward_reduce silu 3x5x7x3") { return reduce_case(BnActivation::SiLU, {3, 5, 7, 3}); }
CXR_OP_CASE("batch_norm2d_backward_reduce silu 3x16x1x1") { return reduce_case(BnActivation::SiLU, {3, 16, 1, 1}); }
CXR_OP_CASE("batch_norm2d_backward_reduce relu 2x2x70x70 (split channels)") {
  return reduce_case(BnActivation::ReLU, {2, 2, 70, 70});
}

CXR_OP_CASE("batch_norm2d_backward_elemt identity 2x3x5x5") {
  return elemt_case(BnActivation::Identity, {2, 3, 5, 5});
}
CXR_OP_CASE("batch_norm2d_backward_elemt relu 3x5x7x3") { return elemt_case(BnActivation::ReLU, {3, 5, 7, 3}); }
CXR_OP_CASE("batch_norm2d_backward_elemt silu 3x5x7x3") { return elemt_case(BnActivation::SiLU, {3, 5, 7, 3}); }
CXR_OP_CASE("batch_norm2d_backward_elemt silu 4x8x17x19") { return elemt_case(BnActivation::SiLU, {4, 8, 17, 19}); }

TEST_CASE("batch_norm2d sync pieces over 2 and 3 parts equal the whole batch's statistics and gradients [cpu]" *
          doctest::test_suite("cpu")) {
  check_all_splits(Device::CPU);
}

TEST_CASE("batch_norm2d sync pieces over 2 and 3 parts equal the whole batch's statistics and gradients [gpu]" *
          doctest::test_suite(gpu_suite()) * doctest::skip(skip_gpu_cases())) {
  check_all_splits(Device::CUDA);
}

namespace {

// One part, the whole batch: batch_stats' mean is batch_norm2d_train's saved_mean and
// backward_reduce's sums are batch_norm2d_backward's dbias and dweight, bit for bit (the same
// loops on the CPU, the same tiling and float expressions on the device). On the device
// backward_elemt with those sums is batch_norm2d_backward's dx bit for bit too (the same
// coefficients); on the CPU it differs by the rounding of the sums to f32 (the split test with
// one part bounds it).
void check_whole_batch(Device dev) {
  for (const Shape& shape : {Shape{3, 6, 9, 10}, Shape{2, 2, 70, 70}}) {
    const std::int64_t C = shape[1];
    std::mt19937_64 rng(5);
    const Tensor x = Tensor::randn(shape, rng, 0.5f, 2.f).to(dev), dy = Tensor::randn(shape, rng).to(dev);
    const Tensor w = Tensor::uniform({C}, rng, 0.5f, 1.5f).to(dev), b = Tensor::uniform({C}, rng, -0.5f, 0.5f).to(dev);
    for (BnActivation act : kActivations) {
      CAPTURE(shape_str(shape));
      CAPTURE(bn_activation_name(act));
      Tensor no_rm, no_rv;
      const BatchNormOutput fwd = batch_norm2d_train(act, x, w, b, no_rm, no_rv, 0.1f, kEps);
      const BatchStats s = batch_norm2d_batch_stats(x);
      CHECK(s.mean.cpu().to_vector() == fwd.saved_mean.cpu().to_vector());
      const BatchNormGrads whole = batch_norm2d_backward(act, dy, x, w, b, fwd.saved_mean, fwd.saved_invstd);
      const BatchNormGradSums r = batch_norm2d_backward_reduce(act, dy, x, w, b, fwd.saved_mean, fwd.saved_invstd);
      CHECK(r.sum_g.cpu().to_vector() == whole.dbias.cpu().to_vector());
      CHECK(r.sum_gxhat.cpu().to_vector() == whole.dweight.cpu().to_vector());
      if (dev != Device::CPU) {
        const Tensor dx = batch_norm2d_backward_elemt(act, dy, x, w, b, fwd.saved_mean, fwd.saved_invstd, r.sum_g,
                                                      r.sum_gxhat, values_per_channel(shape));
        CHECK(dx.cpu().to_vector() == whole.dx.cpu().to_vector());
      }
    }
  }
}

}  // namespace

TEST_CASE("batch_norm2d sync pieces on the whole batch: batch_norm2d_train's mean, batch_norm2d_backward's sums [cpu]" *
          doctest::test_suite("cpu")) {
  check_whole_batch(Device::CPU);
}

TEST_CASE("batch_norm2d sync pieces on the whole batch: batch_norm2d_train's mean, batch_norm2d_backward's sums and dx [gpu]" *
          doctest::test_suite(gpu_suite()) * doctest::skip(skip_gpu_cases())) {
  check_whole_batch(Device::CUDA);
}

// ---- bf16 x ------------------------------------------------------------------------------------

namespace {

struct SyncResults {
  Tensor mean, var, sum_g, sum_gxhat, dx;
};

SyncResults run_sync(BnActivation act, const Tensor& x, const Tensor& dy, const Tensor& w, const Tensor& b,
                     const Tensor& mean, const Tensor& invstd, const Tensor& sg, const Tensor& sgxh,
                     std::int64_t count) {
  const BatchStats s = batch_norm2d_batch_stats(x);
  const BatchNormGradSums r = batch_norm2d_backward_reduce(act, dy, x, w, b, mean, invstd);
  return {s.mean.cpu(), s.var.cpu(), r.sum_g.cpu(), r.sum_gxhat.cpu(),
          batch_norm2d_backward_elemt(act, dy, x, w, b, mean, invstd, sg, sgxh, count).cpu()};
}

struct Bf16Data {
  Tensor x, dy, w, b, mean, invstd, sg, sgxh;
  std::int64_t count;
};
Bf16Data bf16_data(const Shape& shape) {
  const std::int64_t C = shape[1];
  std::mt19937_64 rng(61);
  Bf16Data d;
  d.x = to_bf16(Tensor::randn(shape, rng, 0.5f, 2.f));
  d.dy = Tensor::randn(shape, rng);
  d.w = Tensor::uniform({C}, rng, 0.5f, 1.5f);
  d.b = Tensor::uniform({C}, rng, -0.5f, 0.5f);
  d.mean = Tensor::uniform({C}, rng, 0.3f, 0.7f);
  d.invstd = Tensor::uniform({C}, rng, 0.4f, 0.6f);
  d.count = 2 * values_per_channel(shape);
  d.sg = Tensor::randn({C}, rng, 0.f, 30.f);
  d.sgxh = Tensor::randn({C}, rng, 0.f, 30.f);
  return d;
}

const Shape kBf16Shapes[] = {{2, 3, 4, 5}, {3, 5, 7, 9}, {2, 2, 70, 70}};

}  // namespace

TEST_CASE("batch_norm2d sync pieces on a bf16 x: the f32 ops on the widened x [cpu]" * doctest::test_suite("cpu")) {
  for (const Shape& shape : kBf16Shapes)
    for (BnActivation act : kActivations) {
      CAPTURE(shape_str(shape));
      CAPTURE(bn_activation_name(act));
      const Bf16Data d = bf16_data(shape);
      const SyncResults h = run_sync(act, d.x, d.dy, d.w, d.b, d.mean, d.invstd, d.sg, d.sgxh, d.count);
      const SyncResults f = run_sync(act, to_f32(d.x), d.dy, d.w, d.b, d.mean, d.invstd, d.sg, d.sgxh, d.count);
      CHECK(h.mean.to_vector() == f.mean.to_vector());
      CHECK(h.var.to_vector() == f.var.to_vector());
      CHECK(h.sum_g.to_vector() == f.sum_g.to_vector());
      CHECK(h.sum_gxhat.to_vector() == f.sum_gxhat.to_vector());
      CHECK(h.dx.to_vector() == f.dx.to_vector());
    }
}

TEST_CASE("batch_norm2d sync pieces on a bf16 x on the device: the CPU's values [gpu]" *
          doctest::test_suite(gpu_suite()) * doctest::skip(skip_gpu_cases())) {
  for (const Shape& shape : kBf16Shapes)
    for (BnActivation act : kActivations) {
      CAPTURE(shape_str(shape));
      CAPTURE(bn_activation_name(act));
      const Bf16Data d = bf16_data(shape);
      const auto dev = [](const Tensor& t) { return t.to(Device::CUDA); };
      const SyncResults h = run_sync(act, d.x, d.dy, d.w, d.b, d.mean, d.invstd, d.sg, d.sgxh, d.count);
      const SyncResults g = run_sync(act, dev(d.x), dev(d.dy), dev(d.w), dev(d.b), dev(d.mean), dev(d.invstd),
                                     dev(d.sg), dev(d.sgxh), d.count);
      const double M = static_cast<double>(values_per_channel(shape));
      // As the op cases' device tolerances.
      expect_close("mean", g.mean, h.mean, {1e-5, 1e-5});
      expect_close("var", g.var, h.var, {1e-5, 1e-5});
      expect_close("sum_g", g.sum_g, h.sum_g, {64 * kUnitRoundoff * M + 1e-6, 1e-4});
      expect_close("sum_gxhat", g.sum_gxhat, h.sum_gxhat, {64 * kUnitRoundoff * M + 1e-6, 1e-4});
      expect_close("dx", g.dx, h.dx, {1e-5, 1e-4});
    }
}

TEST_CASE("batch_norm2d sync pieces on a part with no images: zero sums, an empty dx" * doctest::test_suite("cpu")) {
  const Tensor x = Tensor::zeros({0, 3, 4, 4}), dy = Tensor::zeros({0, 3, 4, 4});
  const Tensor w = Tensor::full({3}, 1.f), b = Tensor::zeros({3}), m = Tensor::zeros({3}), is = Tensor::full({3}, 1.f);
  const BatchNormGradSums r = batch_norm2d_backward_reduce(BnActivation::SiLU, dy, x, w, b, m, is);
  CHECK(r.sum_g.to_vector() == std::vector<float>(3, 0.f));
  CHECK(r.sum_gxhat.to_vector() == std::vector<float>(3, 0.f));
  CHECK(batch_norm2d_backward_elemt(BnActivation::SiLU, dy, x, w, b, m, is, r.sum_g, r.sum_gxhat, 32).numel() == 0);
}

// ---- argument checks ---------------------------------------------------------------------------

TEST_CASE("batch_norm2d sync pieces reject bad arguments with clear messages" * doctest::test_suite("cpu")) {
  const BnActivation id = BnActivation::Identity, relu = BnActivation::ReLU;
  const Tensor x = Tensor::zeros({2, 4, 3, 3}), dy = Tensor::zeros({2, 4, 3, 3});
  const Tensor w = Tensor::full({4}, 1.f), b = Tensor::zeros({4}), m = Tensor::zeros({4}), is = Tensor::full({4}, 1.f);
  CHECK_THROWS_WITH_AS(batch_norm2d_batch_stats(Tensor::zeros({0, 4, 3, 3})),
                       doctest::Contains("batch_norm2d_batch_stats: expected at least 1 value per channel"),
                       cxr::Error);
  CHECK_THROWS_WITH_AS(batch_norm2d_batch_stats(Tensor::zeros({4, 3, 3})),
                       doctest::Contains("batch_norm2d_batch_stats"), cxr::Error);
  CHECK_THROWS_WITH_AS(batch_norm2d_backward_reduce(id, Tensor::zeros({2, 4, 3, 2}), x, w, b, m, is),
                       doctest::Contains("batch_norm2d_backward_reduce: shapes differ: dy"), cxr::Error);
  CHECK_THROWS_WITH_AS(batch_norm2d_backward_reduce(relu, dy, x, w, b, Tensor::zeros({3}), is),
                       doctest::Contains("batch_norm_act_backward_reduce(relu): 'mean'"), cxr::Error);
  CHECK_THROWS_WITH_AS(batch_norm2d_backward_reduce(id, dy, x, w, b, m, Tensor::zeros({4}, DType::BF16)),
                       doctest::Contains("'invstd'"), cxr::Error);
  CHECK_THROWS_WITH_AS(batch_norm2d_backward_elemt(id, dy, x, w, b, m, is, Tensor::zeros({32}), m, 100),
                       doctest::Contains("batch_norm2d_backward_elemt: 'sum_g' must have shape [4], found f32[32]"), cxr::Error);
  CHECK_THROWS_WITH_AS(batch_norm2d_backward_elemt(BnActivation::SiLU, dy, x, w, b, m, is, m, Tensor::zeros({5}), 100),
                       doctest::Contains("batch_norm_act_backward_elemt(silu): 'sum_gxhat'"), cxr::Error);
  CHECK_THROWS_WITH_AS(batch_norm2d_backward_elemt(id, dy, x, w, b, m, is, m, m, 0),
                       doctest::Contains("count"), cxr::Error);
  CHECK_THROWS_WITH_AS(batch_norm2d_backward_elemt(id, dy, x, w, b, m, is, m, m, 17),
                       doctest::Contains("at least this part's 18"), cxr::Error);
  CHECK_THROWS_WITH_AS(batch_norm2d_backward_elemt(id, Tensor::zeros({2, 4, 3, 3}, DType::BF16), x, w, b, m, is, m,
                                                   m, 100),
                       doctest::Contains("'dy'"), cxr::Error);
}
