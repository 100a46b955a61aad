// data-info and synth: option parsing around the data library.
#include "cli/cmd_data.h"

#include <chrono>
#include <iostream>

#include "data/data_info.h"
#include "data/dataset.h"
#include "data/splits.h"
#include "data/synth.h"
#include "cli/cli_args.h"
#include "cli/common_flags.h"
#include "data/formats.h"

namespace cxr::cli {

int run_data_info(int argc, const char* const* argv, std::ostream& out) {
  Args args("train_cxr data-info",
            "Describe a data set folder of any format: images, patients, per-label counts with missing and\n"
            "uncertain labels, views, boxes, split sizes and missing image files.");
  args.required("data", "DIR", "data set folder (NIH, CheXpert, MIMIC-CXR-JPG, PadChest, RSNA, VinDr, class folders)")
      .flag("json", "print one JSON object on stdout instead of text")
      .option("seed", "K", "seed of the validation carve-out / patient-wise split", "0")
      .option("val-fraction", "F", "fraction of train_val patients held out for validation", "0.1")
      .option("test-fraction", "F", "fraction of patients for test when there are no official lists", "0.2");
  add_data_format(args);
  if (auto code = parse_command_line(args, argc, argv, out, std::cerr)) return *code;

  data::Report report;
  const data::Dataset ds = data::load_dataset(args.get("data"), reader_arg(args), report);
  data::SplitOptions so;
  so.seed = args.get_u64("seed");
  so.val_fraction = args.get_double("val-fraction");
  so.test_fraction = args.get_double("test-fraction");
  const data::Splits splits = data::make_splits(ds, so, report);
  report.flush_suppressed();
  const data::DataInfo info = data::compute_data_info(ds, splits);
  if (args.flag_set("json")) out << data::data_info_json(info).dump(2) << "\n";
  else out << data::data_info_text(info);
  return 0;
}

int run_synth(int argc, const char* const* argv, std::ostream& out) {
  Args args("train_cxr synth",
            "Write a synthetic NIH-format data set (Data_Entry_2017.csv, BBox_List_2017.csv,\n"
            "train_val_list.txt, test_list.txt, images/) in which each finding has its own look.");
  args.required("out", "DIR", "output folder (created)")
      .option("images", "N", "number of images", "200")
      .option("size", "S", "image side in pixels", "128")
      .option("seed", "K", "random seed", "0")
      .option("threads", "T", "rendering threads (0: all cores)", "0");
  if (auto code = parse_command_line(args, argc, argv, out, std::cerr)) return *code;

  data::SynthOptions o;
  o.out_dir = args.get("out");
  o.images = static_cast<int>(args.get_int("images"));
  o.size = static_cast<int>(args.get_int("size"));
  o.seed = args.get_u64("seed");
  o.threads = static_cast<int>(args.get_int("threads"));
  const auto t0 = std::chrono::steady_clock::now();
  const data::SynthSummary s = data::write_synthetic_dataset(o);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  out << "wrote " << s.images << " images of " << s.patients << " patients (" << o.size << "x" << o.size << ", "
      << s.boxes << " boxes) to " << o.out_dir << " in " << seconds << " s\n";
  return 0;
}

}  // namespace cxr::cli
