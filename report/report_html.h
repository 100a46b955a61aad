// `train_cxr report`: one self-contained HTML page about a run (no network, no external file):
//   - training curves per epoch from RUN/metrics.csv: train and validation loss; mean and
//     per-class validation AUROC; and, when RUN/metrics.jsonl exists, the loss and learning
//     rate per step;
//   - with an eval folder (train_cxr eval's OUT): ROC and precision-recall curves per class
//     from predictions.csv and labels.csv, the per-class AUROC / AP table beside CheXNet's
//     published AUROC, and the localisation table of metrics.json;
//   - a grid of overlay PNGs (train_cxr predict --overlay), embedded as base64 data URIs.
// Charts are inline SVG (report/svg.h), one <svg class="chart" id="chart-..."> each; the
// <meta name="cxr-expected-charts"> tag gives their number, which a small script compares
// with what the page holds (scripts/browser-test reads the result on <html data-check>).
#pragma once

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace cxr {

// CheXNet (Rajpurkar et al. 2017), Table 1: per-class test AUROC of the 14 findings.
struct PublishedAuroc {
  const char* name;
  double auroc;
};
extern const std::vector<PublishedAuroc> kChexnetAuroc;
inline constexpr double kChexnetMeanAuroc = 0.841;

// A CSV file of a header and rows of cells (no quoting: the files cxr writes).
struct CsvTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  int column(const std::string& name) const;  // -1 when absent
  // Numbers of a column (NaN for empty / non-numeric cells); empty when the column is absent.
  std::vector<double> numbers(const std::string& name) const;
};
CsvTable read_csv_table(const std::string& path);

// Points of the ROC curve (x = FPR, y = TPR, from (0, 0), one per distinct score, as
// scikit-learn's roc_curve without drop_intermediate) and of the precision-recall curve
// (x = recall, y = precision, from (0, 1), one per distinct score from high to low).
struct Curve {
  std::vector<double> x, y;
};
Curve roc_curve(const std::vector<double>& scores, const std::vector<int>& labels);
Curve pr_curve(const std::vector<double>& scores, const std::vector<int>& labels);

std::string base64_encode(const std::vector<std::uint8_t>& bytes);

struct ReportOptions {
  std::string run_dir;      // holds metrics.csv (and metrics.jsonl)
  std::string eval_dir;     // optional: metrics.json, predictions.csv, labels.csv
  std::string overlay_dir;  // optional: *.png
  std::string title;        // default: "cxr report: <run_dir>"
  int max_overlays = 24;
};

struct ReportData {
  std::string title, run_dir, eval_dir;
  CsvTable epochs;                          // metrics.csv
  std::vector<nlohmann::json> steps;        // metrics.jsonl lines
  bool has_eval = false;
  nlohmann::json eval_metrics;              // metrics.json (null when absent)
  std::vector<std::string> class_names;     // of predictions.csv
  std::vector<std::vector<double>> scores;  // per class
  std::vector<std::vector<int>> labels;     // per class (empty without labels.csv)
  std::vector<std::pair<std::string, std::string>> overlays;  // (name, base64 PNG)
  std::vector<std::string> warnings;        // what was missing, shown on the page
};

// Reads what the options name; missing optional files become warnings, a missing
// RUN/metrics.csv is an error. metrics.json and metrics.jsonl are parsed with nlohmann-json.
ReportData load_report_data(const ReportOptions& options);

// The number of <svg class="chart"> the page holds for this data.
int expected_chart_count(const ReportData& data);

std::string render_report_html(const ReportData& data);

// load + render + write `path` (its folder created); prints one line (and the warnings) to out.
void write_report_file(const ReportOptions& options, const std::string& path, std::ostream& out);

}  // namespace cxr
