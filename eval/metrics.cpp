// Metrics: ROC AUC and average precision as scikit-learn defines them, thresholded counts,
// threshold selection, IoU/IoBB localisation accuracy. Definitions in metrics.h.
//
// Both ranking metrics walk the samples once in descending score order and take one curve
// point per distinct score (scikit-learn's _binary_clf_curve). The AUC is accumulated in
// integers (twice the trapezoid area in units of one TP x one FP), so it is exact up to the
// final division.
#include "eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <sstream>

#include "tensor/error.h"

namespace cxr {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::int64_t count_positives(const std::vector<int>& labels) {
  std::int64_t p = 0;
  for (int l : labels) p += l != 0;
  return p;
}

double ratio(double a, double b) { return b == 0 ? kNaN : a / b; }

// Class j's scores and labels over the samples whose label is present (not NaN).
struct PresentColumn {
  std::vector<double> scores;
  std::vector<int> labels;
  std::int64_t missing = 0;
};
PresentColumn present_column(const std::vector<float>& s, const std::vector<float>& l, std::int64_t n, std::int64_t c,
                             std::int64_t j) {
  PresentColumn out;
  for (std::int64_t i = 0; i < n; ++i) {
    const float y = l[static_cast<std::size_t>(i * c + j)];
    if (std::isnan(y)) {
      ++out.missing;
      continue;
    }
    out.scores.push_back(s[static_cast<std::size_t>(i * c + j)]);
    out.labels.push_back(y > 0.5f);
  }
  return out;
}

std::int64_t check_matrix(const std::vector<float>& scores, const std::vector<float>& labels, std::int64_t c,
                          const char* op) {
  CXR_CHECK(c > 0, op, ": num_classes must be positive, found ", c);
  CXR_CHECK(scores.size() == labels.size(), op, ": ", scores.size(), " scores but ", labels.size(), " labels");
  CXR_CHECK(scores.size() % static_cast<std::size_t>(c) == 0, op, ": ", scores.size(),
            " scores are not a whole number of rows of ", c, " classes");
  return static_cast<std::int64_t>(scores.size()) / c;
}

}  // namespace

// One point per distinct score, from the highest score down.
std::vector<CurvePoint> binary_curve(const std::vector<double>& scores, const std::vector<int>& labels,
                                     const char* op) {
  CXR_CHECK(scores.size() == labels.size(), op, ": ", scores.size(), " scores but ", labels.size(), " labels");
  for (std::size_t i = 0; i < scores.size(); ++i)
    CXR_CHECK(!std::isnan(scores[i]), op, ": score ", i, " is NaN");
  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return scores[a] > scores[b]; });
  std::vector<CurvePoint> curve;
  std::int64_t tp = 0, fp = 0;
  for (std::size_t k = 0; k < order.size(); ++k) {
    const std::size_t i = order[k];
    (labels[i] != 0 ? tp : fp) += 1;
    if (k + 1 == order.size() || scores[order[k + 1]] != scores[i]) curve.push_back({scores[i], tp, fp});
  }
  return curve;
}

double roc_auc(const std::vector<double>& scores, const std::vector<int>& labels) {
  const auto curve = binary_curve(scores, labels, "roc_auc");
  const std::int64_t p = count_positives(labels), n = static_cast<std::int64_t>(labels.size()) - p;
  if (p == 0 || n == 0) return kNaN;
  // Twice the area under the (fp, tp) staircase with diagonal steps at ties.
  std::int64_t area2 = 0, tp0 = 0, fp0 = 0;
  for (const CurvePoint& c : curve) {
    area2 += (c.fp - fp0) * (c.tp + tp0);
    tp0 = c.tp;
    fp0 = c.fp;
  }
  return static_cast<double>(area2) / (2.0 * static_cast<double>(p) * static_cast<double>(n));
}

double average_precision(const std::vector<double>& scores, const std::vector<int>& labels) {
  const auto curve = binary_curve(scores, labels, "average_precision");
  const std::int64_t p = count_positives(labels), n = static_cast<std::int64_t>(labels.size()) - p;
  if (p == 0 || n == 0) return kNaN;
  double ap = 0;
  std::int64_t tp0 = 0;
  for (const CurvePoint& c : curve) {
    if (c.tp != tp0) ap += static_cast<double>(c.tp - tp0) / p * (static_cast<double>(c.tp) / (c.tp + c.fp));
    tp0 = c.tp;
  }
  return ap;
}

// --- thresholds ---------------------------------------------------------------------------

