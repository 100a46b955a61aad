// Helpers of the training and command-line tests (see train_test_util.h).
#include "tests/train/train_test_util.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "train/safetensors.h"

namespace cxr::test {

int run_command(CommandFn command, const std::vector<std::string>& words, std::string* output) {
  std::vector<const char*> argv;
  for (const auto& w : words) argv.push_back(w.c_str());
  std::ostringstream os;
  const int code = command(static_cast<int>(argv.size()), argv.data(), os);
  if (output) *output = os.str();
  return code;
}

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool checkpoint_all_finite(const std::string& path) {
  const SafetensorsFile f = read_safetensors(path);
  for (const auto& e : f.entries) {
    if (e.tensor.dtype() != DType::F32) continue;
    const float* p = e.tensor.f32();
    for (std::int64_t i = 0; i < e.tensor.numel(); ++i)
      if (!std::isfinite(p[i])) return false;
  }
  return true;
}

}  // namespace cxr::test
