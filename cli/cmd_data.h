// The data subcommands of train_cxr:
//   train_cxr data-info --data DIR [--json] [--seed K] [--val-fraction F]
//   train_cxr synth --out DIR [--images N] [--size S] [--seed K] [--threads T]
// Each takes the words after its name and returns the process exit code (0 ok, 2 usage);
// data errors are thrown as cxr::Error. Output goes to `out` (stdout in train_cxr), warnings
// to stderr, so `data-info --json` prints exactly one JSON object on `out`.
#pragma once

#include <ostream>

namespace cxr::cli {

int run_data_info(int argc, const char* const* argv, std::ostream& out);
int run_synth(int argc, const char* const* argv, std::ostream& out);

}  // namespace cxr::cli
