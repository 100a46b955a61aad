// Metrics against scikit-learn (tests/gen/metrics.py -> tests/golden/metrics.json): ROC AUC
// and average precision on scores with heavy ties and edge cases, to 1e-9; thresholds by
// Youden's J and F1; the multi-class report; IoU, IoBB and localisation accuracy by hand.
#include <doctest/doctest.h>

#include <cmath>

#include "tests/golden.h"
#include "eval/metrics.h"

using namespace cxr;

namespace {

void check_near(double actual, const nlohmann::json& expected, const std::string& what) {
  CAPTURE(what);
  if (expected.is_null()) {
    CHECK(std::isnan(actual));
  } else {
    CHECK(std::fabs(actual - expected.get<double>()) <= 1e-9);
  }
}

}  // namespace

TEST_SUITE("train") {

TEST_CASE("metrics: ROC AUC and average precision match scikit-learn to 1e-9 (ties, edge cases)") {
  const nlohmann::json g = cxr::test::load_golden("metrics");
  int cases = 0;
  for (const auto& c : g.at("ranking")) {
    const std::string name = c.at("name");
    CAPTURE(name);
    const auto scores = c.at("scores").get<std::vector<double>>();
    const auto labels = c.at("labels").get<std::vector<int>>();
    check_near(roc_auc(scores, labels), c.at("auc"), name + " auc");
    check_near(average_precision(scores, labels), c.at("ap"), name + " ap");
    CHECK(select_threshold(scores, labels, ThresholdRule::youden) == c.at("youden").get<double>());
    CHECK(select_threshold(scores, labels, ThresholdRule::f1) == c.at("f1").get<double>());
    const ThresholdStats s = threshold_stats(scores, labels, 0.5);
    check_near(s.accuracy(), c.at("accuracy_05"), name + " accuracy");
    check_near(s.bias(), c.at("bias_05"), name + " bias");
    ++cases;
  }
  CHECK(cases >= 9);
}

TEST_CASE("metrics: hand-checked AUC/AP and argument errors") {
  // Pairs (pos, neg): (0.8 > 0.4), (0.8 > 0.1), (0.4 = 0.4: half), (0.4 > 0.1) -> 3.5 / 4.
  CHECK(roc_auc({0.8, 0.4, 0.4, 0.1}, {1, 1, 0, 0}) == 0.875);
  // Thresholds 0.8: R=1/2 P=1; 0.4: R=1 P=2/3 -> AP = 1/2 + 1/2 * 2/3.
  CHECK(average_precision({0.8, 0.4, 0.4, 0.1}, {1, 1, 0, 0}) == doctest::Approx(0.5 + 1.0 / 3).epsilon(1e-15));
  CHECK(std::isnan(roc_auc({}, {})));
  CHECK_THROWS_WITH_AS(roc_auc({0.1, 0.2}, {1}), doctest::Contains("2 scores but 1 labels"), cxr::Error);
  CHECK_THROWS_WITH_AS(roc_auc({0.1, NAN}, {1, 0}), doctest::Contains("score 1 is NaN"), cxr::Error);
}

TEST_CASE("metrics: multi-class report skips undefined classes in the means and lists them") {
  // 4 samples x 3 classes, sample-major. Class 2 has no positives.
  const std::vector<float> scores = {0.9f, 0.2f, 0.3f,  //
                                     0.1f, 0.8f, 0.6f,  //
                                     0.7f, 0.6f, 0.2f,  //
                                     0.3f, 0.1f, 0.1f};
  const std::vector<float> labels = {1, 0, 0,  //
                                     0, 1, 0,  //
                                     1, 1, 0,  //
                                     0, 0, 0};
  ClassificationReport r = evaluate_classification(scores, labels, 3, {"A", "B", "C"}, {0.5, 0.7, 0.5});
  REQUIRE(r.classes.size() == 3);
  CHECK(r.classes[0].auc == 1.0);
  CHECK(r.classes[1].auc == 1.0);
  CHECK(std::isnan(r.classes[2].auc));
  CHECK(r.undefined == std::vector<std::string>{"C"});
  CHECK(r.mean_auc == 1.0);
  CHECK(r.classes[1].positives == 2);
  // Class B at 0.7: predicts sample 1 only -> TP 1, FN 1, TN 2: accuracy 3/4, bias 1/4 - 2/4.
  CHECK(r.classes[1].at_threshold.accuracy() == 0.75);
  CHECK(r.classes[1].at_threshold.bias() == -0.25);
  // Class C at 0.5: predicts sample 1 -> FP 1: bias +1/4.
  CHECK(r.classes[2].at_threshold.bias() == 0.25);
  const std::string table = format_report(r);
  CHECK(table.find("undefined (no positives or no negatives, left out of the means): C") != std::string::npos);
  CHECK(table.find("mean") != std::string::npos);

  const std::vector<double> t = select_thresholds(scores, labels, 3, ThresholdRule::youden);
  CHECK(t == std::vector<double>{double(0.7f), double(0.6f), 0.5});  // float scores; C: the fallback
  CHECK_THROWS_WITH_AS(evaluate_classification(scores, labels, 5), doctest::Contains("whole number of rows"),
                       cxr::Error);
}

TEST_CASE("metrics: IoU, IoBB and localisation accuracy at IoBB 0.1/0.25/0.5") {
  const Box truth{10, 10, 100, 100};
  CHECK(iou(truth, truth) == 1.0);
  CHECK(iou(truth, Box{200, 200, 10, 10}) == 0.0);
  CHECK(iou(Box{0, 0, 0, 0}, Box{0, 0, 0, 0}) == 0.0);
  // Half overlap: intersection 50x100 = 5000, union 15000.
  CHECK(iou(truth, Box{60, 10, 100, 100}) == doctest::Approx(1.0 / 3).epsilon(1e-15));
  // IoBB divides by the detected box: a small box inside the truth scores 1, a huge one low.
  CHECK(iobb(Box{20, 20, 10, 10}, truth) == 1.0);
  CHECK(iobb(Box{0, 0, 1000, 1000}, truth) == doctest::Approx(0.01).epsilon(1e-15));
  CHECK(iobb(Box{}, truth) == 0.0);
  CHECK(intersection_area(Box{0, 0, 10, 10}, Box{10, 0, 10, 10}) == 0.0);  // touching edges

  std::vector<LocalisationSample> samples = {
      {0, truth, {Box{20, 20, 10, 10}}},                          // IoBB 1: found at every T
      {0, truth, {Box{0, 0, 200, 200}}},                          // IoBB 0.25: only T = 0.1 (strict >)
      {0, truth, {}},                                             // nothing detected
      {1, truth, {Box{500, 500, 5, 5}, Box{60, 10, 100, 100}}},   // best of two: IoBB 0.5 -> T 0.1, 0.25
  };
  LocalisationResult r = localisation_accuracy(samples, 3);
  CHECK(r.boxes == std::vector<std::int64_t>{3, 1, 0});
  CHECK(r.accuracy[0] == std::vector<double>{2.0 / 3, 1.0 / 3, 1.0 / 3});
  CHECK(r.accuracy[1] == std::vector<double>{1.0, 1.0, 0.0});
  CHECK(std::isnan(r.accuracy[2][0]));
  CHECK(r.overall == std::vector<double>{0.75, 0.5, 0.25});
  LocalisationResult u = localisation_accuracy(samples, 3, OverlapMeasure::iou, {0.2});
  CHECK(u.overall[0] == 0.5);  // IoU 0.01, 0.25, 0, 1/3
  CHECK_THROWS_WITH_AS(localisation_accuracy({{7, truth, {}}}, 3), doctest::Contains("class index 7"), cxr::Error);
}

}  // TEST_SUITE
