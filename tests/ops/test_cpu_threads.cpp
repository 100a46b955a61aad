// CPU results do not depend on the OpenMP thread count: every CPU op that sums (whole-tensor
// sums and norms, per-channel and per-row statistics, weight and bias gradients, GEMMs, the
// loss, pooling backward) gives the same bits at 1, 2 and 3 threads. Sizes lie above the
// thresholds at which each op's loops go parallel; the whole-tensor sums also cross the
// boundaries of their fixed chunks (cpu::kSumChunk) and end in a ragged tail. The raw
// cpu::sum / cpu::sum_of_squares are compared in double, before the rounding to f32 can hide
// a difference in the last bits. (A training run at several thread counts:
// tests/train/test_cpu_threads_training.cpp.)
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "kernels/batch_norm.h"
#include "kernels/batch_norm_sync.h"
#include "kernels/conv2d.h"
#include "kernels/conv2d_bn.h"
#include "kernels/cxr_loss.h"
#include "kernels/global_avg_pool.h"
#include "kernels/layer_norm.h"
#include "kernels/linear.h"
#include "kernels/max_pool2d.h"
#include "kernels/reduce.h"
#include "kernels/scale_channels.h"
#include "tests/op_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {

Doubles doubles_of(const Tensors& ts) {
  Doubles d;
  for (const Tensor& t : ts) d.push_back(to_doubles(t));
  return d;
}

std::string exact(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// f's results at 2 and 3 threads are those at 1 thread, bit for bit.
void expect_thread_independent(const std::string& what, const std::function<Doubles()>& f) {
  Doubles one;
  {
    const ThreadCountScope threads(1);
    one = f();
  }
  for (int n : {2, 3}) {
    Doubles r;
    {
      const ThreadCountScope threads(n);
      r = f();
    }
    REQUIRE(r.size() == one.size());
    for (std::size_t k = 0; k < r.size(); ++k) {
      REQUIRE(r[k].size() == one[k].size());
      std::size_t bad = 0, first = 0;
      for (std::size_t i = 0; i < r[k].size(); ++i)
        if (std::memcmp(&r[k][i], &one[k][i], sizeof(double)) != 0 && bad++ == 0) first = i;
      CHECK_MESSAGE(bad == 0, what, ", result ", k, " at ", n, " threads: ", bad, " of ", r[k].size(),
                    " values differ from 1 thread (first [", first, "]: ", exact(r[k][first]), " vs ",
                    exact(one[k][first]), ")");
    }
  }
}

Tensor randn(const Shape& s, std::uint64_t seed, float mean = 0.f, float stddev = 1.f) {
  std::mt19937_64 rng(seed);
  return Tensor::randn(s, rng, mean, stddev);
}

Conv2dParams conv_params(int stride, int pad, int groups = 1) {
  Conv2dParams p;
  p.stride_h = p.stride_w = stride;
  p.pad_h = p.pad_w = pad;
  p.groups = groups;
  return p;
}

// Whole-tensor sizes: below, at and across the chunk boundaries, and above the parallel
// threshold (2^18) with a ragged tail.
const std::int64_t kSumSizes[] = {1000, cpu::kSumChunk - 1, cpu::kSumChunk + 1, (std::int64_t{1} << 18) + 1,
                                  5 * (std::int64_t{1} << 18) + 12345};

}  // namespace

