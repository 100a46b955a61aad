#include "tests/golden.h"

#include <cstdlib>
#include <fstream>

namespace cxr::test {

std::string golden_path(const std::string& file) {
  // The build's source tree, unless CXR_SOURCE_DIR says the tree moved (binaries built on one
  // machine and run on another, as scripts/gpu-check --prebuilt does).
  const char* moved = std::getenv("CXR_SOURCE_DIR");
  const std::string root = moved && *moved ? moved : CXR_SOURCE_DIR;
  return root + "/tests/golden/" + file;
}

nlohmann::json load_golden(const std::string& name) {
  const std::string path = golden_path(name + ".json");
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
