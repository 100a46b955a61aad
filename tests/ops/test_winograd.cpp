// Winograd F(2x2, 3x3) on the CPU (kernels/cpu/winograd.h):
//   - the filter transform equals G g G^T computed in double;
//   - the forward equals the double reference of the 3x3 convolution (padding 1) on planes with
//     odd and even sides, tile rows longer and shorter than a vector of 8 tiles, blocks of tile
//     rows that cross images, channel counts past one GEMM block (K > MC, C > KC), with and
//     without a bias, with each register tile, at 1 and 2 threads (the same bits at both);
//   - backward-data equals the forward with the flipped filters (reference), the same bits at 1
//     and 2 threads;
//   - the evaluation batch norm applied inside equals the one applied after, bit for bit;
//   - backward-weight equals the double reference, the same bits at 1 and 2 threads;
//   - inside a FrozenWeightsScope the packed filters are made once per weight tensor (and
//     again for other values at the same address), with the same bits;
//   - conv2d's three passes through this path (Conv3x3Algorithm::Winograd) equal the reference.
#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "kernels/batch_norm.h"
#include "kernels/conv2d.h"
#include "kernels/cpu/frozen_weights.h"
#include "kernels/cpu/winograd.h"
#include "tests/op_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {

std::vector<float> randn(std::size_t n, std::mt19937_64& rng) {
  std::normal_distribution<float> dist;
  std::vector<float> v(n);
  for (float& e : v) e = dist(rng);
  return v;
}

// The 3x3 convolution with padding 1 in double: y[n, k, h, v] = b[k] + sum x w.
std::vector<double> reference(const cpu::Winograd3x3& s, const std::vector<float>& x, const std::vector<float>& w,
                              const float* b) {
  std::vector<double> y(static_cast<std::size_t>(s.N) * s.K * s.H * s.W);
  for (int n = 0; n < s.N; ++n)
    for (int k = 0; k < s.K; ++k)
      for (int h = 0; h < s.H; ++h)
        for (int v = 0; v < s.W; ++v) {
          double sum = b ? b[k] : 0.0;
          for (int c = 0; c < s.C; ++c)
            for (int r = 0; r < 3; ++r)
              for (int t = 0; t < 3; ++t) {
                const int hh = h - 1 + r, vv = v - 1 + t;
                if (hh < 0 || hh >= s.H || vv < 0 || vv >= s.W) continue;
                sum += static_cast<double>(x[((static_cast<std::size_t>(n) * s.C + c) * s.H + hh) * s.W + vv]) *
                       w[((static_cast<std::size_t>(k) * s.C + c) * 3 + r) * 3 + t];
              }
          y[((static_cast<std::size_t>(n) * s.K + k) * s.H + h) * s.W + v] = sum;
        }
  return y;
}

// run() with each register tile at 1 and 2 threads, its result checked by check(); every result
// the same bits as the first.
template <class Run, class Check>
void at_every_tile_and_thread_count(Run&& run, Check&& check) {
  std::vector<float> first;
  for (const cpu::CpuGemmKernel k : available_gemm_kernels())
    for (int threads : {1, 2}) {
      const GemmKernelScope scope(k);
      const ThreadCountScope t(threads);
      CAPTURE(cpu::cpu_gemm_kernel_name(k));
      CAPTURE(threads);
      const std::vector<float> got = run();
      check(got);
      if (first.empty()) first = got;
      else CHECK(got == first);
    }
}

// The 3x3 algorithm for a scope, Auto again after it.
struct AlgorithmScope {
  explicit AlgorithmScope(cpu::Conv3x3Algorithm a) { cpu::set_cpu_conv3x3_algorithm(a); }
  ~AlgorithmScope() { cpu::set_cpu_conv3x3_algorithm(cpu::Conv3x3Algorithm::Auto); }
  AlgorithmScope(const AlgorithmScope&) = delete;
  AlgorithmScope& operator=(const AlgorithmScope&) = delete;
};

}  // namespace

TEST_CASE("winograd3x3_filter_transform is G g G^T" * doctest::test_suite("cpu")) {
  const double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  std::mt19937_64 rng(3);
  const int K = 5, C = 3;
  const std::vector<float> w = randn(static_cast<std::size_t>(K * C * 9), rng);
  std::vector<float> u(static_cast<std::size_t>(16 * K * C));
  cpu::winograd3x3_filter_transform(K, C, w.data(), u.data());
  for (int k = 0; k < K; ++k)
    for (int c = 0; c < C; ++c)
      for (int a = 0; a < 4; ++a)
        for (int b = 0; b < 4; ++b) {
          double want = 0.0;
          for (int r = 0; r < 3; ++r)
            for (int s = 0; s < 3; ++s)
              want += G[a][r] * w[static_cast<std::size_t>((k * C + c) * 9 + r * 3 + s)] * G[b][s];
          CHECK(u[static_cast<std::size_t>(((4 * a + b) * K + k) * C + c)] == doctest::Approx(want).epsilon(1e-6));
        }
}

