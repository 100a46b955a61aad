// CxrModel: pooling and the two heads shared by every architecture (see heads.h).
#include "models/heads.h"

#include "kernels/activation.h"
#include "kernels/add.h"
#include "kernels/cast.h"
#include "kernels/gemm.h"

namespace cxr {

void CxrModel::add_heads(std::int64_t num_features, int num_classes, float dropout) {
  CXR_CHECK(!cls_head_, "CxrModel::add_heads called twice");
  CXR_CHECK(num_features > 0 && num_classes > 0, "CxrModel: bad head sizes ", num_features, " features, ",
            num_classes, " classes");
  num_features_ = num_features;
  num_classes_ = num_classes;
  avgpool_ = &register_module("avgpool", std::make_unique<GlobalAvgPool>(/*flatten=*/true));
  if (dropout > 0.f) dropout_ = &register_module("dropout", std::make_unique<Dropout>(dropout));
  cls_head_ = &register_module("cls_head", std::make_unique<Linear>(num_features, num_classes));
  box_head_ = &register_module("box_head", std::make_unique<Linear>(num_features, kBoxCoords * num_classes));
}

Tensor CxrModel::forward_pool(const Tensor& features) { return avgpool_->forward(features); }

Tensor CxrModel::backward_pool(const Tensor& dpooled) { return avgpool_->backward(dpooled); }

HeadOutputs CxrModel::forward_heads(const Tensor& x) {
  CXR_CHECK(cls_head_, architecture(), ": the constructor did not call add_heads()");
  features_ = forward_features(x);
  Tensor pooled = forward_pool(features_);
  if (dropout_) pooled = dropout_->forward(pooled);
  HeadOutputs out;  // f32 for the loss (bf16 under autocast, widened exactly)
  out.logits = to_f32(cls_head_->forward(pooled));
  out.boxes = to_f32(box_head_->forward(pooled)).view({pooled.size(0), num_classes_, kBoxCoords});
  return out;
}

Tensor CxrModel::backward_heads(const Tensor& dlogits, const Tensor& dboxes) {
  CXR_CHECK(dlogits.defined() || dboxes.defined(), architecture(), ".backward_heads: no gradient given");
  Tensor dpooled;
  if (dlogits.defined()) dpooled = cls_head_->backward(dlogits);
  if (dboxes.defined()) {
    CXR_CHECK(dboxes.numel() % (kBoxCoords * num_classes_) == 0, architecture(), ".backward_heads: dboxes ",
              dboxes.str(), " is not (N, ", num_classes_, ", 4)");
    Tensor d = box_head_->backward(dboxes.contiguous().view({-1, kBoxCoords * num_classes_}));
    if (dpooled.defined()) add_(dpooled, d);
    else dpooled = d;
  }
  if (dropout_) dpooled = dropout_->backward(dpooled);
  return backward_features(backward_pool(dpooled));
}

Prediction CxrModel::predict(const Tensor& x) {
  NoGradGuard no_grad;
  HeadOutputs out = forward_heads(x);
  return {activation_forward(Activation::Sigmoid, out.logits), box_sigmoid(out.boxes)};
}

Tensor CxrModel::feature_map() const {
  return features_.defined() ? to_f32(features_) : features_;
}

Tensor CxrModel::class_activation_maps() const {
  CXR_CHECK(features_.defined(), architecture(), ".class_activation_maps: no forward yet");
  const Tensor features = feature_map();
  const std::int64_t N = features.size(0), F = features.size(1), h = features.size(2), w = features.size(3);
  const Tensor& weight = cls_head_->weight().value;  // (C, F)
  Tensor cams = Tensor::empty({N, num_classes_, h, w}, DType::F32, features.device());
  for (std::int64_t n = 0; n < N; ++n) {
    Tensor cam = matmul(weight, features.select(0, n).view({F, h * w}));  // (C, h w)
    cams.select(0, n).copy_(cam.view({num_classes_, h, w}));
  }
  return cams;
}

Tensor box_sigmoid(const Tensor& raw_boxes) { return activation_forward(Activation::Sigmoid, raw_boxes.contiguous()); }

}  // namespace cxr
