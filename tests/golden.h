// Golden values from PyTorch: tests/gen/<name>.py (run with Debian's /usr/bin/python3 and
// python3-torch) writes tests/golden/<name>.json; the small files are committed.
// A tensor is stored as {"shape": [...], "data": [...]} (row-major f32 values).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "tensor/tensor.h"

namespace cxr::test {

std::string golden_path(const std::string& file);  // <source>/tests/golden/<file>; env CXR_SOURCE_DIR overrides
nlohmann::json load_golden(const std::string& name);  // throws cxr::Error naming the file
Tensor golden_tensor(const nlohmann::json& j);         // {"shape", "data"} -> CPU f32 tensor

}  // namespace cxr::test
