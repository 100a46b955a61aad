// Checkpoints: NamedTensors, strict and non-strict loading, shape mismatches naming both
// shapes, backbone loading that leaves heads out, the metadata schema, and a PyTorch file
// (num_batches_tracked as I64) loaded into a model-like map and saved back as I64.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "tests/golden.h"
#include "checkpoint/checkpoint.h"

using namespace cxr;
namespace fs = std::filesystem;

namespace {

// A stand-in for a model: a conv, a batch norm and a head, named the torchvision way.
NamedTensors tiny_model(int classes, std::mt19937_64& rng) {
  NamedTensors m;
  m.add("conv1.weight", Tensor::randn({4, 3, 3, 3}, rng));
  m.add("bn1.weight", Tensor::full({4}, 1.f));
  m.add("bn1.bias", Tensor::zeros({4}));
  m.add("bn1.running_mean", Tensor::zeros({4}));
  m.add("bn1.running_var", Tensor::full({4}, 1.f));
  m.add("bn1.num_batches_tracked", Tensor::zeros({}, DType::I32));
  m.add("cls_head.weight", Tensor::randn({classes, 4}, rng));
  m.add("cls_head.bias", Tensor::zeros({classes}));
  return m;
}

std::string scratch_file(const std::string& name) {
  return (fs::temp_directory_path() / ("cxr_test_ckpt_" + std::to_string(::getpid()) + "_" + name)).string();
}

}  // namespace

