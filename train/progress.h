// Training progress output.
//
//   terminal  one live line rewritten with '\r' (at most every 0.1 s):
//             epoch 3/30 [######--------------] 120/1000  12% | 245.3 img/s | loss 0.1834 | ETA 1:02
//   plain     (a log file, a pipe, CI) whole lines, one whenever `interval_seconds` have passed
//             or another `percent_step` percent of the epoch is done, whichever comes first:
//             epoch 3/30 step 120/1000 (12%) 245.3 img/s loss 0.1834 elapsed 0:30 ETA 1:02
//   quiet     nothing but end_epoch() summaries and message()s.
//   automatic terminal when the stream is std::cout/std::cerr/std::clog on a tty (and TERM is
//             not "dumb"), plain otherwise.
// The loss shown is the mean over the epoch so far; img/s and the ETA use the epoch's
// elapsed time. The clock is injectable (seconds, monotonic) for tests.
#pragma once

#include <cstdint>
#include <functional>
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
};

// "0:05", "12:34", "1:02:03", "2d 03:04:05"; "--:--" for a negative or non-finite value.
std::string format_duration(double seconds);
bool stream_is_terminal(const std::ostream& out);
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

}  // namespace cxr
