// GEMM: the blocked CPU sgemm and the tiled CUDA sgemm against the double-precision triple
// loop, at odd sizes (partial register and cache tiles), all four transposes, leading
// dimensions larger than the rows, alpha/beta, the fused bias and the strided batch.
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/gemm.h"
#include "tests/op_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {

struct GemmCase {
  bool ta, tb;
  std::int64_t M, N, K;
  std::int64_t pad = 0;  // extra elements per row of every operand (lda > columns)
  float alpha = 1.f, beta = 0.f;
};

std::string describe(const GemmCase& g) {
  return std::string("sgemm ") + (g.ta ? "T" : "N") + (g.tb ? "T" : "N") + " M=" + std::to_string(g.M) +
         " N=" + std::to_string(g.N) + " K=" + std::to_string(g.K) + " pad=" + std::to_string(g.pad) +
         " alpha=" + std::to_string(g.alpha) + " beta=" + std::to_string(g.beta);
}

struct Operands {
  std::int64_t lda, ldb, ldc;
  std::vector<float> a, b, c;
};

Operands make_operands(const GemmCase& g, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd;
  Operands o;
  const std::int64_t a_rows = g.ta ? g.K : g.M, a_cols = g.ta ? g.M : g.K;
  const std::int64_t b_rows = g.tb ? g.N : g.K, b_cols = g.tb ? g.K : g.N;
  o.lda = a_cols + g.pad;
  o.ldb = b_cols + g.pad;
  o.ldc = g.N + g.pad;
  o.a.resize(static_cast<std::size_t>(a_rows * o.lda));
  o.b.resize(static_cast<std::size_t>(b_rows * o.ldb));
  o.c.resize(static_cast<std::size_t>(g.M * o.ldc));
  for (float& v : o.a) v = nd(rng);
  for (float& v : o.b) v = nd(rng);
  for (float& v : o.c) v = nd(rng);
  return o;
}

// The expected C (M x ldc, including the untouched padding) in double precision.
std::vector<double> expected(const GemmCase& g, const Operands& o) {
  std::vector<double> a(o.a.begin(), o.a.end()), b(o.b.begin(), o.b.end()), c(o.c.begin(), o.c.end());
  cpu::gemm_reference<double>(g.ta, g.tb, g.M, g.N, g.K, g.alpha, a.data(), o.lda, b.data(), o.ldb, g.beta, c.data(),
                              o.ldc);
  return c;
}

Tol gemm_tol(std::int64_t K) { return {1e-5 * std::sqrt(static_cast<double>(K)) + 1e-5, 1e-4}; }

const std::vector<GemmCase>& cpu_cases() {
  static const std::vector<GemmCase> cases = {
      {false, false, 1, 1, 1},          {false, false, 7, 13, 5},        {true, false, 7, 13, 5},
      {false, true, 7, 13, 5},          {true, true, 7, 13, 5},          {false, false, 67, 45, 300, 3},
      {true, false, 130, 33, 17, 1},    {false, true, 125, 70, 260, 2},  {true, true, 61, 129, 257, 0, 0.5f, 0.f},
      {false, false, 6, 16, 256, 0},    {false, false, 12, 32, 40, 0, 2.f, 1.f},
      {true, true, 19, 23, 29, 5, -1.f, 0.25f}, {false, false, 2, 3100, 3},  // N crosses the 3072 panel
      {false, true, 250, 250, 250, 0, 1.f, 1.f},  // big enough for the OpenMP path
  };
  return cases;
}

const std::vector<GemmCase>& gpu_cases() {
  static const std::vector<GemmCase> cases = {
      {false, false, 64, 64, 16},        {false, false, 70, 67, 35},      {true, false, 70, 67, 35},
      {false, true, 70, 67, 35},         {true, true, 70, 67, 35},        {false, false, 65, 130, 33, 1},
      {true, false, 33, 65, 70, 3, 0.5f, 1.f}, {false, true, 5, 3, 200, 4, -2.f, 0.5f}, {true, true, 1, 1, 1},
  };
  return cases;
}

