// Report: where the data code sends the problems it survives (a malformed CSV row, an
// unknown finding label, an unreadable image). Each message is kept (up to a limit, so a
// folder with 100,000 missing files stays bounded) and echoed to stderr (up to another
// limit, then one "... more" line). Thread-safe: loader workers report into it.
//
//   Report report;                     // echo to stderr
//   Report quiet(Report::Echo::Off);   // tests: inspect report.messages() instead
#pragma once

#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

namespace cxr::data {

class Report {
 public:
  enum class Echo { Stderr, Off };
  explicit Report(Echo echo = Echo::Stderr, std::size_t echo_limit = 20, std::size_t keep_limit = 10000);

  void warn(const std::string& message);

  std::size_t count() const;                // every warning so far
  std::vector<std::string> messages() const;  // the first keep_limit warnings
  bool contains(const std::string& fragment) const;  // any kept message contains it
  void flush_suppressed();  // prints "N more warnings not shown" if some were not echoed
  // Starts every echoed line with `prefix` ("rank 1: " in a distributed run, whose ranks all
  // write to the same terminal).
  void set_echo_prefix(std::string prefix);

 private:
  mutable std::mutex mutex_;
  Echo echo_;
  std::size_t echo_limit_, keep_limit_;
  std::string prefix_;
  std::size_t count_ = 0;
  std::vector<std::string> messages_;
};

// The report used when the caller passes none.
Report& default_report();

}  // namespace cxr::data