TEST_CASE("winograd3x3_forward equals the 3x3 convolution, the same bits at any thread count" *
          doctest::test_suite("cpu")) {
  const std::vector<cpu::Winograd3x3> shapes = {
      {1, 1, 1, 1, 1},      // one tile, one output of four
      {2, 3, 5, 2, 2},      // one tile per image
      {2, 7, 9, 5, 6},      // odd rows, even columns
      {3, 16, 20, 7, 7},    // 4 x 4 tiles per image: a block crosses images
      {1, 4, 6, 30, 37},    // 19 tiles a row: two full vectors and a partial one
      {2, 33, 130, 9, 20},  // K past one A block of the GEMM
      {1, 300, 8, 6, 5},    // C past one K block of the GEMM
      {5, 8, 8, 3, 3},      // 2 x 2 tiles, many images per block
  };
  std::mt19937_64 rng(5);
  for (const cpu::Winograd3x3& s : shapes) {
    CAPTURE(s.N);
    CAPTURE(s.C);
    CAPTURE(s.K);
    CAPTURE(s.H);
    CAPTURE(s.W);
    const std::vector<float> x = randn(static_cast<std::size_t>(s.N) * s.C * s.H * s.W, rng);
    const std::vector<float> w = randn(static_cast<std::size_t>(s.K) * s.C * 9, rng);
    const std::vector<float> b = randn(static_cast<std::size_t>(s.K), rng);
    for (const bool bias : {false, true}) {
      const std::vector<double> want = reference(s, x, w, bias ? b.data() : nullptr);
      CAPTURE(bias);
      at_every_tile_and_thread_count(
          [&] {
            std::vector<float> y(want.size(), std::nanf(""));
            cpu::winograd3x3_forward(s, x.data(), w.data(), bias ? b.data() : nullptr, y.data());
            return y;
          },
          // a sum of 9 C products of N(0, 1) values: rounding grows with sqrt(9 C)
          [&](const std::vector<float>& y) { expect_close("y", y, want, {2e-6 * std::sqrt(9.0 * s.C), 1e-5}); });
    }
  }
}

TEST_CASE("winograd3x3_backward_data is the convolution with the flipped filters, the same bits at any thread count" *
          doctest::test_suite("cpu")) {
  const std::vector<cpu::Winograd3x3> shapes = {{2, 7, 9, 5, 6}, {3, 16, 20, 7, 7}, {1, 130, 33, 9, 20}};
  std::mt19937_64 rng(23);
  for (const cpu::Winograd3x3& s : shapes) {
    CAPTURE(s.C);
    CAPTURE(s.K);
    const std::vector<float> dy = randn(static_cast<std::size_t>(s.N) * s.K * s.H * s.W, rng);
    const std::vector<float> w = randn(static_cast<std::size_t>(s.K) * s.C * 9, rng);
    std::vector<float> flipped(w.size());  // w'[c, k, t] = w[k, c, 8 - t]
    for (int k = 0; k < s.K; ++k)
      for (int c = 0; c < s.C; ++c)
        for (int t = 0; t < 9; ++t) flipped[(c * s.K + k) * 9 + t] = w[(k * s.C + c) * 9 + 8 - t];
    const std::vector<double> want = reference({s.N, s.K, s.C, s.H, s.W}, dy, flipped, nullptr);
    at_every_tile_and_thread_count(
        [&] {
          std::vector<float> dx(want.size(), std::nanf(""));
          cpu::winograd3x3_backward_data(s, dy.data(), w.data(), dx.data());
          return dx;
        },
        [&](const std::vector<float>& dx) { expect_close("dx", dx, want, {2e-6 * std::sqrt(9.0 * s.K), 1e-5}); });
  }
}

