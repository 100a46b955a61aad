// The 14 findings of NIH ChestX-ray14, in the fixed order used by CheXNet and every model
// output in cxr (logit k is finding k). Names are spelled exactly as the data set spells
// them ("Pleural_Thickening", not "Pleural Thickening"). "No Finding" is not a class: it
// means that all 14 are negative.
//
// Eight findings have hand-drawn boxes in BBox_List_2017.csv; that file spells Infiltration
// as "Infiltrate", which label_index() accepts as an alias.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace cxr::data {

inline constexpr int kNumClasses = 14;

inline constexpr std::array<std::string_view, kNumClasses> kClassNames = {
    "Atelectasis", "Cardiomegaly", "Effusion",      "Infiltration", "Mass",
    "Nodule",      "Pneumonia",    "Pneumothorax",  "Consolidation", "Edema",
    "Emphysema",   "Fibrosis",     "Pleural_Thickening", "Hernia"};

// The eight classes that have boxes in the NIH box list (they are the first eight).
inline constexpr int kNumBoxedClasses = 8;

inline constexpr std::string_view kNoFinding = "No Finding";

// Index 0..13 of a finding name, or -1 when the name is not one of the 14.
// Accepts the box list's "Infiltrate" for Infiltration.
int label_index(std::string_view name);

// Positive findings of one image, one bit per class (bit k = class k).
using LabelMask = std::uint16_t;

inline bool has_label(LabelMask m, int k) { return (m >> k) & 1u; }

}  // namespace cxr::data
