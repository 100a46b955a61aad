// The model registry (see model_factory.h). An architecture whose source file is not in the
// tree yet is left out (detected by its header), so the registry builds at every stage.
#include "models/model_factory.h"

#include <functional>
#include <utility>

#include "models/resnet.h"
#if __has_include("models/efficientnet.h")
#include "models/efficientnet.h"
#define CXR_HAVE_EFFICIENTNET 1
#endif
#if __has_include("models/densenet.h")
#include "models/densenet.h"
#define CXR_HAVE_DENSENET 1
#endif
#if __has_include("models/convnext.h")
#include "models/convnext.h"
#define CXR_HAVE_CONVNEXT 1
#endif

namespace cxr {

namespace {

using Maker = std::function<std::unique_ptr<CxrModel>(int)>;

const std::vector<std::pair<std::string, Maker>>& registry() {
  static const std::vector<std::pair<std::string, Maker>> r = {
      {"resnet18", make_resnet18},
      {"resnet34", make_resnet34},
      {"resnet50", make_resnet50},
#ifdef CXR_HAVE_EFFICIENTNET
      {"efficientnet_b0", make_efficientnet_b0},
#endif
#ifdef CXR_HAVE_CONVNEXT
      {"convnext_tiny", make_convnext_tiny},
#endif
#ifdef CXR_HAVE_DENSENET
      {"densenet121", make_densenet121},
#endif
  };
  return r;
}

}  // namespace

std::unique_ptr<CxrModel> make_model(const std::string& name, int num_classes) {
  for (const auto& [n, make] : registry())
    if (n == name) return make(num_classes);
  std::string known;
  for (const auto& [n, make] : registry()) known += (known.empty() ? "" : ", ") + n;
  CXR_FAIL("make_model: unknown architecture \"", name, "\" (known: ", known, ")");
}

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const auto& [n, make] : registry()) names.push_back(n);
  return names;
}

}  // namespace cxr