TEST_CASE("winograd3x3_forward applies the evaluation batch norm as a pass after it would" *
          doctest::test_suite("cpu")) {
  const cpu::Winograd3x3 s{2, 12, 10, 9, 11};
  std::mt19937_64 rng(8);
  const std::vector<float> x = randn(static_cast<std::size_t>(s.N) * s.C * s.H * s.W, rng);
  const std::vector<float> w = randn(static_cast<std::size_t>(s.K) * s.C * 9, rng);
  std::vector<float> mean = randn(s.K, rng), weight = randn(s.K, rng), bias = randn(s.K, rng), invstd(s.K);
  for (float& v : invstd) v = 0.5f + std::abs(randn(1, rng)[0]);
  const cpu::BnEvalChannels bn{mean.data(), invstd.data(), weight.data(), bias.data(), BnActivation::ReLU};
  const std::int64_t HW = static_cast<std::int64_t>(s.H) * s.W;
  std::vector<float> fused(static_cast<std::size_t>(s.N * s.K * HW)), after(fused.size());
  cpu::winograd3x3_forward(s, x.data(), w.data(), nullptr, fused.data(), &bn);
  cpu::winograd3x3_forward(s, x.data(), w.data(), nullptr, after.data());
  for (int n = 0; n < s.N; ++n)
    for (int k = 0; k < s.K; ++k) cpu::batch_norm2d_eval_plane(bn, k, after.data() + (n * s.K + k) * HW, HW);
  CHECK(fused == after);
}

TEST_CASE("conv2d through Winograd equals the reference (forward, backward-data, backward-weight)" *
          doctest::test_suite("cpu")) {
  std::mt19937_64 rng(13);
  for (const Shape& xs : {Shape{2, 6, 11, 8}, Shape{4, 40, 7, 7}, Shape{1, 24, 16, 16}}) {
    CAPTURE(xs);
    const int C = static_cast<int>(xs[1]), K = 2 * C + 1;
    Conv2dParams p;
    p.pad_h = p.pad_w = 1;
    const Shape ws{K, C, 3, 3};
    const Conv2dDims d = conv2d_dims(xs, ws, p);
    Tensor x = Tensor::randn(xs, rng), w = Tensor::randn(ws, rng), b = Tensor::randn({K}, rng);
    Tensor dy = Tensor::randn({d.N, d.K, d.P, d.Q}, rng);
    const std::vector<double> xd = to_doubles(x), wd = to_doubles(w), bd = to_doubles(b), dyd = to_doubles(dy);
    std::vector<double> y_ref(dyd.size()), dx_ref(xd.size()), dw_ref(wd.size());
    cpu::conv2d_forward_reference<double>(d, xd.data(), wd.data(), bd.data(), y_ref.data());
    cpu::conv2d_backward_data_reference<double>(d, dyd.data(), wd.data(), dx_ref.data());
    cpu::conv2d_backward_weight_reference<double>(d, dyd.data(), xd.data(), dw_ref.data());
    const AlgorithmScope winograd(cpu::Conv3x3Algorithm::Winograd);
    const auto values = [](const Tensor& t) { return std::vector<float>(t.f32(), t.f32() + t.numel()); };
    const double scale = std::sqrt(9.0 * K), pixels = std::sqrt(static_cast<double>(d.N) * d.H * d.W);
    expect_close("y", values(conv2d_forward(x, w, b, p)), y_ref, {2e-6 * scale, 1e-5});
    expect_close("dx", values(conv2d_backward_data(dy, w, xs, p)), dx_ref, {2e-6 * scale, 1e-5});
    expect_close("dw", values(conv2d_backward_weight(dy, x, ws, p)), dw_ref, {6e-6 * pixels, 1e-5});
  }
}

TEST_CASE("CXR_CPU_CONV3X3=measure: each pass and shape timed once, then the plan's path, bit for bit" *
          doctest::test_suite("cpu")) {
  std::mt19937_64 rng(17);
  const Shape xs{2, 40, 14, 14}, ws{48, 40, 3, 3};
  Conv2dParams p;
  p.pad_h = p.pad_w = 1;
  const Conv2dDims d = conv2d_dims(xs, ws, p);
  const Tensor x = Tensor::randn(xs, rng), w = Tensor::randn(ws, rng), b = Tensor::randn({48}, rng);
  const Tensor dy = Tensor::randn({d.N, d.K, d.P, d.Q}, rng);
  // Each pass by each path, the bits that a plan must reproduce.
  const auto passes = [&] {
    return std::vector<std::vector<float>>{conv2d_forward(x, w, b, p).to_vector(),
                                           conv2d_backward_data(dy, w, xs, p).to_vector(),
                                           conv2d_backward_weight(dy, x, ws, p).to_vector()};
  };
  std::vector<std::vector<float>> direct, winograd;
  {
    const AlgorithmScope a(cpu::Conv3x3Algorithm::Direct);
    direct = passes();
  }
  {
    const AlgorithmScope a(cpu::Conv3x3Algorithm::Winograd);
    winograd = passes();
  }
  REQUIRE(direct[0] != winograd[0]);  // the paths round differently: the check below can tell them apart
  cpu::clear_cpu_conv3x3_plans();
  const AlgorithmScope a(cpu::Conv3x3Algorithm::Measure);
  const std::vector<std::vector<float>> first = passes();
  CHECK(cpu::cpu_conv3x3_plan_count() == 3);  // forward, backward-data, backward-weight
  for (std::size_t k = 0; k < first.size(); ++k) {
    CAPTURE(k);
    CHECK((first[k] == direct[k] || first[k] == winograd[k]));
  }
  CHECK(passes() == first);  // planned: no new timing, the same path
  CHECK(cpu::cpu_conv3x3_plan_count() == 3);
  cpu::clear_cpu_conv3x3_plans();
  CHECK(cpu::cpu_conv3x3_plan_count() == 0);
}

