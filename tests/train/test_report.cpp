// The HTML report (report/report_html.h) and its SVG charts (report/svg.h): one <svg> per expected
// chart, names escaped, ROC / PR curves, base64, and the JSON it reads parsed with nlohmann-json.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "data/image_io.h"
#include "eval/metrics.h"
#include "report/report_html.h"
#include "cli/cli_args.h"
#include "cli/cmd_report.h"
#include "cli/cmd_train.h"
#include "report/svg.h"
#include "tests/data/data_test_util.h"

using namespace cxr;
namespace fs = std::filesystem;

namespace {

int count_of(const std::string& s, const std::string& what) {
  int n = 0;
  for (std::size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + what.size())) ++n;
  return n;
}

void write(const fs::path& p, const std::string& text) {
  std::ofstream f(p);
  f << text;
}

// A run folder and an eval folder like train / eval write them (3 classes, 8 images).
struct Fixture {
  fs::path root = fs::temp_directory_path() / "cxr_test_report";
  Fixture() {
    fs::remove_all(root);
    fs::create_directories(root / "run");
    fs::create_directories(root / "eval");
    fs::create_directories(root / "overlays");
    write(root / "run" / "metrics.csv",
          "epoch,step,lr,train_loss,val_loss,val_mean_auroc,val_mean_ap,images_per_s,seconds,auroc_Atelectasis,"
          "auroc_Cardiomegaly,auroc_Hernia\n"
          "1,10,0.001,1.5,1.6,0.61,0.2,30,9,0.6,0.62,nan\n"
          "2,20,0.0005,1.2,1.3,0.71,0.3,31,9,0.7,0.72,nan\n"
          "3,30,0,1.0,1.25,0.75,0.35,32,9,0.74,0.76,nan\n");
    write(root / "run" / "metrics.jsonl",
          "{\"epoch\":1,\"step\":1,\"lr\":0.0001,\"loss\":1.7,\"images_per_s\":20.5,\"time_s\":0.5}\n"
          "{\"epoch\":1,\"step\":2,\"lr\":0.0002,\"loss\":null,\"images_per_s\":21,\"time_s\":1.0}\n"
          "not json\n"
          "{\"epoch\":1,\"step\":3,\"lr\":0.0003,\"loss\":1.5,\"images_per_s\":22,\"time_s\":1.5}\n");
    write(root / "eval" / "predictions.csv",
          "Image Index,Atelectasis,Cardiomegaly,Hernia,No Finding\n"
          "a.png,0.9,0.1,0.2,0.1\nb.png,0.8,0.7,0.1,0.1\nc.png,0.3,0.6,0.3,0.1\nd.png,0.2,0.2,0.1,0.1\n"
          "e.png,0.6,0.9,0.2,0.1\nf.png,0.1,0.3,0.1,0.1\ng.png,0.5,0.4,0.2,0.1\nh.png,0.4,0.8,0.1,0.1\n");
    write(root / "eval" / "labels.csv",
          "Image Index,Atelectasis,Cardiomegaly,Hernia\n"
          "a.png,1,0,0\nb.png,1,1,0\nc.png,0,1,0\nd.png,0,0,0\ne.png,1,1,0\nf.png,0,0,0\ng.png,0,0,0\nh.png,0,1,0\n");
    write(root / "eval" / "metrics.json", R"({"images": 8, "mean_auroc": 0.8, "mean_ap": 0.7, "split": "test",
      "classes": {"Atelectasis": {"auroc": 0.93, "ap": 0.92, "positives": 3},
                  "Cardiomegaly": {"auroc": 0.87, "ap": 0.85, "positives": 4},
                  "Hernia": {"auroc": null, "ap": null, "positives": 0}},
      "localisation": {"boxes": 5, "mean_iou": 0.2, "accuracy_iobb": {"0.1": 0.6, "0.25": 0.4, "0.5": 0.2},
                       "per_class": {"Atelectasis": {"boxes": 5, "mean_iou": 0.2,
                                                     "accuracy_iobb": {"0.1": 0.6, "0.25": 0.4, "0.5": 0.2}}}}})");
    const std::uint8_t px[4 * 3] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255};
    const auto png = data::encode_png8(px, 2, 2, 3);
    std::ofstream f(root / "overlays" / "a.png", std::ios::binary);
    f.write(reinterpret_cast<const char*>(png.data()), static_cast<std::streamsize>(png.size()));
  }
  ~Fixture() { fs::remove_all(root); }
  ReportOptions options() const {
    ReportOptions o;
    o.run_dir = (root / "run").string();
    o.eval_dir = (root / "eval").string();
    o.overlay_dir = (root / "overlays").string();
    return o;
  }
};

}  // namespace

