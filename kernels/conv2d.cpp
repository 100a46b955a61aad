// Tensor-level conv2d: shape checks, output allocation, device dispatch.
#include "kernels/conv2d.h"

#include "kernels/cast.h"
#include "kernels/library.h"

namespace cxr {

namespace {

// An operand pair of one convolution: both f32, or both bf16 (mixed precision). Returns
// whether they are bf16.
bool check_operands(const char* op, const char* a_name, const Tensor& a, const char* b_name, const Tensor& b) {
  CXR_CHECK(a.defined() && b.defined(), op, ": ", a.defined() ? b_name : a_name, " is undefined");
  const bool bf16 = a.dtype() == DType::BF16;
  CXR_CHECK(a.dtype() == b.dtype() && (bf16 || a.dtype() == DType::F32), op, ": ", a_name, " and ", b_name,
            " must both be f32 or both bf16, found ", a_name, " ", dtype_name(a.dtype()), " ", shape_str(a.shape()),
            " and ", b_name, " ", dtype_name(b.dtype()), " ", shape_str(b.shape()));
  if (bf16) {
    CXR_CHECK(a.is_contiguous() && b.is_contiguous(), op, ": bf16 operands must be contiguous");
    CXR_CHECK(a.device() == b.device(), op, ": ", a_name, " is on ", device_name(a.device()), ", ", b_name, " on ",
              device_name(b.device()));
  } else {
    check_f32_input(op, a_name, a);
    check_f32_input(op, b_name, b, &a);
  }
  return bf16;
}

// bf16 kernels exist on CUDA; the CPU widens to f32.
bool bf16_kernels(const Tensor& t) { return t.is_cuda(); }

void check_params(const Conv2dParams& p) {
  CXR_CHECK(p.stride_h >= 1 && p.stride_w >= 1, "conv2d: stride must be >= 1, found (", p.stride_h, ", ",
            p.stride_w, ")");
  CXR_CHECK(p.pad_h >= 0 && p.pad_w >= 0, "conv2d: padding must be >= 0, found (", p.pad_h, ", ", p.pad_w, ")");
  CXR_CHECK(p.dilation_h >= 1 && p.dilation_w >= 1, "conv2d: dilation must be >= 1, found (", p.dilation_h, ", ",
            p.dilation_w, ")");
  CXR_CHECK(p.groups >= 1, "conv2d: groups must be >= 1, found ", p.groups);
}

}  // namespace

Conv2dDims conv2d_dims(const Shape& x, const Shape& w, const Conv2dParams& p) {
  check_params(p);
  CXR_CHECK(x.size() == 4, "conv2d: x must be (N, C, H, W), found ", shape_str(x));
  CXR_CHECK(w.size() == 4, "conv2d: w must be (K, C/groups, R, S), found ", shape_str(w));
  for (auto v : x) CXR_CHECK(v >= 0 && v < (1ll << 31), "conv2d: x size out of range: ", shape_str(x));
  for (auto v : w) CXR_CHECK(v >= 0 && v < (1ll << 31), "conv2d: w size out of range: ", shape_str(w));
  Conv2dDims d;
  d.N = static_cast<int>(x[0]);
  d.C = static_cast<int>(x[1]);
  d.H = static_cast<int>(x[2]);
  d.W = static_cast<int>(x[3]);
  d.K = static_cast<int>(w[0]);
  d.R = static_cast<int>(w[2]);
  d.S = static_cast<int>(w[3]);
  d.sh = p.stride_h;
  d.sw = p.stride_w;
  d.ph = p.pad_h;
  d.pw = p.pad_w;
  d.dh = p.dilation_h;
  d.dw = p.dilation_w;
  d.G = p.groups;
  CXR_CHECK(d.C % d.G == 0, "conv2d: input channels (", d.C, ", x ", shape_str(x), ") not divisible by groups (",
            d.G, ")");
  CXR_CHECK(d.K % d.G == 0, "conv2d: output channels (", d.K, ", w ", shape_str(w), ") not divisible by groups (",
            d.G, ")");
  CXR_CHECK(w[1] == d.C / d.G, "conv2d: w ", shape_str(w), " must have C/groups = ", d.C, "/", d.G, " = ",
            d.C / d.G, " input channels per filter, found ", w[1], " (x ", shape_str(x), ")");
  CXR_CHECK(d.K > 0 && d.R > 0 && d.S > 0, "conv2d: empty filter bank w ", shape_str(w));
  const std::int64_t eff_r = static_cast<std::int64_t>(d.dh) * (d.R - 1) + 1;
  const std::int64_t eff_s = static_cast<std::int64_t>(d.dw) * (d.S - 1) + 1;
  CXR_CHECK(d.H + 2ll * d.ph >= eff_r && d.W + 2ll * d.pw >= eff_s, "conv2d: the ", eff_r, "x", eff_s,
            " (dilated) filter is larger than the padded input ", d.H + 2 * d.ph, "x", d.W + 2 * d.pw, " (x ",
            shape_str(x), ", padding ", d.ph, ", ", d.pw, ")");
  d.P = static_cast<int>((d.H + 2ll * d.ph - eff_r) / d.sh + 1);
  d.Q = static_cast<int>((d.W + 2ll * d.pw - eff_s) / d.sw + 1);
  return d;
}

Shape conv2d_output_shape(const Shape& x, const Shape& w, const Conv2dParams& p) {
  const Conv2dDims d = conv2d_dims(x, w, p);
  return {d.N, d.K, d.P, d.Q};
}

Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p, DType y_dtype) {
  Tensor no_stats;
  return conv2d_forward_tile_stats(x, w, bias, p, no_stats, false, y_dtype);
}