TEST_SUITE("train") {

TEST_CASE("NamedTensors: unique names, lookup, nesting with a prefix") {
  NamedTensors block;
  block.add("conv.weight", Tensor::zeros({2, 2}));
  CHECK_THROWS_WITH_AS(block.add("conv.weight", Tensor::zeros({1})), doctest::Contains("already taken"), cxr::Error);
  CHECK_THROWS_AS(block.add("", Tensor::zeros({1})), cxr::Error);
  NamedTensors model;
  model.add_all("layer1.0.", block);
  model.add_all("layer1.1.", block);
  CHECK(model.size() == 2);
  CHECK(model.contains("layer1.1.conv.weight"));
  CHECK(model.numel() == 8);
  CHECK_THROWS_WITH_AS(model.at("layer2.conv.weight"), doctest::Contains("'layer2.conv.weight'"), cxr::Error);
  // Handles share storage: writing through the map changes the block's tensor.
  model.find("layer1.0.conv.weight")->fill_(5.f);
  CHECK(block.at("conv.weight").to_vector()[0] == 5.f);
}

TEST_CASE("checkpoint: save and load restore every tensor and the metadata") {
  std::mt19937_64 rng(1);
  NamedTensors a = tiny_model(3, rng);
  a.find("bn1.num_batches_tracked")->data<std::int32_t>()[0] = 42;
  CheckpointMeta meta;
  meta.architecture = "resnet18";
  meta.image_size = 224;
  meta.class_names = {"Atelectasis", "Cardiomegaly", "Effusion"};
  meta.mean = {0.485, 0.456, 0.406};
  meta.std = {0.229, 0.224, 0.225};
  meta.thresholds = {0.25, 0.5, 0.125};
  meta.epoch = 3;
  meta.step = 1234;
  meta.extra["git"] = "abc123";
  const std::string path = scratch_file("save.safetensors");
  save_checkpoint(path, a, meta);

  Checkpoint c = load_checkpoint(path);
  CHECK(c.file.metadata.at("cxr.format") == kCheckpointFormat);
  CHECK(c.file.metadata.at("normalize_mean") == "[0.485,0.456,0.406]");
  CHECK(c.file.find("bn1.num_batches_tracked")->file_dtype == "I64");  // as PyTorch writes it
  CHECK(c.meta.architecture == "resnet18");
  CHECK(c.meta.image_size == 224);
  CHECK(c.meta.class_names == meta.class_names);
  CHECK(c.meta.mean == meta.mean);
  CHECK(c.meta.std == meta.std);
  CHECK(c.meta.thresholds == meta.thresholds);
  CHECK(c.meta.epoch == 3);
  CHECK(c.meta.step == 1234);
  CHECK(c.meta.extra.at("git") == "abc123");

  std::mt19937_64 rng2(99);
  NamedTensors b = tiny_model(3, rng2);
  LoadReport r = load_state(b, c.file, {}, path);
  CHECK(r.loaded.size() == 8);
  CHECK(r.missing.empty());
  for (const auto& [name, t] : a) {
    CAPTURE(name);
    if (t.dtype() == DType::F32) CHECK(b.at(name).to_vector() == t.to_vector());
  }
  CHECK(b.at("bn1.num_batches_tracked").data<std::int32_t>()[0] == 42);
  fs::remove(path);
}

TEST_CASE("checkpoint: strict load names missing and unexpected tensors; non-strict reports them") {
  std::mt19937_64 rng(2);
  NamedTensors src = tiny_model(3, rng);
  src.add("extra.weight", Tensor::zeros({2}));
  SafetensorsFile file = parse_safetensors(serialize_safetensors(
                                               [&] {
                                                 std::vector<SafetensorsEntry> e;
                                                 for (const auto& [n, t] : src)
                                                   if (n != "bn1.running_var") e.push_back({n, t, ""});
                                                 return e;
                                               }(),
                                               {}, "mem"),
                                           "mem");
  NamedTensors dst = tiny_model(3, rng);
  const std::vector<float> before = dst.at("conv1.weight").to_vector();
  CHECK_THROWS_WITH_AS(load_state(dst, file, {}, "ck.safetensors"),
                       doctest::Contains("missing from the file: bn1.running_var; not in the model: extra.weight"),
                       cxr::Error);
  CHECK(dst.at("conv1.weight").to_vector() == before);  // a failed load changes nothing

  LoadOptions lenient;
  lenient.strict = false;
  LoadReport r = load_state(dst, file, lenient, "ck.safetensors");
  CHECK(r.missing == std::vector<std::string>{"bn1.running_var"});
  CHECK(r.unexpected == std::vector<std::string>{"extra.weight"});
  CHECK(r.loaded.size() == 7);
  CHECK(dst.at("conv1.weight").to_vector() == src.at("conv1.weight").to_vector());
  CHECK(r.summary().find("missing 1 (bn1.running_var)") != std::string::npos);
}

TEST_CASE("checkpoint: a shape mismatch names the tensor and both shapes, in every mode") {
  std::mt19937_64 rng(3);
  NamedTensors src = tiny_model(14, rng);
  std::vector<SafetensorsEntry> entries;
  for (const auto& [n, t] : src) entries.push_back({n, t, ""});
  SafetensorsFile file = parse_safetensors(serialize_safetensors(entries, {}, "mem"), "mem");
  NamedTensors dst = tiny_model(3, rng);
  LoadOptions lenient;
  lenient.strict = false;
  for (const LoadOptions& o : {LoadOptions{}, lenient})
    CHECK_THROWS_WITH_AS(load_state(dst, file, o, "ck.safetensors"),
                         doctest::Contains("ck.safetensors: tensor 'cls_head.weight' has shape [14, 4] in the file but "
                                           "[3, 4] in the model"),
                         cxr::Error);
  // Backbone loading leaves the heads out on both sides: the new head keeps its values.
  const std::vector<float> head = dst.at("cls_head.weight").to_vector();
  LoadReport r = load_state(dst, file, backbone_options(), "ck.safetensors");
  CHECK(r.loaded.size() == 6);
  CHECK(r.skipped == std::vector<std::string>{"cls_head.weight", "cls_head.bias"});
  CHECK(dst.at("cls_head.weight").to_vector() == head);
  CHECK(dst.at("conv1.weight").to_vector() == src.at("conv1.weight").to_vector());
}

TEST_CASE("checkpoint: torchvision-style PyTorch file as a backbone (fc.* left out, I64 and F16 converted)") {
  const std::string path = cxr::test::golden_path("torch_small.safetensors");
  SafetensorsFile file = read_safetensors(path);
  NamedTensors model;
  for (const auto& e : file.entries) {
    if (e.name.rfind("fc.", 0) == 0) continue;
    // The model keeps f32 everywhere except the counters: F16/BF16 buffers load converted.
    model.add(e.name, Tensor::zeros(e.tensor.shape(), e.file_dtype == "I64" ? DType::I32 : DType::F32));
  }
  model.add("cls_head.weight", Tensor::full({14, 2}, 0.5f));
  LoadReport r = load_state(model, file, backbone_options(), path);
  CHECK(r.skipped == std::vector<std::string>{"fc.weight", "fc.bias"});
  CHECK(r.loaded.size() == 15);
  CHECK(model.at("bn1.num_batches_tracked").data<std::int32_t>()[0] == 14);  // 7 + its index in the file
  CHECK(model.at("half_scale").to_vector() == std::vector<float>{-11.f / 8, -4.f / 8, 3.f / 8});
  CHECK(model.at("cls_head.weight").to_vector()[0] == 0.5f);

  // A dtype that cannot be converted into the model's tensor is an error naming both.
  NamedTensors wrong;
  wrong.add("bn1.weight", Tensor::zeros({4}, DType::I32));
  LoadOptions lenient;
  lenient.strict = false;
  CHECK_THROWS_WITH_AS(load_state(wrong, file, lenient, path), doctest::Contains("'bn1.weight' is F32 in the file"),
                       cxr::Error);
}

TEST_CASE("checkpoint metadata: malformed values are errors naming the key") {
  SafetensorsMetadata m = to_metadata({});
  CHECK(m.at("format") == "pt");
  CHECK(from_metadata(m, "x").architecture.empty());
  auto bad = [&](const char* key, const char* value, const char* problem) {
    SafetensorsMetadata b = m;
    b[key] = value;
    CHECK_THROWS_WITH_AS(from_metadata(b, "ck.st"), doctest::Contains(problem), cxr::Error);
  };
  bad("class_names", "[\"a\", 3]", "metadata 'class_names'");
  bad("class_names", "not json", "metadata 'class_names'");
  bad("image_size", "224px", "metadata 'image_size'");
  bad("cxr.format", "cxr-checkpoint-99", "this build reads");
  bad("normalize_mean", "[0.5]", "normalize_std has 0");
  SafetensorsMetadata t = m;
  t["class_names"] = "[\"a\",\"b\"]";
  t["thresholds"] = "[0.5]";
  CHECK_THROWS_WITH_AS(from_metadata(t, "ck.st"), doctest::Contains("1 thresholds for 2 class names"), cxr::Error);
}

}  // TEST_SUITE
