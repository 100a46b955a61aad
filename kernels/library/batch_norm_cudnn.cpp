// Batch norm through cuDNN (kernels/library.h): CUDNN_BATCHNORM_SPATIAL on dense NCHW f32
// tensors, the per-channel parameters as a (1, C, 1, 1) f32 descriptor. cuDNN's training forward
// keeps the same statistics as kernels/batch_norm.h: the biased variance normalises, the unbiased
// one enters running_var, the saved inverse standard deviation is 1 / sqrt(var + eps); its
// backward reads the saved statistics.
#include "kernels/library.h"
#include "kernels/library/library_context.h"

namespace cxr::library {

namespace {

struct BatchNormDescriptors {
  TensorDescriptor x, channel;
  explicit BatchNormDescriptors(const Tensor& x_)
      : x(CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, static_cast<int>(x_.size(0)), static_cast<int>(x_.size(1)),
          static_cast<int>(x_.size(2)), static_cast<int>(x_.size(3))),
        channel(CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, static_cast<int>(x_.size(1)), 1, 1) {}
};

float* data_or_null(Tensor& t) { return t.defined() ? t.f32() : nullptr; }

}  // namespace

void batch_norm2d_forward_train(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& y,
                                Tensor& saved_mean, Tensor& saved_invstd, Tensor& running_mean, Tensor& running_var,
                                float momentum, float eps) {
  const BatchNormDescriptors d(x);
  const float one = 1.f, zero = 0.f;
  check_cudnn(library_api().cudnn.cudnnBatchNormalizationForwardTraining(
                  cudnn_handle(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, d.x, x.raw_data(), d.x, y.raw_data(),
                  d.channel, weight.raw_data(), bias.raw_data(), momentum, data_or_null(running_mean),
                  data_or_null(running_var), eps, saved_mean.f32(), saved_invstd.f32()),
              "cudnnBatchNormalizationForwardTraining");
}

void batch_norm2d_forward_eval(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                               const Tensor& running_var, Tensor& y, float eps) {
  const BatchNormDescriptors d(x);
  const float one = 1.f, zero = 0.f;
  check_cudnn(library_api().cudnn.cudnnBatchNormalizationForwardInference(
                  cudnn_handle(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, d.x, x.raw_data(), d.x, y.raw_data(),
                  d.channel, weight.raw_data(), bias.raw_data(), running_mean.raw_data(), running_var.raw_data(), eps),
              "cudnnBatchNormalizationForwardInference");
}

void batch_norm2d_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, const Tensor& saved_mean,
                           const Tensor& saved_invstd, Tensor& dx, Tensor& dweight, Tensor& dbias) {
  const BatchNormDescriptors d(x);
  const float one = 1.f, zero = 0.f;
  // epsilon: unused when the saved statistics are given (they are); any value >= CUDNN_BN_MIN_EPSILON.
  const double unused_eps = 1e-5;
  check_cudnn(library_api().cudnn.cudnnBatchNormalizationBackward(
                  cudnn_handle(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &zero, d.x, x.raw_data(), d.x,
                  dy.raw_data(), d.x, dx.raw_data(), d.channel, weight.raw_data(), dweight.f32(), dbias.f32(),
                  unused_eps, saved_mean.raw_data(), saved_invstd.raw_data()),
              "cudnnBatchNormalizationBackward");
}

}  // namespace cxr::library