Tensor conv2d_forward_tile_stats(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p,
                                 Tensor& tile_stats, bool want_stats, DType y_dtype) {
  const bool bf16 = check_operands("conv2d", "x", x, "w", w);
  const Conv2dDims d = conv2d_dims(x.shape(), w.shape(), p);
  if (bias.defined()) {
    check_f32_input("conv2d", "bias", bias, &x);
    check_shape("conv2d", "bias", bias, {d.K});
  }
  CXR_CHECK(y_dtype == DType::F32 || (y_dtype == DType::BF16 && bf16), "conv2d: y can be f32, or bf16 with bf16 ",
            "operands; asked for ", dtype_name(y_dtype), " with x ", x.str());
  tile_stats = Tensor();
  if (library::wanted(x)) {  // cuDNN (kernels/library.h): no statistics epilogue
    Tensor y = Tensor::empty({d.N, d.K, d.P, d.Q}, y_dtype, x.device());
    library::conv2d_forward(d, x, w, bias, y);
    return y;
  }
  if (bf16 && !bf16_kernels(x)) {
    const Tensor y = conv2d_forward(to_f32(x), to_f32(w), bias, p);
    return y_dtype == DType::BF16 ? to_bf16(y) : y;
  }
  Tensor y = Tensor::empty({d.N, d.K, d.P, d.Q}, y_dtype, x.device());
  const float* b = bias.defined() ? bias.f32() : nullptr;
  if (want_stats && x.is_cuda())
    tile_stats = Tensor::empty({conv2d_stats_tiles(d), d.K, 2}, DType::F32, x.device());
  float* stats = tile_stats.defined() ? tile_stats.f32() : nullptr;
  if (y_dtype == DType::BF16)
    cuda::conv2d_forward_bf16(d, x.data<std::uint16_t>(), w.data<std::uint16_t>(), b, y.data<std::uint16_t>(), stats);
  else if (bf16)
    cuda::conv2d_forward_bf16(d, x.data<std::uint16_t>(), w.data<std::uint16_t>(), b, y.f32(), stats);
  else if (x.is_cpu()) cpu::conv2d_forward(d, x.f32(), w.f32(), b, y.f32());
  else cuda::conv2d_forward(d, x.f32(), w.f32(), b, y.f32(), stats);
  return y;
}

Tensor conv2d_backward_data(const Tensor& dy, const Tensor& w, const Shape& x_shape, const Conv2dParams& p) {
  const bool bf16 = check_operands("conv2d_backward_data", "dy", dy, "w", w);
  const Conv2dDims d = conv2d_dims(x_shape, w.shape(), p);
  check_shape("conv2d_backward_data", "dy", dy, {d.N, d.K, d.P, d.Q});
  if (bf16 && !bf16_kernels(dy)) return conv2d_backward_data(to_f32(dy), to_f32(w), x_shape, p);
  Tensor dx = Tensor::empty(x_shape, DType::F32, dy.device());
  if (library::wanted(dy)) {
    library::conv2d_backward_data(d, dy, w, dx);
    return dx;
  }
  if (bf16) cuda::conv2d_backward_data_bf16(d, dy.data<std::uint16_t>(), w.data<std::uint16_t>(), dx.f32());
  else if (dy.is_cpu()) cpu::conv2d_backward_data(d, dy.f32(), w.f32(), dx.f32());
  else cuda::conv2d_backward_data(d, dy.f32(), w.f32(), dx.f32());
  return dx;
}

Tensor conv2d_backward_weight(const Tensor& dy, const Tensor& x, const Shape& w_shape, const Conv2dParams& p) {
  const bool bf16 = check_operands("conv2d_backward_weight", "dy", dy, "x", x);
  const Conv2dDims d = conv2d_dims(x.shape(), w_shape, p);
  check_shape("conv2d_backward_weight", "dy", dy, {d.N, d.K, d.P, d.Q});
  if (bf16 && !bf16_kernels(dy)) return conv2d_backward_weight(to_f32(dy), to_f32(x), w_shape, p);
  Tensor dw = Tensor::empty(w_shape, DType::F32, dy.device());
  if (library::wanted(dy)) {
    library::conv2d_backward_weight(d, dy, x, dw);
    return dw;
  }
  if (bf16) cuda::conv2d_backward_weight_bf16(d, dy.data<std::uint16_t>(), x.data<std::uint16_t>(), dw.f32());
  else if (dy.is_cpu()) cpu::conv2d_backward_weight(d, dy.f32(), x.f32(), dw.f32());
  else cuda::conv2d_backward_weight(d, dy.f32(), x.f32(), dw.f32());
  return dw;
}

Tensor conv2d_backward_bias(const Tensor& dy) {
  check_f32_input("conv2d_backward_bias", "dy", dy);
  check_dim("conv2d_backward_bias", "dy", dy, 4);
  Conv2dDims d;
  d.N = static_cast<int>(dy.size(0));
  d.K = static_cast<int>(dy.size(1));
  d.P = static_cast<int>(dy.size(2));
  d.Q = static_cast<int>(dy.size(3));
  Tensor db = Tensor::empty({d.K}, DType::F32, dy.device());
  if (dy.is_cpu()) cpu::conv2d_backward_bias(d, dy.f32(), db.f32());
  else cuda::conv2d_backward_bias(d, dy.f32(), db.f32());
  return db;
}

Conv2dGrads conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& dy, const Conv2dParams& p,
                            bool with_bias) {
  Conv2dGrads g;
  g.dx = conv2d_backward_data(dy, w, x.shape(), p);
  g.dw = conv2d_backward_weight(dy, x, w.shape(), p);
  if (with_bias) g.db = conv2d_backward_bias(dy);
  return g;
}

}  // namespace cxr
