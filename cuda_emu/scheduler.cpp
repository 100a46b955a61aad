// scheduler.cpp: running the CUDA threads of a block on one worker (design: scheduler.h).
#include "cuda_emu/scheduler.h"

#include "cuda_emu/counting/hooks.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace cuda_emu::detail {

block_runner& this_worker() {
  static thread_local block_runner runner;
  return runner;
}

void fatal(const char* message) {
  std::fprintf(stderr, "cuda-emu: %s\n", message);
  std::fflush(stderr);
  std::abort();
}

namespace {
// The threadIdx after `i` in a block of `d` threads (x fastest).
void next_thread_idx(uint3& i, dim3 d) {
  if (++i.x < d.x) return;
  i.x = 0;
  if (++i.y < d.y) return;
  i.y = 0;
  ++i.z;
}
}  // namespace

block_runner::block_runner()
    : native_stack_(current_thread_stack()), fiber_stack_bytes_(env_stack_bytes()) {
  main_ctx_.stack = native_stack_;
}

block_runner::~block_runner() = default;

void block_runner::run_blocks(launch_desc& launch) {
  if (launch_ != nullptr) fatal("a kernel was launched from inside a kernel");
  launch_ = &launch;
  threads_ = launch.threads_per_block;
  if (slots_.size() < threads_) slots_.resize(threads_);
  warps_.resize((threads_ + 31) / 32);
  blockDim = launch.block;
  gridDim = launch.grid;
  // The per-launch, per-worker dynamic shared memory: exactly the requested size.
  smem_ = launch.smem_bytes > 0 ? std::malloc(launch.smem_bytes) : nullptr;
  if (launch.smem_bytes > 0 && smem_ == nullptr) fatal("out of memory for dynamic shared memory");
  counting::worker_begin(threads_, smem_, launch.smem_bytes);

  const std::uint64_t switches_before = switches_;
  for (std::uint64_t b; (b = launch.next_block.fetch_add(1, std::memory_order_relaxed)) < launch.total_blocks;)
    run_block(b);
  counting::worker_end();

  std::free(smem_);
  smem_ = nullptr;
  launch_ = nullptr;
  current_ = none;
  add_context_switches(switches_ - switches_before);
}

void block_runner::run_block(std::uint64_t linear_block) {
  const dim3 g = launch_->grid;
  blockIdx = uint3{static_cast<unsigned>(linear_block % g.x), static_cast<unsigned>(linear_block / g.x % g.y),
                   static_cast<unsigned>(linear_block / (std::uint64_t{g.x} * g.y))};
  if (smem_) std::memset(smem_, 0xFF, launch_->smem_bytes);  // poison: NaN as float

  for (unsigned t = 0; t < threads_; ++t) {
    slots_[t].st = state::not_started;
    slots_[t].waiting_at = nullptr;
  }
  for (unsigned w = 0; w < warps_.size(); ++w) {
    warps_[w] = warp_state{};
    const unsigned lanes = threads_ - w * 32;  // lanes past blockDim count as exited
    if (lanes < 32) warps_[w].exited = ~((1u << lanes) - 1u);
  }
  bar_ = barrier_state{};
  counting::block_begin();
  live_ = threads_;
  fibers_live_ = 0;
  stall_ = 0;

  const dim3 bd = launch_->block;
  uint3 idx{0, 0, 0};  // threadIdx of thread t, advanced without divisions
  for (unsigned t = 0; t < threads_; ++t, next_thread_idx(idx, bd)) {
    if (slots_[t].st != state::not_started) continue;  // already ran as a fiber
    // Plain mode: thread t runs as a function call on this worker's stack.
    slots_[t].st = state::running;
    slots_[t].ctx.stack = native_stack_;
    native_thread_ = t;
    current_ = t;
    threadIdx = idx;
    counting::thread_running(t);
    call_body();
    thread_exited(t);
    native_thread_ = none;
    // If thread t had to wait, the threads after it were started as fibers; some may still be
    // suspended. Run them to the end (the last one to exit switches back here).
    if (fibers_live_ > 0) switch_to(next_live(t), main_ctx_, false);
  }
  current_ = none;
}

void block_runner::call_body() {
  try {
    launch_->body.call(launch_->body.object);
  } catch (...) {
    fatal("an exception escaped a kernel (device code cannot throw)");
  }
}

void block_runner::set_thread_idx(unsigned t) {
  const dim3 b = launch_->block;
  threadIdx = uint3{t % b.x, t / b.x % b.y, t / (b.x * b.y)};
}

void block_runner::thread_exited(unsigned t) {
  counting::thread_exited(t);
  slots_[t].st = state::done;
  --live_;
  if (t != native_thread_) --fibers_live_;
  warps_[t / 32].exited |= 1u << (t % 32);
  stall_ = 0;
}

// The next thread after `after` (round robin) that has not exited; none if there is none.
unsigned block_runner::next_live(unsigned after) const {
  for (unsigned i = 1; i <= threads_; ++i) {
    const unsigned t = (after + i) % threads_;
    if (t != after && slots_[t].st != state::done) return t;
  }
  return none;
}

void block_runner::switch_to(unsigned target, context& from, bool exiting) {
  thread_slot& slot = slots_[target];
  if (slot.st == state::not_started) {
    while (stacks_.size() <= target) stacks_.emplace_back(fiber_stack_bytes_);
    make_context(slot.ctx, stacks_[target].range(), &block_runner::fiber_entry);
    slot.st = state::running;
    ++fibers_live_;
    stall_ = 0;
  }
  current_ = target;
  set_thread_idx(target);
  counting::thread_running(target);
  ++switches_;
  switch_context(from, slot.ctx, exiting);
  // Resumed: whoever switched back to us has already set current_ and threadIdx.
}

