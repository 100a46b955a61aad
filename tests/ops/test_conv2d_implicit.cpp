// The CPU convolution's implicit im2col (cpu::sgemm_conv_columns, kernels/gemm.h): the GEMM packs its
// B slivers straight from the image instead of from an im2col matrix.
//   - sgemm_conv_columns gives the same bits as sgemm over the explicit im2col matrix, for
//     op(B) = columns (forward, also with A packed once) and columns^T (backward-weight), with
//     each register tile and at 1 and 2 threads: the packing is the only thing that changed.
//   - conv2d's forward, backward-data (the flipped convolution of dy) and backward-weight on the
//     shapes that take these paths against the float reference: planes wider and narrower than
//     a sliver, panels of several images (slivers that straddle two images), dilation, groups,
//     unequal padding, 7 x 7 kernels, and output channel counts on both sides of one A block
//     (the just-in-time B slivers and the panel loops).
#include <random>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/gemm.h"
#include "tests/op_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {

// The explicit matrix: col[(c R + r) S + s][n P W + p W + q] (written out the slow way).
std::vector<float> explicit_columns(const cpu::ConvColumns& v) {
  const std::int64_t N = static_cast<std::int64_t>(v.images) * v.P * v.W;
  std::vector<float> col(static_cast<std::size_t>(v.C * v.R * v.S * N), 0.f);
  for (int c = 0; c < v.C; ++c)
    for (int r = 0; r < v.R; ++r)
      for (int s = 0; s < v.S; ++s)
        for (int n = 0; n < v.images; ++n)
          for (int p = 0; p < v.P; ++p)
            for (int q = 0; q < v.W; ++q) {
              const int h = p - v.ph + r * v.dh, w = q - v.pw + s * v.dw;
              if (h < 0 || h >= v.H || w < 0 || w >= v.W) continue;
              col[((c * v.R + r) * v.S + s) * N + (static_cast<std::int64_t>(n) * v.P + p) * v.W + q] =
                  v.x[n * v.image + (static_cast<std::int64_t>(c) * v.H + h) * v.W + w];
            }
  return col;
}

struct ColumnsCase {
  int images, C, H, W, R, S, ph, pw, dh, dw, M;
};

std::vector<float> randn(std::size_t n, std::mt19937_64& rng) {
  std::normal_distribution<float> dist;
  std::vector<float> v(n);
  for (float& e : v) e = dist(rng);
  return v;
}

}  // namespace

TEST_CASE("sgemm_conv_columns equals sgemm over the explicit im2col matrix, bit for bit" *
          doctest::test_suite("cpu")) {
  const std::vector<ColumnsCase> cases = {
      {1, 8, 40, 37, 3, 3, 1, 1, 1, 1, 20},    // rows wider than a sliver, slivers cross rows
      {1, 5, 13, 29, 3, 3, 1, 1, 1, 1, 130},   // M past one A block: the panel loops
      {3, 6, 7, 7, 3, 3, 1, 1, 1, 1, 24},      // 7 x 7 planes in a panel: slivers straddle images
      {2, 4, 9, 10, 3, 3, 2, 2, 2, 2, 9},      // dilation 2
      {2, 3, 12, 11, 7, 7, 3, 3, 1, 1, 16},    // 7 x 7 taps
      {1, 4, 10, 12, 3, 5, 1, 2, 1, 1, 7},     // unequal padding, 3 x 5
      {2, 70, 6, 5, 3, 3, 1, 1, 1, 1, 33},     // K = 630 rows: several K blocks
  };
  std::mt19937_64 rng(11);
  for (const ColumnsCase& cc : cases) {
    cpu::ConvColumns v;
    v.C = cc.C, v.H = cc.H, v.W = cc.W, v.R = cc.R, v.S = cc.S, v.ph = cc.ph, v.pw = cc.pw, v.dh = cc.dh, v.dw = cc.dw;
    v.P = cc.H + 2 * cc.ph - cc.dh * (cc.R - 1), v.images = cc.images;
    REQUIRE(v.W + 2 * cc.pw - cc.dw * (cc.S - 1) == v.W);  // the case keeps Q = W
    v.image = static_cast<std::int64_t>(cc.C + 1) * cc.H * cc.W;  // a channel of another group between images
    const std::vector<float> x = randn(static_cast<std::size_t>(v.image * cc.images), rng);
    v.x = x.data();
    const std::int64_t K = static_cast<std::int64_t>(cc.C) * cc.R * cc.S,
                       N = static_cast<std::int64_t>(cc.images) * v.P * cc.W;
    const std::vector<float> col = explicit_columns(v);
    const std::vector<float> a = randn(static_cast<std::size_t>(cc.M * K), rng);    // (M, K): forward
    const std::vector<float> dy = randn(static_cast<std::size_t>(cc.M * N), rng);   // (M, N): backward-weight
    const std::vector<float> c0 = randn(static_cast<std::size_t>(cc.M * K), rng);   // beta = 1 start
    for (const cpu::CpuGemmKernel k : available_gemm_kernels())
      for (int threads : {1, 2}) {
        const GemmKernelScope scope(k);
        const ThreadCountScope t(threads);
        CAPTURE(cpu::cpu_gemm_kernel_name(k));
        CAPTURE(threads);
        INFO("images ", cc.images, ", C ", cc.C, ", ", cc.H, " x ", cc.W, ", ", cc.R, " x ", cc.S, ", M ", cc.M);
        std::vector<float> want(static_cast<std::size_t>(cc.M * N)), got(want.size(), -1.f);
        cpu::sgemm(false, false, cc.M, N, K, 1.f, a.data(), K, col.data(), N, 0.f, want.data(), N);
        cpu::sgemm_conv_columns(false, cc.M, 1.f, a.data(), K, v, 0.f, got.data(), N);
        CHECK(got == want);
        std::vector<float> room(static_cast<std::size_t>(cpu::PackedA::floats_for(cc.M, K)));
        std::vector<float> got_packed(want.size(), -1.f);
        cpu::sgemm_conv_columns(cpu::PackedA(false, cc.M, K, a.data(), K, room.data()), 1.f, v, 0.f,
                                got_packed.data(), N);
        CHECK(got_packed == want);
        std::vector<float> want_t = c0, got_t = c0;
        cpu::sgemm(false, true, cc.M, K, N, 0.5f, dy.data(), N, col.data(), N, 1.f, want_t.data(), K);
        cpu::sgemm_conv_columns(true, cc.M, 0.5f, dy.data(), N, v, 1.f, got_t.data(), K);
        CHECK(got_t == want_t);
      }
  }
}

