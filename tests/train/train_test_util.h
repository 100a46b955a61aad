// Helpers of the training and command-line tests: run a train_cxr subcommand in-process,
// read a whole file, compare checkpoints, read the logged losses.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace cxr::test {

// A subcommand entry point of train_cxr (cli::run_train, cli::run_eval, ...).
using CommandFn = int (*)(int argc, const char* const* argv, std::ostream& out);

// Runs `command` with argv = words (the arguments only: the subcommand parses them all) and
// returns its exit code; its output goes to *output when given, else is dropped.
int run_command(CommandFn command, const std::vector<std::string>& words, std::string* output = nullptr);

// The bytes of a file ("" when it cannot be read).
std::string read_all(const std::string& path);

// Whether every f32 tensor of a safetensors checkpoint is finite.
bool checkpoint_all_finite(const std::string& path);

// The names of the tensors whose bytes differ between two checkpoints (a doctest REQUIRE
// fails when their tensor names or counts differ).
std::vector<std::string> differing_tensors(const std::string& a, const std::string& b);

// The probabilities of a predict run's predictions.csv (every column after the image name, row
// by row).
std::vector<double> prediction_probabilities(const std::string& csv);

// The "loss" field of every line of RUN/metrics.jsonl, as written ("?" where a line has none).
std::vector<std::string> logged_losses(const std::string& run_dir);

}  // namespace cxr::test
