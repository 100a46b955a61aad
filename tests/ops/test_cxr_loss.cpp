// The fused loss in the op registry: loss, bce, mse, dz, db against the double reference,
// d loss / dz and d loss / db against finite differences, and every output on the device.
#include <cmath>
#include <memory>

#include "kernels/cxr_loss.h"
#include "kernels/reduce.h"
#include "tensor/backend.h"
#include "tests/op_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {

constexpr int kClasses = 14;
constexpr float kBoxWeight = 2.5f;

Generator bits(double p_one) {
  return [p_one](std::mt19937_64& rng) { return std::bernoulli_distribution(p_one)(rng) ? 1.f : 0.f; };
}

// Box mask: sample 0 has no box at all, sample 1 a box for every class, the rest at random.
// (The generator is copied afresh for every set of inputs, so its counter restarts.)
Generator box_mask(bool none_at_all) {
  return [none_at_all, k = std::int64_t{0}](std::mt19937_64& rng) mutable {
    const std::int64_t sample = k++ / kClasses;
    const float r = std::bernoulli_distribution(0.3)(rng) ? 1.f : 0.f;
    if (none_at_all || sample == 0) return 0.f;
    if (sample == 1) return 1.f;
    return r;
  };
}

OpCase loss_case(std::int64_t n, bool no_boxes = false) {
  OpCase c;
  c.inputs = {{{n, kClasses}, normal(0.f, 2.f)},             // z
              {{n, kClasses}, bits(0.4), false},             // y
              {{kClasses}, uniform(0.5f, 5.f), false},       // pw
              {{n, kClasses, 4}, normal(0.f, 1.5f)},         // b
              {{n, kClasses, 4}, uniform(0.f, 1.f), false},  // t
              {{n, kClasses}, box_mask(no_boxes), false}};   // m
  c.forward = [](Tensors& in) {
    CxrLoss r = cxr_loss(in[0], in[1], in[2], in[3], in[4], in[5], kBoxWeight);
    return Tensors{r.loss, r.bce, r.mse, r.dz, r.db};
  };
  c.differentiable_outputs = {true, false, false, false, false};  // gradients of `loss`
  c.backward = [](const Tensors& in, const Tensors&, const Tensors& dout) {
    CxrLoss r = cxr_loss(in[0], in[1], in[2], in[3], in[4], in[5], kBoxWeight);
    std::vector<Tensor> g{r.dz, r.db};
    scale_(g, dout[0]);  // chain rule with the upstream d(loss), read on the device
    return Tensors{g[0], Tensor(), Tensor(), g[1], Tensor(), Tensor()};
  };
  c.reference = [n](const Doubles& in) {
    std::vector<double> out3(3), dz(n * kClasses), db(n * kClasses * 4);
    cpu::cxr_loss<double>(in[0].data(), in[1].data(), in[2].data(), in[3].data(), in[4].data(), in[5].data(), n,
                          kClasses, kBoxWeight, out3.data(), dz.data(), db.data(), n, -1.0);
    return Doubles{{out3[0]}, {out3[1]}, {out3[2]}, dz, db};
  };
  // dz and db scale like 1 / (N C) and 1 / (4 Σ m): absolute tolerances follow, so that a
  // wrong normaliser cannot hide below atol at larger N.
  const double small = 1e-6 / static_cast<double>(n * kClasses);
  c.forward_tol = {small, 1e-5};
  c.grad_tol = {small, 1e-4};
  c.device_tol = {small, 1e-5};
  c.device_grad_tol = {small, 1e-5};
  c.fd_samples = 48;
  return c;
}

}  // namespace

CXR_OP_CASE("cxr_loss N=5") {
  return loss_case(5);
}
CXR_OP_CASE("cxr_loss N=33 (two blocks)") {
  return loss_case(33);
}
CXR_OP_CASE("cxr_loss N=3 without any box") {
  return loss_case(3, true);
}
CXR_OP_CASE("cxr_loss N=200 (11 blocks)") {
  return loss_case(200);
}

