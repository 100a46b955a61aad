// The model registry: make_model("resnet50") builds any architecture of cxr by name.
//
//   std::unique_ptr<CxrModel> m = make_model("efficientnet_b0", 14);
//   for (const std::string& name : model_names()) ...
//
// One function per architecture, defined in models/<family>.cpp:
//   make_resnet18/34/50       models/resnet.cpp
//   make_efficientnet_b0      models/efficientnet.cpp
//   make_convnext_tiny        models/convnext.cpp
//   make_densenet121          models/densenet.cpp
// Every model is built on the CPU with torchvision's initialisation (from the generator of
// layers/init.h: call manual_seed first for reproducible weights); move it with to().
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "models/heads.h"

namespace cxr {

// Declared here without default arguments, so an architecture's own header may repeat the
// declaration with "= 14" (as models/resnet.h does).
std::unique_ptr<CxrModel> make_resnet18(int num_classes);
std::unique_ptr<CxrModel> make_resnet34(int num_classes);
std::unique_ptr<CxrModel> make_resnet50(int num_classes);
std::unique_ptr<CxrModel> make_efficientnet_b0(int num_classes);
std::unique_ptr<CxrModel> make_convnext_tiny(int num_classes);
std::unique_ptr<CxrModel> make_densenet121(int num_classes);

// Throws cxr::Error listing the known names for an unknown one.
std::unique_ptr<CxrModel> make_model(const std::string& name, int num_classes = 14);
// The architectures this build provides, in a fixed order.
std::vector<std::string> model_names();

}  // namespace cxr
