// Training progress output.
//
//   terminal  one live line rewritten with '\r' (at most every 0.1 s):
//             epoch 3/30 [######--------------] 120/1000  12% | 245.3 img/s | loss 0.1834 | ETA 1:02
//   plain     (a log file, a pipe, CI) whole lines, one whenever `interval_seconds` have passed
//             or another `percent_step` percent of the epoch is done, whichever comes first:
//             epoch 3/30 step 120/1000 (12%) 245.3 img/s loss 0.1834 elapsed 0:30 ETA 1:02
//             (cut to the terminal's width, so that a narrow window does not wrap it)
//   quiet     nothing but end_epoch() summaries and message()s.
//   automatic terminal when the stream is std::cout/std::cerr/std::clog on a tty (and TERM is
//             not "dumb"), plain otherwise.
// The loss shown is the mean over the epoch so far; img/s and the ETA use the epoch's
// elapsed time. The clock is injectable (seconds, monotonic) for tests.
#pragma once

#include <cstdint>
#include <fstream>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <utility>

namespace cxr {

enum class ProgressMode { automatic, terminal, plain, quiet };

struct ProgressOptions {
  ProgressMode mode = ProgressMode::automatic;
  double interval_seconds = 30.0;  // plain: longest pause between lines (0: no time trigger)
  double percent_step = 10.0;      // plain: a line per this much of the epoch (0: none)
  double refresh_seconds = 0.1;    // terminal: shortest pause between redraws
  int bar_width = 20;              // terminal: characters of the bar
  // terminal: the live line is cut to this many characters minus one, so that it never wraps
  // (a wrapped line cannot be rewritten with '\r'). 0: the terminal's width (TIOCGWINSZ, else
  // $COLUMNS), no limit when unknown.
  int max_width = 0;
};

// "0:05", "12:34", "1:02:03", "2d 03:04:05"; "--:--" for a negative or non-finite value.
std::string format_duration(double seconds);
bool stream_is_terminal(const std::ostream& out);
// Columns of the terminal behind std::cout / std::cerr (TIOCGWINSZ, else $COLUMNS); 0 if unknown.
int terminal_columns(const std::ostream& out);
double steady_seconds();  // std::chrono::steady_clock in seconds

class Progress {
 public:
  using Clock = std::function<double()>;
  explicit Progress(std::ostream& out, ProgressOptions options = {}, Clock clock = steady_seconds);

  ProgressMode mode() const { return mode_; }  // resolved: never automatic
  void begin_epoch(int epoch, int num_epochs, std::int64_t total_steps);
  // After each step: `step` steps of this epoch are done (1-based), `images` were in this step.
  void update(std::int64_t step, std::int64_t images, double loss);
  // Ends the live line (terminal) and prints `summary` on its own line (every mode).
  void end_epoch(const std::string& summary);
  // A line of text that does not garble the live line (every mode).
  void message(const std::string& text);

  // The current status text without control characters (what the next line would show).
  std::string status_line() const;
  // Images per second of the current epoch so far (0 before the first update).
  double images_per_second() const;

 private:
  std::string line(double now) const;
  void draw(double now);
  void clear_live_line();

  std::ostream& out_;
  ProgressOptions options_;
  Clock clock_;
  ProgressMode mode_;
  int epoch_ = 0, num_epochs_ = 0;
  std::int64_t total_steps_ = 0, step_ = 0, images_ = 0, updates_ = 0;
  bool in_epoch_ = false;
  double loss_sum_ = 0;
  double start_ = 0, last_draw_ = 0;
  double next_percent_ = 0;
  std::size_t live_length_ = 0;  // characters of the live line on screen
};

// RUN/metrics.jsonl: one JSON object per training step, flushed line by line, so that a
// running or interrupted run can be plotted (train_cxr report draws it):
//   {"epoch":1,"step":12,"lr":0.001,"loss":0.5312,"images_per_s":31.4,"time_s":5.21}
// step: optimiser steps so far (the step just done, 1-based, over the whole run); loss: that
// step's batch loss; images_per_s: the epoch's running rate (Progress::images_per_second);
// time_s: seconds since the log was opened. Non-finite numbers are written as null. A
// resumed run appends (lines of steps after the resumed checkpoint may then repeat).
class StepLog {
 public:
  StepLog(const std::string& path, bool append, std::function<double()> clock = steady_seconds);
  void write(int epoch, std::int64_t step, double lr, double loss, double images_per_s);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::unique_ptr<std::ofstream> file_;
  std::function<double()> clock_;
  double start_ = 0;
};

}  // namespace cxr