// n standard normal values from a generator seeded `seed` (a bias).
std::vector<float> normal_values(std::int64_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd;
  std::vector<float> v(static_cast<std::size_t>(n));
  for (float& e : v) e = nd(rng);
  return v;
}

// f(g, seed) for each case with each register tile at 1 and 2 threads, the seed counting up
// from `seed` (the tile, thread count and case are named in a failure).
template <typename F>
void at_each_tile_and_thread_count(const std::vector<GemmCase>& cases, std::uint64_t seed, F&& f) {
  for (const cpu::CpuGemmKernel k : available_gemm_kernels())
    for (int threads : {1, 2})
      for (const GemmCase& g : cases) {
        const GemmKernelScope scope(k);
        const ThreadCountScope t(threads);
        CAPTURE(cpu::cpu_gemm_kernel_name(k));
        CAPTURE(threads);
        CAPTURE(describe(g));
        f(g, seed++);
      }
}

}  // namespace

TEST_CASE("sgemm (blocked, packed) matches the reference at odd sizes and all transposes, with each register tile" *
          doctest::test_suite("cpu")) {
  for (const cpu::CpuGemmKernel k : available_gemm_kernels()) {
    const GemmKernelScope scope(k);
    CAPTURE(cpu::cpu_gemm_kernel_name(k));
    std::uint64_t seed = 1;
    for (const GemmCase& g : cpu_cases()) {
      Operands o = make_operands(g, seed++);
      const std::vector<double> want = expected(g, o);
      cpu::sgemm(g.ta, g.tb, g.M, g.N, g.K, g.alpha, o.a.data(), o.lda, o.b.data(), o.ldb, g.beta, o.c.data(), o.ldc);
      expect_close(describe(g), o.c, want, gemm_tol(g.K));
    }
  }
}

TEST_CASE("sgemm: the AVX-512 and AVX2 register tiles give the same bits" * doctest::test_suite("cpu")) {
  if (!cpu::cpu_gemm_kernel_available(cpu::CpuGemmKernel::Avx512)) {
    MESSAGE("no AVX-512 on this CPU: nothing to compare");
    return;
  }
  std::vector<GemmCase> cases = cpu_cases();
  cases.push_back({false, false, 200, 300, 600, 1, 1.f, 0.f});  // several K blocks and thread parts
  cases.push_back({true, true, 45, 77, 513, 2, 0.5f, 1.f});
  std::uint64_t seed = 100;
  for (const GemmCase& g : cases) {
    CAPTURE(describe(g));
    const Operands base = make_operands(g, seed++);
    std::vector<std::vector<float>> results;
    for (const cpu::CpuGemmKernel k : {cpu::CpuGemmKernel::Avx2, cpu::CpuGemmKernel::Avx512}) {
      const GemmKernelScope scope(k);
      Operands o = base;
      cpu::sgemm(g.ta, g.tb, g.M, g.N, g.K, g.alpha, o.a.data(), o.lda, o.b.data(), o.ldb, g.beta, o.c.data(), o.ldc);
      results.push_back(o.c);
    }
    std::size_t differ = 0;
    for (std::size_t i = 0; i < results[0].size(); ++i) differ += results[0][i] != results[1][i];
    CHECK(differ == 0);
  }
}

