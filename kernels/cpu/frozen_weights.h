// Frozen weights: packing a convolution's weights once for a whole evaluation.
//
// sgemm reorders op(A) into register-tile slivers before it multiplies (kernels/gemm.h:
// PackedA). A convolution's A is its weights, so every forward packs them again: a read and a
// write of the whole tensor, which for one image at 224 px is about as long as the product
// itself in ResNet's last stage (512 x 4608 weights times 49 pixels).
//
// Inside a FrozenWeightsScope the CPU convolutions keep the packed copy of each weight operand
// they see and reuse it on later calls, and so the other copies made from weights (Winograd's
// transformed filters, the weights with an evaluation batch norm folded in). The one who opens
// the scope promises that no weight, and no batch-norm statistic, changes while it is open:
// evaluation and validation (eval/evaluate.cpp: run_inference), prediction (eval/predict.cpp)
// and bench_inference open one; training never does. Scopes nest and share one cache, freed
// when the outermost one closes.
//
// An entry is found by the operand's address, shape, leading dimension, transposition and
// register tile, and 16 of its values at fixed places (so a temporary copy of a parameter,
// such as an autocast rounding, that lands at an address another one used finds its own
// entry, not the other's).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "kernels/gemm.h"

namespace cxr::cpu {

class FrozenWeightsScope {
 public:
  FrozenWeightsScope();
  ~FrozenWeightsScope();
  FrozenWeightsScope(const FrozenWeightsScope&) = delete;
  FrozenWeightsScope& operator=(const FrozenWeightsScope&) = delete;
};

bool weights_frozen();

// op(A) (M x K, A stored with lda, transposed or not) packed, from the cache (packed on the first
// call); nullptr outside a FrozenWeightsScope.
const PackedA* frozen_packed_a(bool trans_a, std::int64_t M, std::int64_t K, const float* A, std::int64_t lda);

// The copies frozen_derived keeps, told apart by kind.
enum class FrozenKind {
  WinogradFilters = 1,         // Winograd's transformed and packed filters (kernels/cpu/winograd.cpp)
  WinogradFlippedFilters = 2,  // the same of the flipped filters (backward-data)
  FoldedBatchNorm = 3,         // w and b with an evaluation batch norm folded in (kernels/conv2d_bn.cpp)
};

// Another copy derived from a weight tensor w (rows x cols floats, row-major) and kept the same
// way; make(room) fills `floats` floats on the first call. `also`: a digest (digest_floats) of
// any other tensors the copy is made from (a folded batch norm's statistics), part of the
// entry's identity. nullptr outside a FrozenWeightsScope.
const float* frozen_derived(FrozenKind kind, const float* w, std::int64_t rows, std::int64_t cols,
                            std::int64_t floats, const std::function<void(float*)>& make, std::uint64_t also = 0);

// A 64-bit digest of the bits of v[0 .. n), continuing from `seed` (chain several tensors).
std::uint64_t digest_floats(const float* v, std::int64_t n, std::uint64_t seed = 0);

// The cache now: entries and bytes (tests, diagnostics).
std::size_t frozen_weights_entries();
std::size_t frozen_weights_bytes();

}  // namespace cxr::cpu
