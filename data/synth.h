// A synthetic data set in the NIH layout, for demos and tests: chest-like radiographs in
// which each of the 14 findings has its own visual signature, so that a model can learn it.
//
//   DIR/Data_Entry_2017.csv    original 2017 format (trailing comma, ages like "058Y")
//   DIR/BBox_List_2017.csv     boxes of the 8 boxed findings ("Infiltrate" spelling)
//   DIR/train_val_list.txt, DIR/test_list.txt   patient-disjoint
//   DIR/images/PPPPPPPP_FFF.png   8-bit gray, S x S
//
// Anatomy: body, two lungs, mediastinum and spine, heart, diaphragm, ribs, film noise, with
// random shifts and exposure per image. Signatures (where = inside a lung unless stated):
//   Atelectasis        flat, dense horizontal plate in a lower zone
//   Cardiomegaly       heart 1.5x wider (box: the heart)
//   Effusion           bright fluid filling a lung base, meniscus rising laterally
//   Infiltration       a patch of many small soft blobs
//   Mass               large sharp-edged disc
//   Nodule             small sharp bright dot
//   Pneumonia          large soft cloud
//   Pneumothorax       black crescent without ribs at a lung apex, thin bright pleural line
//   Consolidation      dense square patch with ragged edges
//   Edema              bilateral perihilar haze with short horizontal septal lines
//   Emphysema          darker, larger lungs
//   Fibrosis           fine reticular net in the upper zones
//   Pleural_Thickening bright band along a lung's lateral wall
//   Hernia             round gas bubble with a bright rim below the heart
// Each image has no finding (40 %) or one to three; a patient has one to four images.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/image_io.h"
#include "data/labels.h"
#include "data/metadata.h"

namespace cxr::data {

struct SynthOptions {
  std::string out_dir;
  int images = 200;
  int size = 128;
  std::uint64_t seed = 0;
  double test_fraction = 0.2;  // of the patients
  int threads = 0;             // 0: all cores
};

struct SynthSummary {
  int images = 0, patients = 0, boxes = 0;
};

SynthSummary write_synthetic_dataset(const SynthOptions& options);

// One image with the given findings; appends a box (in pixels) for each boxed finding.
GrayImage render_synthetic_chest(int size, LabelMask findings, std::uint64_t seed, std::vector<Box>* boxes);

}  // namespace cxr::data
