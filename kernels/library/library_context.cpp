// Handles, workspaces and the run-time check of the library path (library_context.h, library.h).
#include "kernels/library/library_context.h"

#include "kernels/library.h"
#include "tensor/backend.h"

namespace cxr::library {

namespace {

// A handle per thread, destroyed with the thread (cuDNN and cuBLASLt handles must not be used by
// two threads at once).
struct ThreadHandles {
  cudnnHandle_t cudnn = nullptr;
  cublasLtHandle_t lt = nullptr;
  ~ThreadHandles() {
    // The table exists whenever a handle does (it made it).
    if (cudnn) library_api().cudnn.cudnnDestroy(cudnn);
    if (lt) library_api().lt.cublasLtDestroy(lt);
  }
};
thread_local ThreadHandles t_handles;

}  // namespace

cudaStream_t compute_stream() { return static_cast<cudaStream_t>(backend::compute_stream_handle()); }

cudnnHandle_t cudnn_handle() {
  const CudnnApi& api = library_api().cudnn;
  if (!t_handles.cudnn) check_cudnn(api.cudnnCreate(&t_handles.cudnn), "cudnnCreate");
  check_cudnn(api.cudnnSetStream(t_handles.cudnn, compute_stream()), "cudnnSetStream");
  return t_handles.cudnn;
}

cublasLtHandle_t cublaslt_handle() {
  if (!t_handles.lt) check_cublas(library_api().lt.cublasLtCreate(&t_handles.lt), "cublasLtCreate");
  return t_handles.lt;
}

Tensor workspace(std::size_t bytes) {
  if (bytes == 0) return Tensor();
  return Tensor::empty({static_cast<std::int64_t>(bytes)}, DType::U8, Device::CUDA);
}

cudnnDataType_t cudnn_type(DType t) {
  CXR_CHECK(t == DType::F32 || t == DType::BF16, "--kernels library: no cuDNN type for ", dtype_name(t));
  return t == DType::BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
}

namespace detail {

std::string require_libraries() {
  CXR_CHECK(backend::has_device(), "--kernels library: no CUDA device found (", backend::device_description(),
            "); run with --kernels cxr");
  return library_api().description;
}

}  // namespace detail

}  // namespace cxr::library
