// Command-line options of one train_cxr subcommand: declared once, parsed, checked, and
// printed as the subcommand's --help.
//
//   cli::Args args("train_cxr synth", "write a synthetic NIH-format data set");
//   args.required("out", "DIR", "output folder")
//       .option("images", "N", "number of images", "200")
//       .flag("json", "print one JSON object");
//   args.parse(argc, argv);                  // throws cli::UsageError
//   if (args.help()) { std::cout << args.usage(); return 0; }
//   int n = args.get_int("images");
//
// Accepted forms: --name VALUE, --name=VALUE, --flag, -h / --help. Anything else (unknown
// options, positional words, a missing value, a bad number) is a UsageError whose message
// says what was wrong; the caller prints it with usage() and exits with code 2.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "tensor/error.h"

namespace cxr::cli {

using cxr::UsageError;  // tensor/error.h

inline constexpr int kExitUsage = 2;

class Args {
 public:
  Args(std::string command, std::string summary);

  Args& flag(const std::string& name, const std::string& help);
  Args& option(const std::string& name, const std::string& value_name, const std::string& help,
               const std::string& default_value = "");
  Args& required(const std::string& name, const std::string& value_name, const std::string& help);

  // argv[0..argc) are the words after the subcommand's name.
  void parse(int argc, const char* const* argv);

  bool help() const { return help_; }
  const std::string& command() const { return command_; }
  std::string usage() const;

  bool flag_set(const std::string& name) const;
  // Whether `name` (without dashes) is declared as a flag, an option that takes no value.
  bool is_flag(const std::string& name) const;
  bool has(const std::string& name) const;  // given on the command line or defaulted
  bool declares(const std::string& name) const;  // declared (flag or option) for this command
  std::string get(const std::string& name) const;
  long long get_int(const std::string& name) const;
  std::uint64_t get_u64(const std::string& name) const;
  double get_double(const std::string& name) const;
  // Every value of an option given several times (--data A --data B), in order; get() is the
  // last one. Empty when not given (the default is not included).
  std::vector<std::string> get_all(const std::string& name) const;

 private:
  struct Spec {
    std::string name, value_name, help, default_value;
    bool is_flag = false, is_required = false;
  };
  const Spec& spec(const std::string& name) const;
  std::string command_, summary_;
  std::vector<Spec> specs_;
  std::map<std::string, std::string> values_;
  std::map<std::string, std::vector<std::string>> all_values_;
  bool help_ = false;
};

// Parses argv into `args`. Returns nullopt when the command should run; otherwise the exit
// code to return at once: 0 after printing --help to `out`, kExitUsage after printing the
// error and the usage to `err`.
std::optional<int> parse_command_line(Args& args, int argc, const char* const* argv, std::ostream& out,
                                      std::ostream& err);

}  // namespace cxr::cli
