// Learning-rate schedules: closed forms of torch's LinearLR, StepLR, CosineAnnealingLR and
// OneCycleLR (see schedule.h for the formulas).
#include "train/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <sstream>

#include "tensor/error.h"

namespace cxr {

ScheduleKind parse_schedule_kind(const std::string& name) {
  if (name == "constant") return ScheduleKind::constant;
  if (name == "step") return ScheduleKind::step;
  if (name == "cosine") return ScheduleKind::cosine;
  if (name == "onecycle") return ScheduleKind::onecycle;
  CXR_FAIL("unknown lr schedule '", name, "': expected constant, step, cosine or onecycle");
}

const char* schedule_kind_name(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::constant: return "constant";
    case ScheduleKind::step: return "step";
    case ScheduleKind::cosine: return "cosine";
    case ScheduleKind::onecycle: return "onecycle";
  }
  return "?";
}

void validate_schedule(const ScheduleConfig& c) {
  const char* k = schedule_kind_name(c.kind);
  CXR_CHECK(c.base_lr > 0 && std::isfinite(c.base_lr), k, " schedule: base_lr must be positive, found ", c.base_lr);
  CXR_CHECK(c.warmup_steps >= 0, k, " schedule: warmup_steps must be >= 0, found ", c.warmup_steps);
  CXR_CHECK(c.warmup_steps == 0 || (c.warmup_start_factor > 0 && c.warmup_start_factor <= 1), k,
            " schedule: warmup_start_factor must be in (0, 1], found ", c.warmup_start_factor);
  if (c.kind == ScheduleKind::step) {
    CXR_CHECK(c.step_size > 0, "step schedule: step_size must be positive, found ", c.step_size);
    CXR_CHECK(c.gamma > 0, "step schedule: gamma must be positive, found ", c.gamma);
  }
  if (c.kind == ScheduleKind::cosine || c.kind == ScheduleKind::onecycle) {
    CXR_CHECK(c.total_steps > c.warmup_steps, k, " schedule: total_steps (", c.total_steps,
              ") must exceed warmup_steps (", c.warmup_steps, ")");
  }
  if (c.kind == ScheduleKind::cosine)
    CXR_CHECK(c.min_lr >= 0 && c.min_lr <= c.base_lr, "cosine schedule: min_lr must be in [0, base_lr], found ",
              c.min_lr);
  if (c.kind == ScheduleKind::onecycle) {
    CXR_CHECK(c.pct_start > 0 && c.pct_start < 1, "onecycle schedule: pct_start must be in (0, 1), found ", c.pct_start);
    CXR_CHECK(c.div_factor > 0 && c.final_div_factor > 0, "onecycle schedule: div_factor and final_div_factor must be ",
              "positive, found ", c.div_factor, " and ", c.final_div_factor);
    // torch: phase 1 ends at pct_start*T - 1 and phase 2 at T - 1; they must not coincide.
    const double t = static_cast<double>(c.total_steps - c.warmup_steps);
    CXR_CHECK(c.pct_start * t - 1 > 0 && c.pct_start * t - 1 < t - 1, "onecycle schedule: pct_start * steps (",
              c.pct_start, " * ", t, ") must leave at least one step in each phase");
  }
}

namespace {

double cos_anneal(double start, double end, double pct) {
  return end + (start - end) / 2.0 * (std::cos(std::numbers::pi * pct) + 1.0);
}

// The main schedule at t steps after the warmup, T steps long.
double main_lr(const ScheduleConfig& c, std::int64_t t, std::int64_t total) {
  switch (c.kind) {
    case ScheduleKind::constant: return c.base_lr;
    case ScheduleKind::step: return c.base_lr * std::pow(c.gamma, static_cast<double>(t / c.step_size));
    case ScheduleKind::cosine:
      if (t >= total) return c.min_lr;
      return c.min_lr + (c.base_lr - c.min_lr) * (1.0 + std::cos(std::numbers::pi * static_cast<double>(t) /
                                                                 static_cast<double>(total))) / 2.0;
    case ScheduleKind::onecycle: {
      const double initial = c.base_lr / c.div_factor;
      const double final_lr = initial / c.final_div_factor;
      const double s = static_cast<double>(std::min(t, total - 1));
      const double end1 = c.pct_start * static_cast<double>(total) - 1.0;  // as torch computes it
      const double end2 = static_cast<double>(total) - 1.0;
      if (s <= end1) return cos_anneal(initial, c.base_lr, s / end1);
      return cos_anneal(c.base_lr, final_lr, (s - end1) / (end2 - end1));
    }
  }
  return c.base_lr;
}

}  // namespace

double learning_rate(const ScheduleConfig& c, std::int64_t step) {
  validate_schedule(c);
  CXR_CHECK(step >= 0, "learning_rate: step must be >= 0, found ", step);
  const std::int64_t k = c.warmup_steps;
  const std::int64_t total = std::max<std::int64_t>(c.total_steps - k, 1);
  if (step < k) {
    const double f = c.warmup_start_factor;
    return main_lr(c, 0, total) * (f + (1.0 - f) * static_cast<double>(step) / static_cast<double>(k));
  }
  return main_lr(c, step - k, total);
}

std::string describe_schedule(const ScheduleConfig& c) {
  std::ostringstream os;
  os << schedule_kind_name(c.kind) << " lr " << c.base_lr;
  switch (c.kind) {
    case ScheduleKind::constant: break;
    case ScheduleKind::step: os << " x" << c.gamma << " every " << c.step_size << " steps"; break;
    case ScheduleKind::cosine: os << " -> " << c.min_lr << " over " << c.total_steps << " steps"; break;
    case ScheduleKind::onecycle:
      os << " peak, from " << c.base_lr / c.div_factor << " to " << c.base_lr / c.div_factor / c.final_div_factor
         << " over " << c.total_steps << " steps (" << c.pct_start * 100 << "% rising)";
      break;
  }
  if (c.warmup_steps > 0) os << ", warmup " << c.warmup_steps << " steps from " << c.warmup_start_factor << "x";
  return os.str();
}

}  // namespace cxr