TEST_CASE("cxr_loss is finite and exact for saturated logits" * doctest::test_suite("cpu")) {
  // z = +-100: a naive log(sigmoid) gives log(0) = -inf.
  Tensor z = Tensor::from_vector({100.f, -100.f, 100.f, -100.f}, {1, 4});
  Tensor y = Tensor::from_vector({1.f, 0.f, 0.f, 1.f}, {1, 4});
  Tensor pw = Tensor::from_vector({2.f, 2.f, 2.f, 2.f}, {4});
  Tensor b = Tensor::zeros({1, 4, 4}), t = Tensor::zeros({1, 4, 4}), m = Tensor::zeros({1, 4});
  CxrLoss r = cxr_loss(z, y, pw, b, t, m, 1.f);
  // correct predictions cost ~0, wrong ones 100 (y=0) and 2 * 100 (y=1, pw=2): mean 300 / 4.
  CHECK(r.loss.item() == doctest::Approx(75.0));
  CHECK(r.mse.item() == 0.0f);
  const std::vector<float> dz = r.dz.to_vector();
  CHECK(dz[0] == doctest::Approx(0.0));
  CHECK(dz[2] == doctest::Approx(0.25));  // sigma(100) / 4
  CHECK(dz[3] == doctest::Approx(-0.5));  // -pw / 4
}

TEST_CASE("cxr_loss rejects mismatched shapes with clear messages" * doctest::test_suite("cpu")) {
  Tensor z = Tensor::zeros({2, 14}), y = Tensor::zeros({2, 14}), pw = Tensor::zeros({14});
  Tensor b = Tensor::zeros({2, 14, 4}), t = Tensor::zeros({2, 14, 4}), m = Tensor::zeros({2, 14});
  CHECK_THROWS_WITH_AS(cxr_loss(z, y, Tensor::zeros({13}), b, t, m, 1.f), doctest::Contains("pw"), cxr::Error);
  CHECK_THROWS_WITH_AS(cxr_loss(z, y, pw, Tensor::zeros({2, 14, 3}), t, m, 1.f), doctest::Contains("b"), cxr::Error);
  CHECK_THROWS_WITH_AS(cxr_loss(z, Tensor::zeros({3, 14}), pw, b, t, m, 1.f), doctest::Contains("y"), cxr::Error);
}

TEST_CASE("cxr_loss on the device is bitwise reproducible" * doctest::test_suite(gpu_suite()) *
          doctest::skip(skip_gpu_cases())) {
  REQUIRE_MESSAGE(backend::has_device(), "CXR_REQUIRE_GPU=1 but no CUDA device");
  std::mt19937_64 rng(3);
  const std::int64_t n = 150;
  Tensor z = Tensor::randn({n, kClasses}, rng, 0.f, 2.f, Device::CUDA);
  Tensor b = Tensor::randn({n, kClasses, 4}, rng, 0.f, 1.f, Device::CUDA);
  Tensor t = Tensor::uniform({n, kClasses, 4}, rng, 0.f, 1.f, Device::CUDA);
  Tensor y = Tensor::full({n, kClasses}, 1.f, Device::CUDA), m = Tensor::full({n, kClasses}, 1.f, Device::CUDA);
  Tensor pw = Tensor::full({kClasses}, 3.f, Device::CUDA);
  const std::vector<float> first = cxr_loss(z, y, pw, b, t, m, kBoxWeight).loss.to_vector();
  for (int k = 0; k < 5; ++k) CHECK(cxr_loss(z, y, pw, b, t, m, kBoxWeight).loss.to_vector() == first);
}

