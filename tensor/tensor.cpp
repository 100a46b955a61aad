#include "tensor/tensor.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif
#include <numeric>
#include <sstream>

#include "tensor/allocator.h"
#include "tensor/backend.h"
#include "tensor/host_allocator.h"
#include "tensor/bf16.h"
#include "tensor/stream.h"
#include "tensor/tensor_kernels.h"

namespace cxr {

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << '[';
  for (std::size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ']';
  return os.str();
}

std::int64_t shape_numel(const Shape& s) {
  std::int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

Shape contiguous_strides(const Shape& shape) {
  Shape st(shape.size());
  std::int64_t s = 1;
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    st[i] = s;
    s *= std::max<std::int64_t>(shape[i], 1);
  }
  return st;
}

// --- Storage ------------------------------------------------------------------------------

Storage::Storage(std::size_t nbytes, Device dev, bool pin) : bytes(nbytes), device(dev), pinned(pin) {
  if (device == Device::CUDA) {
    data = device_alloc(bytes);
  } else if (pinned) {
    data = pinned_alloc(bytes);
  } else {
    data = host_alloc(bytes);
    CXR_CHECK(data != nullptr, "out of host memory allocating ", bytes, " bytes");
  }
}

Storage::~Storage() {
  if (device == Device::CUDA) device_release(data);
  else if (pinned) pinned_release(data);
  else host_release(data, bytes);
}

// --- construction ---------------------------------------------------------------------------

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (auto d : shape) CXR_CHECK(d >= 0, "Tensor::empty: negative dimension in shape ", shape_str(shape));
  Tensor t;
  t.storage_ = std::make_shared<Storage>(static_cast<std::size_t>(shape_numel(shape)) * dtype_size(dtype),
                                         device, false);
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  t.dtype_ = dtype;
  t.device_ = device;
  return t;
}

Tensor Tensor::empty_pinned(const Shape& shape, DType dtype) {
  Tensor t;
  t.storage_ = std::make_shared<Storage>(static_cast<std::size_t>(shape_numel(shape)) * dtype_size(dtype),
                                         Device::CPU, true);
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  t.dtype_ = dtype;
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.zero_();
  return t;
}

Tensor Tensor::full(const Shape& shape, float value, Device device) {
  Tensor t = empty(shape, DType::F32, device);
  t.fill_(value);
  return t;
}

Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape, Device device) {
  CXR_CHECK(static_cast<std::int64_t>(values.size()) == shape_numel(shape), "Tensor::from_vector: ",
            values.size(), " values do not fill shape ", shape_str(shape));
  Tensor t = empty(shape, DType::F32, Device::CPU);
  std::copy(values.begin(), values.end(), t.f32());
  return t.to(device);
}

Tensor Tensor::randn(const Shape& shape, std::mt19937_64& rng, float mean, float stddev, Device device) {
  Tensor t = empty(shape, DType::F32, Device::CPU);
  std::normal_distribution<float> dist(mean, stddev);
  float* p = t.f32();
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = dist(rng);
  return t.to(device);
}

Tensor Tensor::uniform(const Shape& shape, std::mt19937_64& rng, float lo, float hi, Device device) {
  Tensor t = empty(shape, DType::F32, Device::CPU);
  std::uniform_real_distribution<float> dist(lo, hi);
  float* p = t.f32();
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = dist(rng);
  return t.to(device);
}

// --- properties -----------------------------------------------------------------------------

std::int64_t Tensor::size(int d) const {
  const int n = dim();
  if (d < 0) d += n;
  CXR_CHECK(d >= 0 && d < n, "Tensor::size: dimension ", d, " out of range for ", str());
  return shape_[d];
}

bool Tensor::is_contiguous() const { return strides_ == contiguous_strides(shape_); }

std::string Tensor::str() const {
  if (!defined()) return "undefined tensor";
  return std::string(dtype_name(dtype_)) + shape_str(shape_) + " " + device_name(device_);
}

void* Tensor::raw_data() {
  CXR_CHECK(defined(), "access to the data of an undefined tensor");
  return static_cast<char*>(storage_->data) + offset_ * static_cast<std::int64_t>(dtype_size(dtype_));
}