TEST_SUITE("train") {

TEST_CASE("svg: a line chart is one <svg class=chart> with axes, ticks, a legend and escaped names") {
  SvgChart c;
  c.id = "chart-x";
  c.title = "Loss <per> epoch & more";
  c.x_label = "epoch";
  c.series.push_back({"train <b>", {1, 2, 3}, {1.0, 0.5, NAN}});
  c.series.push_back({"val \"q\"", {1, 2, 3}, {1.2, 0.9, 0.8}, "#f00", true});
  const std::string s = svg_line_chart(c);
  CHECK(count_of(s, "<svg") == 1);
  CHECK(count_of(s, "</svg>") == 1);
  CHECK(s.find("class=\"chart\"") != std::string::npos);
  CHECK(s.find("id=\"chart-x\"") != std::string::npos);
  CHECK(s.find("Loss &lt;per&gt; epoch &amp; more") != std::string::npos);
  CHECK(s.find("train &lt;b&gt;") != std::string::npos);
  CHECK(s.find("val &quot;q&quot;") != std::string::npos);
  CHECK(s.find("<b>") == std::string::npos);
  CHECK(count_of(s, "<path") == 2);
  CHECK(s.find("stroke-dasharray") != std::string::npos);
  CHECK(html_escape("a&b<c>'\"") == "a&amp;b&lt;c&gt;&#39;&quot;");
  const auto t = nice_ticks(0, 1, 5);
  REQUIRE(t.size() == 6);
  CHECK(t.front() == 0);
  CHECK(t.back() == doctest::Approx(1));
  const auto u = nice_ticks(0.13, 0.87, 4);
  CHECK(u.front() <= 0.13);
  CHECK(u.back() >= 0.87);
}

TEST_CASE("report: ROC and precision-recall curves; the ROC area is the trapezoid AUROC") {
  const std::vector<double> s = {0.9, 0.8, 0.7, 0.7, 0.3, 0.2};
  const std::vector<int> l = {1, 0, 1, 0, 1, 0};
  const Curve roc = roc_curve(s, l);
  REQUIRE(roc.x.size() == 6);  // (0,0) + 5 distinct scores
  CHECK(roc.x.front() == 0);
  CHECK(roc.y.back() == 1);
  CHECK(roc.x.back() == 1);
  double area = 0;
  for (std::size_t i = 1; i < roc.x.size(); ++i) area += (roc.x[i] - roc.x[i - 1]) * (roc.y[i] + roc.y[i - 1]) / 2;
  CHECK(area == doctest::Approx(roc_auc(s, l)));
  const Curve pr = pr_curve(s, l);
  REQUIRE(pr.x.size() == 6);
  CHECK(pr.y[1] == 1.0);                        // top score is positive
  CHECK(pr.y[2] == doctest::Approx(0.5));       // then a negative
  CHECK(pr.x.back() == 1);
  CHECK(pr.y.back() == doctest::Approx(0.5));   // prevalence at the end
  CHECK(roc_curve({0.1, 0.2}, {0, 0}).x.empty());
  CHECK(base64_encode({'M', 'a', 'n'}) == "TWFu");
  CHECK(base64_encode({'M', 'a'}) == "TWE=");
  CHECK(base64_encode({'M'}) == "TQ==");
  CHECK(base64_encode({}) == "");
}

TEST_CASE("report: one <svg> per expected chart, tables, overlays, escaped title") {
  Fixture fx;
  ReportOptions o = fx.options();
  o.title = "run <x> & 'y'";
  const ReportData d = load_report_data(o);
  // nlohmann-json parsed metrics.json and the good lines of metrics.jsonl.
  CHECK(d.eval_metrics["classes"]["Atelectasis"]["auroc"].get<double>() == doctest::Approx(0.93));
  CHECK(d.steps.size() == 3);
  CHECK(d.steps[1]["loss"].is_null());
  REQUIRE(d.warnings.size() == 1);
  CHECK(d.warnings[0].find("1 unreadable") != std::string::npos);
  CHECK(d.class_names == std::vector<std::string>{"Atelectasis", "Cardiomegaly", "Hernia"});
  // 2 epoch charts + 2 step charts + ROC and PR for the 2 classes with positives and negatives.
  CHECK(expected_chart_count(d) == 8);
  const std::string html = render_report_html(d);
  CHECK(count_of(html, "<svg") == 8);
  CHECK(html.find("<meta name=\"cxr-expected-charts\" content=\"8\">") != std::string::npos);
  for (const char* id : {"chart-loss", "chart-auroc", "chart-step-loss", "chart-lr", "chart-roc-Atelectasis",
                         "chart-pr-Atelectasis", "chart-roc-Cardiomegaly", "chart-pr-Cardiomegaly"})
    CHECK_MESSAGE(html.find(std::string("id=\"") + id + "\"") != std::string::npos, id);
  CHECK(html.find("chart-roc-Hernia") == std::string::npos);
  CHECK(html.find("<title>run &lt;x&gt; &amp; &#39;y&#39;</title>") != std::string::npos);
  CHECK(html.find("run <x>") == std::string::npos);
  // CheXNet's column, its mean and the comparability sentence.
  CHECK(html.find("0.8094") != std::string::npos);
  CHECK(html.find("0.9164") != std::string::npos);
  CHECK(html.find("0.841") != std::string::npos);
  CHECK(html.find("random") != std::string::npos);
  CHECK(html.find("not strictly comparable") != std::string::npos);
  // Localisation at the three IoBB thresholds.
  CHECK(html.find("id=\"table-localisation\"") != std::string::npos);
  CHECK(html.find("IoBB &gt; 0.25") != std::string::npos);
  // The overlay, embedded (a PNG's base64 starts with iVBORw0KGgo).
  CHECK(count_of(html, "src=\"data:image/png;base64,iVBORw0KGgo") == 1);
  // Self-contained: no external resource.
  CHECK(html.find("http://") == html.find("http://www.w3.org/2000/svg"));
  CHECK(html.find("https://") == std::string::npos);
  CHECK(html.find("src=\"http") == std::string::npos);
}

TEST_CASE("report: a run without eval has the training charts only; bad inputs are errors") {
  Fixture fx;
  ReportOptions o = fx.options();
  o.eval_dir.clear();
  o.overlay_dir.clear();
  fs::remove(fx.root / "run" / "metrics.jsonl");
  const ReportData d = load_report_data(o);
  CHECK(expected_chart_count(d) == 2);
  CHECK(count_of(render_report_html(d), "<svg") == 2);
  // Without labels.csv: a warning, no curves.
  fs::remove(fx.root / "eval" / "labels.csv");
  o.eval_dir = (fx.root / "eval").string();
  const ReportData e = load_report_data(o);
  CHECK(expected_chart_count(e) == 2);
  CHECK_FALSE(e.warnings.empty());
  // A malformed metrics.json is an error; so is a run without metrics.csv.
  write(fx.root / "eval" / "metrics.json", "{\"images\": ");
  CHECK_THROWS(load_report_data(o));
  o.run_dir = (fx.root / "nothing").string();
  CHECK_THROWS(load_report_data(o));
}

TEST_CASE("train -> eval -> predict --overlay -> report: metrics.jsonl, labels.csv, overlays, report.html") {
  test::TempDir dir("report_e2e");
  const std::string runp = dir / "run", evalp = dir / "eval", predp = dir / "pred";
  auto call = [](int (*command)(int, const char* const*, std::ostream&), const std::vector<std::string>& words) {
    std::vector<const char*> argv;
    for (const auto& w : words) argv.push_back(w.c_str());
    std::ostringstream os;
    return command(static_cast<int>(argv.size()), argv.data(), os);
  };
  REQUIRE(call(cli::run_train, {"--data", test::small_synth_dir(), "--out", runp, "--image-size", "32", "--epochs",
                                "1", "--batch-size", "8", "--workers", "1", "--quiet"}) == 0);
  // metrics.jsonl: one JSON line per optimiser step, steps 1..n.
  std::ifstream jl(runp + "/metrics.jsonl");
  std::string line;
  std::int64_t n = 0;
  while (std::getline(jl, line)) {
    const auto j = nlohmann::json::parse(line);
    ++n;
    CHECK(j["step"] == n);
    CHECK(j["epoch"] == 1);
    CHECK(j["lr"].is_number());
    CHECK(j["loss"].is_number());
    CHECK(j["images_per_s"].is_number());
  }
  CHECK(n > 0);
  const CsvTable csv = read_csv_table(runp + "/metrics.csv");
  CHECK(csv.numbers("step").back() == static_cast<double>(n));

  REQUIRE(call(cli::run_eval, {"--checkpoint", runp + "/best.safetensors", "--data", test::small_synth_dir(), "--out",
                               evalp, "--workers", "1", "--quiet"}) == 0);
  const CsvTable labels = read_csv_table(evalp + "/labels.csv");
  const CsvTable preds = read_csv_table(evalp + "/predictions.csv");
  CHECK(labels.rows.size() == preds.rows.size());
  CHECK(labels.header.size() == 15);

  // Overlays of two boxed images, with the data set's box list.
  const auto boxed = read_csv_table(test::small_synth_dir() + "/BBox_List_2017.csv");
  REQUIRE(boxed.rows.size() >= 1);
  const std::string img = test::small_synth_dir() + "/images/" + boxed.rows[0][0];
  REQUIRE(call(cli::run_predict, {"--checkpoint", runp + "/best.safetensors", "--out", predp, "--overlay", "--data",
                                  test::small_synth_dir(), img}) == 0);
  const std::string png = predp + "/overlays/" + fs::path(img).stem().string() + ".png";
  REQUIRE(fs::exists(png));
  const data::GrayImage g = data::decode_gray8_file(png);
  CHECK(g.width >= 256);

  REQUIRE(call(cli::run_report, {runp, "--eval", evalp, "--overlays", predp + "/overlays"}) == 0);
  std::ifstream f(runp + "/report.html");
  const std::string html((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  ReportOptions ro;
  ro.run_dir = runp;
  ro.eval_dir = evalp;
  ro.overlay_dir = predp + "/overlays";
  const ReportData d = load_report_data(ro);
  CHECK(count_of(html, "<svg") == expected_chart_count(d));
  CHECK(expected_chart_count(d) >= 4);
  CHECK(count_of(html, "data:image/png;base64,") == 1);
  CHECK_THROWS_AS(call(cli::run_report, {}), cli::UsageError);  // RUN is required
}

}  // TEST_SUITE
