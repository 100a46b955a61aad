// Tensor: a shape, strides and an offset over shared storage, with a dtype and a device.
//
//   Tensor x = Tensor::randn({8, 3, 64, 64}, rng);        // f32, CPU
//   Tensor y = x.to(Device::CUDA);                         // copy to the GPU
//   Tensor v = y.view({8, 3 * 64 * 64});                   // shares y's storage
//   Tensor s = x.narrow(0, 2, 4);                          // images 2..5, a view
//
// Kernels take contiguous tensors; views that are not contiguous are made so with
// contiguous(). Copies between pinned host memory and the device can be asynchronous
// (copy_async with a Stream).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "tensor/dtype.h"
#include "tensor/error.h"

namespace cxr {

using Shape = std::vector<std::int64_t>;
std::string shape_str(const Shape& s);  // "[8, 3, 64, 64]"
std::int64_t shape_numel(const Shape& s);

class Stream;

// The memory behind one or more tensors.
struct Storage {
  void* data = nullptr;
  std::size_t bytes = 0;
  Device device = Device::CPU;
  bool pinned = false;  // host memory from pinned_alloc
  Storage(std::size_t bytes, Device device, bool pinned);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

class Tensor {
 public:
  Tensor() = default;  // undefined tensor: defined() == false

  // --- construction ---------------------------------------------------------------
  static Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor empty_pinned(const Shape& shape, DType dtype = DType::F32);  // host, page-locked
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor full(const Shape& shape, float value, Device device = Device::CPU);
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape,
                            Device device = Device::CPU);
  // Seeded random f32 tensors, created on the CPU then moved to `device`.
  static Tensor randn(const Shape& shape, std::mt19937_64& rng, float mean = 0.f, float stddev = 1.f,
                      Device device = Device::CPU);
  static Tensor uniform(const Shape& shape, std::mt19937_64& rng, float lo, float hi,
                        Device device = Device::CPU);

  // --- properties -----------------------------------------------------------------
  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }  // in elements
  int dim() const { return static_cast<int>(shape_.size()); }
  std::int64_t size(int d) const;  // negative d counts from the end
  std::int64_t numel() const { return shape_numel(shape_); }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  bool is_cpu() const { return device_ == Device::CPU; }
  bool is_cuda() const { return device_ == Device::CUDA; }
  bool is_pinned() const { return storage_ && storage_->pinned; }
  bool is_contiguous() const;
  std::string str() const;  // "f32[8, 3, 64, 64] cuda"
  const std::shared_ptr<Storage>& storage() const { return storage_; }

  // --- data access ------------------------------------------------------------------
  // Typed pointer to the first element; checks the dtype.
  template <typename T> T* data() { check_dtype(dtype_of<T>()); return static_cast<T*>(raw_data()); }
  template <typename T> const T* data() const {
    check_dtype(dtype_of<T>());
    return static_cast<const T*>(const_cast<Tensor*>(this)->raw_data());
  }
  float* f32() { return data<float>(); }
  const float* f32() const { return data<float>(); }
  void* raw_data();
  const void* raw_data() const { return const_cast<Tensor*>(this)->raw_data(); }
  std::vector<float> to_vector() const;  // any device, f32 or bf16 (widened); copies to the host
  float item() const;                    // the single element of a one-element tensor

  // --- views ------------------------------------------------------------------------
  Tensor view(const Shape& shape) const;     // contiguous only; one dimension may be -1
  Tensor reshape(const Shape& shape) const;  // a view when possible, a copy otherwise
  Tensor narrow(int dim, std::int64_t start, std::int64_t length) const;
  Tensor select(int dim, std::int64_t index) const;  // removes `dim`
  Tensor permute(const std::vector<int>& order) const;
  Tensor flatten(int start_dim = 0) const;  // dims start_dim.. folded into one

  // --- copies -----------------------------------------------------------------------
  Tensor contiguous() const;  // this if already contiguous, else a packed copy
  Tensor clone() const;
  Tensor to(Device device) const;  // this if already there
  Tensor cpu() const { return to(Device::CPU); }
  void copy_(const Tensor& src);  // same shape and dtype, any devices
  // Asynchronous copy on `stream`; the host side must be pinned for real asynchrony.
  void copy_async_(const Tensor& src, Stream& stream);
  void fill_(float value);
  void zero_();

 private:
  void check_dtype(DType expected) const;
  std::shared_ptr<Storage> storage_;
  Shape shape_, strides_;
  std::int64_t offset_ = 0;  // in elements
  DType dtype_ = DType::F32;
  Device device_ = Device::CPU;
};

Shape contiguous_strides(const Shape& shape);

// Argument checks for ops; the messages name the op, the arguments and both sides.
//   check_same_shape("add", "a", a, "b", b);
void check_defined(const char* op, const char* name, const Tensor& t);
void check_same_shape(const char* op, const char* name_a, const Tensor& a, const char* name_b, const Tensor& b);
void check_same_device(const char* op, const char* name_a, const Tensor& a, const char* name_b, const Tensor& b);
void check_same_dtype(const char* op, const char* name_a, const Tensor& a, const char* name_b, const Tensor& b);
void check_dtype(const char* op, const char* name, const Tensor& t, DType expected);
void check_dim(const char* op, const char* name, const Tensor& t, int expected_dim);
void check_shape(const char* op, const char* name, const Tensor& t, const Shape& expected);
void check_contiguous(const char* op, const char* name, const Tensor& t);
// All of: defined, f32, contiguous, same device as `like` (when given).
void check_f32_input(const char* op, const char* name, const Tensor& t, const Tensor* like = nullptr);

}  // namespace cxr