void Tensor::check_dtype(DType expected) const {
  CXR_CHECK(dtype_ == expected, "tensor ", str(), ": expected dtype ", dtype_name(expected), ", found ",
            dtype_name(dtype_));
}

std::vector<float> Tensor::to_vector() const {
  CXR_CHECK(defined(), "to_vector of an undefined tensor");
  Tensor c = contiguous().cpu();
  if (c.dtype() == DType::BF16) {  // widened exactly
    const std::uint16_t* p = c.data<std::uint16_t>();
    std::vector<float> v(static_cast<std::size_t>(c.numel()));
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = bf16_to_f32(p[i]);
    return v;
  }
  const float* p = c.f32();
  return std::vector<float>(p, p + c.numel());
}

float Tensor::item() const {
  CXR_CHECK(numel() == 1, "item(): expected a one-element tensor, found ", str());
  return to_vector()[0];
}

// --- views ---------------------------------------------------------------------------------

Tensor Tensor::view(const Shape& new_shape) const {
  CXR_CHECK(is_contiguous(), "view of a non-contiguous tensor ", str(), ": call contiguous() first");
  Shape s = new_shape;
  int infer = -1;
  std::int64_t known = 1;
  for (int i = 0; i < static_cast<int>(s.size()); ++i) {
    if (s[i] == -1) {
      CXR_CHECK(infer < 0, "view: more than one -1 in ", shape_str(new_shape));
      infer = i;
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0) {
    CXR_CHECK(known > 0 && numel() % known == 0, "view: cannot infer -1 in ", shape_str(new_shape), " for ", str());
    s[infer] = numel() / known;
  }
  CXR_CHECK(shape_numel(s) == numel(), "view: shape ", shape_str(new_shape), " has ", shape_numel(s),
            " elements but the tensor ", str(), " has ", numel());
  Tensor t = *this;
  t.shape_ = s;
  t.strides_ = contiguous_strides(s);
  return t;
}

Tensor Tensor::reshape(const Shape& s) const { return is_contiguous() ? view(s) : contiguous().view(s); }

Tensor Tensor::narrow(int d, std::int64_t start, std::int64_t length) const {
  if (d < 0) d += dim();
  CXR_CHECK(d >= 0 && d < dim(), "narrow: dimension ", d, " out of range for ", str());
  CXR_CHECK(start >= 0 && length >= 0 && start + length <= shape_[d], "narrow: range [", start, ", ",
            start + length, ") out of bounds for dimension ", d, " of ", str());
  Tensor t = *this;
  t.offset_ += start * strides_[d];
  t.shape_[d] = length;
  return t;
}

Tensor Tensor::select(int d, std::int64_t index) const {
  if (d < 0) d += dim();
  Tensor t = narrow(d, index, 1);
  t.shape_.erase(t.shape_.begin() + d);
  t.strides_.erase(t.strides_.begin() + d);
  return t;
}

Tensor Tensor::permute(const std::vector<int>& order) const {
  CXR_CHECK(static_cast<int>(order.size()) == dim(), "permute: ", order.size(), " axes given for ", str());
  std::vector<bool> seen(dim(), false);
  Tensor t = *this;
  for (int i = 0; i < dim(); ++i) {
    const int o = order[i];
    CXR_CHECK(o >= 0 && o < dim() && !seen[o], "permute: invalid axis order for ", str());
    seen[o] = true;
    t.shape_[i] = shape_[o];
    t.strides_[i] = strides_[o];
  }
  return t;
}

Tensor Tensor::flatten(int start_dim) const {
  if (start_dim < 0) start_dim += dim();
  Shape s(shape_.begin(), shape_.begin() + start_dim);
  s.push_back(-1);
  return reshape(s);
}

// --- copies --------------------------------------------------------------------------------

namespace {

// CPU strided gather into contiguous memory. Dimensions that are contiguous with the next one
// in the source are merged first, then every row of the last (merged) dimension is one tight
// loop typed on the element size, rows spread over OpenMP threads when there are many bytes
// (a permute(0, 2, 3, 1).contiguous() of ConvNeXt gathers C floats HW apart per row). Each
// element is copied once whatever the split, so the result never depends on the thread count.
template <typename E>
void copy_rows(E* d, const E* s, const std::vector<std::int64_t>& shape, const std::vector<std::int64_t>& strides,
               std::int64_t rows) {
  const int dims = static_cast<int>(shape.size());
  const std::int64_t len = shape[dims - 1], step = strides[dims - 1];
#pragma omp parallel if (rows * len * static_cast<std::int64_t>(sizeof(E)) >= (std::int64_t(1) << 20))
  {
#ifdef _OPENMP
    const std::int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
#else
    const std::int64_t threads = 1, t = 0;
#endif
    const std::int64_t r0 = rows * t / threads, r1 = rows * (t + 1) / threads;
    // The source offset of row r0: its index in each outer dimension.
    std::vector<std::int64_t> idx(static_cast<std::size_t>(std::max(dims - 1, 0)), 0);
    std::int64_t rest = r0, off = 0;
    for (int k = dims - 2; k >= 0; --k) {
      idx[static_cast<std::size_t>(k)] = rest % shape[k];
      rest /= shape[k];
      off += idx[static_cast<std::size_t>(k)] * strides[k];
    }
    for (std::int64_t r = r0; r < r1; ++r) {
      E* out = d + r * len;
      const E* in = s + off;
      if (step == 1) std::memcpy(out, in, sizeof(E) * static_cast<std::size_t>(len));
      else
        for (std::int64_t j = 0; j < len; ++j) out[j] = in[j * step];
      for (int k = dims - 2; k >= 0; --k) {  // the next row's offset
        off += strides[k];
        if (++idx[static_cast<std::size_t>(k)] < shape[k]) break;
        off -= idx[static_cast<std::size_t>(k)] * strides[k];
        idx[static_cast<std::size_t>(k)] = 0;
      }
    }
  }
}

// The (merged) source is `outer` matrices, `outer_stride` apart, each stored as B rows of A
// contiguous elements, and the copy is their transposes (A rows of B): d[o][a][b] = s[o][b][a].
// ConvNeXt's permutes between (N, C, HW) and (N, HW, C) are this. A row-by-row gather reads B
// elements A apart for each destination row, one cache line each; here both sides go in square
// tiles of kTile x kTile (a tile's source lines stay in L1 while its destination rows are written).
template <typename E>
void transpose_matrices(E* d, const E* s, std::int64_t outer, std::int64_t outer_stride, std::int64_t A,
                        std::int64_t B) {
  constexpr std::int64_t kTile = 16;
  const std::int64_t a_tiles = (A + kTile - 1) / kTile, b_tiles = (B + kTile - 1) / kTile;
  const bool parallel = outer * A * B * static_cast<std::int64_t>(sizeof(E)) >= (std::int64_t(1) << 20);
  const auto tile = [&](std::int64_t o, std::int64_t at, std::int64_t bt) {
    const E* so = s + o * outer_stride;
    E* dout = d + o * A * B;
    const std::int64_t a0 = at * kTile, a1 = std::min(A, a0 + kTile), b0 = bt * kTile, b1 = std::min(B, b0 + kTile);
    for (std::int64_t a = a0; a < a1; ++a)
      for (std::int64_t b = b0; b < b1; ++b) dout[a * B + b] = so[b * A + a];
  };
  // The longer side streams: a strip of kTile source rows (or destination rows) is swept from
  // end to end, so that each of its rows is read (written) in order, which the hardware
  // prefetchers follow. ConvNeXt's first stage at batch 64, 2 threads, data from memory:
  // 7-8 GB/s in the other order, 12 GB/s in this one, both directions.
  if (A >= B) {
#pragma omp parallel for collapse(2) schedule(static) if (parallel)
    for (std::int64_t o = 0; o < outer; ++o)
      for (std::int64_t bt = 0; bt < b_tiles; ++bt)
        for (std::int64_t at = 0; at < a_tiles; ++at) tile(o, at, bt);
  } else {
#pragma omp parallel for collapse(2) schedule(static) if (parallel)
    for (std::int64_t o = 0; o < outer; ++o)
      for (std::int64_t at = 0; at < a_tiles; ++at)
        for (std::int64_t bt = 0; bt < b_tiles; ++bt) tile(o, at, bt);
  }
}

void strided_copy_cpu(void* dst, const void* src, const Shape& shape, const Shape& strides, std::size_t elem) {
  const std::int64_t n = shape_numel(shape);
  if (n == 0) return;
  // Merge dimension k into k + 1 where stride[k] == shape[k+1] stride[k+1]; drop size-1 ones.
  std::vector<std::int64_t> sh, st;
  for (std::size_t k = 0; k < shape.size(); ++k) {
    if (shape[k] == 1) continue;
    if (!sh.empty() && st.back() == shape[k] * strides[k]) {
      sh.back() *= shape[k];
      st.back() = strides[k];
    } else {
      sh.push_back(shape[k]);
      st.push_back(strides[k]);
    }
  }
  if (sh.empty()) sh = {1}, st = {1};
  // Transposes of contiguous matrices, one per index of at most one outer dimension.
  const std::size_t dims = sh.size();
  if ((dims == 2 || dims == 3) && st[dims - 2] == 1 && st[dims - 1] == sh[dims - 2]) {
    const std::int64_t outer = dims == 3 ? sh[0] : 1, outer_stride = dims == 3 ? st[0] : 0;
    const std::int64_t A = sh[dims - 2], B = sh[dims - 1];
    switch (elem) {
      case 2: {
        using E = std::uint16_t;
        return transpose_matrices(static_cast<E*>(dst), static_cast<const E*>(src), outer, outer_stride, A, B);
      }
      case 4: {
        using E = std::uint32_t;
        return transpose_matrices(static_cast<E*>(dst), static_cast<const E*>(src), outer, outer_stride, A, B);
      }
      default: break;  // the row gather below
    }
  }
  const std::int64_t rows = n / sh.back();
  switch (elem) {
    case 1: return copy_rows(static_cast<std::uint8_t*>(dst), static_cast<const std::uint8_t*>(src), sh, st, rows);
    case 2: return copy_rows(static_cast<std::uint16_t*>(dst), static_cast<const std::uint16_t*>(src), sh, st, rows);
    case 4: return copy_rows(static_cast<std::uint32_t*>(dst), static_cast<const std::uint32_t*>(src), sh, st, rows);
    case 8: return copy_rows(static_cast<std::uint64_t*>(dst), static_cast<const std::uint64_t*>(src), sh, st, rows);
  }
  CXR_FAIL("contiguous: no copy for elements of ", elem, " bytes");
}

backend::CopyKind copy_kind(Device dst, Device src) {
  if (dst == Device::CUDA && src == Device::CUDA) return backend::CopyKind::DeviceToDevice;
  if (dst == Device::CUDA) return backend::CopyKind::HostToDevice;
  return backend::CopyKind::DeviceToHost;
}

}  // namespace

Tensor Tensor::contiguous() const {
  CXR_CHECK(defined(), "contiguous() of an undefined tensor");
  if (is_contiguous()) return *this;
  Tensor out = empty(shape_, dtype_, device_);
  const std::size_t elem = dtype_size(dtype_);
  const void* src = static_cast<const char*>(storage_->data) + offset_ * static_cast<std::int64_t>(elem);
  if (is_cpu()) {
    strided_copy_cpu(out.raw_data(), src, shape_, strides_, elem);
  } else {
    CXR_CHECK(dim() <= cuda::kMaxDims, "contiguous: at most ", cuda::kMaxDims, " dimensions on CUDA, found ", str());
    cuda::strided_copy(out.raw_data(), src, dim(), shape_.data(), strides_.data(), elem, numel());
  }
  return out;
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape_, dtype_, device_);
  out.copy_(*this);
  return out;
}

