// The HTML report of a run (see report_html.h).
#include "report/report_html.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "data/image_io.h"
#include "tensor/error.h"
#include "eval/metrics.h"
#include "checkpoint/safetensors.h"
#include "report/svg.h"

namespace cxr {
namespace fs = std::filesystem;

const std::vector<PublishedAuroc> kChexnetAuroc = {
    {"Atelectasis", 0.8094},   {"Cardiomegaly", 0.9248}, {"Effusion", 0.8638},           {"Infiltration", 0.7345},
    {"Mass", 0.8676},          {"Nodule", 0.7802},       {"Pneumonia", 0.7680},          {"Pneumothorax", 0.8887},
    {"Consolidation", 0.7901}, {"Edema", 0.8878},        {"Emphysema", 0.9371},          {"Fibrosis", 0.8047},
    {"Pleural_Thickening", 0.8062}, {"Hernia", 0.9164}};

// --- CSV ---------------------------------------------------------------------------------------

namespace {

std::vector<std::string> split_cells(const std::string& line) {
  std::vector<std::string> cells;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = line.find(',', start);
    cells.push_back(line.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return cells;
}

double to_number(const std::string& cell) {
  if (cell.empty()) return NAN;
  char* end = nullptr;
  const double v = std::strtod(cell.c_str(), &end);
  return end == cell.c_str() ? NAN : v;
}

}  // namespace

int CsvTable::column(const std::string& name) const {
  for (std::size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return static_cast<int>(i);
  return -1;
}

std::vector<double> CsvTable::numbers(const std::string& name) const {
  const int c = column(name);
  std::vector<double> v;
  if (c < 0) return v;
  for (const auto& r : rows) v.push_back(static_cast<std::size_t>(c) < r.size() ? to_number(r[static_cast<std::size_t>(c)]) : NAN);
  return v;
}

CsvTable read_csv_table(const std::string& path) {
  std::ifstream f(path);
  CXR_CHECK(f, "cannot open ", path);
  CsvTable t;
  std::string line;
  bool first = true;
  while (std::getline(f, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (first) t.header = split_cells(line), first = false;
    else t.rows.push_back(split_cells(line));
  }
  CXR_CHECK(!first, path, " is empty");
  return t;
}

// --- curves ------------------------------------------------------------------------------------

// Both from the counts of metrics.h's binary_curve (the walk the AUROC and AP use).
Curve roc_curve(const std::vector<double>& scores, const std::vector<int>& labels) {
  const std::vector<CurvePoint> counts = binary_curve(scores, labels, "roc_curve");
  Curve c;
  if (counts.empty()) return c;
  const double P = static_cast<double>(counts.back().tp), N = static_cast<double>(counts.back().fp);
  if (P == 0 || N == 0) return c;
  c.x.push_back(0);
  c.y.push_back(0);
  for (const CurvePoint& p : counts) {
    c.x.push_back(static_cast<double>(p.fp) / N);
    c.y.push_back(static_cast<double>(p.tp) / P);
  }
  return c;
}

Curve pr_curve(const std::vector<double>& scores, const std::vector<int>& labels) {
  const std::vector<CurvePoint> counts = binary_curve(scores, labels, "pr_curve");
  Curve c;
  if (counts.empty() || counts.back().tp == 0) return c;
  const double P = static_cast<double>(counts.back().tp);
  c.x.push_back(0);
  c.y.push_back(1);
  for (const CurvePoint& p : counts) {
    c.x.push_back(static_cast<double>(p.tp) / P);
    c.y.push_back(static_cast<double>(p.tp) / static_cast<double>(p.tp + p.fp));
  }
  return c;
}

std::string base64_encode(const std::vector<std::uint8_t>& bytes) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const std::uint32_t b0 = bytes[i], b1 = i + 1 < bytes.size() ? bytes[i + 1] : 0,
                        b2 = i + 2 < bytes.size() ? bytes[i + 2] : 0;
    const std::uint32_t v = (b0 << 16) | (b1 << 8) | b2;
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? table[(v >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? table[v & 63] : '=';
  }
  return out;
}

// --- loading -----------------------------------------------------------------------------------

ReportData load_report_data(const ReportOptions& o) {
  ReportData d;
  d.run_dir = o.run_dir;
  d.eval_dir = o.eval_dir;
  d.title = o.title.empty() ? "cxr report: " + fs::path(o.run_dir).lexically_normal().string() : o.title;
  const fs::path run(o.run_dir);
  CXR_CHECK(fs::exists(run / "metrics.csv"), (run / "metrics.csv").string(),
            " does not exist (RUN must be a train_cxr train --out folder)");
  d.epochs = read_csv_table((run / "metrics.csv").string());
  if (fs::exists(run / "metrics.jsonl")) {
    std::ifstream f(run / "metrics.jsonl");
    std::string line;
    int bad = 0;
    while (std::getline(f, line)) {
      if (line.empty()) continue;
      const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded() || !j.is_object()) ++bad;
      else d.steps.push_back(j);
    }
    if (bad) d.warnings.push_back(std::to_string(bad) + " unreadable lines in metrics.jsonl were skipped");
  }
  if (!o.eval_dir.empty()) {
    const fs::path ev(o.eval_dir);
    d.has_eval = true;
    if (fs::exists(ev / "metrics.json")) {
      std::ifstream f(ev / "metrics.json");
      d.eval_metrics = nlohmann::json::parse(f);  // throws on a malformed file: the report would be wrong
    } else {
      d.warnings.push_back((ev / "metrics.json").string() + " not found: no metric tables");
    }
    if (fs::exists(ev / "predictions.csv")) {
      const CsvTable p = read_csv_table((ev / "predictions.csv").string());
      for (std::size_t c = 1; c < p.header.size(); ++c) {
        if (p.header[c] == "No Finding") continue;
        d.class_names.push_back(p.header[c]);
        d.scores.push_back(p.numbers(p.header[c]));
      }
      if (fs::exists(ev / "labels.csv")) {
        const CsvTable l = read_csv_table((ev / "labels.csv").string());
        CXR_CHECK(l.rows.size() == p.rows.size(), "labels.csv has ", l.rows.size(),
                  " rows, predictions.csv ", p.rows.size());
        for (std::size_t c = 0; c < d.class_names.size(); ++c) {
          const std::string& name = d.class_names[c];
          const auto v = l.numbers(name);
          CXR_CHECK(!v.empty(), "labels.csv has no column ", name);
          // An empty cell is a label the data set does not have (missing): that image is left
          // out of this class's curves, as eval leaves it out of the metrics.
          std::vector<int> lab;
          std::vector<double> kept;
          for (std::size_t i = 0; i < v.size(); ++i) {
            if (!std::isfinite(v[i])) continue;
            lab.push_back(v[i] != 0 ? 1 : 0);
            if (i < d.scores[c].size()) kept.push_back(d.scores[c][i]);
          }
          d.scores[c] = std::move(kept);
          d.labels.push_back(lab);
        }
      } else {
        d.warnings.push_back((ev / "labels.csv").string() +
                             " not found (written by train_cxr eval since the report existed): no ROC / PR curves");
      }
    } else {
      d.warnings.push_back((ev / "predictions.csv").string() + " not found: no ROC / PR curves");
    }
  }
  if (!o.overlay_dir.empty()) {
    std::vector<fs::path> pngs;
    if (fs::is_directory(o.overlay_dir))
      for (const auto& e : fs::directory_iterator(o.overlay_dir))
        if (e.is_regular_file() && e.path().extension() == ".png") pngs.push_back(e.path());
    std::sort(pngs.begin(), pngs.end());
    if (pngs.empty()) d.warnings.push_back("no overlay PNG in " + o.overlay_dir);
    if (static_cast<int>(pngs.size()) > o.max_overlays) {
      d.warnings.push_back("showing the first " + std::to_string(o.max_overlays) + " of " +
                           std::to_string(pngs.size()) + " overlays");
      pngs.resize(static_cast<std::size_t>(o.max_overlays));
    }
    for (const auto& p : pngs)
      d.overlays.emplace_back(p.filename().string(), base64_encode(data::read_file_bytes(p.string())));
  }
  return d;
}

// --- rendering ---------------------------------------------------------------------------------

namespace {

std::string chart_id(const std::string& prefix, const std::string& name) {
  std::string id = prefix;
  for (char ch : name) id += std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' ? ch : '_';
  return id;
}

bool curves_defined(const ReportData& d, std::size_t c) {
  if (c >= d.labels.size()) return false;
  const auto& l = d.labels[c];
  const auto pos = std::count(l.begin(), l.end(), 1);
  return pos > 0 && pos < static_cast<std::ptrdiff_t>(l.size());
}

std::string fixed(double v, int digits = 4) {
  if (!std::isfinite(v)) return "&ndash;";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

double jnum(const nlohmann::json& j, const std::string& key) {
  return j.is_object() && j.contains(key) && j[key].is_number() ? j[key].get<double>() : NAN;
}

std::vector<double> step_values(const std::vector<nlohmann::json>& steps, const char* key) {
  std::vector<double> v;
  for (const auto& s : steps) v.push_back(jnum(s, key));
  return v;
}

}  // namespace

int expected_chart_count(const ReportData& d) {
  int n = 2;
  if (!d.steps.empty()) n += 2;
  for (std::size_t c = 0; c < d.class_names.size(); ++c)
    if (curves_defined(d, c)) n += 2;
  return n;
}

namespace {

// ---- the sections of the page, in order -------------------------------------------------------

// <head> (styles, the error hook the browser test reads), the title and the warnings.
void write_page_head(std::ostringstream& h, const ReportData& d) {
  const int expected = expected_chart_count(d);
  h << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    << "<meta name=\"cxr-expected-charts\" content=\"" << expected << "\">\n"
    << "<title>" << html_escape(d.title) << "</title>\n"
    // Installed first: any later script error marks the page (scripts/browser-test reads it).
    << "<script>window.addEventListener('error', function (e) {\n"
       "  document.documentElement.setAttribute('data-check', 'error: ' + e.message);\n"
       "});</script>\n"
    << "<style>\n"
       "body{font-family:sans-serif;margin:24px;color:#222;max-width:1500px}\n"
       "h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}\n"
       "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}\n"
       "th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}\n"
       ".grid{display:flex;flex-wrap:wrap;gap:8px}.note{color:#555;font-size:13px;max-width:900px}\n"
       ".warn{color:#a33}figure{margin:0}figure img{max-width:100%;border:1px solid #ccc}\n"
       "figcaption{font-size:12px;color:#555}.better{color:#161}.worse{color:#a33}\n"
       "</style>\n</head>\n<body>\n";
  h << "<h1>" << html_escape(d.title) << "</h1>\n";
  for (const auto& w : d.warnings) h << "<p class=\"warn\">" << html_escape(w) << "</p>\n";

}

// The training curves: loss and AUROC per epoch, loss and learning rate per step.
void write_training_section(std::ostringstream& h, const ReportData& d) {
  // Training curves.
  const std::vector<double> epoch = d.epochs.numbers("epoch");
  const std::vector<double> val_auc = d.epochs.numbers("val_mean_auroc");
  h << "<h2>Training</h2>\n<p class=\"note\">From <code>" << html_escape((fs::path(d.run_dir) / "metrics.csv").string())
    << "</code>: " << d.epochs.rows.size() << " epochs.";
  if (!val_auc.empty()) {
    std::size_t best = 0;
    for (std::size_t i = 0; i < val_auc.size(); ++i)
      if (std::isfinite(val_auc[i]) && (!std::isfinite(val_auc[best]) || val_auc[i] > val_auc[best])) best = i;
    if (best < val_auc.size() && std::isfinite(val_auc[best]))
      h << " Best validation mean AUROC " << fixed(val_auc[best]) << " at epoch " << fixed(epoch[best], 0) << ".";
  }
  h << "</p>\n<div class=\"grid\">\n";
  {
    SvgChart c;
    c.id = "chart-loss";
    c.title = "Loss per epoch";
    c.x_label = "epoch";
    c.y_label = "loss";
    c.series.push_back({"train", epoch, d.epochs.numbers("train_loss"), "#1f77b4"});
    c.series.push_back({"validation", epoch, d.epochs.numbers("val_loss"), "#ff7f0e"});
    h << svg_line_chart(c);
  }
  {
    SvgChart c;
    c.id = "chart-auroc";
    c.title = "Validation AUROC per epoch";
    c.x_label = "epoch";
    c.y_label = "AUROC";
    c.width = 620;
    c.height = 320;
    c.series.push_back({"mean", epoch, val_auc, "#000", false, 3.0});
    std::size_t k = 0;
    for (const auto& col : d.epochs.header)
      if (col.rfind("auroc_", 0) == 0) c.series.push_back({col.substr(6), epoch, d.epochs.numbers(col), palette_color(k++), false, 1.0});
    h << svg_line_chart(c);
  }
  if (!d.steps.empty()) {
    const auto step = step_values(d.steps, "step");
    SvgChart c;
    c.id = "chart-step-loss";
    c.title = "Training loss per step";
    c.x_label = "step";
    c.y_label = "loss";
    c.legend = false;
    c.series.push_back({"loss", step, step_values(d.steps, "loss"), "#1f77b4", false, 1.0});
    h << svg_line_chart(c);
    SvgChart r;
    r.id = "chart-lr";
    r.title = "Learning rate per step";
    r.x_label = "step";
    r.y_label = "learning rate";
    r.legend = false;
    r.series.push_back({"learning rate", step, step_values(d.steps, "lr"), "#2ca02c"});
    h << svg_line_chart(r);
    const auto ips = step_values(d.steps, "images_per_s");
    double sum = 0;
    int n = 0;
    for (double v : ips)
      if (std::isfinite(v)) sum += v, ++n;
    if (n) h << "<p class=\"note\">Mean training throughput " << fixed(sum / n, 1) << " images/s over " << n
             << " logged steps (<code>metrics.jsonl</code>).</p>\n";
  }
  h << "</div>\n";

}

// The per-class AUROC / AP table beside CheXNet's published AUROCs.
void write_class_table(std::ostringstream& h, const ReportData& d, const nlohmann::json& m) {
  h << "<table id=\"table-classes\">\n<tr><th>finding</th><th>positives</th><th>AUROC</th><th>AP</th>"
       "<th>CheXNet AUROC</th><th>difference</th></tr>\n";
  std::vector<std::string> names = d.class_names;
  if (names.empty())
    for (const auto& p : kChexnetAuroc) names.push_back(p.name);
  for (std::size_t c = 0; c < names.size(); ++c) {
    double auc = NAN, ap = NAN, pos = NAN;
    if (m.is_object() && m.contains("classes") && m["classes"].contains(names[c])) {
      const auto& j = m["classes"][names[c]];
      auc = jnum(j, "auroc");
      ap = jnum(j, "ap");
      pos = jnum(j, "positives");
    } else if (c < d.labels.size()) {
      std::vector<double> s = d.scores[c];
      auc = roc_auc(s, d.labels[c]);
      ap = average_precision(s, d.labels[c]);
      pos = static_cast<double>(std::count(d.labels[c].begin(), d.labels[c].end(), 1));
    }
    double ref = NAN;
    for (const auto& p : kChexnetAuroc)
      if (names[c] == p.name) ref = p.auroc;
    const double diff = auc - ref;
    h << "<tr><td>" << html_escape(names[c]) << "</td><td>" << fixed(pos, 0) << "</td><td>" << fixed(auc)
      << "</td><td>" << fixed(ap) << "</td><td>" << fixed(ref) << "</td><td class=\""
      << (std::isfinite(diff) ? (diff >= 0 ? "better" : "worse") : "") << "\">"
      << (std::isfinite(diff) && diff >= 0 ? "+" : "") << fixed(diff) << "</td></tr>\n";
  }
  const double mean = jnum(m, "mean_auroc");
  h << "<tr><th>mean</th><th></th><th>" << fixed(mean) << "</th><th>" << fixed(jnum(m, "mean_ap")) << "</th><th>"
    << fixed(kChexnetMeanAuroc, 3) << "</th><th>" << (std::isfinite(mean) && mean >= kChexnetMeanAuroc ? "+" : "")
    << fixed(mean - kChexnetMeanAuroc) << "</th></tr>\n</table>\n";
  h << "<p class=\"note\">CheXNet's AUROCs are those published in its paper (Rajpurkar et al. 2017, Table 1). "
       "That paper used a random patient-wise split of ChestX-ray14 of its own, not the official test list, "
       "so its test images differ from these and the numbers are not strictly comparable "
       "(and not comparable at all on synthetic data). A class without positives or negatives has no AUROC "
       "(&ndash;).</p>\n";

}

// ROC and precision-recall curves per class.
void write_curves(std::ostringstream& h, const ReportData& d) {
  if (!d.labels.empty()) {
    h << "<h3>ROC curves</h3>\n<div class=\"grid\">\n";
    for (std::size_t c = 0; c < d.class_names.size(); ++c) {
      if (!curves_defined(d, c)) continue;
      const Curve roc = roc_curve(d.scores[c], d.labels[c]);
      SvgChart ch;
      ch.id = chart_id("chart-roc-", d.class_names[c]);
      ch.title = d.class_names[c] + " (AUROC " + fixed(roc_auc(d.scores[c], d.labels[c]), 3) + ")";
      ch.x_label = "false positive rate";
      ch.y_label = "true positive rate";
      ch.width = 285;
      ch.height = 250;
      ch.x_min = ch.y_min = 0;
      ch.x_max = ch.y_max = 1;
      ch.legend = false;
      ch.series.push_back({"chance", {0, 1}, {0, 1}, "#999", true, 1.0});
      ch.series.push_back({d.class_names[c], roc.x, roc.y, "#d62728", false, 2.0});
      h << svg_line_chart(ch);
    }
    h << "</div>\n<h3>Precision-recall curves</h3>\n<div class=\"grid\">\n";
    for (std::size_t c = 0; c < d.class_names.size(); ++c) {
      if (!curves_defined(d, c)) continue;
      const Curve pr = pr_curve(d.scores[c], d.labels[c]);
      const double prevalence = static_cast<double>(std::count(d.labels[c].begin(), d.labels[c].end(), 1)) /
                                static_cast<double>(d.labels[c].size());
      SvgChart ch;
      ch.id = chart_id("chart-pr-", d.class_names[c]);
      ch.title = d.class_names[c] + " (AP " + fixed(average_precision(d.scores[c], d.labels[c]), 3) + ")";
      ch.x_label = "recall";
      ch.y_label = "precision";
      ch.width = 285;
      ch.height = 250;
      ch.x_min = ch.y_min = 0;
      ch.x_max = ch.y_max = 1;
      ch.legend = false;
      ch.series.push_back({"prevalence", {0, 1}, {prevalence, prevalence}, "#999", true, 1.0});
      ch.series.push_back({d.class_names[c], pr.x, pr.y, "#1f77b4", false, 2.0});
      h << svg_line_chart(ch);
    }
    h << "</div>\n<p class=\"note\">Dashed: chance (ROC) and the class prevalence (precision-recall). Classes "
         "without positives or negatives in the split have no curve.</p>\n";
  }

}

// The localisation table: boxes, mean IoU and accuracy at each IoBB threshold.
void write_localisation_table(std::ostringstream& h, const nlohmann::json& m) {
  if (m.is_object() && m.contains("localisation") && m["localisation"].is_object()) {
    const auto& loc = m["localisation"];
    std::vector<std::string> ts;
    if (loc.contains("accuracy_iobb") && loc["accuracy_iobb"].is_object())
      for (const auto& [t, v] : loc["accuracy_iobb"].items()) ts.push_back(t);
    std::sort(ts.begin(), ts.end(), [](const std::string& a, const std::string& b) { return std::stod(a) < std::stod(b); });
    h << "<h3>Localisation</h3>\n<table id=\"table-localisation\">\n<tr><th>finding</th><th>boxes</th><th>mean IoU</th>";
    for (const auto& t : ts) h << "<th>accuracy IoBB &gt; " << html_escape(t) << "</th>";
    h << "</tr>\n";
    auto row = [&](const std::string& name, const nlohmann::json& j, bool bold) {
      const char* td = bold ? "th" : "td";
      h << "<tr><" << td << ">" << html_escape(name) << "</" << td << "><" << td << ">" << fixed(jnum(j, "boxes"), 0)
        << "</" << td << "><" << td << ">" << fixed(jnum(j, "mean_iou"), 3) << "</" << td << ">";
      for (const auto& t : ts)
        h << "<" << td << ">"
          << fixed(j.contains("accuracy_iobb") && j["accuracy_iobb"].is_object() ? jnum(j["accuracy_iobb"], t) : NAN, 3)
          << "</" << td << ">";
      h << "</tr>\n";
    };
    if (loc.contains("per_class") && loc["per_class"].is_object())
      for (const auto& [name, j] : loc["per_class"].items()) row(name, j, false);
    row("all boxes", loc, true);
    h << "</table>\n<p class=\"note\">For every ground-truth box, the box head's box for that image and "
         "finding; found at T when IoBB (intersection / detected box area, as in Wang et al. 2017) &gt; T.</p>\n";
  }
}

// The evaluation of a checkpoint (train_cxr eval's metrics.json and predictions.csv).
void write_evaluation_section(std::ostringstream& h, const ReportData& d) {
  const nlohmann::json& m = d.eval_metrics;
  const std::string split = m.is_object() && m.contains("split") && m["split"].is_string() ? m["split"].get<std::string>() : "evaluated";
  h << "<h2>Evaluation on the " << html_escape(split) << " split</h2>\n";
  if (m.is_object())
    h << "<p class=\"note\">" << (m.contains("images") ? m["images"].dump() : std::string("?")) << " images; mean AUROC "
      << fixed(jnum(m, "mean_auroc")) << ", mean AP " << fixed(jnum(m, "mean_ap")) << " (<code>"
      << html_escape((fs::path(d.eval_dir) / "metrics.json").string()) << "</code>).</p>\n";
  write_class_table(h, d, m);
  write_curves(h, d);
  write_localisation_table(h, m);
}

// The overlay pictures, embedded.
void write_overlays(std::ostringstream& h, const ReportData& d) {
  if (!d.overlays.empty()) {
    h << "<h2>Overlays</h2>\n<p class=\"note\">Class activation maps (jet colours), the box head's box "
         "(magenta), the CAM box (white, dashed) and ground-truth boxes (green); <code>train_cxr predict "
         "--overlay</code>.</p>\n<div class=\"grid\">\n";
    for (const auto& [name, b64] : d.overlays)
      h << "<figure><img alt=\"" << html_escape(name) << "\" src=\"data:image/png;base64," << b64
        << "\"><figcaption>" << html_escape(name) << "</figcaption></figure>\n";
    h << "</div>\n";
  }

}

// The footer and the script that counts the charts for scripts/browser-test.
void write_page_tail(std::ostringstream& h) {
  const std::time_t now = std::time(nullptr);
  char when[64];
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  h << "<p class=\"note\">Written by <code>train_cxr report</code> on " << when << ".</p>\n";
  // Counts the charts for scripts/browser-test: data-check = "ok N/N", "missing N/M" or "error: ...".
  h << "<script>(function () {\n"
       "  var want = +document.querySelector('meta[name=\"cxr-expected-charts\"]').content;\n"
       "  var got = document.querySelectorAll('svg.chart').length;\n"
       "  var root = document.documentElement;\n"
       "  if (!root.hasAttribute('data-check'))\n"
       "    root.setAttribute('data-check', (got === want ? 'ok ' : 'missing ') + got + '/' + want);\n"
       "})();</script>\n</body>\n</html>\n";
}

}  // namespace

std::string render_report_html(const ReportData& d) {
  std::ostringstream h;
  write_page_head(h, d);
  write_training_section(h, d);
  if (d.has_eval) write_evaluation_section(h, d);
  write_overlays(h, d);
  write_page_tail(h);
  return h.str();
}

void write_report_file(const ReportOptions& options, const std::string& path, std::ostream& out) {
  const ReportData data = load_report_data(options);
  const std::string html = render_report_html(data);
  if (fs::path(path).has_parent_path()) fs::create_directories(fs::path(path).parent_path());
  write_file_atomic(path, html);
  out << "wrote " << path << " (" << html.size() / 1024 << " KiB, " << expected_chart_count(data) << " charts, "
      << data.overlays.size() << " overlays)\n";
  for (const auto& w : data.warnings) out << "note: " << w << "\n";
}

}  // namespace cxr