// A fresh fiber starts here; it runs one CUDA thread, then passes control on for good.
void block_runner::fiber_entry() {
  fiber_started();
  block_runner& self = this_worker();
  const unsigned me = self.current_;
  self.call_body();
  self.thread_exited(me);
  const unsigned next = self.next_live(me);
  if (next != none) {
    self.switch_to(next, self.slots_[me].ctx, true);
  } else {  // the whole block is done: back to the worker's stack (in run_block)
    self.current_ = none;
    ++self.switches_;
    switch_context(self.slots_[me].ctx, self.main_ctx_, true);
  }
  fatal("an exited fiber was resumed");
}

// The running thread cannot proceed yet: let the next thread run.
void block_runner::wait_step(const char* op) {
  const unsigned me = current_;
  slots_[me].waiting_at = op;
  if (++stall_ > 2 * live_ + 2) report_deadlock();
  const unsigned next = next_live(me);
  if (next == none) report_deadlock();
  switch_to(next, slots_[me].ctx, false);
}

void block_runner::report_deadlock() {
  std::fprintf(stderr,
               "cuda-emu: deadlock in block (%u,%u,%u) of a grid (%u,%u,%u) x block (%u,%u,%u): every live "
               "thread waits and none can be released.\n"
               "cuda-emu: divergent __syncthreads/warp collective: a barrier or collective that not all "
               "threads (lanes of the mask) reach.\n",
               blockIdx.x, blockIdx.y, blockIdx.z, gridDim.x, gridDim.y, gridDim.z, blockDim.x, blockDim.y,
               blockDim.z);
  unsigned shown = 0;
  for (unsigned t = 0; t < threads_ && shown < 16; ++t) {
    if (slots_[t].st == state::done) continue;
    set_thread_idx(t);
    std::fprintf(stderr, "cuda-emu:   thread (%u,%u,%u) waits at %s\n", threadIdx.x, threadIdx.y, threadIdx.z,
                 slots_[t].waiting_at ? slots_[t].waiting_at : "(not started)");
    ++shown;
  }
  std::fflush(stderr);
  std::abort();
}

int block_runner::barrier(int predicate, block_reduce reduce, const char* op) {
  const std::uint64_t gen = bar_.gen;
  ++bar_.arrived;
  if (predicate) ++bar_.count;
  stall_ = 0;
  while (bar_.gen == gen) {
    if (bar_.arrived >= live_) {  // everyone not exited is here: release
      bar_.result_count[gen & 1] = bar_.count;
      bar_.result_arrived[gen & 1] = bar_.arrived;
      bar_.arrived = 0;
      bar_.count = 0;
      ++bar_.gen;
      counting::barrier_released();
      stall_ = 0;
      break;
    }
    wait_step(op);
  }
  slots_[current_].waiting_at = nullptr;
  const unsigned count = bar_.result_count[gen & 1];
  switch (reduce) {
    case block_reduce::count: return static_cast<int>(count);
    case block_reduce::any: return count > 0;
    case block_reduce::all: return count == bar_.result_arrived[gen & 1];
    case block_reduce::none: break;
  }
  return 0;
}

warp_exchange block_runner::warp_collective(unsigned mask, std::uint64_t value, const char* op) {
  const unsigned me = current_;
  const unsigned lane = me % 32;
  const std::uint32_t bit = 1u << lane;
  warp_state& w = warps_[me / 32];
  if (!(mask & bit)) {
    std::fprintf(stderr, "cuda-emu: %s called by lane %u with mask 0x%08x that does not contain it\n", op, lane,
                 mask);
    fatal("invalid warp collective mask");
  }
  // Join the open collective of this mask, or open one in a free slot (once the slow lanes of
  // an earlier collective have read their results, a slot is free again).
  collective* c = nullptr;
  for (;;) {
    for (collective& k : w.slots)
      if (k.open && k.mask == mask && !(k.arrived & bit)) c = &k;
    for (collective& k : w.slots)
      if (c == nullptr && k.free()) {
        k.open = true;
        k.mask = mask;
        k.arrived = 0;
        c = &k;
      }
    if (c) break;
    wait_step(op);
  }
  c->values[lane] = value;
  c->arrived |= bit;
  c->unread |= bit;
  stall_ = 0;
  while (c->open) {
    if ((mask & ~w.exited & ~c->arrived) == 0) {  // every live lane of the mask is here
      c->open = false;
      stall_ = 0;
      break;
    }
    wait_step(op);
  }
  slots_[me].waiting_at = nullptr;
  // The caller reads values[] before any other thread runs, so releasing the slot now is safe.
  c->unread &= ~bit;
  return warp_exchange{c->values, c->arrived, lane};
}

std::uint32_t block_runner::active_mask() const {
  if (current_ == none) return 0;
  return ~warps_[current_ / 32].exited;
}

// ---- the device-side entry points declared in cuda_emu.h ----------------------------------

namespace {
block_runner& kernel_worker(const char* op) {
  block_runner& w = this_worker();
  if (!w.in_kernel()) {
    std::fprintf(stderr, "cuda-emu: %s called outside a kernel\n", op);
    std::abort();
  }
  return w;
}
}  // namespace

int block_barrier(int predicate, block_reduce reduce, const char* op) {
  return kernel_worker(op).barrier(predicate, reduce, op);
}

warp_exchange warp_collective(unsigned mask, std::uint64_t value, const char* op) {
  return kernel_worker(op).warp_collective(mask, value, op);
}

std::uint32_t active_mask() { return kernel_worker("__activemask").active_mask(); }

}  // namespace cuda_emu::detail

void* cuda_emu::dynamic_shared_memory() { return detail::kernel_worker("dynamic_shared_memory").dynamic_smem(); }
