// fiber.h: the smallest possible user-space threads ("fibers") for the emulator (internal).
//
// A fiber is a stack plus the saved registers of a suspended function. Switching from one
// fiber to another saves the callee-saved registers on the current stack, stores the stack
// pointer, loads the other one and pops its registers: no system call, a few nanoseconds.
// cuda_emu runs every CUDA thread of a block that needs to wait (at __syncthreads or a warp
// collective) on its own fiber, all on the one OS thread that runs the block.
//
// Two implementations of `context` (fiber.cpp):
//   * x86-64: a 14-instruction hand-written switch (cuda_emu_switch_x86_64);
//   * anything else, or -DCXR_EMU_UCONTEXT: POSIX makecontext/swapcontext (portable, but each
//     switch makes a sigprocmask system call, about 20x slower).
// Under AddressSanitizer every switch is announced with __sanitizer_start_switch_fiber /
// __sanitizer_finish_switch_fiber, so ASan knows which stack is live and reports nothing false.
#pragma once

#include <cstddef>

#if !defined(__x86_64__) && !defined(CXR_EMU_UCONTEXT)
#define CXR_EMU_UCONTEXT 1
#endif
#if defined(CXR_EMU_UCONTEXT)
#include <ucontext.h>
#endif

namespace cuda_emu::detail {

// A memory range used as a stack: [bottom, bottom + size).
struct stack_range {
  void* bottom = nullptr;
  std::size_t size = 0;
};

// The saved state of a suspended fiber, or of the OS thread's own stack while a fiber runs.
struct context {
#if defined(CXR_EMU_UCONTEXT)
  ucontext_t uc;
#else
  void* sp = nullptr;
#endif
  stack_range stack;             // where this context's stack lies (for ASan)
  void* asan_fake_stack = nullptr;
};

// An mmap'd fiber stack with a PROT_NONE guard page below it (a stack overflow faults).
class fiber_stack {
 public:
  fiber_stack() = default;
  explicit fiber_stack(std::size_t bytes);
  fiber_stack(fiber_stack&& other) noexcept;
  fiber_stack& operator=(fiber_stack&& other) noexcept;
  fiber_stack(const fiber_stack&) = delete;
  fiber_stack& operator=(const fiber_stack&) = delete;
  ~fiber_stack();
  stack_range range() const { return {usable_, usable_size_}; }

 private:
  void* mapping_ = nullptr;
  std::size_t mapping_size_ = 0;
  void* usable_ = nullptr;
  std::size_t usable_size_ = 0;
};

// Prepares `ctx` so that switching to it calls entry() on `stack`. entry must never return:
// it ends by switching away with `exiting` set.
void make_context(context& ctx, stack_range stack, void (*entry)());

// Suspends the running code into `from` and resumes `to`. `exiting` says that `from` will
// never be resumed (its ASan fake stack can be released).
void switch_context(context& from, context& to, bool exiting = false);

// Called first thing in a fresh fiber's entry function (finishes the ASan switch).
void fiber_started();

// The stack of the calling OS thread (for ASan annotations of switches back to it).
stack_range current_thread_stack();

}  // namespace cuda_emu::detail
