// Learning-rate schedules as pure functions of the optimizer step: lr = learning_rate(cfg, step).
// Step 0 is the first optimizer step; the same step always gives the same lr, so resuming
// from a checkpoint needs only the step count.
//
// A linear warmup of K = warmup_steps steps comes first, then the main schedule runs on
// t = step - K over T = total_steps - K steps (torch: SequentialLR([LinearLR, main], [K])):
//   warmup     step < K: lr = main(0) * (f + (1 - f) * step / K),  f = warmup_start_factor
//   constant   base_lr
//   step       base_lr * gamma^floor(t / step_size)                       (StepLR)
//   cosine     min_lr + (base_lr - min_lr) * (1 + cos(pi * t / T)) / 2    (CosineAnnealingLR)
//              and min_lr for t >= T
//   onecycle   torch.optim.lr_scheduler.OneCycleLR with anneal_strategy="cos", two phases:
//              initial = base_lr / div_factor, final = initial / final_div_factor,
//              phase 1 over t in [0, pct_start*T - 1]: initial -> base_lr (base_lr is max_lr),
//              phase 2 up to t = T - 1: base_lr -> final, each cos-annealed:
//              lr = end + (start - end) / 2 * (1 + cos(pi * pct)). t >= T: final.
//              (Only the lr is scheduled; OneCycleLR's momentum cycling is not.)
#pragma once

#include <cstdint>
#include <string>

namespace cxr {

enum class ScheduleKind { constant, step, cosine, onecycle };

struct ScheduleConfig {
  ScheduleKind kind = ScheduleKind::constant;
  double base_lr = 1e-3;            // onecycle: the peak (max_lr)
  std::int64_t total_steps = 0;     // including warmup; required by cosine and onecycle
  std::int64_t warmup_steps = 0;    // K
  double warmup_start_factor = 0.1; // f: the warmup starts at f * main(0)
  std::int64_t step_size = 1;       // step
  double gamma = 0.1;               // step
  double min_lr = 0.0;              // cosine
  double pct_start = 0.3;           // onecycle
  double div_factor = 25.0;         // onecycle
  double final_div_factor = 1e4;    // onecycle
};

ScheduleKind parse_schedule_kind(const std::string& name);  // "constant", "step", "cosine", "onecycle"
const char* schedule_kind_name(ScheduleKind kind);
// Throws cxr::Error naming the field on an inconsistent configuration.
void validate_schedule(const ScheduleConfig& cfg);
// Validates, then evaluates; step must be >= 0 (steps past total_steps hold the last value
// for cosine and onecycle).
double learning_rate(const ScheduleConfig& cfg, std::int64_t step);
// "cosine lr 0.001 -> 1e-05 over 1000 steps, warmup 50 from 0.1x"
std::string describe_schedule(const ScheduleConfig& cfg);

}  // namespace cxr
