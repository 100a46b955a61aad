// Minimal CSV reading for the NIH metadata files: one record per line, comma-separated,
// double-quoted fields may contain commas and "" for a quote. A trailing '\r' (CRLF files)
// is dropped. Empty trailing fields are kept, so "a,b," gives {"a", "b", ""}.
#pragma once

#include <istream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cxr::data {

std::vector<std::string> split_csv_line(std::string_view line);

// Reads lines with their 1-based line numbers; skips blank lines.
class LineReader {
 public:
  explicit LineReader(std::istream& in) : in_(in) {}
  // The next non-blank line without its line ending, or nullopt at the end.
  std::optional<std::string> next();
  int line_number() const { return line_; }  // of the line last returned

 private:
  std::istream& in_;
  int line_ = 0;
};

// Whitespace trimmed from both ends.
std::string_view trim(std::string_view s);

// Strict number parsing: the whole (trimmed) field must be the number.
std::optional<long long> parse_int(std::string_view s);
std::optional<double> parse_double(std::string_view s);

}  // namespace cxr::data