TEST_CASE("sgemm with op(A) packed once (PackedA) gives the bits of sgemm, with each tile and thread count" *
          doctest::test_suite("cpu")) {
  std::vector<GemmCase> cases;
  for (const GemmCase& g : cpu_cases())
    if (!g.tb) cases.push_back(g);  // PackedA's products take B as stored
  cases.push_back({false, false, 200, 300, 600, 1, 1.f, 0.f});  // several K and M blocks, both thread splits
  cases.push_back({true, false, 45, 77, 513, 2, 0.5f, 1.f});
  cases.push_back({true, false, 300, 20, 70, 0});  // thread parts split M
  at_each_tile_and_thread_count(cases, 300, [](const GemmCase& g, std::uint64_t seed) {
    const Operands base = make_operands(g, seed);
    Operands want = base, got = base;
    cpu::sgemm(g.ta, false, g.M, g.N, g.K, g.alpha, want.a.data(), want.lda, want.b.data(), want.ldb, g.beta,
               want.c.data(), want.ldc);
    std::vector<float> room(static_cast<std::size_t>(cpu::PackedA::floats_for(g.M, g.K)), -1.f);
    const cpu::PackedA packed(g.ta, g.M, g.K, got.a.data(), got.lda, room.data());
    for (int use = 0; use < 2; ++use) {  // the same packing, used twice
      got.c = base.c;
      cpu::sgemm(packed, g.N, g.alpha, got.b.data(), got.ldb, g.beta, got.c.data(), got.ldc);
      CHECK(got.c == want.c);
    }
  });
}

TEST_CASE("sgemm reads a row-major op(A) in place with the bits of packing it, with each tile and thread count" *
          doctest::test_suite("cpu")) {
  // op(A) = A stored (M, K), few columns: read in place (micro_kernel<T, true>), not packed; the
  // same product with A^T stored and trans_a always packs. Cases: all of K in one B panel (K of
  // 257-1024) with a partial sliver at the last rows, one K block, K past the whole-K limit,
  // columns above the in-place limit, padded rows, beta 1, trans_b.
  const std::vector<GemmCase> cases = {
      {false, false, 131, 96, 384, 0},  {false, true, 131, 96, 384, 3, 1.f, 1.f}, {false, false, 131, 96, 200, 1},
      {false, false, 50, 40, 1100, 0},  {false, false, 29, 130, 300, 2},          {false, true, 300, 20, 70, 0},
      {false, false, 14, 32, 600, 0, 0.5f, 1.f}};
  at_each_tile_and_thread_count(cases, 500, [](const GemmCase& g, std::uint64_t seed) {
    Operands in_place = make_operands(g, seed);
    Operands packed = in_place;
    std::vector<float> at(static_cast<std::size_t>(g.K * g.M));  // A^T, (K, M)
    for (std::int64_t i = 0; i < g.M; ++i)
      for (std::int64_t kk = 0; kk < g.K; ++kk)
        at[static_cast<std::size_t>(kk * g.M + i)] = in_place.a[static_cast<std::size_t>(i * in_place.lda + kk)];
    cpu::sgemm(false, g.tb, g.M, g.N, g.K, g.alpha, in_place.a.data(), in_place.lda, in_place.b.data(), in_place.ldb,
               g.beta, in_place.c.data(), in_place.ldc);
    cpu::sgemm(true, g.tb, g.M, g.N, g.K, g.alpha, at.data(), g.M, packed.b.data(), packed.ldb, g.beta,
               packed.c.data(), packed.ldc);
    CHECK(in_place.c == packed.c);
    expect_close(describe(g), in_place.c, expected(g, make_operands(g, seed)), gemm_tol(g.K));
  });
}

TEST_CASE("sgemm_bias gives the bits of sgemm with beta 1 on rows that hold the bias" * doctest::test_suite("cpu")) {
  // Every loop order: one A block (M <= MC), the whole-K order with A packed and in place, the
  // K-block order (a B panel past half of L2), a partial last tile; K = 0 leaves the bias.
  std::vector<GemmCase> cases = cpu_cases();
  cases.push_back({false, true, 131, 96, 384, 0});
  cases.push_back({true, true, 131, 96, 384, 2});
  cases.push_back({false, true, 300, 1100, 300, 1});
  cases.push_back({false, false, 9, 7, 0});
  at_each_tile_and_thread_count(cases, 700, [](const GemmCase& g, std::uint64_t seed) {
    Operands want = make_operands(g, seed);
    Operands got = want;
    const std::vector<float> bias = normal_values(g.N, seed + 1);
    for (std::int64_t i = 0; i < g.M; ++i) std::copy(bias.begin(), bias.end(), want.c.begin() + i * want.ldc);
    cpu::sgemm(g.ta, g.tb, g.M, g.N, g.K, g.alpha, want.a.data(), want.lda, want.b.data(), want.ldb, 1.f,
               want.c.data(), want.ldc);
    cpu::sgemm_bias(g.ta, g.tb, g.M, g.N, g.K, g.alpha, got.a.data(), got.lda, got.b.data(), got.ldb, bias.data(),
                    got.c.data(), got.ldc);
    CHECK(got.c == want.c);
  });
}