Tensor Tensor::to(Device device) const {
  CXR_CHECK(defined(), "to(", device_name(device), ") of an undefined tensor");
  if (device == device_) return *this;
  Tensor out = empty(shape_, dtype_, device);
  out.copy_(*this);
  return out;
}

void Tensor::copy_(const Tensor& src) {
  check_same_shape("copy_", "destination", *this, "source", src);
  check_same_dtype("copy_", "destination", *this, "source", src);
  CXR_CHECK(is_contiguous(), "copy_: the destination ", str(), " must be contiguous");
  Tensor s = src.contiguous();
  if (nbytes() == 0) return;
  if (is_cpu() && s.is_cpu()) {
    std::memcpy(raw_data(), s.raw_data(), nbytes());
  } else {
    backend::copy(raw_data(), s.raw_data(), nbytes(), copy_kind(device_, s.device_));
  }
}

void Tensor::copy_async_(const Tensor& src, Stream& stream) {
  check_same_shape("copy_async_", "destination", *this, "source", src);
  check_same_dtype("copy_async_", "destination", *this, "source", src);
  CXR_CHECK(is_contiguous() && src.is_contiguous(), "copy_async_: both tensors must be contiguous, found ",
            str(), " and ", src.str());
  if (nbytes() == 0) return;
  if (is_cpu() && src.is_cpu()) {
    std::memcpy(raw_data(), src.raw_data(), nbytes());
    return;
  }
  backend::copy_async(raw_data(), src.raw_data(), nbytes(), copy_kind(device_, src.device_), stream.handle());
}

