// train_cxr: the command line of cxr.
//
//   train_cxr <command> [options]        train_cxr <command> --help
//
// Each subcommand is one entry of kCommands: its name, a one-line summary and the function
// that parses its options (cli/cli_args.h) and runs it. Adding a subcommand is adding an
// entry. Exit codes: 0 success, 1 error (the message says why), 2 bad usage.
#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>
#include <string>

#include "cli/cli_args.h"
#include "cli/cmd_data.h"
#include "cli/cmd_report.h"
#include "cli/cmd_train.h"
#include "dist/communicator.h"
#include "dist/world.h"

namespace {

struct Command {
  const char* name;
  const char* summary;
  int (*run)(int argc, const char* const* argv, std::ostream& out);
};

constexpr Command kCommands[] = {
    {"data-info", "describe a data set folder (counts, boxes, splits, missing files)", cxr::cli::run_data_info},
    {"synth", "write a synthetic NIH-format data set", cxr::cli::run_synth},
    {"train", "train a model (checkpoints, metrics.csv, early stopping, --resume)", cxr::cli::run_train},
    {"eval", "evaluate a checkpoint on the test/val split (metrics.json, predictions.csv)", cxr::cli::run_eval},
    {"predict", "predict findings and boxes for image files", cxr::cli::run_predict},
    {"report", "one self-contained HTML report of a run (curves, ROC/PR, tables, overlays)", cxr::cli::run_report},
    {"demo", "synthetic data -> short training -> eval -> predict -> report, on the CPU", cxr::cli::run_demo},
};

void print_usage(std::FILE* to) {
  std::fprintf(to, "usage: train_cxr <command> [options]\n\ncommands:\n");
  for (const auto& c : kCommands) std::fprintf(to, "  %-12s %s\n", c.name, c.summary);
  std::fprintf(to, "\n'train_cxr <command> --help' describes the options of a command.\n");
}

// In a distributed job (mpirun / srun) messages name the rank, and an error on one rank ends
// every rank at once (MPI_Abort): the others would otherwise wait for it in their next
// collective. docs/distributed.md, "Faults".
std::string rank_prefix() {
  try {
    return cxr::dist::world_from_environment().message_prefix();
  } catch (...) {
    return {};
  }
}

void end_job(int code) {
  std::fflush(stderr);
  cxr::dist::abort_job(code);  // returns only when no MPI job is running
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    print_usage(stderr);
    return cxr::cli::kExitUsage;
  }
  const std::string name = argv[1];
  if (name == "-h" || name == "--help" || name == "help") {
    print_usage(stdout);
    return 0;
  }
  for (const auto& c : kCommands) {
    if (name != c.name) continue;
    try {
      return c.run(argc - 2, argv + 2, std::cout);
    } catch (const cxr::cli::UsageError& e) {
      std::fprintf(stderr, "train_cxr %s: %serror: %s\n", c.name, rank_prefix().c_str(), e.what());
      end_job(cxr::cli::kExitUsage);
      return cxr::cli::kExitUsage;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "train_cxr %s: %serror: %s\n", c.name, rank_prefix().c_str(), e.what());
      end_job(1);
      return 1;
    }
  }
  std::fprintf(stderr, "train_cxr: unknown command '%s'\n\n", name.c_str());
  print_usage(stderr);
  return cxr::cli::kExitUsage;
}
