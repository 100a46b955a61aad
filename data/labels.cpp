// Finding-name lookup for the 14 NIH classes.
#include "data/labels.h"

namespace cxr::data {

int label_index(std::string_view name) {
  for (int k = 0; k < kNumClasses; ++k)
    if (kClassNames[k] == name) return k;
  if (name == "Infiltrate") return 3;  // BBox_List_2017.csv spelling
  return -1;
}

}  // namespace cxr::data
