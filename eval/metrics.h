// Evaluation metrics for multi-label classification and box localisation.
//
// Classification (per class; scores are probabilities or logits, any monotone scale):
//   roc_auc            scikit-learn's roc_auc_score: the ROC curve has one point per distinct
//                      score (tied scores move TP and FP together: a diagonal step), and the
//                      area is the trapezoid rule over it. Equals P(s+ > s-) + P(s+ = s-)/2.
//   average_precision  scikit-learn's average_precision_score: sum over distinct thresholds,
//                      from high to low, of (R_n - R_{n-1}) * P_n, ties grouped, no
//                      interpolation.
//   Both are undefined (NaN) for a class with no positives or no negatives; the means skip
//   such classes and ClassificationReport lists them.
// Thresholded (a sample is predicted positive when score >= threshold):
//   accuracy, predicted-positive rate, prevalence, bias = rate - prevalence, TPR, FPR, F1.
// Threshold selection (on validation scores), candidates are the distinct scores:
//   youden: maximises J = TPR - FPR;  f1: maximises F1 = 2TP / (2TP + FP + FN).
//   Ties go to the highest threshold (the fewest positive predictions). A class without
//   positives or negatives gets `fallback` (0.5).
//
// Localisation (boxes in pixels, x, y = top-left corner, as in BBox_List_2017.csv):
//   iou   = |A n B| / |A u B|
//   iobb  = |A n B| / |detected box area|  (Wang et al. 2017 "ChestX-ray8", used by CheXNet)
//   localisation_accuracy: a ground-truth box counts as found at threshold T when one of the
//   boxes detected for its image and class has IoBB > T (or IoU > T; strict, as in Wang et
//   al.: "IoU > T(IoU) or IoBB > T(IoBB)"); per class for T in {0.1, 0.25, 0.5} by default.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cxr {

// --- one class -------------------------------------------------------------------------
// labels: 0/1 (any non-zero is positive); same length as scores.

// The counts behind both ranking curves (scikit-learn's _binary_clf_curve): one point per
// distinct score, from the highest down, with the positives (tp) and negatives (fp) scoring at
// least that much. `op` names the caller in errors (size mismatch, a NaN score).
struct CurvePoint {
  double threshold;
  std::int64_t tp, fp;
};
std::vector<CurvePoint> binary_curve(const std::vector<double>& scores, const std::vector<int>& labels,
                                     const char* op = "binary_curve");
double roc_auc(const std::vector<double>& scores, const std::vector<int>& labels);
double average_precision(const std::vector<double>& scores, const std::vector<int>& labels);

struct ThresholdStats {
  double threshold = 0.5;
  std::int64_t tp = 0, fp = 0, tn = 0, fn = 0;
  double accuracy() const;
  double predicted_positive_rate() const;
  double prevalence() const;
  double bias() const { return predicted_positive_rate() - prevalence(); }
  double tpr() const;  // sensitivity; NaN without positives
  double fpr() const;  // NaN without negatives
  double precision() const;  // NaN without positive predictions
  double f1() const;   // 2TP / (2TP + FP + FN); NaN when that is 0/0
};
ThresholdStats threshold_stats(const std::vector<double>& scores, const std::vector<int>& labels, double threshold);

enum class ThresholdRule { youden, f1 };
double select_threshold(const std::vector<double>& scores, const std::vector<int>& labels, ThresholdRule rule,
                        double fallback = 0.5);

// --- many classes ------------------------------------------------------------------------
// scores, labels: (N, C) row-major, sample-major (the network's output layout). A NaN label
// is *missing* (the data set has no label there): that sample is left out of that class's
// metrics, and a class with no present label is undefined.
struct ClassMetrics {
  std::string name;
  std::int64_t positives = 0, negatives = 0;
  std::int64_t missing = 0;  // samples whose label is missing (NaN), left out
  double auc = 0, ap = 0;  // NaN when undefined
  ThresholdStats at_threshold;
};

struct ClassificationReport {
  std::vector<ClassMetrics> classes;
  double mean_auc = 0, mean_ap = 0;       // over classes where defined; NaN if none is
  std::vector<std::string> undefined;     // classes without positives or negatives
  double mean_accuracy = 0, mean_abs_bias = 0;
};

// thresholds: one per class, or empty for 0.5 everywhere. names: empty for "class <i>".
ClassificationReport evaluate_classification(const std::vector<float>& scores, const std::vector<float>& labels,
                                             std::int64_t num_classes, const std::vector<std::string>& names = {},
                                             const std::vector<double>& thresholds = {});
std::vector<double> select_thresholds(const std::vector<float>& scores, const std::vector<float>& labels,
                                      std::int64_t num_classes, ThresholdRule rule, double fallback = 0.5);
// A fixed-width table: class, n+, AUROC, AP, threshold, accuracy, bias; then the means.
std::string format_report(const ClassificationReport& r);

// --- localisation ---------------------------------------------------------------------------
struct Box {
  double x = 0, y = 0, w = 0, h = 0;  // top-left corner and size, pixels
  double area() const { return w > 0 && h > 0 ? w * h : 0.0; }
};
double intersection_area(const Box& a, const Box& b);
double iou(const Box& a, const Box& b);                  // 0 when both are empty
double iobb(const Box& detected, const Box& truth);      // intersection / detected area; 0 if empty

struct LocalisationSample {
  int class_index = 0;
  Box truth;
  std::vector<Box> detected;  // the boxes predicted for this image and class (may be none)
};
enum class OverlapMeasure { iobb, iou };
struct LocalisationResult {
  std::vector<double> thresholds;               // e.g. {0.1, 0.25, 0.5}
  std::vector<std::vector<double>> accuracy;    // [class][threshold]; NaN for a class without boxes
  std::vector<std::int64_t> boxes;              // ground-truth boxes per class
  std::vector<double> overall;                  // [threshold], over all boxes
};
LocalisationResult localisation_accuracy(const std::vector<LocalisationSample>& samples, int num_classes,
                                         OverlapMeasure measure = OverlapMeasure::iobb,
                                         const std::vector<double>& thresholds = {0.1, 0.25, 0.5});

}  // namespace cxr
