#include "tests/golden.h"

#include <fstream>

namespace cxr::test {

nlohmann::json load_golden(const std::string& name) {
  const std::string path = std::string(CXR_SOURCE_DIR) + "/tests/golden/" + name + ".json";
  std::ifstream f(path);
  CXR_CHECK(f.good(), "golden file ", path, " not found: run tests/gen/", name, ".py with /usr/bin/python3");
  try {
    return nlohmann::json::parse(f);
  } catch (const nlohmann::json::exception& e) {
    CXR_FAIL("golden file ", path, " is not valid JSON: ", e.what());
  }
}

Tensor golden_tensor(const nlohmann::json& j) {
  Shape shape = j.at("shape").get<Shape>();
  std::vector<float> data = j.at("data").get<std::vector<float>>();
  return Tensor::from_vector(data, shape);
}

}  // namespace cxr::test
