// The training subcommands of train_cxr:
//   train_cxr train    --data DIR --out RUN [--model NAME --image-size N --epochs E ...]
//   train_cxr eval     --checkpoint F --data DIR [--split test|val] --out DIR
//   train_cxr predict  --checkpoint F [--model NAME] [--image-size N] --out DIR IMAGE...
//   train_cxr demo     [--out DIR]
// Same conventions as cmd_data.h: return the exit code (0 ok, 2 usage; bad values throw
// cli::UsageError, which train_cxr turns into exit code 2), other errors throw cxr::Error.
// Defined in cmd_train.cpp, cmd_eval.cpp (eval, predict) and cmd_demo.cpp; the options they share
// are in common_flags.h. docs/training.md is the reference.
#pragma once

#include <ostream>

namespace cxr::cli {

int run_train(int argc, const char* const* argv, std::ostream& out);
int run_eval(int argc, const char* const* argv, std::ostream& out);
int run_predict(int argc, const char* const* argv, std::ostream& out);
int run_demo(int argc, const char* const* argv, std::ostream& out);

}  // namespace cxr::cli
