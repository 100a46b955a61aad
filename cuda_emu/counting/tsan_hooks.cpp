// tsan_hooks.cpp: receiving every memory access of the instrumented kernels.
//
// The counting build compiles the kernels' translation units with g++ -fsanitize=thread but
// does not link the ThreadSanitizer runtime: g++ then calls __tsan_read4(address),
// __tsan_write8(address), ... before each load and store, and this file defines those
// functions. __builtin_return_address(0) is the instruction after the call: it names the
// access site. Atomic operations arrive as __tsan_atomicN_<op>(address, ..., memory order);
// they must really happen here (sequentially consistent, stronger than any order asked for).
// Function entry/exit hooks are turned off (--param=tsan-instrument-func-entry-exit=0) but
// defined, as are the volatile, unaligned and vptr variants that g++ may emit.
#include <cstddef>
#include <cstdint>

#include "cuda_emu/counting/worker_state.h"

using cuda_emu::counting::atomic_access;
using cuda_emu::counting::memory_access;

#define CXR_ACCESS_HOOKS(N)                                                                       \
  void __tsan_read##N(void* p) { memory_access(p, N, false, __builtin_return_address(0)); }        \
  void __tsan_write##N(void* p) { memory_access(p, N, true, __builtin_return_address(0)); }        \
  void __tsan_unaligned_read##N(void* p) { memory_access(p, N, false, __builtin_return_address(0)); } \
  void __tsan_unaligned_write##N(void* p) { memory_access(p, N, true, __builtin_return_address(0)); } \
  void __tsan_volatile_read##N(void* p) { memory_access(p, N, false, __builtin_return_address(0)); } \
  void __tsan_volatile_write##N(void* p) { memory_access(p, N, true, __builtin_return_address(0)); }

// Atomics of one width: perform the operation, count it as one atomic if it writes.
#define CXR_ATOMIC_HOOKS(N, T)                                                                     \
  T __tsan_atomic##N##_load(const volatile T* a, int) { return __atomic_load_n(a, __ATOMIC_SEQ_CST); } \
  void __tsan_atomic##N##_store(volatile T* a, T v, int) { __atomic_store_n(a, v, __ATOMIC_SEQ_CST); } \
  T __tsan_atomic##N##_exchange(volatile T* a, T v, int) {                                         \
    atomic_access(a);                                                                              \
    return __atomic_exchange_n(a, v, __ATOMIC_SEQ_CST);                                            \
  }                                                                                                \
  T __tsan_atomic##N##_fetch_add(volatile T* a, T v, int) {                                        \
    atomic_access(a);                                                                              \
    return __atomic_fetch_add(a, v, __ATOMIC_SEQ_CST);                                             \
  }                                                                                                \
  T __tsan_atomic##N##_fetch_sub(volatile T* a, T v, int) {                                        \
    atomic_access(a);                                                                              \
    return __atomic_fetch_sub(a, v, __ATOMIC_SEQ_CST);                                             \
  }                                                                                                \
  T __tsan_atomic##N##_fetch_and(volatile T* a, T v, int) {                                        \
    atomic_access(a);                                                                              \
    return __atomic_fetch_and(a, v, __ATOMIC_SEQ_CST);                                             \
  }                                                                                                \
  T __tsan_atomic##N##_fetch_or(volatile T* a, T v, int) {                                         \
    atomic_access(a);                                                                              \
    return __atomic_fetch_or(a, v, __ATOMIC_SEQ_CST);                                              \
  }                                                                                                \
  T __tsan_atomic##N##_fetch_xor(volatile T* a, T v, int) {                                        \
    atomic_access(a);                                                                              \
    return __atomic_fetch_xor(a, v, __ATOMIC_SEQ_CST);                                             \
  }                                                                                                \
  T __tsan_atomic##N##_fetch_nand(volatile T* a, T v, int) {                                       \
    atomic_access(a);                                                                              \
    return __atomic_fetch_nand(a, v, __ATOMIC_SEQ_CST);                                            \
  }                                                                                                \
  bool __tsan_atomic##N##_compare_exchange_strong(volatile T* a, T* expected, T v, int, int) {     \
    atomic_access(a);                                                                              \
    return __atomic_compare_exchange_n(a, expected, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); \
  }                                                                                                \
  bool __tsan_atomic##N##_compare_exchange_weak(volatile T* a, T* expected, T v, int, int) {       \
    atomic_access(a);                                                                              \
    return __atomic_compare_exchange_n(a, expected, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); \
  }                                                                                                \
  T __tsan_atomic##N##_compare_exchange_val(volatile T* a, T expected, T v, int, int) {            \
    atomic_access(a);                                                                              \
    __atomic_compare_exchange_n(a, &expected, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);       \
    return expected;                                                                               \
  }

extern "C" {

void __tsan_init() {}
void __tsan_func_entry(void*) {}
void __tsan_func_exit() {}
void __tsan_vptr_update(void*, void*) {}
void __tsan_vptr_read(void*) {}

CXR_ACCESS_HOOKS(1)
CXR_ACCESS_HOOKS(2)
CXR_ACCESS_HOOKS(4)
CXR_ACCESS_HOOKS(8)
CXR_ACCESS_HOOKS(16)

void __tsan_read_range(void* p, std::size_t n) {
  memory_access(p, static_cast<std::uint32_t>(n), false, __builtin_return_address(0));
}
void __tsan_write_range(void* p, std::size_t n) {
  memory_access(p, static_cast<std::uint32_t>(n), true, __builtin_return_address(0));
}

CXR_ATOMIC_HOOKS(8, std::uint8_t)
CXR_ATOMIC_HOOKS(16, std::uint16_t)
CXR_ATOMIC_HOOKS(32, std::uint32_t)
CXR_ATOMIC_HOOKS(64, std::uint64_t)

void __tsan_atomic_thread_fence(int) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
void __tsan_atomic_signal_fence(int) { __atomic_signal_fence(__ATOMIC_SEQ_CST); }

}  // extern "C"
