// `train_cxr report` (see cmd_report.h).
#include "cli/cmd_report.h"

#include <filesystem>
#include <iostream>
#include <vector>

#include "cli/cli_args.h"
#include "report/report_html.h"

namespace cxr::cli {
namespace fs = std::filesystem;

int run_report(int argc, const char* const* argv, std::ostream& out) {
  Args args("train_cxr report",
            "Write one self-contained HTML report of a run (no network needed): training curves from\n"
            "RUN/metrics.csv (and RUN/metrics.jsonl), with --eval the ROC / precision-recall curves, the per-class\n"
            "table beside CheXNet's AUROC and the localisation table, with --overlays a grid of overlay PNGs.\n"
            "usage: train_cxr report RUN [--eval DIR] [--overlays DIR] [--out FILE]");
  args.option("eval", "DIR", "a train_cxr eval --out folder (metrics.json, predictions.csv, labels.csv)")
      .option("overlays", "DIR", "a folder of overlay PNGs (train_cxr predict --overlay writes OUT/overlays)")
      .option("out", "FILE", "the HTML file (default RUN/report.html)")
      .option("title", "TEXT", "page title (default: cxr report: RUN)")
      .option("max-overlays", "N", "most overlays embedded", "24");
  // The positional RUN is taken out before the options are parsed.
  std::vector<const char*> words;
  std::vector<std::string> positional;
  for (int i = 0; i < argc; ++i) {
    const std::string w = argv[i];
    if (w.size() > 1 && w[0] == '-') {
      words.push_back(argv[i]);
      if (w != "-h" && w != "--help" && w.find('=') == std::string::npos && i + 1 < argc) words.push_back(argv[++i]);
    } else {
      positional.push_back(w);
    }
  }
  if (auto code = parse_command_line(args, static_cast<int>(words.size()), words.data(), out, std::cerr)) return *code;
  if (positional.size() != 1) throw UsageError("name one RUN folder (got " + std::to_string(positional.size()) + ")");
  ReportOptions o;
  o.run_dir = positional[0];
  if (args.has("eval")) o.eval_dir = args.get("eval");
  if (args.has("overlays")) o.overlay_dir = args.get("overlays");
  if (args.has("title")) o.title = args.get("title");
  o.max_overlays = static_cast<int>(args.get_int("max-overlays"));
  if (o.max_overlays < 0) throw UsageError("--max-overlays must be >= 0");
  const std::string path = args.has("out") ? args.get("out") : (fs::path(o.run_dir) / "report.html").string();
  write_report_file(o, path, out);
  return 0;
}

}  // namespace cxr::cli
