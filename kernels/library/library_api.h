// cuDNN and cuBLASLt as the library path calls them: loaded at the first use with dlopen, their
// functions reached through one table each, so that train_cxr neither needs the libraries to
// start nor to run --kernels cxr. The headers give the types and the signatures (decltype of each
// declared function); nothing is linked.
//
//   const LibraryApi& api = library_api();     // loads both, checks the versions, or throws
//   CXR_CUDNN(api.cudnn.cudnnSetStream(h, s), "cudnnSetStream");
// Real-GPU build only (kernels/library/*.cpp are compiled into libcxr_cuda where the headers exist).
#pragma once

#include <cublasLt.h>
#include <cudnn.h>

#include <string>

#include "tensor/error.h"

namespace cxr::library {

// X-macro lists: every function the library path calls.
#define CXR_CUDNN_FUNCTIONS(X)                                                                                  \
  X(cudnnGetVersion) X(cudnnGetErrorString) X(cudnnCreate) X(cudnnDestroy) X(cudnnSetStream)                  \
  X(cudnnCreateTensorDescriptor) X(cudnnDestroyTensorDescriptor) X(cudnnSetTensor4dDescriptor)                \
  X(cudnnCreateFilterDescriptor) X(cudnnDestroyFilterDescriptor) X(cudnnSetFilter4dDescriptor)                \
  X(cudnnCreateConvolutionDescriptor) X(cudnnDestroyConvolutionDescriptor) X(cudnnSetConvolution2dDescriptor) \
  X(cudnnSetConvolutionGroupCount) X(cudnnSetConvolutionMathType)                                             \
  X(cudnnGetConvolutionForwardAlgorithmMaxCount) X(cudnnGetConvolutionBackwardDataAlgorithmMaxCount)          \
  X(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount) X(cudnnFindConvolutionForwardAlgorithmEx)             \
  X(cudnnFindConvolutionBackwardDataAlgorithmEx) X(cudnnFindConvolutionBackwardFilterAlgorithmEx)             \
  X(cudnnGetConvolutionForwardAlgorithm_v7) X(cudnnGetConvolutionBackwardDataAlgorithm_v7)                    \
  X(cudnnGetConvolutionBackwardFilterAlgorithm_v7) X(cudnnConvolutionForward) X(cudnnConvolutionBackwardData)  \
  X(cudnnConvolutionBackwardFilter) X(cudnnAddTensor) X(cudnnTransformTensor)                                 \
  X(cudnnBatchNormalizationForwardTraining) X(cudnnBatchNormalizationForwardInference)                        \
  X(cudnnBatchNormalizationBackward)

#define CXR_CUBLASLT_FUNCTIONS(X)                                                                       \
  X(cublasLtGetVersion) X(cublasLtCreate) X(cublasLtDestroy) X(cublasLtMatmulDescCreate)               \
  X(cublasLtMatmulDescDestroy) X(cublasLtMatmulDescSetAttribute) X(cublasLtMatrixLayoutCreate)         \
  X(cublasLtMatrixLayoutDestroy) X(cublasLtMatmulPreferenceCreate) X(cublasLtMatmulPreferenceDestroy) \
  X(cublasLtMatmulPreferenceSetAttribute) X(cublasLtMatmulAlgoGetHeuristic) X(cublasLtMatmul)

#define CXR_LIBRARY_POINTER(name) decltype(&::name) name = nullptr;
struct CudnnApi {
  CXR_CUDNN_FUNCTIONS(CXR_LIBRARY_POINTER)
};
struct CublasLtApi {
  CXR_CUBLASLT_FUNCTIONS(CXR_LIBRARY_POINTER)
};
#undef CXR_LIBRARY_POINTER

struct LibraryApi {
  CudnnApi cudnn;
  CublasLtApi lt;
  std::string description;  // "cuDNN 9.19.0 (libcudnn.so.9), cuBLASLt 13.0.2 (libcublasLt.so.13)"
};

// Both libraries, loaded and version-checked once per process (thread-safe). Throws a
// cxr::Error naming the library missing or too old, the version found and the one needed; the
// failure is remembered, so every later call throws the same message.
const LibraryApi& library_api();

// Throws a cxr::Error "<what>: <cuDNN's message>" unless status is success.
void check_cudnn(cudnnStatus_t status, const char* what);
void check_cublas(cublasStatus_t status, const char* what);

// "9.19.0" from a version number major*10000 + minor*100 + patch (cuDNN 9's and cuBLASLt's).
std::string version_string(std::size_t version);

}  // namespace cxr::library
