// Backward through whole models in eval mode (frozen batch norm, dropout and drop-path as the
// identity), as PyTorch allows it outside torch.no_grad(): parameter gradients against central
// finite differences of the same eval-mode forward, for each family of layers (ResNet's basic
// blocks, EfficientNet's MBConv + squeeze-excitation, ConvNeXt's CNBlock + LayerNorm, DenseNet's
// dense layers with the bottleneck recomputed in backward).
// Also: under NoGradGuard an eval forward keeps nothing, and backward then says so.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <string>

#include "layers/init.h"
#include "models/model_factory.h"
#include "tests/op_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {

// L = sum(logits * r1) + sum(raw boxes * r2), accumulated in double.
double objective(CxrModel& m, const Tensor& x, const Tensor& r1, const Tensor& r2) {
  NoGradGuard no_grad;
  HeadOutputs o = m.forward_heads(x);
  const std::vector<float> l = o.logits.to_vector(), b = o.boxes.to_vector();
  const std::vector<float> a = r1.to_vector(), c = r2.to_vector();
  double sum = 0;
  for (std::size_t i = 0; i < l.size(); ++i) sum += double(l[i]) * a[i];
  for (std::size_t i = 0; i < b.size(); ++i) sum += double(b[i]) * c[i];
  return sum;
}

void check_eval_gradients(const std::string& arch, std::int64_t pixels) {
  CAPTURE(arch);
  manual_seed(3);
  std::unique_ptr<CxrModel> m = make_model(arch, 14);
  m->eval();
  std::mt19937_64 rng(4);
  const Tensor x = Tensor::randn({1, 3, pixels, pixels}, rng);
  const Tensor r1 = Tensor::randn({1, 14}, rng), r2 = Tensor::randn({1, 14, 4}, rng);

  m->zero_grad();
  m->forward_heads(x);
  m->backward_heads(r1, r2);

  auto params = m->named_parameters();
  const std::size_t n = params.size();
  for (std::size_t pick : {std::size_t{0}, n / 3, 2 * n / 3, n - 1}) {
    auto& [name, p] = params[pick];
    CAPTURE(name);
    // the entry with the largest analytic gradient among the first 64
    const std::vector<float> g = p->grad.to_vector();
    std::size_t at = 0;
    for (std::size_t i = 1; i < std::min<std::size_t>(g.size(), 64); ++i)
      if (std::abs(g[i]) > std::abs(g[at])) at = i;
    float* v = p->value.data<float>() + at;
    const float saved = *v, h = 3e-3f;
    *v = saved + h;
    const double up = objective(*m, x, r1, r2);
    *v = saved - h;
    const double down = objective(*m, x, r1, r2);
    *v = saved;
    const double numeric = (up - down) / (2.0 * h);
    CAPTURE(numeric);
    CAPTURE(g[at]);
    CHECK(std::abs(numeric - g[at]) <= 3e-3 + 3e-2 * std::abs(g[at]));
  }
}

}  // namespace

TEST_CASE("eval mode: model gradients match finite differences (resnet18, efficientnet_b0, convnext_tiny, densenet121)" *
          doctest::test_suite("models")) {
  check_eval_gradients("resnet18", 32);
  check_eval_gradients("efficientnet_b0", 32);
  check_eval_gradients("convnext_tiny", 32);
  check_eval_gradients("densenet121", 32);
}

TEST_CASE("eval mode under NoGradGuard keeps nothing, and backward says so" * doctest::test_suite("models")) {
  manual_seed(3);
  std::unique_ptr<CxrModel> m = make_model("resnet18", 14);
  m->eval();
  std::mt19937_64 rng(5);
  const Tensor x = Tensor::randn({1, 3, 32, 32}, rng);
  {
    NoGradGuard no_grad;
    m->forward_heads(x);
  }
  CHECK_THROWS_WITH_AS(m->backward_heads(Tensor::full({1, 14}, 1.f), Tensor()), doctest::Contains("without a forward"),
                       cxr::Error);
}