TEST_CASE("sgemm with PackedA and a row bias gives the bits of beta 1 on rows that hold the bias" *
          doctest::test_suite("cpu")) {
  // A convolution's bias per output channel, added where the first K block stores its tile: one
  // A block, several K and M blocks, partial tiles, thread parts that split M.
  std::vector<GemmCase> cases;
  for (const GemmCase& g : cpu_cases())
    if (!g.tb) cases.push_back(g);
  cases.push_back({false, false, 200, 300, 600, 1});
  cases.push_back({true, false, 300, 20, 70, 0});
  at_each_tile_and_thread_count(cases, 900, [](const GemmCase& g, std::uint64_t seed) {
    Operands want = make_operands(g, seed);
    Operands got = want;
    const std::vector<float> row_bias = normal_values(g.M, seed + 1);
    for (std::int64_t i = 0; i < g.M; ++i) {
      const auto row = want.c.begin() + i * want.ldc;
      std::fill(row, row + g.N, row_bias[static_cast<std::size_t>(i)]);
    }
    cpu::sgemm(g.ta, false, g.M, g.N, g.K, g.alpha, want.a.data(), want.lda, want.b.data(), want.ldb, 1.f,
               want.c.data(), want.ldc);
    std::vector<float> room(static_cast<std::size_t>(cpu::PackedA::floats_for(g.M, g.K)) + 1);
    const cpu::PackedA packed(g.ta, g.M, g.K, got.a.data(), got.lda, room.data());
    cpu::sgemm(packed, g.N, g.alpha, got.b.data(), got.ldb, 0.f, got.c.data(), got.ldc, row_bias.data());
    CHECK(got.c == want.c);
  });
  std::vector<float> room(static_cast<std::size_t>(cpu::PackedA::floats_for(2, 2))), c(4);
  const std::vector<float> a(4, 1.f), b(4, 1.f), bias{1.f, 2.f};
  const cpu::PackedA packed(false, 2, 2, a.data(), 2, room.data());
  CHECK_THROWS_WITH(cpu::sgemm(packed, 2, 1.f, b.data(), 2, 1.f, c.data(), 2, bias.data()),
                    doctest::Contains("a row bias needs beta = 0"));
}

TEST_CASE("gemm_reference<float> agrees with gemm_reference<double>" * doctest::test_suite("cpu")) {
  const GemmCase g{true, false, 9, 11, 13, 2, 1.5f, 0.5f};
  Operands o = make_operands(g, 42);
  const std::vector<double> want = expected(g, o);
  cpu::gemm_reference<float>(g.ta, g.tb, g.M, g.N, g.K, g.alpha, o.a.data(), o.lda, o.b.data(), o.ldb, g.beta,
                             o.c.data(), o.ldc);
  expect_close(describe(g), o.c, want, gemm_tol(g.K));
}

TEST_CASE("sgemm with beta = 0 ignores NaN in C, and K = 0 scales C by beta" * doctest::test_suite("cpu")) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> a(6, 1.f), b(6, 1.f), c(4, nan);
  cpu::sgemm(false, false, 2, 2, 3, 1.f, a.data(), 3, b.data(), 2, 0.f, c.data(), 2);
  expect_close("beta 0", c, std::vector<double>(4, 3.0), {0, 0});
  cpu::sgemm(false, false, 2, 2, 0, 1.f, a.data(), 3, b.data(), 2, 0.5f, c.data(), 2);
  expect_close("K 0", c, std::vector<double>(4, 1.5), {0, 0});
}

