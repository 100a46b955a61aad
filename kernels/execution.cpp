// The math and execution switches (see execution.h): one settings struct behind a mutex.
#include "kernels/execution.h"

#include <mutex>
#include <utility>

namespace cxr {

namespace {

std::mutex g_mutex;
ExecutionSettings g_settings;

// For each setting given in `changes`: its current value into the result, the new value into
// the settings. Called with the mutex held.
ExecutionChanges exchange(ExecutionChanges changes) {
  ExecutionChanges previous;
  auto swap_in = [](auto& value, auto& change, auto& before) {
    if (!change) return;
    before = std::move(value);
    value = std::move(*change);
  };
  swap_in(g_settings.precision, changes.precision, previous.precision);
  swap_in(g_settings.allow_tf32, changes.allow_tf32, previous.allow_tf32);
  swap_in(g_settings.fuse_batch_norm_activation, changes.fuse_batch_norm_activation,
          previous.fuse_batch_norm_activation);
  swap_in(g_settings.fuse_conv_batch_norm_statistics, changes.fuse_conv_batch_norm_statistics,
          previous.fuse_conv_batch_norm_statistics);
  swap_in(g_settings.fold_batch_norm, changes.fold_batch_norm, previous.fold_batch_norm);
  swap_in(g_settings.kernels, changes.kernels, previous.kernels);
  swap_in(g_settings.conv2d_observer, changes.conv2d_observer, previous.conv2d_observer);
  return previous;
}

}  // namespace

const char* precision_name(Precision p) { return p == Precision::BF16 ? "bf16" : "fp32"; }

const char* kernel_choice_name(KernelChoice k) { return k == KernelChoice::Library ? "library" : "cxr"; }

std::optional<KernelChoice> parse_kernel_choice(const std::string& name) {
  if (name == "cxr") return KernelChoice::Cxr;
  if (name == "library") return KernelChoice::Library;
  return std::nullopt;
}

ExecutionSettings execution() {
  const std::lock_guard<std::mutex> lock(g_mutex);
  return g_settings;
}

bool autocast_bf16() {
  const std::lock_guard<std::mutex> lock(g_mutex);
  return g_settings.precision == Precision::BF16;
}

bool allow_tf32() {
  const std::lock_guard<std::mutex> lock(g_mutex);
  return g_settings.allow_tf32;
}

KernelChoice kernel_choice() {
  const std::lock_guard<std::mutex> lock(g_mutex);
  return g_settings.kernels;
}

ExecutionScope::ExecutionScope(ExecutionChanges changes) {
  const std::lock_guard<std::mutex> lock(g_mutex);
  previous_ = exchange(std::move(changes));
}

ExecutionScope::~ExecutionScope() {
  const std::lock_guard<std::mutex> lock(g_mutex);
  exchange(std::move(previous_));
}

}  // namespace cxr
