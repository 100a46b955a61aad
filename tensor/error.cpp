#include "tensor/error.h"

#include <cstring>

namespace cxr::detail {

void throw_error(const char* file, int line, const std::string& message) {
  // Keep the path short: from the project's top folder on.
  const char* short_file = file;
  for (const char* top : {"/tensor/", "/kernels/", "/layers/", "/models/", "/data/", "/train/", "/tests/",
                          "/bench/", "/cuda_emu/"}) {
    if (const char* p = std::strstr(file, top)) { short_file = p + 1; break; }
  }
  throw Error(message + " [" + short_file + ":" + std::to_string(line) + "]");
}

}  // namespace cxr::detail
