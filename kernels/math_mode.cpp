#include "kernels/math_mode.h"

#include <atomic>

namespace cxr {
namespace {
std::atomic<bool> g_allow_tf32{false};
std::atomic<bool> g_autocast_bf16{false};
}  // namespace

void set_allow_tf32(bool on) { g_allow_tf32.store(on, std::memory_order_relaxed); }
bool allow_tf32() { return g_allow_tf32.load(std::memory_order_relaxed); }

void set_autocast_bf16(bool on) { g_autocast_bf16.store(on, std::memory_order_relaxed); }
bool autocast_bf16() { return g_autocast_bf16.load(std::memory_order_relaxed); }

}  // namespace cxr
