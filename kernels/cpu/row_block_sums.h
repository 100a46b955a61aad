// Column sums over many rows, in double, in parallel, and the same bits at any thread count.
//
//   total[j] = sum over row blocks b (in order) of [ sum over rows r of b (in order) of row_r[j] ]
//
// The rows go in fixed blocks of kRowBlock (independent of the thread count); each block adds
// its rows, in order, into a partial row of its own, and the partials are then added in block
// order. add_row(r, partial) adds row r's `width` values into partial. Used by the backward
// passes whose parameter gradients are sums over every pixel of a batch (layer norm's dweight
// and dbias, linear's db): done by one thread in row order they were 2-4 % of a ConvNeXt-Tiny
// training step each, with the other thread idle.
// Memory: one partial row per block, ceil(rows / kRowBlock) * width doubles.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace cxr::cpu {

constexpr std::int64_t kRowBlock = 256;

template <typename AddRow>
void sum_rows_in_blocks(std::int64_t rows, std::int64_t width, double* total, AddRow&& add_row) {
  const std::int64_t blocks = (rows + kRowBlock - 1) / kRowBlock;
  std::vector<double> partial(static_cast<std::size_t>(blocks * width), 0.0);
#pragma omp parallel for schedule(static) if (rows * width > (1 << 16))
  for (std::int64_t b = 0; b < blocks; ++b) {
    double* p = partial.data() + b * width;
    for (std::int64_t r = b * kRowBlock; r < std::min(rows, (b + 1) * kRowBlock); ++r) add_row(r, p);
  }
  std::fill(total, total + width, 0.0);
  for (std::int64_t b = 0; b < blocks; ++b) {
    const double* p = partial.data() + b * width;
    for (std::int64_t j = 0; j < width; ++j) total[j] += p[j];
  }
}

}  // namespace cxr::cpu
