// hooks.h: where the emulator tells the counting build what happens (internal).
//
// In the ordinary build (CXR_EMU_COUNTERS undefined) every hook is an empty inline function,
// so scheduler.cpp, pool.cpp and runtime.cpp compile to the same code as before.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cuda_emu/cuda_emu.h"

namespace cuda_emu::counting {

#if CXR_EMU_COUNTERS
// Device memory: the allocations that count as global memory.
void device_allocated(const void* p, std::size_t bytes);
void device_freed(const void* p);
// One launch (pool.cpp): begin before the workers start, end after they all finished.
void launch_begin(const void* kernel, dim3 grid, dim3 block, std::size_t smem_bytes);
void launch_end();
// One worker's share of a launch (scheduler.cpp).
void worker_begin(unsigned threads_per_block, const void* dynamic_smem, std::size_t smem_bytes);
void worker_end();
void block_begin();
void thread_running(unsigned linear_thread);  // this CUDA thread runs now
void thread_exited(unsigned linear_thread);
void barrier_released();
#else
inline void device_allocated(const void*, std::size_t) {}
inline void device_freed(const void*) {}
inline void launch_begin(const void*, dim3, dim3, std::size_t) {}
inline void launch_end() {}
inline void worker_begin(unsigned, const void*, std::size_t) {}
inline void worker_end() {}
inline void block_begin() {}
inline void thread_running(unsigned) {}
inline void thread_exited(unsigned) {}
inline void barrier_released() {}
#endif

}  // namespace cuda_emu::counting
