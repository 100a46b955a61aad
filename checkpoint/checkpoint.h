// Checkpoints: a model's named parameters and buffers, saved as safetensors with metadata
// that makes the file self-describing (architecture, image size, class names,
// normalisation, decision thresholds). The format is documented in docs/checkpoints.md.
//
//   NamedTensors state = model.state();            // tensors share the model's storage
//   save_checkpoint("runs/a/best.safetensors", state, meta);
//   Checkpoint ck = load_checkpoint("runs/a/best.safetensors");
//   LoadReport r = load_state(state, ck.file, {.strict = true}, ck.path);   // copies in
//
//   // ImageNet weights into a model with a new head: torchvision's fc.* are left out and
//   // the model's own cls_head.*/box_head.* keep their initialisation.
//   load_state(state, read_safetensors("resnet18.safetensors"), backbone_options(), path);
//
// Names follow torchvision ("layer1.0.conv1.weight", "bn1.running_mean",
// "bn1.num_batches_tracked"); optimizer state, when saved, lives under "optimizer.".
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "checkpoint/safetensors.h"
#include "layers/module.h"

namespace cxr {

// An ordered list of (name, tensor); names are unique. Tensors are handles: loading into
// a NamedTensors copies into the tensors' storage, which a model shares.
class NamedTensors {
 public:
  void add(const std::string& name, const Tensor& t);  // throws on a duplicate or empty name
  // Adds every tensor of `other` as prefix + name (for nesting modules: "layer1.0." + ...).
  void add_all(const std::string& prefix, const NamedTensors& other);
  Tensor* find(const std::string& name);
  const Tensor* find(const std::string& name) const;
  const Tensor& at(const std::string& name) const;  // throws naming the tensor
  bool contains(const std::string& name) const { return find(name) != nullptr; }
  std::size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  std::int64_t numel() const;  // total elements
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }
  const std::vector<std::pair<std::string, Tensor>>& items() const { return items_; }

 private:
  std::vector<std::pair<std::string, Tensor>> items_;
};

inline const std::string kOptimizerPrefix = "optimizer.";

struct LoadOptions {
  // Strict: a tensor of the model absent from the file ("missing") or a tensor of the
  // file the model lacks ("unexpected") is an error. Non-strict: both are reported only.
  bool strict = true;
  // Names starting with one of these are left out on both sides: not loaded from the
  // file, not required of it. A shape mismatch is an error in every mode.
  std::vector<std::string> skip_prefixes;
};

// Heads that a backbone load leaves out: torchvision's classifiers and ours.
std::vector<std::string> head_prefixes();  // {"fc.", "classifier.", "cls_head.", "box_head."}
LoadOptions backbone_options();             // strict, skipping head_prefixes() and "optimizer."
LoadOptions model_options();                // strict, skipping "optimizer."

struct LoadReport {
  std::vector<std::string> loaded, missing, unexpected, skipped;
  std::string summary() const;  // "loaded 62 tensors, skipped 2 (fc.weight, fc.bias)"
};

// Copies the file's tensors into `dst` (any device; F32 destinations accept F32, BF16,
// F16, U8, I32 sources, converted; I32 destinations accept I32/I64). Everything is checked
// before anything is copied, so a failed load leaves `dst` untouched. `what` names the
// file in errors.
LoadReport load_state(NamedTensors& dst, const SafetensorsFile& src, const LoadOptions& options,
                      const std::string& what);

// Everything about a checkpoint that is not a tensor. Stored in __metadata__ as strings;
// lists are JSON arrays. Unknown keys are kept in `extra` and written back.
struct CheckpointMeta {
  std::string architecture;               // "resnet18", "resnet50", "efficientnet_b0"
  std::int64_t image_size = 0;            // input side in pixels (square)
  std::vector<std::string> class_names;   // output order of the classifier
  std::vector<double> mean, std;          // per-channel normalisation: (x/255 - mean) / std
  std::vector<double> thresholds;         // per-class decision thresholds (same order)
  std::int64_t epoch = -1, step = -1;     // training position; -1: not recorded
  SafetensorsMetadata extra;
};

inline constexpr const char* kCheckpointFormat = "cxr-checkpoint-1";

SafetensorsMetadata to_metadata(const CheckpointMeta& meta);
// Throws naming `what` and the key on a malformed value (bad JSON, wrong type, thresholds
// not matching the class count, unknown format version).
CheckpointMeta from_metadata(const SafetensorsMetadata& metadata, const std::string& what);

struct Checkpoint {
  std::string path;
  SafetensorsFile file;
  CheckpointMeta meta;
};

// Writes atomically; I32 tensors named "*num_batches_tracked" are written as I64 so that
// PyTorch reads them back as it wrote them.
void save_checkpoint(const std::string& path, const NamedTensors& state, const CheckpointMeta& meta);
Checkpoint load_checkpoint(const std::string& path);

// A module's parameters and buffers as state_dict tensors (handles sharing its storage), under
// torchvision's names: what save_checkpoint writes and load_state fills.
NamedTensors model_state(Module& model);

}  // namespace cxr