// Data-parallel training: the parts of a global batch, each with the global LossShare, give
// losses and gradients that add up to the whole batch's (what the gradient all-reduce sums).
TEST_CASE("cxr_loss with a LossShare: the parts of a batch add up to the whole" * doctest::test_suite("cpu")) {
  std::vector<Device> devices{Device::CPU};
  if (backend::has_device()) devices.push_back(Device::CUDA);
  for (Device dev : devices) {
    CAPTURE(device_name(dev));
    std::mt19937_64 rng(11);
    const std::int64_t n = 10, split = 4;  // parts of 4 and 6 rows
    Tensor z = Tensor::randn({n, kClasses}, rng, 0.f, 2.f);
    Tensor b = Tensor::randn({n, kClasses, 4}, rng, 0.f, 1.f);
    Tensor t = Tensor::uniform({n, kClasses, 4}, rng, 0.f, 1.f);
    Tensor y = Tensor::zeros({n, kClasses});
    Tensor m = Tensor::zeros({n, kClasses});
    for (std::int64_t i = 0; i < n * kClasses; i += 3) y.f32()[i] = 1.f;
    for (std::int64_t i = 0; i < n * kClasses; i += 7) m.f32()[i] = 1.f;  // boxes unevenly spread over the parts
    Tensor pw = Tensor::full({kClasses}, 2.5f);
    double boxes = 0;
    for (std::int64_t i = 0; i < n * kClasses; ++i) boxes += m.f32()[i];
    const CxrLoss whole = cxr_loss(z.to(dev), y.to(dev), pw.to(dev), b.to(dev), t.to(dev), m.to(dev), kBoxWeight);
    const std::vector<float> whole_dz = whole.dz.to_vector(), whole_db = whole.db.to_vector();
    double loss_sum = 0;
    std::int64_t row = 0;
    for (const std::int64_t rows : {split, n - split}) {
      auto part = [&](const Tensor& x) { return x.narrow(0, row, rows).contiguous().to(dev); };
      const CxrLoss p = cxr_loss(part(z), part(y), pw.to(dev), part(b), part(t), part(m), kBoxWeight,
                                 LossShare{.rows = n, .boxes = boxes});
      loss_sum += p.loss.item();
      const std::vector<float> dz = p.dz.to_vector(), db = p.db.to_vector();
      for (std::size_t i = 0; i < dz.size(); ++i)
        CHECK(dz[i] == doctest::Approx(whole_dz[static_cast<std::size_t>(row * kClasses) + i]).epsilon(1e-6));
      for (std::size_t i = 0; i < db.size(); ++i)
        CHECK(db[i] == doctest::Approx(whole_db[static_cast<std::size_t>(row * kClasses * 4) + i]).epsilon(1e-6));
      row += rows;
    }
    CHECK(loss_sum == doctest::Approx(whole.loss.item()).epsilon(1e-6));
  }
  CHECK_THROWS_WITH_AS(cxr_loss(Tensor::zeros({4, 14}), Tensor::zeros({4, 14}), Tensor::zeros({14}),
                                Tensor::zeros({4, 14, 4}), Tensor::zeros({4, 14, 4}), Tensor::zeros({4, 14}), 1.f,
                                LossShare{.rows = 2}),
                       doctest::Contains("global batch"), cxr::Error);
}

// --- the label mask (labels missing from a data set) -------------------------------------

namespace {

// Label mask: sample 0 misses every label, sample 1 has every label, the rest at random.
Generator label_mask() {
  return [k = std::int64_t{0}](std::mt19937_64& rng) mutable {
    const std::int64_t sample = k++ / kClasses;
    const float r = std::bernoulli_distribution(0.6)(rng) ? 1.f : 0.f;
    if (sample == 0) return 0.f;
    if (sample == 1) return 1.f;
    return r;
  };
}

OpCase masked_loss_case(std::int64_t n) {
  OpCase c = loss_case(n);
  c.inputs.push_back({{n, kClasses}, label_mask(), false});  // l
  c.forward = [](Tensors& in) {
    CxrLoss r = cxr_loss(in[0], in[1], in[2], in[3], in[4], in[5], kBoxWeight, {}, in[6]);
    return Tensors{r.loss, r.bce, r.mse, r.dz, r.db};
  };
  c.backward = [](const Tensors& in, const Tensors&, const Tensors& dout) {
    CxrLoss r = cxr_loss(in[0], in[1], in[2], in[3], in[4], in[5], kBoxWeight, {}, in[6]);
    std::vector<Tensor> g{r.dz, r.db};
    scale_(g, dout[0]);
    return Tensors{g[0], Tensor(), Tensor(), g[1], Tensor(), Tensor(), Tensor()};
  };
  c.reference = [n](const Doubles& in) {
    std::vector<double> out3(3), dz(n * kClasses), db(n * kClasses * 4);
    cpu::cxr_loss<double>(in[0].data(), in[1].data(), in[2].data(), in[3].data(), in[4].data(), in[5].data(), n,
                          kClasses, kBoxWeight, out3.data(), dz.data(), db.data(), n, -1.0, in[6].data());
    return Doubles{{out3[0]}, {out3[1]}, {out3[2]}, dz, db};
  };
  return c;
}

}  // namespace

