// wmma.h: CUDA's warp matrix API (nvcuda::wmma, <mma.h>) on the emulated device.
//
// Supported: the TF32 shape m16n16k8 (fragments of matrix_a / matrix_b with precision::tf32 in
// row_major or col_major, float accumulators), the BF16 shape m16n16k16 (matrix_a / matrix_b of
// __nv_bfloat16, cuda_emu/bf16.h, float accumulators), fill_fragment, load_matrix_sync,
// store_matrix_sync, mma_sync and __float_to_tf32. That is what the tensor-core kernels of cxr
// use; another shape or type fails to compile here rather than run wrongly.
//
// Semantics kept from the GPU (so a kernel that passes here is right on the GPU, up to speed):
//   * a fragment is spread over the 32 lanes of a warp: each lane holds num_elements values
//     (4 for a 16x8 A, 4 for an 8x16 B, 8 for a 16x16 accumulator). The GPU's mapping of
//     elements to lanes is unspecified, so code may only apply the same operation to every
//     x[i]; here lane l holds the elements l*num_elements .. +num_elements-1 of the tile in
//     row-major order;
//   * the *_sync calls are warp collectives: every lane of the warp must reach them (else the
//     emulator reports a deadlock or a missing lane); mma_sync gathers the fragments of all
//     lanes through the warp-collective machinery of the scheduler;
//   * the TF32 product ignores the low 13 mantissa bits of each operand (the GPU reads only the
//     top 19 bits of a tf32 register); __float_to_tf32 rounds to nearest, ties away (cvt.rna);
//     products are exact in double and added to the accumulator, then rounded to float once;
//   * BF16 products are exact (8-bit significands); they are summed in double with the
//     accumulator and rounded to float once, as for TF32;
//   * load/store pointers must be 32-byte aligned and ldm a multiple of 16 bytes (4 floats,
//     8 bf16), as on the GPU: a violation stops with a message instead of silently working
//     here only.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "cuda_emu/bf16.h"

namespace nvcuda::wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };
namespace precision {
struct tf32 {};
}  // namespace precision

namespace detail {

inline unsigned lane_id() {
  const unsigned linear = threadIdx.x + threadIdx.y * blockDim.x + threadIdx.z * blockDim.x * blockDim.y;
  return linear % 32u;
}

inline void check_pointer(const void* p, unsigned ldm, std::size_t element_bytes, const char* op) {
  if ((reinterpret_cast<std::uintptr_t>(p) & 31u) != 0)
    cuda_emu::detail::fatal("wmma: the pointer passed to load/store_matrix_sync must be 32-byte aligned");
  if (ldm * element_bytes % 16 != 0) cuda_emu::detail::fatal("wmma: ldm must be a multiple of 16 bytes");
  (void)op;
}

inline std::uint32_t bits(float v) {
  std::uint32_t b;
  std::memcpy(&b, &v, 4);
  return b;
}
inline float from(std::uint32_t b) {
  float v;
  std::memcpy(&v, &b, 4);
  return v;
}

// The value the tensor core multiplies: the top 19 bits (sign, exponent, 10 mantissa bits).
inline double tf32_operand(float v) { return static_cast<double>(from(bits(v) & 0xffffe000u)); }

// Every lane's x[0..Num) gathered into all[lane * Num + i] (2 floats per collective step).
template <int Num>
void gather(const float (&x)[Num], float (&all)[32 * Num], const char* op) {
  for (int i = 0; i < Num; i += 2) {
    const std::uint64_t lo = bits(x[i]);
    const std::uint64_t hi = i + 1 < Num ? bits(x[i + 1]) : 0u;
    const auto ex = cuda_emu::detail::warp_collective(0xffffffffu, lo | (hi << 32), op);
    if (ex.arrived != 0xffffffffu) cuda_emu::detail::fatal("wmma: a *_sync call needs all 32 lanes of the warp");
    for (int lane = 0; lane < 32; ++lane) {
      all[lane * Num + i] = from(static_cast<std::uint32_t>(ex.values[lane]));
      if (i + 1 < Num) all[lane * Num + i + 1] = from(static_cast<std::uint32_t>(ex.values[lane] >> 32));
    }
  }
}

// A Rows x Cols tile of T spread over the warp.
template <int Rows, int Cols, class T = float>
struct tile_fragment {
  static constexpr int rows = Rows, cols = Cols;
  static constexpr int num_elements = Rows * Cols / 32;
  T x[num_elements];
};

}  // namespace detail

template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment;

template <class Layout>
struct fragment<matrix_a, 16, 16, 8, precision::tf32, Layout> : detail::tile_fragment<16, 8> {
  using layout = Layout;
};
template <class Layout>
struct fragment<matrix_b, 16, 16, 8, precision::tf32, Layout> : detail::tile_fragment<8, 16> {
  using layout = Layout;
};
template <>
struct fragment<accumulator, 16, 16, 8, float, void> : detail::tile_fragment<16, 16> {};
template <class Layout>
struct fragment<matrix_a, 16, 16, 16, __nv_bfloat16, Layout> : detail::tile_fragment<16, 16, __nv_bfloat16> {
  using layout = Layout;
};
template <class Layout>
struct fragment<matrix_b, 16, 16, 16, __nv_bfloat16, Layout> : detail::tile_fragment<16, 16, __nv_bfloat16> {
  using layout = Layout;
};
template <>
struct fragment<accumulator, 16, 16, 16, float, void> : detail::tile_fragment<16, 16> {};