TEST_CASE("matmul checks its operands" * doctest::test_suite("cpu")) {
  Tensor a = Tensor::zeros({3, 4}), b = Tensor::zeros({5, 6});
  CHECK_THROWS_WITH_AS(matmul(a, b), doctest::Contains("inner dimensions differ"), cxr::Error);
  Tensor c = matmul(a, Tensor::zeros({6, 4}), false, true);
  CHECK(c.shape() == Shape{3, 6});
}

TEST_CASE("cuda sgemm (tiled) matches the reference at odd sizes and all transposes" *
          doctest::test_suite(gpu_suite()) * doctest::skip(skip_gpu_cases())) {
  std::uint64_t seed = 100;
  for (const GemmCase& g : gpu_cases()) {
    Operands o = make_operands(g, seed++);
    const std::vector<double> want = expected(g, o);
    Tensor a = Tensor::from_vector(o.a, {static_cast<std::int64_t>(o.a.size())}).to(Device::CUDA);
    Tensor b = Tensor::from_vector(o.b, {static_cast<std::int64_t>(o.b.size())}).to(Device::CUDA);
    Tensor c = Tensor::from_vector(o.c, {static_cast<std::int64_t>(o.c.size())}).to(Device::CUDA);
    cuda::sgemm(g.ta, g.tb, g.M, g.N, g.K, g.alpha, a.f32(), o.lda, b.f32(), o.ldb, g.beta, c.f32(), o.ldc);
    expect_close(describe(g) + " cuda", c.to_vector(), want, gemm_tol(g.K));
  }
}

TEST_CASE("cuda sgemm: strided batch with shared A and fused row/column bias" * doctest::test_suite(gpu_suite()) *
          doctest::skip(skip_gpu_cases())) {
  const std::int64_t M = 37, N = 70, K = 24, batch = 3;
  std::mt19937_64 rng(7);
  Tensor a = Tensor::randn({M, K}, rng), b = Tensor::randn({batch, K, N}, rng);
  Tensor row = Tensor::randn({M}, rng), col = Tensor::randn({N}, rng);
  Tensor c = Tensor::empty({batch, M, N}, DType::F32, Device::CUDA);  // poisoned: beta = 0 must not read it
  Tensor da = a.to(Device::CUDA), db = b.to(Device::CUDA), drow = row.to(Device::CUDA), dcol = col.to(Device::CUDA);
  cuda::sgemm_strided_batched(false, false, M, N, K, 1.f, da.f32(), K, 0, db.f32(), N, K * N, 0.f, c.f32(), N, M * N,
                              batch, cuda::GemmBias{drow.f32(), dcol.f32()});
  std::vector<double> want(static_cast<std::size_t>(batch * M * N));
  const std::vector<float> av = a.to_vector(), bv = b.to_vector(), rv = row.to_vector(), cv = col.to_vector();
  for (std::int64_t z = 0; z < batch; ++z)
    for (std::int64_t m = 0; m < M; ++m)
      for (std::int64_t n = 0; n < N; ++n) {
        double s = rv[m] + cv[n];
        for (std::int64_t k = 0; k < K; ++k) s += double(av[m * K + k]) * bv[(z * K + k) * N + n];
        want[(z * M + m) * N + n] = s;
      }
  expect_close("batched sgemm with bias", c.to_vector(), want, gemm_tol(K));
}

TEST_CASE("matmul on the device equals matmul on the cpu" * doctest::test_suite(gpu_suite()) *
          doctest::skip(skip_gpu_cases())) {
  std::mt19937_64 rng(9);
  Tensor a = Tensor::randn({20, 33}, rng), b = Tensor::randn({45, 33}, rng);
  expect_close("matmul NT", matmul(a.to(Device::CUDA), b.to(Device::CUDA), false, true), matmul(a, b, false, true),
               {1e-5, 1e-4});
}
