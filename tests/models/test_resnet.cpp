// ResNet structure and the CxrModel interface: the registry, output shapes, parameter counts,
// torchvision's initialisation, class activation maps, input-gradient switch, predictions.
// (Numerical parity with torchvision: test_resnet_parity.cpp.)
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "layers/init.h"
#include "models/model_factory.h"
#include "models/resnet.h"
#include "tests/op_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {
Tensor images(std::int64_t n, std::int64_t size, std::uint64_t seed = 1) {
  std::mt19937_64 rng(seed);
  return Tensor::randn({n, 3, size, size}, rng);
}
}  // namespace

TEST_CASE("make_model knows the ResNets and names the known ones on a typo" * doctest::test_suite("models")) {
  const std::vector<std::string> names = model_names();
  for (const char* n : {"resnet18", "resnet34", "resnet50"})
    CHECK(std::find(names.begin(), names.end(), n) != names.end());
  CHECK(make_model("resnet18")->architecture() == "resnet18");
  CHECK_THROWS_WITH_AS(make_model("resnet19"), doctest::Contains("known: resnet18, resnet34, resnet50"), cxr::Error);
}

TEST_CASE("ResNet parameter counts are torchvision's without fc, plus the heads" * doctest::test_suite("models")) {
  // torchvision: 11,689,512 / 21,797,672 / 25,557,032 with fc (F*1000 + 1000).
  struct Expect {
    const char* name;
    std::int64_t torchvision, features;
  };
  for (const Expect& e : {Expect{"resnet18", 11689512, 512}, Expect{"resnet34", 21797672, 512},
                          Expect{"resnet50", 25557032, 2048}}) {
    std::unique_ptr<CxrModel> m = make_model(e.name, 14);
    CHECK(m->num_features() == e.features);
    CHECK(m->num_classes() == 14);
    const std::int64_t heads = e.features * 14 + 14 + e.features * 56 + 56;
    CHECK_MESSAGE(m->parameter_count() == e.torchvision - (e.features * 1000 + 1000) + heads, e.name);
  }
}

TEST_CASE("resnet18 outputs, feature map and class activation maps" * doctest::test_suite("models")) {
  manual_seed(3);
  std::unique_ptr<CxrModel> m = make_model("resnet18", 14);
  m->eval();
  HeadOutputs out = m->forward_heads(images(2, 64));
  CHECK(out.logits.shape() == Shape{2, 14});
  CHECK(out.boxes.shape() == Shape{2, 14, 4});
  CHECK(m->feature_map().shape() == Shape{2, 512, 2, 2});
  const Tensor cams = m->class_activation_maps();
  REQUIRE(cams.shape() == Shape{2, 14, 2, 2});
  // The head is linear on the average-pooled features: mean over pixels of a CAM plus the
  // bias is the logit.
  const std::vector<float> c = cams.to_vector(), l = out.logits.to_vector();
  const std::vector<float> b = m->cls_head().bias()->value.to_vector();
  for (int n = 0; n < 2; ++n)
    for (int k = 0; k < 14; ++k) {
      double s = 0;
      for (int i = 0; i < 4; ++i) s += c[(n * 14 + k) * 4 + i];
      CHECK(s / 4 + b[k] == doctest::Approx(l[n * 14 + k]).epsilon(1e-4));
    }
  // Inference: probabilities and boxes (cx, cy, w, h) in (0, 1).
  Prediction p = m->predict(images(1, 96));
  CHECK(p.probs.shape() == Shape{1, 14});
  CHECK(p.boxes.shape() == Shape{1, 14, 4});
  for (float v : p.boxes.to_vector()) CHECK((v > 0.f && v < 1.f));
}

TEST_CASE("resnet50 has torchvision's initialisation and V1.5 strides" * doctest::test_suite("models")) {
  manual_seed(4);
  std::unique_ptr<CxrModel> m = make_model("resnet50", 14);
  std::map<std::string, Parameter*> params;
  for (auto& [name, p] : m->named_parameters()) params[name] = p;
  // kaiming_normal_(mode="fan_out", nonlinearity="relu"): std sqrt(2 / (K R S)).
  const Tensor& w = params.at("layer3.0.conv2.weight")->value;  // (256, 256, 3, 3), stride 2 here (V1.5)
  CHECK(w.shape() == Shape{256, 256, 3, 3});
  double s2 = 0;
  for (float v : w.to_vector()) s2 += double(v) * v;
  CHECK(std::sqrt(s2 / w.numel()) == doctest::Approx(std::sqrt(2.0 / (256 * 9))).epsilon(0.02));
  for (float v : params.at("layer1.0.bn3.weight")->value.to_vector()) CHECK(v == 1.f);
  CHECK(params.at("layer1.0.downsample.0.weight")->value.shape() == Shape{256, 64, 1, 1});
  CHECK_FALSE(params.at("layer2.0.bn1.bias")->weight_decay);
  CHECK(params.at("layer2.0.conv1.weight")->weight_decay);
  // The stride of layer2..4 sits in conv2 (3x3): 64 -> 16 (stem) -> 16, 8, 4, 2.
  m->eval();
  m->forward_heads(images(1, 64));
  CHECK(m->feature_map().shape() == Shape{1, 2048, 2, 2});
}

TEST_CASE("backward_heads: input gradient switch, box head optional, batch count" * doctest::test_suite("models")) {
  const Tensor x = images(2, 32, 7);
  std::mt19937_64 rng(8);
  const Tensor dlogits = Tensor::randn({2, 14}, rng), dboxes = Tensor::randn({2, 14, 4}, rng);
  manual_seed(5);
  std::unique_ptr<CxrModel> a = make_model("resnet18", 14);
  manual_seed(5);
  std::unique_ptr<CxrModel> b = make_model("resnet18", 14);
  b->set_input_grad(false);
  a->zero_grad();
  b->zero_grad();
  a->forward_heads(x);
  b->forward_heads(x);
  const Tensor dxa = a->backward_heads(dlogits, dboxes);
  CHECK(dxa.shape() == x.shape());
  CHECK_FALSE(b->backward_heads(dlogits, dboxes).defined());
  auto pa = a->named_parameters(), pb = b->named_parameters();
  for (std::size_t i = 0; i < pa.size(); ++i)
    expect_close("d(" + pa[i].first + ")", pb[i].second->grad, pa[i].second->grad, {0, 0});
  for (auto& [name, buf] : a->named_buffers())
    if (name.ends_with("num_batches_tracked")) CHECK(buf->data<std::int32_t>()[0] == 1);

  // Logits only: the box head gets no gradient.
  a->zero_grad();
  a->forward_heads(x);
  a->backward_heads(dlogits, Tensor());
  const std::vector<float> gbox = a->box_head().weight().grad.to_vector();
  CHECK(std::count(gbox.begin(), gbox.end(), 0.f) == static_cast<std::ptrdiff_t>(gbox.size()));
  double s = 0;
  for (float v : a->cls_head().weight().grad.to_vector()) s += std::fabs(v);
  CHECK(s > 0);
  CHECK_THROWS_AS(a->backward_heads(Tensor(), Tensor()), cxr::Error);
}