CXR_OP_CASE("cxr_loss N=6 with missing labels") {
  return masked_loss_case(6);
}
CXR_OP_CASE("cxr_loss N=40 with missing labels (three blocks)") {
  return masked_loss_case(40);
}

std::vector<Device> loss_devices() {
  std::vector<Device> devices{Device::CPU};
  if (backend::has_device()) devices.push_back(Device::CUDA);
  return devices;
}

TEST_CASE("cxr_loss: an all-ones label mask gives the unmasked loss bit for bit" * doctest::test_suite("cpu")) {
  for (Device dev : loss_devices()) {
    CAPTURE(device_name(dev));
    for (const std::int64_t n : {3, 50}) {
      std::mt19937_64 rng(5 + static_cast<unsigned>(n));
      Tensor z = Tensor::randn({n, kClasses}, rng, 0.f, 2.f).to(dev);
      Tensor b = Tensor::randn({n, kClasses, 4}, rng, 0.f, 1.f).to(dev);
      Tensor t = Tensor::uniform({n, kClasses, 4}, rng, 0.f, 1.f).to(dev);
      Tensor y = Tensor::zeros({n, kClasses}), m = Tensor::zeros({n, kClasses});
      for (std::int64_t i = 0; i < n * kClasses; i += 3) y.f32()[i] = 1.f;
      for (std::int64_t i = 0; i < n * kClasses; i += 5) m.f32()[i] = 1.f;
      Tensor pw = Tensor::uniform({kClasses}, rng, 0.5f, 4.f).to(dev);
      const CxrLoss plain = cxr_loss(z, y.to(dev), pw, b, t, m.to(dev), kBoxWeight);
      const CxrLoss masked =
          cxr_loss(z, y.to(dev), pw, b, t, m.to(dev), kBoxWeight, {}, Tensor::full({n, kClasses}, 1.f).to(dev));
      CHECK(masked.loss.to_vector() == plain.loss.to_vector());
      CHECK(masked.bce.to_vector() == plain.bce.to_vector());
      CHECK(masked.dz.to_vector() == plain.dz.to_vector());
      CHECK(masked.db.to_vector() == plain.db.to_vector());
    }
  }
}