void Tensor::fill_(float value) {
  check_dtype(DType::F32);
  CXR_CHECK(is_contiguous(), "fill_: tensor ", str(), " must be contiguous");
  if (is_cpu()) std::fill(f32(), f32() + numel(), value);
  else cuda::fill_f32(f32(), value, numel());
}

void Tensor::zero_() {
  CXR_CHECK(is_contiguous(), "zero_: tensor ", str(), " must be contiguous");
  if (nbytes() == 0) return;
  if (is_cpu()) std::memset(raw_data(), 0, nbytes());
  else backend::memset_device(raw_data(), 0, nbytes());
}

// --- argument checks -------------------------------------------------------------------------

void check_defined(const char* op, const char* name, const Tensor& t) {
  CXR_CHECK(t.defined(), op, ": tensor '", name, "' is undefined");
}

void check_same_shape(const char* op, const char* na, const Tensor& a, const char* nb, const Tensor& b) {
  CXR_CHECK(a.shape() == b.shape(), op, ": shapes differ: ", na, " is ", shape_str(a.shape()), " but ", nb,
            " is ", shape_str(b.shape()));
}

void check_same_device(const char* op, const char* na, const Tensor& a, const char* nb, const Tensor& b) {
  CXR_CHECK(a.device() == b.device(), op, ": devices differ: ", na, " is on ", device_name(a.device()), " but ",
            nb, " is on ", device_name(b.device()));
}

