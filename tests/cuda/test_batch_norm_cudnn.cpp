// batch_norm2d on the real GPU against cuDNN (cudnnBatchNormalizationForwardTraining /
// cudnnBatchNormalizationBackward, spatial mode): y, saved mean / inverse std, running
// statistics after one step, dx, dweight, dbias. Skipped without a GPU (fails with
// CXR_REQUIRE_GPU=1). Shapes include ResNet-50 and EfficientNet-B0 layers at small batch.
#include <cuda_runtime.h>

#include <random>

#include "kernels/batch_norm.h"
#include "tensor/backend.h"
#include "tests/op_check.h"

#if defined(CXR_HAVE_CUDNN)
#include "tests/cuda/cudnn_test_util.h"

using namespace cxr;
using namespace cxr::test;

namespace {

// x's descriptor and the per-channel one cuDNN derives from it (spatial batch norm), and a handle.
struct CudnnBn {
  CudnnHandle handle;
  CudnnTensorDesc x_desc, c_desc;
  CudnnBn(int N, int C, int H, int W) {
    set_nchw_f32(x_desc, N, C, H, W);
    CXR_CUDNN_CHECK(cudnnDeriveBNTensorDescriptor(c_desc, x_desc, CUDNN_BATCHNORM_SPATIAL));
  }
};

void compare_with_cudnn(Shape shape) {
  if (!backend::has_device()) FAIL("CXR_REQUIRE_GPU=1 but no CUDA device");
  const int N = static_cast<int>(shape[0]), C = static_cast<int>(shape[1]);
  const int H = static_cast<int>(shape[2]), W = static_cast<int>(shape[3]);
  const double momentum = 0.1, eps = 1e-5;
  std::mt19937_64 rng(shape_numel(shape));
  const Device G = Device::CUDA;
  Tensor x = Tensor::randn(shape, rng, 0.5f, 2.f, G), dy = Tensor::randn(shape, rng, 0.f, 1.f, G);
  Tensor w = Tensor::uniform({C}, rng, 0.5f, 1.5f, G), b = Tensor::uniform({C}, rng, -0.5f, 0.5f, G);
  Tensor rm0 = Tensor::uniform({C}, rng, -0.2f, 0.2f, G), rv0 = Tensor::uniform({C}, rng, 0.5f, 2.f, G);

  // cxr
  Tensor rm = rm0.clone(), rv = rv0.clone();
  BatchNormOutput r = batch_norm2d_train(BnActivation::Identity, x, w, b, rm, rv, static_cast<float>(momentum),
                                         static_cast<float>(eps));
  BatchNormGrads g = batch_norm2d_backward(BnActivation::Identity, dy, x, w, b, r.saved_mean, r.saved_invstd);

  // cuDNN
  CudnnBn bn(N, C, H, W);
  Tensor y_ref = Tensor::empty(shape, DType::F32, G), mean_ref = Tensor::empty({C}, DType::F32, G),
         invstd_ref = Tensor::empty({C}, DType::F32, G);
  Tensor rm_ref = rm0.clone(), rv_ref = rv0.clone();
  const float one = 1.f, zero = 0.f;
  CXR_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
      bn.handle, CUDNN_BATCHNORM_SPATIAL, &one, &zero, bn.x_desc, x.f32(), bn.x_desc, y_ref.f32(), bn.c_desc, w.f32(),
      b.f32(), momentum, rm_ref.f32(), rv_ref.f32(), eps, mean_ref.f32(), invstd_ref.f32()));
  Tensor dx_ref = Tensor::empty(shape, DType::F32, G), dw_ref = Tensor::empty({C}, DType::F32, G),
         db_ref = Tensor::empty({C}, DType::F32, G);
  CXR_CUDNN_CHECK(cudnnBatchNormalizationBackward(
      bn.handle, CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &zero, bn.x_desc, x.f32(), bn.x_desc, dy.f32(), bn.x_desc,
      dx_ref.f32(), bn.c_desc, w.f32(), dw_ref.f32(), db_ref.f32(), eps, mean_ref.f32(), invstd_ref.f32()));
  const std::string s = " " + shape_str(shape) + " vs cuDNN";
  expect_close("y" + s, r.y, y_ref.cpu(), {1e-4, 1e-4});
  expect_close("saved_mean" + s, r.saved_mean, mean_ref.cpu(), {1e-5, 1e-4});
  expect_close("saved_invstd" + s, r.saved_invstd, invstd_ref.cpu(), {1e-5, 1e-4});
  expect_close("running_mean" + s, rm, rm_ref.cpu(), {1e-5, 1e-4});
  expect_close("running_var" + s, rv, rv_ref.cpu(), {1e-5, 1e-4});
  expect_close("dx" + s, g.dx, dx_ref.cpu(), {1e-4, 1e-3});
  expect_close("dweight" + s, g.dweight, dw_ref.cpu(), {1e-2, 1e-3});  // sums over up to 10^5 values
  expect_close("dbias" + s, g.dbias, db_ref.cpu(), {1e-2, 1e-3});
}

}  // namespace

TEST_CASE("batch_norm2d matches cuDNN, small shapes" * doctest::test_suite("cuda") * doctest::skip(skip_gpu_cases())) {
  compare_with_cudnn({2, 3, 5, 5});
  compare_with_cudnn({3, 16, 1, 1});
  compare_with_cudnn({8, 32, 4, 4});
}

TEST_CASE("batch_norm2d matches cuDNN at ResNet-50 / EfficientNet-B0 shapes (batch 8)" * doctest::test_suite("cuda") *
          doctest::skip(skip_gpu_cases())) {
  compare_with_cudnn({8, 64, 112, 112});  // ResNet-50 bn1
  compare_with_cudnn({8, 256, 56, 56});   // ResNet-50 layer1
  compare_with_cudnn({8, 2048, 7, 7});    // ResNet-50 layer4
  compare_with_cudnn({8, 32, 112, 112});  // EfficientNet-B0 stem
  compare_with_cudnn({8, 1280, 7, 7});    // EfficientNet-B0 head
  compare_with_cudnn({8, 144, 56, 56});   // EfficientNet-B0 stage 3 expand
}

#endif  // CXR_HAVE_CUDNN
