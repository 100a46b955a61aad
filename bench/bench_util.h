// Shared timing for the benchmarks of memory-bound ops (bench_norm_pool, bench_pointwise).
//
// CPU: wall clock per iteration (Google Benchmark's own timer). GPU: CUDA events on the
// compute stream around one call, reported as manual time (register with UseManualTime()),
// after three warm-up calls. A GPU benchmark without a real GPU (none, or the emulated one) is
// marked skipped with "no GPU". The GB/s counter is `bytes` (the op's minimum traffic) per call.
#pragma once

#include <benchmark/benchmark.h>

#include <functional>

#include "tensor/backend.h"
#include "tensor/stream.h"
#include "tensor/tensor.h"

namespace cxr::bench {

inline bool have_gpu() { return backend::has_device() && !backend::is_emulated(); }

// True, with the benchmark marked skipped, when `dev` is CUDA and no real GPU exists.
inline bool skip_without_gpu(benchmark::State& st, Device dev) {
  if (dev == Device::CUDA && !have_gpu()) {
    st.SkipWithError("no GPU");
    return true;
  }
  return false;
}

inline void time_op(benchmark::State& st, Device dev, double bytes, const std::function<void()>& op) {
  if (skip_without_gpu(st, dev)) return;
  if (dev == Device::CPU) {
    op();
    for (auto _ : st) op();
    st.counters["GB/s"] = benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate);
    return;
  }
  for (int i = 0; i < 3; ++i) op();
  backend::synchronize();
  Event start(true), stop(true);
  double seconds = 0.0;
  for (auto _ : st) {
    start.record(Stream::compute());
    op();
    stop.record(Stream::compute());
    stop.synchronize();
    const double s = stop.elapsed_ms_since(start) * 1e-3;
    st.SetIterationTime(s);
    seconds += s;
  }
  st.counters["GB/s"] = bytes * static_cast<double>(st.iterations()) / seconds * 1e-9;
}

}  // namespace cxr::bench
