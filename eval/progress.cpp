// Training progress output: a live '\r' line on terminals, periodic plain lines otherwise.
// See progress.h for the formats.
#include "eval/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <stdexcept>

namespace cxr {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const long long s = std::llround(seconds);
  const long long d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60, sec = s % 60;
  char buf[64];
  if (d > 0) std::snprintf(buf, sizeof buf, "%lldd %02lld:%02lld:%02lld", d, h, m, sec);
  else if (h > 0) std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", h, m, sec);
  else std::snprintf(buf, sizeof buf, "%lld:%02lld", m, sec);
  return buf;
}

bool stream_is_terminal(const std::ostream& out) {
  int fd = -1;
  if (&out == &std::cout) fd = STDOUT_FILENO;
  else if (&out == &std::cerr || &out == &std::clog) fd = STDERR_FILENO;
  if (fd < 0 || !::isatty(fd)) return false;
  const char* term = std::getenv("TERM");
  return !(term && std::strcmp(term, "dumb") == 0);
}

int terminal_columns(const std::ostream& out) {
  int fd = -1;
  if (&out == &std::cout) fd = STDOUT_FILENO;
  else if (&out == &std::cerr || &out == &std::clog) fd = STDERR_FILENO;
  winsize ws{};
  if (fd >= 0 && ::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  if (const char* c = std::getenv("COLUMNS")) {
    const int n = std::atoi(c);
    if (n > 0) return n;
  }
  return 0;
}

double steady_seconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

Progress::Progress(std::ostream& out, ProgressOptions options, Clock clock)
    : out_(out), options_(options), clock_(std::move(clock)), mode_(options.mode) {
  if (mode_ == ProgressMode::automatic) mode_ = stream_is_terminal(out) ? ProgressMode::terminal : ProgressMode::plain;
  if (mode_ == ProgressMode::terminal && options_.max_width == 0) options_.max_width = terminal_columns(out);
}

void Progress::begin_epoch(int epoch, int num_epochs, std::int64_t total_steps) {
  clear_live_line();
  epoch_ = epoch;
  num_epochs_ = num_epochs;
  total_steps_ = total_steps;
  step_ = images_ = updates_ = 0;
  loss_sum_ = 0;
  start_ = last_draw_ = clock_();
  next_percent_ = options_.percent_step;
  in_epoch_ = true;
}

void Progress::update(std::int64_t step, std::int64_t images, double loss) {
  step_ = step;
  images_ += images;
  loss_sum_ += loss;
  ++updates_;
  if (mode_ == ProgressMode::quiet) return;
  const double now = clock_();
  const bool last = total_steps_ > 0 && step_ >= total_steps_;
  if (mode_ == ProgressMode::terminal) {
    if (last || now - last_draw_ >= options_.refresh_seconds || live_length_ == 0) draw(now);
    return;
  }
  bool due = options_.interval_seconds > 0 && now - last_draw_ >= options_.interval_seconds;
  if (options_.percent_step > 0 && total_steps_ > 0) {
    const double pct = 100.0 * static_cast<double>(step_) / static_cast<double>(total_steps_);
    if (pct + 1e-9 >= next_percent_) {
      due = true;
      next_percent_ = (std::floor(pct / options_.percent_step + 1e-9) + 1) * options_.percent_step;
    }
  }
  if (due) draw(now);
}

void Progress::end_epoch(const std::string& summary) {
  clear_live_line();
  in_epoch_ = false;
  if (!summary.empty()) out_ << summary << '\n' << std::flush;
}

void Progress::message(const std::string& text) {
  const bool redraw = mode_ == ProgressMode::terminal && live_length_ > 0;
  clear_live_line();
  out_ << text << '\n' << std::flush;
  if (redraw && in_epoch_) draw(clock_());
}

std::string Progress::status_line() const { return line(clock_()); }

double Progress::images_per_second() const {
  const double elapsed = clock_() - start_;
  return elapsed > 0 && updates_ > 0 ? static_cast<double>(images_) / elapsed : 0.0;
}

std::string Progress::line(double now) const {
  const double elapsed = now - start_;
  const bool known_total = total_steps_ > 0;
  const double frac = known_total ? static_cast<double>(step_) / static_cast<double>(total_steps_) : 0.0;
  const int pct = static_cast<int>(std::floor(100.0 * frac + 1e-9));
  const double rate = elapsed > 0 ? static_cast<double>(images_) / elapsed : 0.0;
  const double eta = known_total && step_ > 0 ? elapsed / static_cast<double>(step_) *
                                                    static_cast<double>(total_steps_ - step_)
                                              : -1.0;
  const double loss = updates_ > 0 ? loss_sum_ / static_cast<double>(updates_) : 0.0;
  char rate_text[32], loss_text[32];
  if (elapsed > 0) std::snprintf(rate_text, sizeof rate_text, "%.1f img/s", rate);
  else std::snprintf(rate_text, sizeof rate_text, "- img/s");
  if (updates_ > 0) std::snprintf(loss_text, sizeof loss_text, "loss %.4f", loss);
  else std::snprintf(loss_text, sizeof loss_text, "loss -");

  std::string s = "epoch " + std::to_string(epoch_) + "/" + std::to_string(num_epochs_);
  if (mode_ == ProgressMode::terminal) {
    if (known_total) {
      const int width = std::max(options_.bar_width, 1);
      const int filled = std::min(width, static_cast<int>(frac * width + 1e-9));
      s += " [" + std::string(static_cast<std::size_t>(filled), '#') +
           std::string(static_cast<std::size_t>(width - filled), '-') + "] ";
      s += std::to_string(step_) + "/" + std::to_string(total_steps_);
      char p[16];
      std::snprintf(p, sizeof p, " %3d%%", pct);
      s += p;
    } else {
      s += " step " + std::to_string(step_);
    }
    s += std::string(" | ") + rate_text + " | " + loss_text;
    if (known_total) s += " | ETA " + format_duration(eta);
  } else {
    s += " step " + std::to_string(step_);
    if (known_total) s += "/" + std::to_string(total_steps_) + " (" + std::to_string(pct) + "%)";
    s += ' ';
    s += rate_text;
    s += ' ';
    s += loss_text;
    s += " elapsed ";
    s += format_duration(elapsed);
    if (known_total) s += " ETA " + format_duration(eta);
  }
  return s;
}

void Progress::draw(double now) {
  std::string text = line(now);
  if (mode_ == ProgressMode::terminal && options_.max_width > 1 && text.size() >= static_cast<std::size_t>(options_.max_width))
    text.resize(static_cast<std::size_t>(options_.max_width - 1));
  if (mode_ == ProgressMode::terminal) {
    out_ << '\r' << text;
    if (text.size() < live_length_) out_ << std::string(live_length_ - text.size(), ' ');
    out_ << std::flush;
    live_length_ = text.size();
  } else {
    out_ << text << '\n' << std::flush;
  }
  last_draw_ = now;
}

void Progress::clear_live_line() {
  if (mode_ != ProgressMode::terminal || live_length_ == 0) return;
  out_ << '\r' << std::string(live_length_, ' ') << '\r' << std::flush;
  live_length_ = 0;
}

StepLog::StepLog(const std::string& path, bool append, std::function<double()> clock)
    : path_(path), clock_(std::move(clock)), start_(clock_()) {
  if (path.empty()) return;  // no file (a distributed run's ranks other than 0)
  file_ = std::make_unique<std::ofstream>(path, append ? std::ios::app : std::ios::trunc);
  if (!*file_) throw std::runtime_error("cannot open " + path + " for writing");
}

namespace {
// A JSON number, or null when not finite (JSON has no NaN / Infinity).
std::string json_number(double v, const char* format) {
  if (!std::isfinite(v)) return "null";
  char buf[48];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}
}  // namespace

void StepLog::write(int epoch, std::int64_t step, double lr, double loss, double images_per_s) {
  if (!file_) return;
  *file_ << "{\"epoch\":" << epoch << ",\"step\":" << step << ",\"lr\":" << json_number(lr, "%.9g")
         << ",\"loss\":" << json_number(loss, "%.7g") << ",\"images_per_s\":" << json_number(images_per_s, "%.2f")
         << ",\"time_s\":" << json_number(clock_() - start_, "%.3f") << "}\n"
         << std::flush;
}

}  // namespace cxr