void check_same_dtype(const char* op, const char* na, const Tensor& a, const char* nb, const Tensor& b) {
  CXR_CHECK(a.dtype() == b.dtype(), op, ": dtypes differ: ", na, " is ", dtype_name(a.dtype()), " but ", nb,
            " is ", dtype_name(b.dtype()));
}

void check_dtype(const char* op, const char* name, const Tensor& t, DType expected) {
  CXR_CHECK(t.dtype() == expected, op, ": '", name, "' must be ", dtype_name(expected), ", found ", t.str());
}

void check_dim(const char* op, const char* name, const Tensor& t, int expected_dim) {
  CXR_CHECK(t.dim() == expected_dim, op, ": '", name, "' must have ", expected_dim, " dimensions, found ",
            t.str());
}

void check_shape(const char* op, const char* name, const Tensor& t, const Shape& expected) {
  CXR_CHECK(t.shape() == expected, op, ": '", name, "' must have shape ", shape_str(expected), ", found ",
            t.str());
}

void check_contiguous(const char* op, const char* name, const Tensor& t) {
  CXR_CHECK(t.is_contiguous(), op, ": '", name, "' must be contiguous, found a strided view ", t.str());
}

void check_f32_input(const char* op, const char* name, const Tensor& t, const Tensor* like) {
  check_defined(op, name, t);
  check_dtype(op, name, t, DType::F32);
  check_contiguous(op, name, t);
  if (like) CXR_CHECK(t.device() == like->device(), op, ": '", name, "' is on ", device_name(t.device()),
                      " but the other inputs are on ", device_name(like->device()));
}

}  // namespace cxr