TEST_CASE("conv2d on the implicit-columns paths equals the reference (forward, backward-data, backward-weight)" *
          doctest::test_suite("cpu")) {
  struct Case {
    Shape x, w;
    int pad_h, pad_w, groups, dilation;
  };
  const std::vector<Case> cases = {
      {{1, 8, 40, 37}, {20, 8, 3, 3}, 1, 1, 1, 1},    // one image per panel, M < one A block
      {{2, 6, 30, 33}, {130, 6, 3, 3}, 1, 1, 1, 1},   // M = 130: the panel loops (and backward-data's C' = 6)
      {{6, 16, 7, 7}, {24, 16, 3, 3}, 1, 1, 1, 1},    // panels of 7 x 7 planes
      {{2, 8, 9, 9}, {12, 4, 3, 3}, 2, 2, 2, 2},      // groups and dilation
      {{2, 3, 12, 11}, {8, 3, 7, 7}, 3, 3, 1, 1},     // 7 x 7, stride 1
      {{3, 5, 10, 12}, {7, 5, 3, 5}, 1, 2, 1, 1},     // 3 x 5, unequal padding
      {{2, 4, 9, 11}, {6, 4, 3, 3}, 0, 1, 1, 1},      // P = H - 2 (no padding across rows)
  };
  std::mt19937_64 rng(21);
  for (const cpu::CpuGemmKernel k : available_gemm_kernels())
    for (int threads : {1, 2})
      for (const Case& c : cases) {
        const GemmKernelScope scope(k);
        const ThreadCountScope t(threads);
        CAPTURE(cpu::cpu_gemm_kernel_name(k));
        CAPTURE(threads);
        CAPTURE(c.x);
        CAPTURE(c.w);
        Conv2dParams p;
        p.pad_h = c.pad_h, p.pad_w = c.pad_w, p.groups = c.groups, p.dilation_h = p.dilation_w = c.dilation;
        const Conv2dDims d = conv2d_dims(c.x, c.w, p);
        REQUIRE(d.Q == d.W);
        Tensor x = Tensor::randn(c.x, rng), w = Tensor::randn(c.w, rng);
        Tensor y = conv2d_forward(x, w, Tensor(), p);
        Tensor dy = Tensor::randn(y.shape(), rng);
        Tensor dx = conv2d_backward_data(dy, w, c.x, p), dw = conv2d_backward_weight(dy, x, c.w, p);
        Tensor y_ref = Tensor::empty(y.shape()), dx_ref = Tensor::empty(c.x), dw_ref = Tensor::empty(c.w);
        cpu::conv2d_forward_reference<float>(d, x.f32(), w.f32(), nullptr, y_ref.f32());
        cpu::conv2d_backward_data_reference<float>(d, dy.f32(), w.f32(), dx_ref.f32());
        cpu::conv2d_backward_weight_reference<float>(d, dy.f32(), x.f32(), dw_ref.f32());
        expect_close("y", y, y_ref, {1e-4, 1e-4});
        expect_close("dx", dx, dx_ref, {1e-4, 1e-4});
        expect_close("dw", dw, dw_ref, {1e-3, 1e-4});
      }
}
