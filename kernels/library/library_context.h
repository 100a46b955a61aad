// What the library path's ops share: this thread's cuDNN and cuBLASLt handles (their work goes to
// cxr's compute stream, ordered with the hand-written kernels), RAII descriptors, and workspace
// tensors from the caching allocator.
#pragma once

#include <cstddef>
#include <utility>

#include "kernels/library/library_api.h"
#include "tensor/tensor.h"

namespace cxr::library {

// This thread's cuDNN handle, its stream set to cxr's compute stream.
cudnnHandle_t cudnn_handle();
// This thread's cuBLASLt handle (the stream is an argument of each cublasLtMatmul).
cublasLtHandle_t cublaslt_handle();
// cxr's compute stream.
cudaStream_t compute_stream();

// A device buffer of at least `bytes` from the caching allocator (no allocation for 0 bytes):
// keep the tensor alive until the work that uses it is enqueued (the allocator orders reuse on
// the compute stream).
Tensor workspace(std::size_t bytes);
inline void* workspace_ptr(Tensor& w) { return w.defined() ? w.raw_data() : nullptr; }

cudnnDataType_t cudnn_type(DType t);  // F32 -> FLOAT, BF16 -> BFLOAT16

// A cuDNN descriptor made by its Create and released by its Destroy (both from the loaded table).
template <typename T>
class Descriptor {
 public:
  using Create = cudnnStatus_t (*)(T*);
  using Destroy = cudnnStatus_t (*)(T);
  Descriptor(Create create, Destroy destroy, const char* what) : destroy_(destroy) { check_cudnn(create(&d_), what); }
  ~Descriptor() {
    if (d_) destroy_(d_);
  }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  operator T() const { return d_; }

 private:
  T d_ = nullptr;
  Destroy destroy_;
};

struct TensorDescriptor : Descriptor<cudnnTensorDescriptor_t> {
  TensorDescriptor()
      : Descriptor(library_api().cudnn.cudnnCreateTensorDescriptor, library_api().cudnn.cudnnDestroyTensorDescriptor,
                   "cudnnCreateTensorDescriptor") {}
  // A dense 4-d tensor of `type`, (n, c, h, w) in `format` (NCHW or NHWC memory order).
  TensorDescriptor(cudnnTensorFormat_t format, cudnnDataType_t type, int n, int c, int h, int w) : TensorDescriptor() {
    check_cudnn(library_api().cudnn.cudnnSetTensor4dDescriptor(*this, format, type, n, c, h, w),
                "cudnnSetTensor4dDescriptor");
  }
};

struct FilterDescriptor : Descriptor<cudnnFilterDescriptor_t> {
  FilterDescriptor(cudnnTensorFormat_t format, cudnnDataType_t type, int k, int c, int r, int s)
      : Descriptor(library_api().cudnn.cudnnCreateFilterDescriptor, library_api().cudnn.cudnnDestroyFilterDescriptor,
                   "cudnnCreateFilterDescriptor") {
    check_cudnn(library_api().cudnn.cudnnSetFilter4dDescriptor(*this, type, format, k, c, r, s),
                "cudnnSetFilter4dDescriptor");
  }
};

struct ConvolutionDescriptor : Descriptor<cudnnConvolutionDescriptor_t> {
  ConvolutionDescriptor()
      : Descriptor(library_api().cudnn.cudnnCreateConvolutionDescriptor,
                   library_api().cudnn.cudnnDestroyConvolutionDescriptor, "cudnnCreateConvolutionDescriptor") {}
};

}  // namespace cxr::library
