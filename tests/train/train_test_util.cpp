// Helpers of the training and command-line tests (see train_test_util.h).
#include "tests/train/train_test_util.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "checkpoint/safetensors.h"

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

std::vector<std::string> differing_tensors(const std::string& a, const std::string& b) {
  const SafetensorsFile fa = read_safetensors(a), fb = read_safetensors(b);
  REQUIRE(fa.entries.size() == fb.entries.size());
  std::vector<std::string> d;
  for (std::size_t i = 0; i < fa.entries.size(); ++i) {
    const Tensor &ta = fa.entries[i].tensor, &tb = fb.entries[i].tensor;
    REQUIRE(fa.entries[i].name == fb.entries[i].name);
    const bool same = ta.dtype() == tb.dtype() && ta.nbytes() == tb.nbytes() &&
                      std::memcmp(ta.raw_data(), tb.raw_data(), ta.nbytes()) == 0;
    if (!same) d.push_back(fa.entries[i].name);
  }
  return d;
}

std::vector<std::string> logged_losses(const std::string& run_dir) {
  std::ifstream f(run_dir + "/metrics.jsonl");
  std::vector<std::string> r;
  for (std::string line; std::getline(f, line);) {
    const auto a = line.find("\"loss\":");
    r.push_back(a == std::string::npos ? "?" : line.substr(a, line.find(',', a) - a));
  }
  return r;
}

std::vector<double> prediction_probabilities(const std::string& csv) {
  std::ifstream f(csv);
  std::string line;
  std::getline(f, line);
  std::vector<double> p;
  while (std::getline(f, line)) {
    std::stringstream ss(line);
    std::string cell;
    std::getline(ss, cell, ',');
    while (std::getline(ss, cell, ',')) p.push_back(std::stod(cell));
  }
  return p;
}

}  // namespace cxr::test