double ThresholdStats::accuracy() const { return ratio(tp + tn, tp + fp + tn + fn); }
double ThresholdStats::predicted_positive_rate() const { return ratio(tp + fp, tp + fp + tn + fn); }
double ThresholdStats::prevalence() const { return ratio(tp + fn, tp + fp + tn + fn); }
double ThresholdStats::tpr() const { return ratio(tp, tp + fn); }
double ThresholdStats::fpr() const { return ratio(fp, fp + tn); }
double ThresholdStats::precision() const { return ratio(tp, tp + fp); }
double ThresholdStats::f1() const { return ratio(2.0 * tp, 2.0 * tp + fp + fn); }

ThresholdStats threshold_stats(const std::vector<double>& scores, const std::vector<int>& labels, double threshold) {
  CXR_CHECK(scores.size() == labels.size(), "threshold_stats: ", scores.size(), " scores but ", labels.size(),
            " labels");
  ThresholdStats s;
  s.threshold = threshold;
  for (std::size_t i = 0; i < scores.size(); ++i) {
    const bool pred = scores[i] >= threshold, pos = labels[i] != 0;
    (pred ? (pos ? s.tp : s.fp) : (pos ? s.fn : s.tn)) += 1;
  }
  return s;
}

double select_threshold(const std::vector<double>& scores, const std::vector<int>& labels, ThresholdRule rule,
                        double fallback) {
  const auto curve = binary_curve(scores, labels, "select_threshold");
  const std::int64_t p = count_positives(labels), n = static_cast<std::int64_t>(labels.size()) - p;
  if (p == 0 || n == 0) return fallback;
  // Compared exactly in integers: a better candidate must be strictly better, so ties keep
  // the earlier (higher) threshold.
  //   Youden J = tp/p - fp/n           ~  tp*n - fp*p
  //   F1 = 2tp / (2tp + fp + fn) = 2tp / (tp + fp + p)
  double best = fallback;
  std::int64_t best_num = -1, best_den = 1;
  bool first = true;
  for (const CurvePoint& c : curve) {
    std::int64_t num, den;
    if (rule == ThresholdRule::youden) {
      num = c.tp * n - c.fp * p;
      den = 1;
    } else {
      num = c.tp;
      den = c.tp + c.fp + p;
    }
    // num/den > best_num/best_den with positive denominators.
    const bool better = first || num * best_den > best_num * den;
    if (better) {
      best = c.threshold;
      best_num = num;
      best_den = den;
      first = false;
    }
  }
  return best;
}

// --- many classes ---------------------------------------------------------------------------

ClassificationReport evaluate_classification(const std::vector<float>& scores, const std::vector<float>& labels,
                                             std::int64_t num_classes, const std::vector<std::string>& names,
                                             const std::vector<double>& thresholds) {
  const std::int64_t n = check_matrix(scores, labels, num_classes, "evaluate_classification");
  CXR_CHECK(names.empty() || static_cast<std::int64_t>(names.size()) == num_classes, "evaluate_classification: ",
            names.size(), " class names for ", num_classes, " classes");
  CXR_CHECK(thresholds.empty() || static_cast<std::int64_t>(thresholds.size()) == num_classes,
            "evaluate_classification: ", thresholds.size(), " thresholds for ", num_classes, " classes");
  ClassificationReport r;
  double sum_auc = 0, sum_ap = 0, sum_acc = 0, sum_bias = 0;
  int defined = 0, with_rows = 0;
  for (std::int64_t j = 0; j < num_classes; ++j) {
    const PresentColumn col = present_column(scores, labels, n, num_classes, j);
    const auto& s = col.scores;
    const auto& l = col.labels;
    const auto rows = static_cast<std::int64_t>(l.size());
    ClassMetrics m;
    m.name = names.empty() ? "class " + std::to_string(j) : names[static_cast<std::size_t>(j)];
    m.positives = count_positives(l);
    m.negatives = rows - m.positives;
    m.missing = col.missing;
    m.auc = roc_auc(s, l);
    m.ap = average_precision(s, l);
    m.at_threshold = threshold_stats(s, l, thresholds.empty() ? 0.5 : thresholds[static_cast<std::size_t>(j)]);
    if (std::isnan(m.auc)) {
      r.undefined.push_back(m.name);
    } else {
      sum_auc += m.auc;
      sum_ap += m.ap;
      ++defined;
    }
    if (rows > 0) {
      sum_acc += m.at_threshold.accuracy();
      sum_bias += std::fabs(m.at_threshold.bias());
      ++with_rows;
    }
    r.classes.push_back(m);
  }
  r.mean_auc = defined ? sum_auc / defined : kNaN;
  r.mean_ap = defined ? sum_ap / defined : kNaN;
  r.mean_accuracy = with_rows > 0 ? sum_acc / static_cast<double>(with_rows) : kNaN;
  r.mean_abs_bias = with_rows > 0 ? sum_bias / static_cast<double>(with_rows) : kNaN;
  return r;
}

