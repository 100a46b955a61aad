// scheduler.h: how one worker OS thread runs the blocks of a launch (internal).
//
// One `block_runner` exists per worker OS thread (thread_local). For each block it is given,
// it runs the block's CUDA threads in index order:
//
//   plain mode   thread i is a plain function call on the worker's own stack. A kernel
//                without __syncthreads or warp collectives stays in this mode: no switch.
//   fiber mode   when the running thread must wait (a barrier or warp collective that the
//                other threads have not reached yet) it switches to the next thread of the
//                block, starting it on its own fiber if it has not started yet. Waiting
//                threads are resumed in round-robin order; each checks whether its barrier
//                has been released and otherwise switches on. The thread that was running
//                on the worker's stack simply stays there, suspended like any fiber.
//
// So a thread runs uninterrupted from one barrier to the next, and the order is fully
// deterministic: thread 0 first, then 1, ... A thread reading shared memory that another
// thread writes without a barrier in between sees the old (or poison) value every time.
//
// Barriers: __syncthreads is released when the threads that have arrived equal the live
// (not exited) threads, so threads that returned early count as arrived. Warp collectives
// exchange values through per-warp slots: a lane joins the open collective of its mask or
// opens a new one in a free slot; a slot is reused only after every lane that took part has
// read its result, so a lane that races ahead never overwrites values the slow lanes need.
// If every live thread waits and none can be released, the kernel is a divergent barrier:
// the scheduler prints who waits where and aborts.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "cuda_emu/cuda_emu.h"
#include "cuda_emu/fiber.h"

namespace cuda_emu::detail {

// One kernel launch, shared by the workers that run its blocks.
struct launch_desc {
  dim3 grid, block;
  std::size_t smem_bytes = 0;
  kernel_ref body{};
  unsigned threads_per_block = 0;
  std::uint64_t total_blocks = 0;
  std::atomic<std::uint64_t> next_block{0};
};

class block_runner {
 public:
  block_runner();
  ~block_runner();
  block_runner(const block_runner&) = delete;
  block_runner& operator=(const block_runner&) = delete;

  // Runs blocks of `launch` until none is left.
  void run_blocks(launch_desc& launch);

  bool in_kernel() const { return launch_ != nullptr; }
  void* dynamic_smem() const { return smem_; }

  // Device-side operations of the running CUDA thread (see cuda_emu.h).
  int barrier(int predicate, block_reduce reduce, const char* op);
  warp_exchange warp_collective(unsigned mask, std::uint64_t value, const char* op);
  std::uint32_t active_mask() const;

 private:
  enum class state : std::uint8_t { not_started, running, done };
  struct thread_slot {
    context ctx;
    state st = state::not_started;
    const char* waiting_at = nullptr;  // for the deadlock report
  };
  // One warp collective in flight: open while lanes arrive, then kept until every lane that
  // took part has read its result.
  struct collective {
    bool open = false;
    std::uint32_t mask = 0;     // the lanes that must arrive (minus exited ones)
    std::uint32_t arrived = 0;  // lanes that published a value
    std::uint32_t unread = 0;   // lanes that have not read the result yet
    std::uint64_t values[32] = {};
    bool free() const { return !open && unread == 0; }
  };
  struct warp_state {
    std::uint32_t exited = 0;  // exited lanes and lanes past blockDim
    collective slots[4];
  };
  struct barrier_state {
    std::uint64_t gen = 0;
    unsigned arrived = 0;
    unsigned count = 0;  // predicates that were true, this generation
    unsigned result_count[2] = {0, 0};
    unsigned result_arrived[2] = {0, 0};
  };

  static constexpr unsigned none = ~0u;
  static void fiber_entry();

  void run_block(std::uint64_t linear_block);
  void call_body();
  void thread_exited(unsigned t);
  unsigned next_live(unsigned after) const;
  void switch_to(unsigned target, context& from, bool exiting);
  void wait_step(const char* op);
  void set_thread_idx(unsigned t);
  [[noreturn]] void report_deadlock();

  launch_desc* launch_ = nullptr;
  std::vector<thread_slot> slots_;
  std::vector<fiber_stack> stacks_;
  std::vector<warp_state> warps_;
  barrier_state bar_;
  context main_ctx_;           // the worker's own stack, while it drains fibers
  stack_range native_stack_;   // the worker's own stack
  std::size_t fiber_stack_bytes_;
  unsigned threads_ = 0;       // threads per block
  unsigned live_ = 0;          // threads not exited
  unsigned fibers_live_ = 0;   // threads started on a fiber and not exited
  unsigned current_ = none;    // the running CUDA thread (linear index)
  unsigned native_thread_ = none;  // the CUDA thread on the worker's own stack
  unsigned stall_ = 0;         // resumes without progress (deadlock detection)
  std::uint64_t switches_ = 0;
  void* smem_ = nullptr;
};

block_runner& this_worker();

// Adds a worker's switch count to the global statistic.
void add_context_switches(std::uint64_t n);
// Sets the calling host thread's last error (runtime.cpp).
void set_last_error(cudaError_t err);
// The launch limits of CUDA (pool.cpp).
bool launch_config_valid(dim3 grid, dim3 block, std::size_t smem_bytes);
// Environment settings.
unsigned env_worker_count();
std::size_t env_stack_bytes();

}  // namespace cuda_emu::detail
