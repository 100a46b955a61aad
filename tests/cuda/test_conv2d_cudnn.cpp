// conv2d on the real GPU against cuDNN (cudnnConvolutionForward / BackwardData /
// BackwardFilter, FP32 FMA math: no TF32) at ResNet-50 and EfficientNet-B0 layer shapes with
// batch 2: y, dx, dw, and db against a plain sum. Skipped without a GPU (fails with
// CXR_REQUIRE_GPU=1).
#include <cuda_runtime.h>

#include <random>

#include "kernels/conv2d.h"
#include "tensor/backend.h"
#include "tests/op_check.h"

#if defined(CXR_HAVE_CUDNN)
#include "tests/cuda/cudnn_test_util.h"

using namespace cxr;
using namespace cxr::test;

namespace {

// The descriptors of one convolution (FP32 FMA math, no TF32) and a handle.
struct CudnnConv {
  CudnnHandle handle;
  CudnnTensorDesc x_desc, y_desc;
  CudnnFilterDesc w_desc;
  CudnnConvDesc conv;
  explicit CudnnConv(const Conv2dDims& d) {
    set_nchw_f32(x_desc, d.N, d.C, d.H, d.W);
    set_nchw_f32(y_desc, d.N, d.K, d.P, d.Q);
    CXR_CUDNN_CHECK(
        cudnnSetFilter4dDescriptor(w_desc, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, d.K, d.C / d.G, d.R, d.S));
    CXR_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(conv, d.ph, d.pw, d.sh, d.sw, d.dh, d.dw,
                                                    CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    CXR_CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv, d.G));
    CXR_CUDNN_CHECK(cudnnSetConvolutionMathType(conv, CUDNN_FMA_MATH));
  }
};

Tensor workspace(std::size_t bytes) {
  return Tensor::empty({static_cast<std::int64_t>(bytes / 4 + 1)}, DType::F32, Device::CUDA);
}

void compare_with_cudnn(const char* name, Shape xs, Shape ws, int stride, int pad, int groups) {
  if (!backend::has_device()) FAIL("CXR_REQUIRE_GPU=1 but no CUDA device");
  Conv2dParams p;
  p.stride_h = p.stride_w = stride;
  p.pad_h = p.pad_w = pad;
  p.groups = groups;
  const Conv2dDims d = conv2d_dims(xs, ws, p);
  const Device G = Device::CUDA;
  std::mt19937_64 rng(shape_numel(xs) + shape_numel(ws));
  Tensor x = Tensor::randn(xs, rng, 0.f, 1.f, G), w = Tensor::uniform(ws, rng, -0.1f, 0.1f, G);
  Tensor b = Tensor::randn({d.K}, rng, 0.f, 1.f, G);
  Tensor dy = Tensor::randn({d.N, d.K, d.P, d.Q}, rng, 0.f, 1.f, G);

  Tensor y = conv2d_forward(x, w, b, p);
  Conv2dGrads g = conv2d_backward(x, w, dy, p, true);

  CudnnConv c(d);
  const float one = 1.f, zero = 0.f;
  std::size_t bytes = 0;
  Tensor y_ref = Tensor::empty(y.shape(), DType::F32, G);
  const auto fwd_algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
  CXR_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(c.handle, c.x_desc, c.w_desc, c.conv, c.y_desc, fwd_algo,
                                                          &bytes));
  Tensor ws1 = workspace(bytes);
  CXR_CUDNN_CHECK(cudnnConvolutionForward(c.handle, &one, c.x_desc, x.f32(), c.w_desc, w.f32(), c.conv, fwd_algo,
                                          ws1.f32(), bytes, &zero, c.y_desc, y_ref.f32()));
  Tensor bias_b = b.cpu();  // y_ref += b (added here: cudnnAddTensor would need another descriptor)
  std::vector<float> yr = y_ref.to_vector();
  for (std::size_t i = 0; i < yr.size(); ++i) yr[i] += bias_b.f32()[(i / (std::size_t(d.P) * d.Q)) % d.K];

  Tensor dx_ref = Tensor::empty(xs, DType::F32, G);
  const auto bwd_data_algo = CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
  CXR_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(c.handle, c.w_desc, c.y_desc, c.conv, c.x_desc,
                                                               bwd_data_algo, &bytes));
  Tensor ws2 = workspace(bytes);
  CXR_CUDNN_CHECK(cudnnConvolutionBackwardData(c.handle, &one, c.w_desc, w.f32(), c.y_desc, dy.f32(), c.conv,
                                               bwd_data_algo, ws2.f32(), bytes, &zero, c.x_desc, dx_ref.f32()));
  Tensor dw_ref = Tensor::empty(ws, DType::F32, G);
  const auto bwd_filter_algo = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;
  CXR_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(c.handle, c.x_desc, c.y_desc, c.conv, c.w_desc,
                                                                 bwd_filter_algo, &bytes));
  Tensor ws3 = workspace(bytes);
  CXR_CUDNN_CHECK(cudnnConvolutionBackwardFilter(c.handle, &one, c.x_desc, x.f32(), c.y_desc, dy.f32(), c.conv,
                                                 bwd_filter_algo, ws3.f32(), bytes, &zero, c.w_desc, dw_ref.f32()));
  Tensor db_ref = Tensor::empty({d.K});
  {
    const std::vector<float> dyv = dy.to_vector();
    for (int k = 0; k < d.K; ++k) {
      double s = 0.0;
      for (int n = 0; n < d.N; ++n)
        for (int i = 0; i < d.P * d.Q; ++i) s += dyv[(std::size_t(n) * d.K + k) * d.P * d.Q + i];
      db_ref.f32()[k] = static_cast<float>(s);
    }
  }
  const std::string s = std::string(" ") + name + " vs cuDNN";
  expect_close("y" + s, y.to_vector(), std::vector<double>(yr.begin(), yr.end()), {1e-3, 1e-3});
  expect_close("dx" + s, g.dx, dx_ref.cpu(), {1e-3, 1e-3});
  expect_close("dw" + s, g.dw, dw_ref.cpu(), {5e-3, 1e-3});  // sums over N P Q products
  expect_close("db" + s, g.db, db_ref, {5e-3, 1e-3});
}

}  // namespace

