// Report: bounded, thread-safe collection of data warnings.
#include "data/report.h"

#include <utility>

#include <cstdio>

namespace cxr::data {

Report::Report(Echo echo, std::size_t echo_limit, std::size_t keep_limit)
    : echo_(echo), echo_limit_(echo_limit), keep_limit_(keep_limit) {}

void Report::warn(const std::string& message) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (echo_ == Echo::Stderr && count_ < echo_limit_)
    std::fprintf(stderr, "%swarning: %s\n", prefix_.c_str(), message.c_str());
  if (messages_.size() < keep_limit_) messages_.push_back(message);
  ++count_;
}

void Report::set_echo_prefix(std::string prefix) {
  std::lock_guard<std::mutex> lock(mutex_);
  prefix_ = std::move(prefix);
}

std::size_t Report::count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return count_;
}

std::vector<std::string> Report::messages() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return messages_;
}

bool Report::contains(const std::string& fragment) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& m : messages_)
    if (m.find(fragment) != std::string::npos) return true;
  return false;
}

void Report::flush_suppressed() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (echo_ == Echo::Stderr && count_ > echo_limit_) {
    std::fprintf(stderr, "%swarning: ... %zu more warnings not shown\n", prefix_.c_str(), count_ - echo_limit_);
    echo_limit_ = count_;  // those are now accounted for
  }
}

Report& default_report() {
  static Report report;
  return report;
}

}  // namespace cxr::data
