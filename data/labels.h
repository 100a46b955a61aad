// The findings cxr knows: one label space for every data set, the union of NIH
// ChestX-ray14's 14 findings and CheXpert's 13 (which overlap in 7), 20 in all. A finding's
// index in this list is its "global index"; LabelMask bit g is finding g.
//
//   0..13  NIH ChestX-ray14, in CheXNet's order (the order of every 14-class model and of
//          every checkpoint written before the union existed): Atelectasis, Cardiomegaly,
//          Effusion, Infiltration, Mass, Nodule, Pneumonia, Pneumothorax, Consolidation,
//          Edema, Emphysema, Fibrosis, Pleural_Thickening, Hernia
//   14..19 CheXpert's findings NIH lacks: Enlarged Cardiomediastinum, Lung Opacity, Lung
//          Lesion, Fracture, Support Devices, Pleural Other
//
// Names are spelled as NIH spells them where NIH has them ("Effusion", "Pleural_Thickening").
// Aliases (finding_index() accepts them, case-insensitively, '_' = ' '): "Pleural Effusion"
// (CheXpert, MIMIC, VinDr) = Effusion; "Infiltrate", "Infiltrates" (the NIH box list,
// PadChest) = Infiltration; "Pulmonary Fibrosis" (VinDr, PadChest) = Fibrosis;
// "Pulmonary Edema" = Edema; "Hiatal Hernia" (PadChest) = Hernia. Data-set specific maps
// (VinDr's two fracture classes, PadChest's vocabulary, ...) live with each reader
// (data/formats/) and are listed in docs/data.md.
//
// A model's outputs are a *run label space* (data/label_space.h): a list of these findings.
// A data set's record says, per finding, positive / negative / missing / uncertain.
// "No Finding" is not a class: every finding the set has is negative.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace cxr::data {

// The NIH ChestX-ray14 findings: the first 14 of the union, the default label space.
inline constexpr int kNumClasses = 14;

inline constexpr std::array<std::string_view, kNumClasses> kClassNames = {
    "Atelectasis", "Cardiomegaly", "Effusion",      "Infiltration", "Mass",
    "Nodule",      "Pneumonia",    "Pneumothorax",  "Consolidation", "Edema",
    "Emphysema",   "Fibrosis",     "Pleural_Thickening", "Hernia"};

// The union: NIH's 14, then CheXpert's findings NIH lacks.
inline constexpr int kNumFindings = 20;

inline constexpr std::array<std::string_view, kNumFindings> kFindingNames = {
    "Atelectasis", "Cardiomegaly", "Effusion",      "Infiltration", "Mass",
    "Nodule",      "Pneumonia",    "Pneumothorax",  "Consolidation", "Edema",
    "Emphysema",   "Fibrosis",     "Pleural_Thickening", "Hernia",
    "Enlarged Cardiomediastinum", "Lung Opacity", "Lung Lesion", "Fracture", "Support Devices",
    "Pleural Other"};

// Global indices of the findings the readers name.
namespace finding {
inline constexpr int kAtelectasis = 0, kCardiomegaly = 1, kEffusion = 2, kInfiltration = 3, kMass = 4, kNodule = 5,
                     kPneumonia = 6, kPneumothorax = 7, kConsolidation = 8, kEdema = 9, kEmphysema = 10,
                     kFibrosis = 11, kPleuralThickening = 12, kHernia = 13, kEnlargedCardiomediastinum = 14,
                     kLungOpacity = 15, kLungLesion = 16, kFracture = 17, kSupportDevices = 18,
                     kPleuralOther = 19;
}

// The eight classes that have boxes in the NIH box list (they are the first eight).
inline constexpr int kNumBoxedClasses = 8;

inline constexpr std::string_view kNoFinding = "No Finding";

// Index 0..13 of an NIH finding name, or -1 when the name is not one of the 14 (exact
// spelling, as NIH's files have it). Accepts the box list's "Infiltrate" for Infiltration.
int label_index(std::string_view name);

// Global index 0..19 of a finding name or one of the aliases above (case-insensitive, '_'
// and ' ' alike), or -1.
int finding_index(std::string_view name);

// Findings of one image, one bit per global index (bit g = finding g).
using LabelMask = std::uint32_t;

inline constexpr LabelMask kAllFindings = (LabelMask{1} << kNumFindings) - 1;
inline constexpr LabelMask kNihFindings = (LabelMask{1} << kNumClasses) - 1;

inline bool has_label(LabelMask m, int k) { return (m >> k) & 1u; }
inline LabelMask bit(int g) { return LabelMask{1} << g; }

}  // namespace cxr::data