TEST_CASE("winograd3x3_backward_weight equals the weight gradient, the same bits at any thread count" *
          doctest::test_suite("cpu")) {
  const std::vector<cpu::Winograd3x3> shapes = {
      {1, 1, 1, 1, 1}, {2, 3, 5, 2, 2}, {2, 7, 9, 5, 6}, {3, 16, 20, 7, 7}, {1, 4, 6, 30, 37}, {2, 33, 40, 9, 20},
  };
  std::mt19937_64 rng(17);
  for (const cpu::Winograd3x3& s : shapes) {
    CAPTURE(s.N);
    CAPTURE(s.C);
    CAPTURE(s.K);
    CAPTURE(s.H);
    CAPTURE(s.W);
    const std::int64_t HW = static_cast<std::int64_t>(s.H) * s.W;
    const std::vector<float> x = randn(static_cast<std::size_t>(s.N * s.C * HW), rng);
    const std::vector<float> dy = randn(static_cast<std::size_t>(s.N * s.K * HW), rng);
    // dw[k, c, r, t] = sum_{n, h, v} dy[n, k, h, v] x[n, c, h - 1 + r, v - 1 + t], in double
    std::vector<double> want(static_cast<std::size_t>(s.K) * s.C * 9, 0.0);
    for (int n = 0; n < s.N; ++n)
      for (int k = 0; k < s.K; ++k)
        for (int c = 0; c < s.C; ++c)
          for (int r = 0; r < 3; ++r)
            for (int t = 0; t < 3; ++t) {
              double sum = 0.0;
              for (int h = 0; h < s.H; ++h)
                for (int v = 0; v < s.W; ++v) {
                  const int hh = h - 1 + r, vv = v - 1 + t;
                  if (hh < 0 || hh >= s.H || vv < 0 || vv >= s.W) continue;
                  const double g = dy[(n * s.K + k) * HW + h * s.W + v];
                  sum += g * x[(n * s.C + c) * HW + hh * s.W + vv];
                }
              want[static_cast<std::size_t>((k * s.C + c) * 9 + r * 3 + t)] += sum;
            }
    const double pixels = std::sqrt(static_cast<double>(s.N * HW));
    at_every_tile_and_thread_count(
        [&] {
          std::vector<float> dw(want.size(), std::nanf(""));
          cpu::winograd3x3_backward_weight(s, x.data(), dy.data(), dw.data());
          return dw;
        },
        [&](const std::vector<float>& dw) { expect_close("dw", dw, want, {6e-6 * pixels, 1e-5}); });
  }
}

TEST_CASE("winograd3x3_forward inside a FrozenWeightsScope keeps one packing per weight tensor, the same bits" *
          doctest::test_suite("cpu")) {
  const cpu::Winograd3x3 s{2, 20, 24, 9, 9};
  std::mt19937_64 rng(19);
  const std::vector<float> x = randn(static_cast<std::size_t>(s.N) * s.C * s.H * s.W, rng);
  std::vector<float> w = randn(static_cast<std::size_t>(s.K) * s.C * 9, rng);
  const std::vector<float> w2 = randn(w.size(), rng);
  std::vector<float> want(static_cast<std::size_t>(s.N) * s.K * s.H * s.W), want2(want.size());
  cpu::winograd3x3_forward(s, x.data(), w.data(), nullptr, want.data());
  cpu::winograd3x3_forward(s, x.data(), w2.data(), nullptr, want2.data());
  const cpu::FrozenWeightsScope scope;
  REQUIRE(cpu::frozen_weights_entries() == 0);
  for (int call = 0; call < 2; ++call) {
    std::vector<float> y(want.size());
    cpu::winograd3x3_forward(s, x.data(), w.data(), nullptr, y.data());
    CHECK(y == want);
    CHECK(cpu::frozen_weights_entries() == 1);
  }
  // other values at the same address (a temporary copy reusing it) get their own packing
  std::vector<float> y(want.size());
  std::copy(w2.begin(), w2.end(), w.begin());
  cpu::winograd3x3_forward(s, x.data(), w.data(), nullptr, y.data());
  CHECK(y == want2);
  CHECK(cpu::frozen_weights_entries() == 2);
}
