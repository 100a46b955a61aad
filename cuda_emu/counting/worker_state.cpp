// worker_state.cpp: the scheduler's hooks and the entry point of every counted access.
#include "cuda_emu/counting/worker_state.h"

#include <algorithm>

#include "cuda_emu/counting/hooks.h"
#include "cuda_emu/cuda_emu.h"

namespace cuda_emu::counting {

thread_local worker_state* t_counting = nullptr;

namespace {
worker_state& this_worker_state() {
  static thread_local worker_state state;
  return state;
}
template <class T>
void range_of(std::uintptr_t (&r)[2], const T& v) {
  r[0] = reinterpret_cast<std::uintptr_t>(&v);
  r[1] = r[0] + sizeof(T);
}
}  // namespace

memory_space worker_state::classify(std::uintptr_t a) {
  if (a >= last_global_begin && a < last_global_end) return memory_space::global;
  if (a >= smem_begin && a < smem_end) return memory_space::shared;
  if (a >= tls_begin && a < tls_end) {
    for (const auto& b : builtins)
      if (a >= b[0] && a < b[1]) return memory_space::other;
    return memory_space::shared;
  }
  const auto& r = allocations.ranges;
  auto it = std::upper_bound(r.begin(), r.end(), a, [](std::uintptr_t v, const auto& x) { return v < x.first; });
  if (it != r.begin() && a < (--it)->second) {
    last_global_begin = it->first;
    last_global_end = it->second;
    return memory_space::global;
  }
  return memory_space::other;
}

void memory_access(const volatile void* p, std::uint32_t bytes, bool write, const void* pc) {
  worker_state* w = t_counting;
  if (w == nullptr) return;  // host code
  const memory_space space = w->classify(reinterpret_cast<std::uintptr_t>(p));
  if (space == memory_space::other) return;
  const access_kind kind = space == memory_space::global ? (write ? global_store : global_load)
                                                         : (write ? shared_store : shared_load);
  w->recorder.record(w->thread, reinterpret_cast<std::uintptr_t>(pc), kind, reinterpret_cast<std::uintptr_t>(p),
                     bytes);
}

void atomic_access(const volatile void* p) {
  worker_state* w = t_counting;
  if (w == nullptr) return;
  const memory_space space = w->classify(reinterpret_cast<std::uintptr_t>(p));
  if (space == memory_space::global) ++w->global_atomics;
  if (space == memory_space::shared) ++w->shared_atomics;
}

// ---- hooks.h: called by the scheduler -------------------------------------------------------

void worker_begin(unsigned threads_per_block, const void* dynamic_smem, std::size_t smem_bytes) {
  worker_state& w = this_worker_state();
  w.recorder.start(threads_per_block);
  w.smem_begin = reinterpret_cast<std::uintptr_t>(dynamic_smem);
  w.smem_end = w.smem_begin + (dynamic_smem ? smem_bytes : 0);
  const auto [tls_begin, tls_end] = static_tls_block();
  w.tls_begin = tls_begin;
  w.tls_end = tls_end;
  range_of(w.builtins[0], threadIdx);
  range_of(w.builtins[1], blockIdx);
  range_of(w.builtins[2], blockDim);
  range_of(w.builtins[3], gridDim);
  snapshot_allocations(w.allocations, w.allocations_generation);
  w.last_global_begin = 1;
  w.last_global_end = 0;
  w.global_atomics = w.shared_atomics = w.barriers = w.mma = 0;
  w.thread = 0;
  t_counting = &w;
}

void worker_end() {
  worker_state* w = t_counting;
  if (w == nullptr) return;
  t_counting = nullptr;
  add_worker_share(*w);
}

void block_begin() {
  if (t_counting) t_counting->recorder.begin_block();
}

void thread_running(unsigned linear_thread) {
  if (t_counting) t_counting->thread = linear_thread;
}

void thread_exited(unsigned linear_thread) {
  if (t_counting) t_counting->recorder.thread_exited(linear_thread);
}

void barrier_released() {
  if (t_counting) ++t_counting->barriers;
}

}  // namespace cuda_emu::counting

// wmma.h calls this once per warp-level mma_sync (from lane 0).
void cuda_emu::detail::count_mma() {
  if (counting::t_counting) ++counting::t_counting->mma;
}
