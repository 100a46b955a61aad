// Progress output with an injected clock and a string stream: duration formatting, the plain
// (non-terminal) lines and when they appear, the live terminal line, quiet mode.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>
#include <sstream>

#include "eval/progress.h"

using namespace cxr;

namespace {

struct FakeClock {
  double now = 1000.0;
  Progress::Clock fn() {
    return [this] { return now; };
  }
};

int count_lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

}  // namespace

TEST_SUITE("train") {

TEST_CASE("progress: durations format as M:SS, H:MM:SS and Nd HH:MM:SS") {
  CHECK(format_duration(0) == "0:00");
  CHECK(format_duration(5.4) == "0:05");
  CHECK(format_duration(59.6) == "1:00");
  CHECK(format_duration(754) == "12:34");
  CHECK(format_duration(3723) == "1:02:03");
  CHECK(format_duration(2 * 86400 + 3 * 3600 + 4 * 60 + 5) == "2d 03:04:05");
  CHECK(format_duration(-1) == "--:--");
  CHECK(format_duration(NAN) == "--:--");
  CHECK(format_duration(INFINITY) == "--:--");
  std::ostringstream os;
  CHECK_FALSE(stream_is_terminal(os));
}

TEST_CASE("progress: plain mode prints a line every 10% or every interval, with rate, mean loss and ETA") {
  std::ostringstream os;
  FakeClock clock;
  ProgressOptions o;
  o.mode = ProgressMode::plain;
  o.interval_seconds = 30;
  o.percent_step = 10;
  Progress p(os, o, clock.fn());
  CHECK(p.mode() == ProgressMode::plain);
  p.begin_epoch(3, 30, 100);
  for (int s = 1; s <= 9; ++s) {
    clock.now += 0.5;  // 0.5 s per step of 32 images: 64 img/s
    p.update(s, 32, s <= 4 ? 1.0 : 0.5);
  }
  CHECK(os.str().empty());  // 9% done, 4.5 s: nothing yet
  clock.now += 0.5;
  p.update(10, 32, 0.25);
  // Mean loss (4*1 + 5*0.5 + 0.25)/10 = 0.675; 5 s for 10 steps -> 45 s left.
  CHECK(os.str() == "epoch 3/30 step 10/100 (10%) 64.0 img/s loss 0.6750 elapsed 0:05 ETA 0:45\n");
  os.str("");
  // Slow steps: the 30 s interval triggers before the next 10%.
  clock.now += 31;
  p.update(11, 32, 0.675);
  CHECK(count_lines(os.str()) == 1);
  CHECK(os.str().find("step 11/100 (11%)") != std::string::npos);
  os.str("");
  for (int s = 12; s <= 100; ++s) {
    clock.now += 0.5;
    p.update(s, 32, 0.5);
  }
  CHECK(count_lines(os.str()) == 9);  // 20%, 30%, ..., 100%
  CHECK(os.str().find("step 100/100 (100%)") != std::string::npos);
  CHECK(os.str().find("ETA 0:00\n") != std::string::npos);
  os.str("");
  p.end_epoch("epoch 3: val AUROC 0.8123");
  CHECK(os.str() == "epoch 3: val AUROC 0.8123\n");
}

TEST_CASE("progress: terminal mode rewrites one line with \\r and clears it for messages and the summary") {
  std::ostringstream os;
  FakeClock clock;
  ProgressOptions o;
  o.mode = ProgressMode::terminal;
  o.bar_width = 10;
  Progress p(os, o, clock.fn());
  p.begin_epoch(1, 2, 4);
  clock.now += 2;
  p.update(1, 16, 0.5);
  CHECK(os.str() == "\repoch 1/2 [##--------] 1/4  25% | 8.0 img/s | loss 0.5000 | ETA 0:06");
  clock.now += 0.01;
  p.update(2, 16, 0.5);  // within the refresh interval: not redrawn
  CHECK(count_lines(os.str()) == 0);
  CHECK(os.str().find("2/4") == std::string::npos);
  clock.now += 1;
  os.str("");
  p.message("checkpoint saved");
  const std::string live = "\repoch 1/2 [##--------] 1/4  25% | 8.0 img/s | loss 0.5000 | ETA 0:06";
  // Cleared with spaces, the message on its own line, then the live line again (now at 3.01 s).
  CHECK(os.str().rfind("\r" + std::string(live.size() - 1, ' ') + "\rcheckpoint saved\n\repoch 1/2", 0) == 0);
  clock.now += 1;
  p.update(4, 16, 0.5);  // the last step is always drawn
  CHECK(os.str().find("4/4 100%") != std::string::npos);
  os.str("");
  p.end_epoch("done");
  CHECK(os.str().back() == '\n');
  CHECK(os.str().find("\rdone\n") != std::string::npos);
}

TEST_CASE("progress: quiet mode prints only summaries and messages; unknown totals have no ETA") {
  std::ostringstream os;
  FakeClock clock;
  ProgressOptions o;
  o.mode = ProgressMode::quiet;
  Progress q(os, o, clock.fn());
  q.begin_epoch(1, 1, 10);
  for (int s = 1; s <= 10; ++s) {
    clock.now += 100;
    q.update(s, 8, 1.0);
  }
  q.message("note");
  q.end_epoch("summary");
  CHECK(os.str() == "note\nsummary\n");

  std::ostringstream os2;
  o.mode = ProgressMode::plain;
  o.interval_seconds = 1;
  Progress p(os2, o, clock.fn());
  p.begin_epoch(2, 5, 0);
  clock.now += 2;
  p.update(7, 8, 0.125);
  CHECK(os2.str() == "epoch 2/5 step 7 4.0 img/s loss 0.1250 elapsed 0:02\n");
  CHECK(p.status_line() == "epoch 2/5 step 7 4.0 img/s loss 0.1250 elapsed 0:02");
}

TEST_CASE("progress: automatic mode on a string stream is plain") {
  std::ostringstream os;
  Progress p(os);
  CHECK(p.mode() == ProgressMode::plain);
}

TEST_CASE("progress: the live line is cut to the terminal width so that it never wraps") {
  std::ostringstream os;
  FakeClock clock;
  ProgressOptions o;
  o.mode = ProgressMode::terminal;
  o.max_width = 30;
  Progress p(os, o, clock.fn());
  p.begin_epoch(1, 2, 4);
  clock.now += 2;
  p.update(1, 16, 0.5);
  CHECK(os.str() == "\repoch 1/2 [#####-------------");  // 29 characters after the '\r'
  os.str("");
  p.end_epoch("a summary longer than thirty characters is not cut");
  CHECK(os.str() == "\r" + std::string(29, ' ') + "\ra summary longer than thirty characters is not cut\n");
}

TEST_CASE("progress: images_per_second is the epoch's running rate") {
  std::ostringstream os;
  FakeClock clock;
  ProgressOptions o;
  o.mode = ProgressMode::quiet;
  Progress p(os, o, clock.fn());
  p.begin_epoch(1, 1, 10);
  CHECK(p.images_per_second() == 0);
  clock.now += 2;
  p.update(1, 16, 1.0);
  clock.now += 2;
  p.update(2, 16, 1.0);
  CHECK(p.images_per_second() == doctest::Approx(8.0));
  p.begin_epoch(2, 2, 10);  // a new epoch starts over
  CHECK(p.images_per_second() == 0);
}

TEST_CASE("progress: metrics.jsonl has one flushed JSON object per step; non-finite values are null") {
  const auto dir = std::filesystem::temp_directory_path() / "cxr_test_steplog";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "metrics.jsonl").string();
  double now = 50;
  auto read_lines = [&] {
    std::ifstream f(path);
    std::vector<nlohmann::json> v;
    std::string line;
    while (std::getline(f, line)) v.push_back(nlohmann::json::parse(line));  // throws if not JSON
    return v;
  };
  {
    StepLog log(path, /*append=*/false, [&] { return now; });
    now += 1.5;
    log.write(1, 1, 1e-4, 0.75, 31.25);
    // Flushed: readable while the log is still open (a running job).
    auto lines = read_lines();
    REQUIRE(lines.size() == 1);
    CHECK(lines[0]["epoch"] == 1);
    CHECK(lines[0]["step"] == 1);
    CHECK(lines[0]["lr"].get<double>() == doctest::Approx(1e-4));
    CHECK(lines[0]["loss"].get<double>() == doctest::Approx(0.75));
    CHECK(lines[0]["images_per_s"].get<double>() == doctest::Approx(31.25));
    CHECK(lines[0]["time_s"].get<double>() == doctest::Approx(1.5));
    log.write(1, 2, 2e-4, NAN, INFINITY);
  }
  auto lines = read_lines();
  REQUIRE(lines.size() == 2);
  CHECK(lines[1]["loss"].is_null());
  CHECK(lines[1]["images_per_s"].is_null());
  {
    StepLog log(path, /*append=*/true);  // --resume appends
    log.write(2, 3, 3e-4, 0.5, 30);
  }
  CHECK(read_lines().size() == 3);
  {
    StepLog log(path, /*append=*/false);  // a new run starts over
  }
  CHECK(read_lines().empty());
  std::filesystem::remove_all(dir);
}

}  // TEST_SUITE