TEST_CASE("cxr_loss: a missing label's target is ignored and its gradient is 0" * doctest::test_suite("cpu")) {
  for (Device dev : loss_devices()) {
    CAPTURE(device_name(dev));
    // 2 samples x 3 classes; sample 1 misses classes 0 and 2: the mean is over 4 labels.
    Tensor z = Tensor::from_vector({0.5f, -1.f, 2.f, 1.5f, 0.3f, -0.7f}, {2, 3});
    Tensor y = Tensor::from_vector({1.f, 0.f, 1.f, 0.f, 1.f, 0.f}, {2, 3});
    Tensor y2 = Tensor::from_vector({1.f, 0.f, 1.f, 1.f, 1.f, 1.f}, {2, 3});  // differs only where missing
    Tensor l = Tensor::from_vector({1.f, 1.f, 1.f, 0.f, 1.f, 0.f}, {2, 3});
    Tensor pw = Tensor::from_vector({2.f, 1.f, 3.f}, {3});
    Tensor b = Tensor::zeros({2, 3, 4}), t = Tensor::zeros({2, 3, 4}), m = Tensor::zeros({2, 3});
    const CxrLoss r = cxr_loss(z.to(dev), y.to(dev), pw.to(dev), b.to(dev), t.to(dev), m.to(dev), 1.f, {}, l.to(dev));
    const CxrLoss r2 = cxr_loss(z.to(dev), y2.to(dev), pw.to(dev), b.to(dev), t.to(dev), m.to(dev), 1.f, {}, l.to(dev));
    auto sp = [](double x) { return std::log1p(std::exp(x)); };
    const double expect = (2 * sp(-0.5) + sp(-1.0) + 3 * sp(-2.0) + sp(-0.3)) / 4.0;
    CHECK(r.bce.item() == doctest::Approx(expect).epsilon(1e-6));
    CHECK(r2.bce.item() == r.bce.item());
    const std::vector<float> dz = r.dz.to_vector();
    CHECK(dz[3] == 0.f);
    CHECK(dz[5] == 0.f);
    CHECK(dz[4] == doctest::Approx((1.0 / (1.0 + std::exp(-0.3)) - 1.0) / 4.0).epsilon(1e-6));
    // Nothing present: 0, not NaN.
    const CxrLoss none =
        cxr_loss(z.to(dev), y.to(dev), pw.to(dev), b.to(dev), t.to(dev), m.to(dev), 1.f, {}, Tensor::zeros({2, 3}).to(dev));
    CHECK(none.bce.item() == 0.f);
    for (float v : none.dz.to_vector()) CHECK(v == 0.f);
  }
  CHECK_THROWS_WITH_AS(cxr_loss(Tensor::zeros({2, 3}), Tensor::zeros({2, 3}), Tensor::zeros({3}), Tensor::zeros({2, 3, 4}),
                                Tensor::zeros({2, 3, 4}), Tensor::zeros({2, 3}), 1.f, {}, Tensor::zeros({2, 4})),
                       doctest::Contains("label_mask"), cxr::Error);
}

TEST_CASE("cxr_loss with a label mask and a LossShare: the parts add up to the whole" * doctest::test_suite("cpu")) {
  for (Device dev : loss_devices()) {
    CAPTURE(device_name(dev));
    std::mt19937_64 rng(17);
    const std::int64_t n = 9, split = 5;
    Tensor z = Tensor::randn({n, kClasses}, rng, 0.f, 2.f);
    Tensor b = Tensor::randn({n, kClasses, 4}, rng, 0.f, 1.f);
    Tensor t = Tensor::uniform({n, kClasses, 4}, rng, 0.f, 1.f);
    Tensor y = Tensor::zeros({n, kClasses}), m = Tensor::zeros({n, kClasses}), l = Tensor::zeros({n, kClasses});
    double labels = 0;
    for (std::int64_t i = 0; i < n * kClasses; ++i) {
      y.f32()[i] = i % 3 == 0 ? 1.f : 0.f;
      m.f32()[i] = i % 7 == 0 ? 1.f : 0.f;
      l.f32()[i] = (i / kClasses) % 2 == 0 || i % kClasses < 5 ? 1.f : 0.f;  // odd rows miss classes 5..13
      labels += l.f32()[i];
    }
    double boxes = 0;
    for (std::int64_t i = 0; i < n * kClasses; ++i) boxes += m.f32()[i];
    Tensor pw = Tensor::full({kClasses}, 1.5f);
    const CxrLoss whole =
        cxr_loss(z.to(dev), y.to(dev), pw.to(dev), b.to(dev), t.to(dev), m.to(dev), kBoxWeight, {}, l.to(dev));
    const std::vector<float> whole_dz = whole.dz.to_vector();
    double loss_sum = 0;
    std::int64_t row = 0;
    for (const std::int64_t rows : {split, n - split}) {
      auto part = [&](const Tensor& x) { return x.narrow(0, row, rows).contiguous().to(dev); };
      const CxrLoss p = cxr_loss(part(z), part(y), pw.to(dev), part(b), part(t), part(m), kBoxWeight,
                                 LossShare{.rows = n, .boxes = boxes, .labels = labels}, part(l));
      loss_sum += p.loss.item();
      const std::vector<float> dz = p.dz.to_vector();
      for (std::size_t i = 0; i < dz.size(); ++i)
        CHECK(dz[i] == doctest::Approx(whole_dz[static_cast<std::size_t>(row * kClasses) + i]).epsilon(1e-6));
      row += rows;
    }
    CHECK(loss_sum == doctest::Approx(whole.loss.item()).epsilon(1e-6));
  }
}
