// Writes the seed corpus of fuzz_safetensors with the project's own writer:
//   build-fuzz/seed_safetensors fuzz/corpus/safetensors
// Small files (a few hundred bytes each): every dtype the writer writes (F32, BF16, F16, U8,
// I32, and I32 widened to I64 as torchvision's num_batches_tracked), a scalar, an empty
// tensor, __metadata__, and a file without tensors.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "checkpoint/safetensors.h"

using namespace cxr;

namespace {

Tensor filled(const Shape& shape, DType dtype, int salt) {
  Tensor t = Tensor::empty(shape, dtype, Device::CPU);
  auto* p = static_cast<std::uint8_t*>(t.raw_data());
  for (std::size_t i = 0; i < t.nbytes(); ++i) p[i] = static_cast<std::uint8_t>(i * 37 + salt);
  if (dtype == DType::F32)
    for (std::int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = 0.25f * static_cast<float>(i - salt);
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  write_safetensors_entries(dir + "/conv_bn.safetensors",
                            {{"conv1.weight", filled({4, 1, 3, 3}, DType::F32, 1), ""},
                             {"bn1.weight", filled({4}, DType::F32, 2), ""},
                             {"bn1.running_mean", filled({4}, DType::F32, 3), ""},
                             {"bn1.num_batches_tracked", filled({}, DType::I32, 4), "I64"}},
                            {{"format", "pt"}, {"model", "resnet18"}});
  write_safetensors_entries(dir + "/dtypes.safetensors",
                            {{"bf16", filled({2, 3}, DType::BF16, 5), ""},
                             {"f16", filled({3}, DType::F16, 6), ""},
                             {"u8", filled({5}, DType::U8, 7), ""},
                             {"i32", filled({2, 2}, DType::I32, 8), ""},
                             {"empty", filled({0, 4}, DType::F32, 9), ""},
                             {"scalar", filled({}, DType::F32, 10), ""}},
                            {});
  write_safetensors(dir + "/no_tensors.safetensors", {}, {{"epoch", "3"}});
  std::printf("wrote the safetensors seeds in %s\n", dir.c_str());
  return 0;
}
