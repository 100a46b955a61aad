// cuDNN in the real-GPU tests (tests/cuda/test_*_cudnn.cpp): the checking macro, a handle that
// launches on cxr's compute stream, and descriptors released by their destructors. Include only
// where CXR_HAVE_CUDNN is defined.
#pragma once

#include <cuda_runtime.h>
#include <cudnn.h>
#include <doctest/doctest.h>

#include "tensor/backend.h"

// Fails the test case (REQUIRE) with the call and cuDNN's message unless it succeeded.
#define CXR_CUDNN_CHECK(expr)                                                                   \
  do {                                                                                          \
    const cudnnStatus_t st_ = (expr);                                                           \
    REQUIRE_MESSAGE(st_ == CUDNN_STATUS_SUCCESS, #expr, " failed: ", cudnnGetErrorString(st_)); \
  } while (0)

namespace cxr::test {

// A cuDNN object made by Create and released by Destroy; converts to the raw one.
template <typename T, cudnnStatus_t (*Create)(T*), cudnnStatus_t (*Destroy)(T)>
class CudnnOwned {
 public:
  CudnnOwned() { CXR_CUDNN_CHECK(Create(&p_)); }
  ~CudnnOwned() {
    if (p_) Destroy(p_);
  }
  CudnnOwned(const CudnnOwned&) = delete;
  CudnnOwned& operator=(const CudnnOwned&) = delete;
  operator T() const { return p_; }

 private:
  T p_ = nullptr;
};

using CudnnTensorDesc = CudnnOwned<cudnnTensorDescriptor_t, cudnnCreateTensorDescriptor, cudnnDestroyTensorDescriptor>;
using CudnnFilterDesc = CudnnOwned<cudnnFilterDescriptor_t, cudnnCreateFilterDescriptor, cudnnDestroyFilterDescriptor>;
using CudnnConvDesc =
    CudnnOwned<cudnnConvolutionDescriptor_t, cudnnCreateConvolutionDescriptor, cudnnDestroyConvolutionDescriptor>;

// A cuDNN handle whose work goes to cxr's compute stream, ordered with cxr's kernels.
class CudnnHandle {
 public:
  CudnnHandle() {
    CXR_CUDNN_CHECK(cudnnSetStream(handle_, static_cast<cudaStream_t>(backend::compute_stream_handle())));
  }
  operator cudnnHandle_t() const { return handle_; }

 private:
  CudnnOwned<cudnnHandle_t, cudnnCreate, cudnnDestroy> handle_;
};

// desc = a dense f32 (N, C, H, W) tensor.
inline void set_nchw_f32(cudnnTensorDescriptor_t desc, int N, int C, int H, int W) {
  CXR_CUDNN_CHECK(cudnnSetTensor4dDescriptor(desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, N, C, H, W));
}

}  // namespace cxr::test