template <class F>
void fill_fragment(F& f, float v) {
  for (auto& e : f.x) e = v;
}

namespace detail {
template <class F, class T>
void load(F& f, const T* p, unsigned ldm, bool row_major_memory) {
  check_pointer(p, ldm, sizeof(T), "load_matrix_sync");
  cuda_emu::detail::warp_collective(0xffffffffu, 0, "wmma::load_matrix_sync");
  const int first = static_cast<int>(lane_id()) * F::num_elements;
  for (int i = 0; i < F::num_elements; ++i) {
    const int r = (first + i) / F::cols, c = (first + i) % F::cols;
    f.x[i] = row_major_memory ? p[static_cast<std::size_t>(r) * ldm + c] : p[static_cast<std::size_t>(c) * ldm + r];
  }
}
}  // namespace detail

template <class Use, class Layout>
void load_matrix_sync(fragment<Use, 16, 16, 8, precision::tf32, Layout>& f, const float* p, unsigned ldm) {
  detail::load(f, p, ldm, std::is_same_v<Layout, row_major>);
}
template <class Use, class Layout>
void load_matrix_sync(fragment<Use, 16, 16, 16, __nv_bfloat16, Layout>& f, const __nv_bfloat16* p, unsigned ldm) {
  detail::load(f, p, ldm, std::is_same_v<Layout, row_major>);
}
template <int K>
void load_matrix_sync(fragment<accumulator, 16, 16, K, float>& f, const float* p, unsigned ldm, layout_t layout) {
  detail::load(f, p, ldm, layout == mem_row_major);
}

template <int K>
void store_matrix_sync(float* p, const fragment<accumulator, 16, 16, K, float>& f, unsigned ldm, layout_t layout) {
  detail::check_pointer(p, ldm, sizeof(float), "store_matrix_sync");
  cuda_emu::detail::warp_collective(0xffffffffu, 0, "wmma::store_matrix_sync");
  const int first = static_cast<int>(detail::lane_id()) * f.num_elements;
  for (int i = 0; i < f.num_elements; ++i) {
    const int r = (first + i) / 16, c = (first + i) % 16;
    (layout == mem_row_major ? p[static_cast<std::size_t>(r) * ldm + c] : p[static_cast<std::size_t>(c) * ldm + r]) =
        f.x[i];
  }
}

// d = a b + c for a 16x8 A, an 8x16 B and 16x16 C, D (d may be c).
template <class LayoutA, class LayoutB>
void mma_sync(fragment<accumulator, 16, 16, 8, float>& d, const fragment<matrix_a, 16, 16, 8, precision::tf32, LayoutA>& a,
              const fragment<matrix_b, 16, 16, 8, precision::tf32, LayoutB>& b,
              const fragment<accumulator, 16, 16, 8, float>& c) {
  float all_a[32 * 4], all_b[32 * 4], all_c[32 * 8];
  detail::gather(a.x, all_a, "wmma::mma_sync");
  detail::gather(b.x, all_b, "wmma::mma_sync");
  detail::gather(c.x, all_c, "wmma::mma_sync");
  if (detail::lane_id() == 0) cuda_emu::detail::count_mma();
  const int first = static_cast<int>(detail::lane_id()) * d.num_elements;
  for (int i = 0; i < d.num_elements; ++i) {
    const int r = (first + i) / 16, col = (first + i) % 16;
    double sum = 0.0;
    for (int k = 0; k < 8; ++k) sum += detail::tf32_operand(all_a[r * 8 + k]) * detail::tf32_operand(all_b[k * 16 + col]);
    d.x[i] = static_cast<float>(static_cast<double>(all_c[first + i]) + sum);
  }
}

// d = a b + c for 16x16 bf16 A and B, float C and D (d may be c).
template <class LayoutA, class LayoutB>
void mma_sync(fragment<accumulator, 16, 16, 16, float>& d,
              const fragment<matrix_a, 16, 16, 16, __nv_bfloat16, LayoutA>& a,
              const fragment<matrix_b, 16, 16, 16, __nv_bfloat16, LayoutB>& b,
              const fragment<accumulator, 16, 16, 16, float>& c) {
  float wa[8], wb[8], all_a[32 * 8], all_b[32 * 8], all_c[32 * 8];
  for (int i = 0; i < 8; ++i) {
    wa[i] = static_cast<float>(a.x[i]);
    wb[i] = static_cast<float>(b.x[i]);
  }
  detail::gather(wa, all_a, "wmma::mma_sync");
  detail::gather(wb, all_b, "wmma::mma_sync");
  detail::gather(c.x, all_c, "wmma::mma_sync");
  if (detail::lane_id() == 0) cuda_emu::detail::count_mma();
  const int first = static_cast<int>(detail::lane_id()) * d.num_elements;
  for (int i = 0; i < d.num_elements; ++i) {
    const int r = (first + i) / 16, col = (first + i) % 16;
    double sum = 0.0;
    for (int k = 0; k < 16; ++k) sum += static_cast<double>(all_a[r * 16 + k]) * all_b[k * 16 + col];
    d.x[i] = static_cast<float>(static_cast<double>(all_c[first + i]) + sum);
  }
}

// Round to the nearest TF32 value, ties away from zero (cvt.rna.tf32.f32); NaN and Inf unchanged.
inline float __float_to_tf32(float v) {
  const std::uint32_t b = detail::bits(v);
  if ((b & 0x7f800000u) == 0x7f800000u) return v;
  return detail::from((b + 0x1000u) & 0xffffe000u);
}

}  // namespace nvcuda::wmma
