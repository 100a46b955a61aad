// The model interface of cxr: a backbone that makes a feature map, global pooling, and two
// heads on the pooled features (replacing torchvision's classifier "fc" / "classifier"):
//
//   cls_head  Linear(F, C)      -> logits (N, C)               C = 14 findings
//   box_head  Linear(F, 4 C)    -> raw boxes (N, C, 4)         one box per finding
//
// Box layout: box_head output j = 4 c + k is coordinate k of class c's box, (cx, cy, w, h)
// normalised to [0, 1] by the image size after a sigmoid. The heads give raw values (the loss
// kernels/cxr_loss.h applies the sigmoid itself); predict() applies it.
//
//   std::unique_ptr<CxrModel> m = make_model("resnet50");       // models/model_factory.h
//   m->to(Device::CUDA); m->train();
//   HeadOutputs out = m->forward_heads(x);                       // x: (N, 3, H, W)
//   CxrLoss l = cxr_loss(out.logits, y, pw, out.boxes, t, mask, lambda);
//   m->zero_grad(); m->backward_heads(l.dz, l.db);               // parameter gradients
//   Tensor cams = m->class_activation_maps();                    // (N, C, h, w)
//
// An architecture derives from CxrModel, registers its backbone modules with torchvision's
// names, implements forward_features / backward_features (and set_input_grad), and calls
// add_heads() last in its constructor, so the state_dict keys are torchvision's without the
// classifier, then "cls_head.weight", "cls_head.bias", "box_head.weight", "box_head.bias".
#pragma once

#include <memory>
#include <string>

#include "layers/dropout.h"
#include "layers/linear.h"
#include "layers/pooling.h"

namespace cxr {

inline constexpr int kBoxCoords = 4;  // (cx, cy, w, h)

struct HeadOutputs {
  Tensor logits;  // (N, C)
  Tensor boxes;   // (N, C, 4) raw, before the sigmoid
};

struct Prediction {
  Tensor probs;  // (N, C)    sigmoid(logits)
  Tensor boxes;  // (N, C, 4) sigmoid(raw boxes): (cx, cy, w, h) in [0, 1]
};

class CxrModel : public Module {
 public:
  // --- each architecture --------------------------------------------------------------
  // x: (N, 3, H, W) -> the last feature map (N, F, h, w).
  virtual Tensor forward_features(const Tensor& x) = 0;
  // d(feature map) -> dx, or an undefined tensor when the input gradient is off.
  virtual Tensor backward_features(const Tensor& dfeatures) = 0;
  // Whether backward computes d(input) (default on). Off saves the stem's backward-data
  // convolution: training needs only parameter gradients.
  virtual void set_input_grad(bool on) = 0;
  virtual std::string architecture() const = 0;  // "resnet50", as make_model names it
  // Feature map -> pooled features (N, F). Default: the global average ("avgpool").
  virtual Tensor forward_pool(const Tensor& features);
  virtual Tensor backward_pool(const Tensor& dpooled);

  // --- common -------------------------------------------------------------------------
  // Runs the backbone, pooling, (dropout) and both heads. Keeps the feature map for CAMs.
  HeadOutputs forward_heads(const Tensor& x);
  // dlogits (N, C) and dboxes (N, C, 4) (either may be undefined, not both) -> dx (see
  // set_input_grad). After a forward_heads in training mode; parameter gradients accumulate.
  Tensor backward_heads(const Tensor& dlogits, const Tensor& dboxes);
  // forward_heads and the sigmoids (call eval() first for inference).
  Prediction predict(const Tensor& x);
  // Module interface: the logits only; backward takes dlogits (the box head gets no gradient).
  Tensor forward(const Tensor& x) override { return forward_heads(x).logits; }
  Tensor backward(const Tensor& dlogits) override { return backward_heads(dlogits, Tensor()); }

  // The feature map (N, F, h, w) of the last forward_heads (undefined before the first), f32:
  // kept bf16 under mixed precision (autocast), like every activation between layers, and
  // widened (exactly) here for the CAMs.
  Tensor feature_map() const;
  // Class activation maps of the last forward: cam[n, c] = sum_f cls_head.weight[c, f] *
  // features[n, f] (no bias), (N, C, h, w), on the model's device.
  Tensor class_activation_maps() const;

  Linear& cls_head() { return *cls_head_; }
  Linear& box_head() { return *box_head_; }
  GlobalAvgPool& avgpool() { return *avgpool_; }
  std::int64_t num_features() const { return num_features_; }
  int num_classes() const { return num_classes_; }

 protected:
  // Call last in the constructor: registers "avgpool", "dropout" (only when p > 0),
  // "cls_head" and "box_head" (PyTorch's default Linear init).
  void add_heads(std::int64_t num_features, int num_classes, float dropout = 0.f);

 private:
  std::int64_t num_features_ = 0;
  int num_classes_ = 0;
  GlobalAvgPool* avgpool_ = nullptr;
  Dropout* dropout_ = nullptr;
  Linear* cls_head_ = nullptr;
  Linear* box_head_ = nullptr;
  Tensor features_;
};

// sigmoid of raw box outputs: (N, C, 4) -> (cx, cy, w, h) in [0, 1].
Tensor box_sigmoid(const Tensor& raw_boxes);

}  // namespace cxr