std::vector<double> select_thresholds(const std::vector<float>& scores, const std::vector<float>& labels,
                                      std::int64_t num_classes, ThresholdRule rule, double fallback) {
  const std::int64_t n = check_matrix(scores, labels, num_classes, "select_thresholds");
  std::vector<double> out;
  for (std::int64_t j = 0; j < num_classes; ++j) {
    const PresentColumn col = present_column(scores, labels, n, num_classes, j);
    out.push_back(select_threshold(col.scores, col.labels, rule, fallback));
  }
  return out;
}

std::string format_report(const ClassificationReport& r) {
  std::ostringstream os;
  char line[200];
  std::snprintf(line, sizeof line, "%-20s %6s %7s %7s %9s %8s %8s\n", "class", "n+", "AUROC", "AP", "threshold",
                "accuracy", "bias");
  os << line;
  for (const ClassMetrics& m : r.classes) {
    std::snprintf(line, sizeof line, "%-20s %6lld %7.4f %7.4f %9.4f %8.4f %+8.4f\n", m.name.c_str(),
                  static_cast<long long>(m.positives), m.auc, m.ap, m.at_threshold.threshold,
                  m.at_threshold.accuracy(), m.at_threshold.bias());
    os << line;
  }
  std::snprintf(line, sizeof line, "%-20s %6s %7.4f %7.4f %9s %8.4f %8.4f (mean |bias|)\n", "mean", "", r.mean_auc,
                r.mean_ap, "", r.mean_accuracy, r.mean_abs_bias);
  os << line;
  if (!r.undefined.empty()) {
    os << "undefined (no positives or no negatives, left out of the means):";
    for (const auto& name : r.undefined) os << ' ' << name;
    os << '\n';
  }
  return os.str();
}

// --- localisation -----------------------------------------------------------------------------

double intersection_area(const Box& a, const Box& b) {
  const double w = std::min(a.x + a.w, b.x + b.w) - std::max(a.x, b.x);
  const double h = std::min(a.y + a.h, b.y + b.h) - std::max(a.y, b.y);
  return w > 0 && h > 0 ? w * h : 0.0;
}

double iou(const Box& a, const Box& b) {
  const double inter = intersection_area(a, b);
  const double uni = a.area() + b.area() - inter;
  return uni > 0 ? inter / uni : 0.0;
}

double iobb(const Box& detected, const Box& truth) {
  const double area = detected.area();
  return area > 0 ? intersection_area(detected, truth) / area : 0.0;
}

LocalisationResult localisation_accuracy(const std::vector<LocalisationSample>& samples, int num_classes,
                                         OverlapMeasure measure, const std::vector<double>& thresholds) {
  CXR_CHECK(num_classes > 0, "localisation_accuracy: num_classes must be positive, found ", num_classes);
  LocalisationResult r;
  r.thresholds = thresholds;
  const std::size_t t = thresholds.size();
  std::vector<std::vector<std::int64_t>> hits(static_cast<std::size_t>(num_classes), std::vector<std::int64_t>(t, 0));
  std::vector<std::int64_t> total_hits(t, 0);
  r.boxes.assign(static_cast<std::size_t>(num_classes), 0);
  for (const LocalisationSample& s : samples) {
    CXR_CHECK(s.class_index >= 0 && s.class_index < num_classes, "localisation_accuracy: class index ", s.class_index,
              " outside [0, ", num_classes, ")");
    double best = 0;
    for (const Box& d : s.detected)
      best = std::max(best, measure == OverlapMeasure::iobb ? iobb(d, s.truth) : iou(d, s.truth));
    const auto c = static_cast<std::size_t>(s.class_index);
    ++r.boxes[c];
    for (std::size_t k = 0; k < t; ++k)
      if (best > thresholds[k]) {
        ++hits[c][k];
        ++total_hits[k];
      }
  }
  for (std::size_t c = 0; c < hits.size(); ++c) {
    std::vector<double> acc(t);
    for (std::size_t k = 0; k < t; ++k) acc[k] = ratio(static_cast<double>(hits[c][k]), static_cast<double>(r.boxes[c]));
    r.accuracy.push_back(acc);
  }
  for (std::size_t k = 0; k < t; ++k)
    r.overall.push_back(ratio(static_cast<double>(total_hits[k]), static_cast<double>(samples.size())));
  return r;
}

}  // namespace cxr
