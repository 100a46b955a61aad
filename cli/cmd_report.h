// train_cxr report RUN [--eval DIR] [--overlays DIR] [--out FILE]: one self-contained HTML
// page about a run (report/report_html.h; docs/visualisation.md).
#pragma once

#include <ostream>

namespace cxr::cli {

int run_report(int argc, const char* const* argv, std::ostream& out);

}  // namespace cxr::cli
