// Learning-rate schedules against torch's schedulers (tests/gen/metrics.py writes the lrs
// of LinearLR+StepLR/CosineAnnealingLR via SequentialLR, and OneCycleLR, step by step).
#include <doctest/doctest.h>

#include <cmath>

#include "tests/golden.h"
#include "train/schedule.h"

using namespace cxr;

TEST_SUITE("train") {

TEST_CASE("schedules: constant, step, cosine and onecycle with warmup match torch to 1e-9 relative") {
  const nlohmann::json g = cxr::test::load_golden("metrics");
  int cases = 0;
  for (const auto& c : g.at("schedules")) {
    const auto& j = c.at("config");
    ScheduleConfig cfg;
    cfg.kind = parse_schedule_kind(j.at("kind"));
    cfg.base_lr = j.at("base_lr");
    cfg.total_steps = j.at("total_steps");
    cfg.warmup_steps = j.at("warmup_steps");
    cfg.warmup_start_factor = j.value("warmup_start_factor", 0.1);
    cfg.step_size = j.value("step_size", std::int64_t{1});
    cfg.gamma = j.value("gamma", 0.1);
    cfg.min_lr = j.value("min_lr", 0.0);
    cfg.pct_start = j.value("pct_start", 0.3);
    cfg.div_factor = j.value("div_factor", 25.0);
    cfg.final_div_factor = j.value("final_div_factor", 1e4);
    const auto lrs = c.at("lrs").get<std::vector<double>>();
    REQUIRE(static_cast<std::int64_t>(lrs.size()) == cfg.total_steps);
    for (std::size_t s = 0; s < lrs.size(); ++s) {
      CAPTURE(describe_schedule(cfg));
      CAPTURE(s);
      const double lr = learning_rate(cfg, static_cast<std::int64_t>(s));
      CHECK(std::fabs(lr - lrs[s]) <= 1e-9 * std::fabs(lrs[s]) + 1e-15);
    }
    ++cases;
  }
  CHECK(cases == 7);
}

TEST_CASE("schedules: warmup ramps linearly into the main schedule, past the end holds, bad configs name fields") {
  ScheduleConfig c;
  c.kind = ScheduleKind::onecycle;
  c.base_lr = 0.01;
  c.total_steps = 110;
  c.warmup_steps = 10;
  c.warmup_start_factor = 0.5;
  const double start = 0.01 / 25;
  CHECK(learning_rate(c, 0) == doctest::Approx(start * 0.5).epsilon(1e-12));
  CHECK(learning_rate(c, 5) == doctest::Approx(start * 0.75).epsilon(1e-12));
  CHECK(learning_rate(c, 10) == doctest::Approx(start).epsilon(1e-12));
  CHECK(learning_rate(c, 10 + 29) == doctest::Approx(0.01).epsilon(1e-12));  // peak at pct_start*T - 1
  CHECK(learning_rate(c, 109) == doctest::Approx(start / 1e4).epsilon(1e-9));
  CHECK(learning_rate(c, 500) == learning_rate(c, 109));
  c.kind = ScheduleKind::cosine;
  c.min_lr = 1e-5;
  CHECK(learning_rate(c, 110) == 1e-5);
  CHECK(learning_rate(c, 10 + 50) == doctest::Approx((0.01 + 1e-5) / 2).epsilon(1e-12));
  CHECK(describe_schedule(c).find("warmup 10 steps") != std::string::npos);

  CHECK_THROWS_WITH_AS(parse_schedule_kind("linear"), doctest::Contains("unknown lr schedule 'linear'"), cxr::Error);
  ScheduleConfig bad = c;
  bad.total_steps = 10;
  CHECK_THROWS_WITH_AS(learning_rate(bad, 0), doctest::Contains("total_steps (10) must exceed warmup_steps (10)"),
                       cxr::Error);
  bad = c;
  bad.min_lr = 1.0;
  CHECK_THROWS_WITH_AS(validate_schedule(bad), doctest::Contains("min_lr"), cxr::Error);
  bad = ScheduleConfig{};
  bad.kind = ScheduleKind::step;
  bad.step_size = 0;
  CHECK_THROWS_WITH_AS(validate_schedule(bad), doctest::Contains("step_size"), cxr::Error);
  CHECK_THROWS_WITH_AS(learning_rate(ScheduleConfig{}, -1), doctest::Contains("step must be >= 0"), cxr::Error);
  bad = ScheduleConfig{};
  bad.kind = ScheduleKind::onecycle;
  bad.total_steps = 3;
  CHECK_THROWS_WITH_AS(validate_schedule(bad), doctest::Contains("at least one step in each phase"), cxr::Error);
}

}  // TEST_SUITE