TEST_CASE("conv2d matches cuDNN at ResNet-50 shapes (batch 2)" * doctest::test_suite("cuda") *
          doctest::skip(skip_gpu_cases())) {
  compare_with_cudnn("r50 stem 7x7 s2", {2, 3, 224, 224}, {64, 3, 7, 7}, 2, 3, 1);
  compare_with_cudnn("r50 layer1 3x3", {2, 64, 56, 56}, {64, 64, 3, 3}, 1, 1, 1);
  compare_with_cudnn("r50 layer1 1x1 256->64", {2, 256, 56, 56}, {64, 256, 1, 1}, 1, 0, 1);
  compare_with_cudnn("r50 layer2 3x3 s2", {2, 128, 56, 56}, {128, 128, 3, 3}, 2, 1, 1);
  compare_with_cudnn("r50 layer2 downsample 1x1 s2", {2, 256, 56, 56}, {512, 256, 1, 1}, 2, 0, 1);
  compare_with_cudnn("r50 layer4 3x3", {2, 512, 7, 7}, {512, 512, 3, 3}, 1, 1, 1);
}

TEST_CASE("conv2d matches cuDNN at EfficientNet-B0 shapes (batch 2)" * doctest::test_suite("cuda") *
          doctest::skip(skip_gpu_cases())) {
  compare_with_cudnn("effb0 stem 3x3 s2", {2, 3, 224, 224}, {32, 3, 3, 3}, 2, 1, 1);
  compare_with_cudnn("effb0 dw 3x3 s2", {2, 96, 112, 112}, {96, 1, 3, 3}, 2, 1, 96);
  compare_with_cudnn("effb0 dw 5x5", {2, 240, 28, 28}, {240, 1, 5, 5}, 1, 2, 240);
  compare_with_cudnn("effb0 expand 1x1", {2, 40, 28, 28}, {240, 40, 1, 1}, 1, 0, 1);
  compare_with_cudnn("effb0 head 1x1", {2, 320, 7, 7}, {1280, 320, 1, 1}, 1, 0, 1);
  compare_with_cudnn("grouped 3x3 groups 4", {2, 64, 14, 14}, {128, 16, 3, 3}, 1, 1, 4);
}

#endif  // CXR_HAVE_CUDNN
