// Layer checks (see layer_check.h): finite differences on the CPU, device against CPU.
#include "tests/layers/layer_check.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "layers/init.h"
#include "tensor/backend.h"

namespace cxr::test {

namespace {

std::uint64_t seed_of(const std::string& name) { return std::hash<std::string>{}(name) ^ 0x51ed270b27f3a4c1ull; }

std::unique_ptr<Module> build(const LayerCase& c, std::uint64_t seed) {
  manual_seed(seed);
  std::unique_ptr<Module> m = c.make();
  REQUIRE(m);
  return m;
}

Tensor make_x(const LayerCase& c, std::uint64_t seed) {
  std::mt19937_64 rng(seed + 11);
  if (c.make_input) return c.make_input(rng);
  return Tensor::randn(c.input_shape, rng);
}

Tensor forward_train(Module& m, const LayerCase& c, const Tensor& x) {
  m.train();
  if (c.before_forward) c.before_forward(m);
  return m.forward(x);
}

// L = sum R * y in double.
double weighted(const Tensor& y, const std::vector<float>& r) {
  const std::vector<float> v = y.to_vector();
  REQUIRE(v.size() == r.size());
  double s = 0;
  for (std::size_t i = 0; i < v.size(); ++i) s += static_cast<double>(v[i]) * r[i];
  return s;
}

std::vector<std::size_t> pick(std::size_t n, int samples, std::mt19937_64& rng) {
  std::vector<std::size_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  if (n > static_cast<std::size_t>(samples)) {
    std::shuffle(idx.begin(), idx.end(), rng);
    idx.resize(samples);
  }
  return idx;
}

// Central differences of L along element j of `t` (a CPU tensor the forward reads).
double numeric_grad(Module& m, const LayerCase& c, const Tensor& x, Tensor& t, std::size_t j,
                    const std::vector<float>& r) {
  float* p = t.f32();
  const float v = p[j];
  p[j] = static_cast<float>(v + c.fd_step);
  const double hp = static_cast<double>(p[j]) - v;
  const double lp = weighted(forward_train(m, c, x), r);
  p[j] = static_cast<float>(v - c.fd_step);
  const double hm = v - static_cast<double>(p[j]);
  const double lm = weighted(forward_train(m, c, x), r);
  p[j] = v;
  return (lp - lm) / (hp + hm);
}

}  // namespace

std::function<Tensor(std::mt19937_64&)> distinct_values(const Shape& shape, float gap) {
  return [=](std::mt19937_64& rng) {
    Tensor t = Tensor::empty(shape);
    const std::int64_t n = t.numel();
    std::vector<std::int64_t> perm(n);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    for (std::int64_t i = 0; i < n; ++i) t.f32()[i] = (static_cast<float>(perm[i]) - 0.5f * n) * gap;
    return t;
  };
}

std::function<Tensor(std::mt19937_64&)> away_from_zero_input(const Shape& shape, float hi, float gap) {
  return [=](std::mt19937_64& rng) {
    Tensor t = Tensor::empty(shape);
    Generator g = away_from_zero(-hi, hi, gap);
    for (std::int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = g(rng);
    return t;
  };
}

void check_layer_on_cpu(const std::string& name, const LayerCase& c) {
  const std::uint64_t seed = seed_of(name);
  std::unique_ptr<Module> m = build(c, seed);
  Tensor x = make_x(c, seed);
  const Tensor y = forward_train(*m, c, x);
  std::mt19937_64 rng(seed + 1);
  const Tensor r = Tensor::randn(y.shape(), rng);
  const std::vector<float> rv = r.to_vector();
  m->zero_grad();
  const Tensor dx = m->backward(r);

  std::mt19937_64 picker(seed + 2);
  if (c.input_grad) {
    REQUIRE_MESSAGE(dx.defined(), name, ": backward returned no input gradient");
    REQUIRE(dx.shape() == x.shape());
    const std::vector<float> g = dx.to_vector();
    std::vector<float> analytic;
    std::vector<double> numeric;
    for (std::size_t j : pick(x.numel(), c.fd_samples, picker)) {
      analytic.push_back(g[j]);
      numeric.push_back(numeric_grad(*m, c, x, x, j, rv));
    }
    expect_close(name + " d(input) vs finite differences", analytic, numeric, c.grad_tol);
  }
  for (auto& [pname, p] : m->named_parameters()) {
    REQUIRE_MESSAGE(p->grad.defined(), name, ": no gradient for ", pname);
    const std::vector<float> g = p->grad.to_vector();
    std::vector<float> analytic;
    std::vector<double> numeric;
    for (std::size_t j : pick(p->value.numel(), c.fd_samples, picker)) {
      analytic.push_back(g[j]);
      numeric.push_back(numeric_grad(*m, c, x, p->value, j, rv));
    }
    expect_close(name + " d(" + pname + ") vs finite differences", analytic, numeric, c.grad_tol);
  }
}

void check_layer_on_gpu(const std::string& name, const LayerCase& c) {
  if (!backend::has_device()) FAIL("CXR_REQUIRE_GPU=1 but no CUDA device was found");
  const std::uint64_t seed = seed_of(name);
  const std::string dev = device_name(Device::CUDA);
  std::unique_ptr<Module> mc = build(c, seed);
  std::unique_ptr<Module> md = build(c, seed);
  md->to(Device::CUDA);
  const Tensor x = make_x(c, seed);
  const Tensor yc = forward_train(*mc, c, x);
  const Tensor yd = forward_train(*md, c, x.to(Device::CUDA));
  REQUIRE(yd.is_cuda());
  expect_close(name + " output " + dev + " vs cpu", yd, yc, c.device_tol);

  std::mt19937_64 rng(seed + 1);
  const Tensor r = Tensor::randn(yc.shape(), rng);
  mc->zero_grad();
  md->zero_grad();
  const Tensor dxc = mc->backward(r);
  const Tensor dxd = md->backward(r.to(Device::CUDA));
  if (c.input_grad) {
    REQUIRE(dxd.defined());
    expect_close(name + " d(input) " + dev + " vs cpu", dxd, dxc, c.device_grad_tol);
  }
  auto pc = mc->named_parameters();
  auto pd = md->named_parameters();
  REQUIRE(pc.size() == pd.size());
  for (std::size_t i = 0; i < pc.size(); ++i)
    expect_close(name + " d(" + pc[i].first + ") " + dev + " vs cpu", pd[i].second->grad, pc[i].second->grad,
                 c.device_grad_tol);
  auto bc = mc->named_buffers();
  auto bd = md->named_buffers();
  REQUIRE(bc.size() == bd.size());
  for (std::size_t i = 0; i < bc.size(); ++i) {
    if (bc[i].second->dtype() != DType::F32) {
      CHECK(bd[i].second->cpu().data<std::int32_t>()[0] == bc[i].second->data<std::int32_t>()[0]);
      continue;
    }
    expect_close(name + " buffer " + bc[i].first + " after the step, " + dev + " vs cpu", *bd[i].second,
                 *bc[i].second, c.device_tol);
  }
  if (c.check_eval) {
    mc->eval();
    md->eval();
    expect_close(name + " eval output " + dev + " vs cpu", md->forward(x.to(Device::CUDA)), mc->forward(x),
                 c.device_tol);
  }
}

}  // namespace cxr::test
