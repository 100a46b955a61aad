// fiber.cpp: fiber stacks and context switches (see fiber.h for the idea).
//
// The x86-64 switch, in words: push the six callee-saved registers (rbp, rbx, r12-r15) on the
// current stack, store rsp into `from`, load rsp from `to`, pop the six registers saved there
// and `ret` to the address on top of that stack. Everything else (caller-saved registers,
// flags) is already dead across a function call by the System V ABI.
// A fresh fiber's stack is prepared to look exactly like a suspended one whose `ret` goes to
// cuda_emu_fiber_start, which calls entry(). Its CFI marks the return address as undefined so
// that a debugger's backtrace ends there cleanly.
#include "cuda_emu/fiber.h"

#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <utility>

#if defined(__SANITIZE_ADDRESS__)
#define CXR_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CXR_EMU_ASAN 1
#endif
#endif
#if defined(CXR_EMU_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if !defined(CXR_EMU_UCONTEXT)
extern "C" void cuda_emu_switch_x86_64(void** save_sp, void* load_sp);
extern "C" void cuda_emu_fiber_start();
asm(R"(
  .text
  .p2align 4
  .globl cuda_emu_switch_x86_64
  .hidden cuda_emu_switch_x86_64
  .type cuda_emu_switch_x86_64, @function
cuda_emu_switch_x86_64:
  .cfi_startproc
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .cfi_endproc
  .size cuda_emu_switch_x86_64, .-cuda_emu_switch_x86_64

  .p2align 4
  .globl cuda_emu_fiber_start
  .hidden cuda_emu_fiber_start
  .type cuda_emu_fiber_start, @function
cuda_emu_fiber_start:
  .cfi_startproc
  .cfi_undefined rip
  xorl %ebp, %ebp
  callq *%r12
  ud2
  .cfi_endproc
  .size cuda_emu_fiber_start, .-cuda_emu_fiber_start
  .text
)");
#endif

namespace cuda_emu::detail {

namespace {
std::size_t page_size() {
  static const std::size_t size = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return size;
}
}  // namespace

fiber_stack::fiber_stack(std::size_t bytes) {
  const std::size_t page = page_size();
  usable_size_ = (bytes + page - 1) / page * page;
  mapping_size_ = usable_size_ + page;
  mapping_ = mmap(nullptr, mapping_size_, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (mapping_ == MAP_FAILED) {
    std::fprintf(stderr,
                 "cuda-emu: cannot map a %zu KiB fiber stack (lower CXR_EMU_THREADS or "
                 "CXR_EMU_STACK_KB)\n",
                 usable_size_ / 1024);
    std::abort();
  }
  mprotect(mapping_, page, PROT_NONE);  // guard page: a fiber stack overflow faults
  usable_ = static_cast<char*>(mapping_) + page;
}

fiber_stack::fiber_stack(fiber_stack&& other) noexcept
    : mapping_(std::exchange(other.mapping_, nullptr)),
      mapping_size_(std::exchange(other.mapping_size_, 0)),
      usable_(std::exchange(other.usable_, nullptr)),
      usable_size_(std::exchange(other.usable_size_, 0)) {}

fiber_stack& fiber_stack::operator=(fiber_stack&& other) noexcept {
  std::swap(mapping_, other.mapping_);
  std::swap(mapping_size_, other.mapping_size_);
  std::swap(usable_, other.usable_);
  std::swap(usable_size_, other.usable_size_);
  return *this;
}

fiber_stack::~fiber_stack() {
  if (mapping_) munmap(mapping_, mapping_size_);
}

void make_context(context& ctx, stack_range stack, void (*entry)()) {
  ctx.stack = stack;
  ctx.asan_fake_stack = nullptr;
#if defined(CXR_EMU_ASAN)
  // A finished fiber leaves by switching away from inside its frames, so their redzones stay
  // poisoned in ASan's shadow; the next fiber on this reused stack must start from clean shadow.
  __asan_unpoison_memory_region(stack.bottom, stack.size);
#endif
#if defined(CXR_EMU_UCONTEXT)
  getcontext(&ctx.uc);
  ctx.uc.uc_stack.ss_sp = stack.bottom;
  ctx.uc.uc_stack.ss_size = stack.size;
  ctx.uc.uc_link = nullptr;
  makecontext(&ctx.uc, entry, 0);
#else
  // Top of stack, 16-byte aligned. Layout (low to high): r15 r14 r13 r12 rbx rbp ret.
  auto top = (reinterpret_cast<std::uintptr_t>(stack.bottom) + stack.size) & ~std::uintptr_t{15};
  auto* slots = reinterpret_cast<void**>(top) - 7;
  for (int i = 0; i < 6; ++i) slots[i] = nullptr;
  slots[3] = reinterpret_cast<void*>(entry);  // r12: called by cuda_emu_fiber_start
  slots[6] = reinterpret_cast<void*>(&cuda_emu_fiber_start);
  ctx.sp = slots;  // after the 6 pops and ret, rsp == top (16-aligned) as a call expects
#endif
}

void switch_context(context& from, context& to, bool exiting) {
#if defined(CXR_EMU_ASAN)
  __sanitizer_start_switch_fiber(exiting ? nullptr : &from.asan_fake_stack, to.stack.bottom, to.stack.size);
#else
  (void)exiting;
#endif
#if defined(CXR_EMU_UCONTEXT)
  swapcontext(&from.uc, &to.uc);
#else
  cuda_emu_switch_x86_64(&from.sp, to.sp);
#endif
#if defined(CXR_EMU_ASAN)
  __sanitizer_finish_switch_fiber(from.asan_fake_stack, nullptr, nullptr);
#endif
}

void fiber_started() {
#if defined(CXR_EMU_ASAN)
  __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
}

stack_range current_thread_stack() {
  stack_range r;
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    pthread_attr_getstack(&attr, &r.bottom, &r.size);
    pthread_attr_destroy(&attr);
  }
  return r;
}

}  // namespace cuda_emu::detail
