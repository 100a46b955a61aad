// counters.h: emulator-only introspection for tests (no CUDA vocabulary, safe to include from
// any host file that links libcxr_emu.a; not available in the real-GPU build).
#pragma once

#include <cstdint>

namespace cuda_emu {

// How many times the host has waited for the device since the process started: calls of
// cudaDeviceSynchronize, cudaStreamSynchronize, cudaEventSynchronize, and synchronous copies
// that read the device (cudaMemcpy / cudaMemcpy2D with cudaMemcpyDeviceToHost). On a GPU each
// of them stalls the host until the device has caught up; asynchronous copies, event records
// and queries do not count. Tests take the difference around a region (tests/emu/).
std::uint64_t host_sync_count();

}  // namespace cuda_emu