TEST_SUITE("cpu") {

TEST_CASE("cpu::sum and cpu::sum_of_squares: the same double at 1, 2 and 3 threads") {
  for (std::int64_t n : kSumSizes) {
    const Tensor x = randn({n}, static_cast<std::uint64_t>(n), 0.3f);
    std::vector<double> xd(x.f32(), x.f32() + n);
    expect_thread_independent("cpu::sum<double> of " + std::to_string(n), [&] {
      double out = 0;
      cpu::sum<double>(xd.data(), n, 1.0, &out);
      return Doubles{{out}};
    });
    expect_thread_independent("cpu::sum_of_squares<float> of " + std::to_string(n),
                              [&] { return Doubles{{cpu::sum_of_squares(x.f32(), n)}}; });
  }
}

TEST_CASE("sum, mean, global_norm, grad_norm and clipping: the same at 1, 2 and 3 threads") {
  for (std::int64_t n : kSumSizes) {
    const Tensor x = randn({n}, static_cast<std::uint64_t>(n) + 1, 0.3f);
    expect_thread_independent("sum / mean of " + std::to_string(n),
                              [&] { return doubles_of({sum(x), mean(x)}); });
  }
  const std::vector<Tensor> grads{randn({37}, 1), randn({5, 129}, 2), randn({1 << 20}, 3, 0.f, 0.01f),
                                  randn({3 * cpu::kSumChunk + 7}, 4)};
  expect_thread_independent("global_norm / grad_norm / clip_grad_norm_", [&] {
    std::vector<Tensor> g;
    for (const Tensor& t : grads) g.push_back(t.clone());
    const GradNorm gn = grad_norm(g, 1.f);
    const Tensor norm = clip_grad_norm_(g, 1.f);
    Tensors out{global_norm(grads), gn.norm, gn.clip_coef, norm};
    out.insert(out.end(), g.begin(), g.end());
    return doubles_of(out);
  });
  const Tensor x = randn({64, 300, 33}, 5);
  expect_thread_independent("sum_dim", [&] { return doubles_of({sum_dim(x, 0), sum_dim(x, 1), sum_dim(x, 2)}); });
}

TEST_CASE("conv2d forward, data, weight and bias gradients: the same at 1, 2 and 3 threads") {
  struct Case {
    const char* name;
    Shape x, w;
    Conv2dParams p;
  };
  const Case cases[] = {
      {"3x3 (im2col panels)", {4, 16, 20, 18}, {32, 16, 3, 3}, conv_params(1, 1)},
      {"7x7 s2 stem", {4, 3, 64, 64}, {16, 3, 7, 7}, conv_params(2, 3)},
      {"1x1 (GEMM)", {4, 64, 16, 16}, {64, 64, 1, 1}, conv_params(1, 0)},
      {"1x1 s2", {4, 64, 16, 16}, {128, 64, 1, 1}, conv_params(2, 0)},
      {"3x3 groups 2", {4, 32, 16, 16}, {32, 16, 3, 3}, conv_params(1, 1, 2)},
      {"depthwise 3x3", {4, 32, 20, 20}, {32, 1, 3, 3}, conv_params(1, 1, 32)},
  };
  for (const Case& c : cases) {
    const Tensor x = randn(c.x, 11), w = randn(c.w, 12, 0.f, 0.1f), b = randn({c.w[0]}, 13);
    const Tensor dy = randn(conv2d_output_shape(c.x, c.w, c.p), 14);
    expect_thread_independent(std::string("conv2d ") + c.name, [&] {
      const Conv2dGrads g = conv2d_backward(x, w, dy, c.p, true);
      const Conv2dBnStats s = conv2d_forward_bn_stats(x, w, b, c.p);
      return doubles_of({conv2d_forward(x, w, b, c.p), g.dx, g.dw, g.db, s.y, s.mean, s.var});
    });
  }
}

TEST_CASE("batch norm, batch norm + activation, its sync pieces, layer norm: the same at 1, 2 and 3 threads") {
  const Shape shape{4, 8, 48, 48};  // 73728 values: the channel loops run in parallel
  const Tensor x = randn(shape, 21, 0.5f, 2.f), dy = randn(shape, 22);
  const Tensor w = randn({8}, 23, 1.f, 0.2f), b = randn({8}, 24);
  expect_thread_independent("batch_norm2d", [&] {
    Tensor rm = Tensor::zeros({8}), rv = Tensor::full({8}, 1.f);
    const BatchNormOutput o = batch_norm2d_train(BnActivation::Identity, x, w, b, rm, rv);
    const BatchNormGrads g = batch_norm2d_backward(BnActivation::Identity, dy, x, w, b, o.saved_mean, o.saved_invstd);
    const BatchNormGrads e = batch_norm2d_eval_backward(BnActivation::Identity, dy, x, w, b, rm, rv);
    return doubles_of({o.y, o.saved_mean, o.saved_invstd, rm, rv, g.dx, g.dweight, g.dbias, e.dx, e.dweight,
                       e.dbias});
  });
  for (BnActivation act : {BnActivation::ReLU, BnActivation::SiLU})
    expect_thread_independent(std::string("batch_norm_act ") + bn_activation_name(act), [&] {
      Tensor rm = Tensor::zeros({8}), rv = Tensor::full({8}, 1.f);
      const BatchNormOutput o = batch_norm2d_train(act, x, w, b, rm, rv);
      const BatchNormGrads g = batch_norm2d_backward(act, dy, x, w, b, o.saved_mean, o.saved_invstd);
      const BatchNormGrads e = batch_norm2d_eval_backward(act, dy, x, w, b, rm, rv);
      return doubles_of({o.y, rm, rv, g.dx, g.dweight, g.dbias, e.dx, e.dweight, e.dbias});
    });
  // The pieces of the batch norm over processes (SyncBatchNorm), every activation.
  for (BnActivation act : {BnActivation::Identity, BnActivation::ReLU, BnActivation::SiLU})
    expect_thread_independent(std::string("batch_norm2d sync pieces ") + bn_activation_name(act), [&] {
      const BatchStats s = batch_norm2d_batch_stats(x);
      const Tensor invstd = randn({8}, 29, 0.5f, 0.05f);
      const BatchNormGradSums r = batch_norm2d_backward_reduce(act, dy, x, w, b, s.mean, invstd);
      const Tensor dx = batch_norm2d_backward_elemt(act, dy, x, w, b, s.mean, invstd, r.sum_g, r.sum_gxhat,
                                                    3 * shape[0] * shape[2] * shape[3]);
      return doubles_of({s.mean, s.var, r.sum_g, r.sum_gxhat, dx});
    });
  // 600 rows: layer norm's dweight and dbias sum blocks of 256 rows (cpu::kRowBlock), the last ragged.
  const Tensor lx = randn({600, 256}, 25), ldy = randn({600, 256}, 26);
  const Tensor lw = randn({256}, 27, 1.f, 0.2f), lb = randn({256}, 28);
  expect_thread_independent("layer_norm", [&] {
    const LayerNormOutput o = layer_norm(lx, lw, lb);
    const LayerNormGrads g = layer_norm_backward(ldy, lx, lw, o.mean, o.rstd);
    return doubles_of({o.y, o.mean, o.rstd, g.dx, g.dweight, g.dbias});
  });
}

TEST_CASE("linear, the loss, pooling and channel scaling: the same at 1, 2 and 3 threads") {
  // 600 rows of 256 outputs: db sums blocks of rows in parallel (cpu::kRowBlock), the last ragged.
  const Tensor x = randn({600, 512}, 31), w = randn({256, 512}, 32, 0.f, 0.05f), b = randn({256}, 33);
  const Tensor dy = randn({600, 256}, 34);
  expect_thread_independent("linear", [&] {
    const LinearGrads g = linear_backward(x, w, dy, true);
    return doubles_of({linear(x, w, b), g.dx, g.dw, g.db});
  });

  const std::int64_t N = 64, C = 14;
  std::mt19937_64 rng(35);
  const Tensor z = Tensor::randn({N, C}, rng), pw = Tensor::uniform({C}, rng, 0.5f, 3.f);
  const Tensor boxes = Tensor::randn({N, C, 4}, rng), targets = Tensor::uniform({N, C, 4}, rng, 0.f, 1.f);
  Tensor y = Tensor::uniform({N, C}, rng, 0.f, 1.f), m = Tensor::uniform({N, C}, rng, 0.f, 1.f);
  for (std::int64_t i = 0; i < N * C; ++i) {
    y.f32()[i] = y.f32()[i] < 0.3f ? 1.f : 0.f;
    m.f32()[i] = m.f32()[i] < 0.2f ? 1.f : 0.f;
  }
  expect_thread_independent("cxr_loss", [&] {
    const CxrLoss l = cxr_loss(z, y, pw, boxes, targets, m, 2.f);
    return doubles_of({l.loss, l.bce, l.mse, l.dz, l.db});
  });

  const Shape s{4, 16, 64, 64};  // 65536 planes' values: the plane loops run in parallel
  const Tensor px = randn(s, 36), pdy = randn({4, 16, 32, 32}, 37), gdy = randn({4, 16}, 38);
  const Tensor scale = randn({4, 16}, 39);
  const MaxPool2dParams mp{3, 2, 1};
  expect_thread_independent("max_pool2d, global_avg_pool, scale_channels", [&] {
    const MaxPool2dOutput o = max_pool2d(px, mp);
    const ScaleChannelsGrads sg = scale_channels_backward(px, px, scale);
    return doubles_of({o.y, max_pool2d_backward(pdy, o.indices, s, mp), global_avg_pool(px),
                       global_avg_pool_backward(gdy, s), scale_channels(px, scale), sg.dx, sg.ds});
  });
}

}  // TEST_SUITE
