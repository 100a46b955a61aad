// pool.cpp: the worker pool and the launch entry point.
//
// The emulated device has as many "multiprocessors" as worker threads: CXR_EMU_THREADS, by
// default std::thread::hardware_concurrency(). The thread that launches a kernel is one of
// them; the others are persistent OS threads that sleep on a condition variable between
// launches. A launch publishes a launch_desc; every worker (the launcher included) takes the
// next block index from an atomic counter until the grid is exhausted, and the launch returns
// when all of them are done. A one-block grid wakes nobody.
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include "cuda_emu/counting/hooks.h"
#include "cuda_emu/scheduler.h"

namespace cuda_emu::detail {

namespace {

unsigned env_unsigned(const char* name, unsigned fallback, unsigned lo, unsigned hi) {
  const char* s = std::getenv(name);
  if (s == nullptr || *s == '\0') return fallback;
  char* end = nullptr;
  const unsigned long v = std::strtoul(s, &end, 10);
  if (*end != '\0' || v < lo || v > hi) {
    std::fprintf(stderr, "cuda-emu: ignoring %s=%s (expected an integer in [%u, %u])\n", name, s, lo, hi);
    return fallback;
  }
  return static_cast<unsigned>(v);
}

std::atomic<std::uint64_t> g_switches{0};

class worker_pool {
 public:
  explicit worker_pool(unsigned helpers) {
    for (unsigned i = 0; i < helpers; ++i) threads_.emplace_back([this] { work(); });
  }
  unsigned helpers() const { return static_cast<unsigned>(threads_.size()); }

  // Runs `launch` with up to `wanted` helper threads besides the caller.
  void run(launch_desc& launch, unsigned wanted) {
    if (wanted > 0) {
      std::lock_guard lock(mutex_);
      job_ = &launch;
      tickets_ = wanted;
      running_ = wanted;
      ++generation_;
    }
    if (wanted > 0) work_cv_.notify_all();
    this_worker().run_blocks(launch);
    if (wanted > 0) {
      std::unique_lock lock(mutex_);
      done_cv_.wait(lock, [this] { return running_ == 0; });
      job_ = nullptr;
    }
  }

 private:
  void work() {
    std::uint64_t seen = 0;
    for (;;) {
      launch_desc* job;
      {
        std::unique_lock lock(mutex_);
        work_cv_.wait(lock, [&] { return generation_ != seen && tickets_ > 0; });
        seen = generation_;
        --tickets_;
        job = job_;
      }
      this_worker().run_blocks(*job);
      {
        std::lock_guard lock(mutex_);
        if (--running_ == 0) done_cv_.notify_one();
      }
    }
  }

  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable work_cv_, done_cv_;
  std::uint64_t generation_ = 0;
  launch_desc* job_ = nullptr;
  unsigned tickets_ = 0;
  unsigned running_ = 0;
};

worker_pool& pool() {
  // Never destroyed: its threads sleep until the process exits, and a kernel launched by a
  // static destructor still finds the pool.
  static worker_pool* p = new worker_pool(env_worker_count() - 1);
  return *p;
}

bool valid_config(dim3 grid, dim3 block, std::size_t smem_bytes) {
  const std::uint64_t threads = std::uint64_t{block.x} * block.y * block.z;
  return block.x > 0 && block.y > 0 && block.z > 0 && block.x <= 1024 && block.y <= 1024 && block.z <= 64 &&
         threads <= 1024 && grid.x > 0 && grid.y > 0 && grid.z > 0 && grid.x <= 0x7fffffffu &&
         grid.y <= 65535 && grid.z <= 65535 && smem_bytes <= 227 * 1024;
}

}  // namespace

unsigned env_worker_count() {
  static const unsigned n = [] {
    const unsigned hw = std::thread::hardware_concurrency();
    return env_unsigned("CXR_EMU_THREADS", hw > 0 ? hw : 1, 1, 1024);
  }();
  return n;
}

std::size_t env_stack_bytes() {
  static const std::size_t bytes = std::size_t{env_unsigned("CXR_EMU_STACK_KB", 256, 16, 1 << 20)} * 1024;
  return bytes;
}

bool launch_config_valid(dim3 grid, dim3 block, std::size_t smem_bytes) { return valid_config(grid, block, smem_bytes); }

void add_context_switches(std::uint64_t n) { g_switches.fetch_add(n, std::memory_order_relaxed); }

void launch(dim3 grid, dim3 block, std::size_t smem_bytes, kernel_ref body) {
  if (!valid_config(grid, block, smem_bytes)) {
    set_last_error(cudaErrorInvalidConfiguration);
    return;
  }
  if (this_worker().in_kernel()) fatal("a kernel was launched from inside a kernel");
  // Launches from several host threads run one after the other, as on one CUDA stream.
  static std::mutex launch_mutex;
  std::lock_guard lock(launch_mutex);

  launch_desc desc;
  desc.grid = grid;
  desc.block = block;
  desc.smem_bytes = smem_bytes;
  desc.body = body;
  desc.threads_per_block = block.x * block.y * block.z;
  desc.total_blocks = std::uint64_t{grid.x} * grid.y * grid.z;
  worker_pool& p = pool();
  const std::uint64_t extra = desc.total_blocks - 1;
  counting::launch_begin(body.kernel, grid, block, smem_bytes);
  p.run(desc, static_cast<unsigned>(extra < p.helpers() ? extra : p.helpers()));
  counting::launch_end();
}

}  // namespace cuda_emu::detail

std::uint64_t cuda_emu::context_switches() { return detail::g_switches.load(std::memory_order_relaxed); }

unsigned cuda_emu::worker_count() { return detail::env_worker_count(); }
