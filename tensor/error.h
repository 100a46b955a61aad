// Errors: every failure the user can cause is a cxr::Error that says where it was raised,
// what was expected and what was found.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace cxr {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A bad option or argument given by the user (train_cxr prints it with the command's usage and
// exits with code 2). Raised where the option is checked: cli/, and the options' validators of
// train/ and eval/.
class UsageError : public Error {
 public:
  using Error::Error;
};

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
[[noreturn]] void throw_error(const char* file, int line, const std::string& message);
}  // namespace detail

}  // namespace cxr

// CXR_CHECK(cond, "conv2d: expected ", a, " channels, found ", b);
#define CXR_CHECK(cond, ...)                                                               \
  do {                                                                                     \
    if (!(cond)) ::cxr::detail::throw_error(__FILE__, __LINE__, ::cxr::detail::concat(__VA_ARGS__)); \
  } while (0)

#define CXR_FAIL(...) ::cxr::detail::throw_error(__FILE__, __LINE__, ::cxr::detail::concat(__VA_ARGS__))
