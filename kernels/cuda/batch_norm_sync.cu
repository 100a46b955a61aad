// The batch norm's pieces for a batch split over processes on CUDA (math in
// kernels/batch_norm_sync.h). Not implemented yet: every entry point throws.
#include "kernels/batch_norm_sync.h"
#include "kernels/common/cuda.cuh"

namespace cxr::cuda {

template <typename T>
void batch_norm2d_batch_stats(const T*, float*, float*, std::int64_t, std::int64_t, std::int64_t) {
  CXR_CHECK(false, "batch_norm2d_batch_stats: not implemented on CUDA yet");
}
template <typename T>
void batch_norm2d_backward_reduce(BnActivation, const float*, const T*, const float*, const float*, const float*,
                                  const float*, float*, float*, std::int64_t, std::int64_t, std::int64_t) {
  CXR_CHECK(false, "batch_norm2d_backward_reduce: not implemented on CUDA yet");
}
template <typename T>
void batch_norm2d_backward_elemt(BnActivation, const float*, const T*, const float*, const float*, const float*,
                                 const float*, const float*, const float*, float*, std::int64_t, std::int64_t,
                                 std::int64_t, std::int64_t) {
  CXR_CHECK(false, "batch_norm2d_backward_elemt: not implemented on CUDA yet");
}

#define CXR_ENTRY_POINTS(T)                                                                                    \
  template void batch_norm2d_batch_stats<T>(const T*, float*, float*, std::int64_t, std::int64_t, std::int64_t); \
  template void batch_norm2d_backward_reduce<T>(BnActivation, const float*, const T*, const float*, const float*, \
                                                const float*, const float*, float*, float*, std::int64_t,        \
                                                std::int64_t, std::int64_t);                                     \
  template void batch_norm2d_backward_elemt<T>(BnActivation, const float*, const T*, const float*, const float*,  \
                                               const float*, const float*, const float*, const float*, float*,  \
                                               std::int64_t, std::int64_t, std::int64_t, std::int64_t);
CXR_ENTRY_POINTS(float)
CXR_ENTRY_POINTS(std::uint16_t)
#undef CXR_ENTRY_POINTS

}  // namespace cxr::cuda
