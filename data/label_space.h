// LabelSpace: the findings a model predicts, in its output order -- a list of global finding
// indices (data/labels.h). A run's label space is chosen from its data (choose_label_space):
//   one data set      the findings that set has, in global order (NIH alone: the 14 NIH
//                     classes, exactly as before the union existed);
//   several sets      the union of their findings, in global order.
// A checkpoint records the space as its class names (docs/checkpoints.md); from_names() reads
// it back, so a 14-class NIH checkpoint is the NIH space. A name cxr does not know (a
// checkpoint from elsewhere) keeps its slot with finding -1: never present in any data set.
#pragma once

#include <string>
#include <vector>

#include "data/labels.h"

namespace cxr::data {

class LabelSpace {
 public:
  LabelSpace() = default;  // empty
  static LabelSpace nih();
  static LabelSpace of(LabelMask findings);  // the findings of the mask, in global order
  static LabelSpace from_names(const std::vector<std::string>& names);

  int size() const { return static_cast<int>(findings_.size()); }
  bool empty() const { return findings_.empty(); }
  int finding(int k) const { return findings_[static_cast<std::size_t>(k)]; }  // global index or -1
  // Output index of global finding g, or -1 when the space lacks it.
  int index_of(int g) const;
  const std::vector<int>& findings() const { return findings_; }
  const std::vector<std::string>& names() const { return names_; }
  LabelMask mask() const;  // the known findings of the space
  bool operator==(const LabelSpace& o) const { return names_ == o.names_; }

 private:
  std::vector<int> findings_;
  std::vector<std::string> names_;
};

// Each set's findings (Dataset::findings): one set -> its own, several -> the union.
LabelSpace choose_label_space(const std::vector<LabelMask>& set_findings);

}  // namespace cxr::data
