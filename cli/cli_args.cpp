// cli::Args: declaration, parsing and usage text of subcommand options.
#include "cli/cli_args.h"

#include <charconv>

namespace cxr::cli {

Args::Args(std::string command, std::string summary) : command_(std::move(command)), summary_(std::move(summary)) {}

Args& Args::flag(const std::string& name, const std::string& help) {
  specs_.push_back(Spec{name, "", help, "", true, false});
  return *this;
}

Args& Args::option(const std::string& name, const std::string& value_name, const std::string& help,
                   const std::string& default_value) {
  specs_.push_back(Spec{name, value_name, help, default_value, false, false});
  return *this;
}

Args& Args::required(const std::string& name, const std::string& value_name, const std::string& help) {
  specs_.push_back(Spec{name, value_name, help, "", false, true});
  return *this;
}

const Args::Spec& Args::spec(const std::string& name) const {
  for (const auto& s : specs_)
    if (s.name == name) return s;
  throw Error("cli: option --" + name + " was never declared for " + command_);
}

void Args::parse(int argc, const char* const* argv) {
  for (int i = 0; i < argc; ++i) {
    std::string word = argv[i];
    if (word == "-h" || word == "--help") {
      help_ = true;
      return;
    }
    if (word.rfind("--", 0) != 0 || word.size() == 2)
      throw UsageError("unexpected argument '" + word + "'");
    std::string name = word.substr(2), value;
    bool inline_value = false;
    if (const auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      inline_value = true;
    }
    const Spec* s = nullptr;
    for (const auto& candidate : specs_)
      if (candidate.name == name) s = &candidate;
    if (!s) throw UsageError("unknown option --" + name);
    if (s->is_flag) {
      if (inline_value) throw UsageError("option --" + name + " takes no value");
      values_[name] = "1";
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= argc) throw UsageError("option --" + name + " needs a value (" + s->value_name + ")");
      value = argv[++i];
    }
    values_[name] = value;
    all_values_[name].push_back(value);
  }
  for (const auto& s : specs_)
    if (s.is_required && !values_.count(s.name))
      throw UsageError("missing required option --" + s.name + " " + s.value_name);
}

std::vector<std::string> Args::get_all(const std::string& name) const {
  spec(name);  // throws on an undeclared name
  const auto it = all_values_.find(name);
  return it == all_values_.end() ? std::vector<std::string>{} : it->second;
}

std::string Args::usage() const {
  std::string u = "usage: " + command_;
  for (const auto& s : specs_) {
    // Appended piece by piece: GCC 12 warns falsely (-Wrestrict) on "literal" + std::string chains.
    u += s.is_required ? " --" : " [--";
    u += s.name;
    if (!s.is_flag) {
      u += ' ';
      u += s.value_name;
    }
    if (!s.is_required) u += ']';
  }
  u += "\n\n" + summary_ + "\n\noptions:\n";
  for (const auto& s : specs_) {
    std::string left = "  --" + s.name + (s.is_flag ? "" : " " + s.value_name);
    if (left.size() < 24) left.resize(24, ' ');
    else left += "  ";
    u += left + s.help;
    if (!s.default_value.empty()) u += " (default " + s.default_value + ")";
    u += "\n";
  }
  u += "  -h, --help            this text\n";
  return u;
}

bool Args::flag_set(const std::string& name) const {
  spec(name);
  return values_.count(name) > 0;
}

bool Args::is_flag(const std::string& name) const {
  for (const auto& s : specs_)
    if (s.name == name) return s.is_flag;
  return false;
}

bool Args::declares(const std::string& name) const {
  for (const auto& s : specs_)
    if (s.name == name) return true;
  return false;
}

bool Args::has(const std::string& name) const {
  return values_.count(name) > 0 || !spec(name).default_value.empty();
}

std::string Args::get(const std::string& name) const {
  const auto it = values_.find(name);
  return it != values_.end() ? it->second : spec(name).default_value;
}

namespace {
template <typename T>
T parse_number(const std::string& name, const std::string& text, const char* what) {
  T v{};
  const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size())
    throw UsageError("option --" + name + " expects " + what + ", got '" + text + "'");
  return v;
}
}  // namespace

long long Args::get_int(const std::string& name) const { return parse_number<long long>(name, get(name), "an integer"); }
std::uint64_t Args::get_u64(const std::string& name) const {
  return parse_number<std::uint64_t>(name, get(name), "a non-negative integer");
}
double Args::get_double(const std::string& name) const { return parse_number<double>(name, get(name), "a number"); }

std::optional<int> parse_command_line(Args& args, int argc, const char* const* argv, std::ostream& out,
                                      std::ostream& err) {
  try {
    args.parse(argc, argv);
  } catch (const UsageError& e) {
    err << args.command() << ": error: " << e.what() << "\n\n" << args.usage();
    return kExitUsage;
  }
  if (args.help()) {
    out << args.usage();
    return 0;
  }
  return std::nullopt;
}

}  // namespace cxr::cli
