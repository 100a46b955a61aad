// Frozen weights (kernels/cpu/frozen_weights.h): inside a FrozenWeightsScope the CPU
// convolutions reuse each weight's packed copy. The results are the bits of the unscoped ones;
// one entry per weight operand, reused on later calls; a temporary copy of other values that
// lands at a cached address does not take the cached packing; nested scopes share the cache and
// the outermost one frees it.
#include <algorithm>
#include <random>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/cpu/frozen_weights.h"
#include "tests/op_check.h"

using namespace cxr;
using namespace cxr::test;

namespace {

Conv2dParams same3x3() {
  Conv2dParams p;
  p.pad_h = p.pad_w = 1;
  return p;
}

}  // namespace

TEST_CASE("frozen weights: the packed copies are reused, the results keep their bits" * doctest::test_suite("cpu")) {
  std::mt19937_64 rng(8);
  const Tensor x = Tensor::randn({3, 8, 9, 9}, rng);
  const Tensor w1 = Tensor::randn({16, 8, 3, 3}, rng), w2 = Tensor::randn({16, 8, 3, 3}, rng);
  const Tensor b = Tensor::randn({16}, rng);
  Conv2dParams s2 = same3x3();
  s2.stride_h = s2.stride_w = 2;  // the im2col path
  const Tensor y1 = conv2d_forward(x, w1, b, same3x3()), y2 = conv2d_forward(x, w2, Tensor(), same3x3());
  const Tensor y3 = conv2d_forward(x, w1, b, s2);
  REQUIRE(cpu::frozen_weights_entries() == 0);
  {
    const cpu::FrozenWeightsScope frozen;
    CHECK(cpu::weights_frozen());
    for (int call = 0; call < 2; ++call) {
      CHECK(to_doubles(conv2d_forward(x, w1, b, same3x3())) == to_doubles(y1));
      CHECK(to_doubles(conv2d_forward(x, w2, Tensor(), same3x3())) == to_doubles(y2));
      CHECK(to_doubles(conv2d_forward(x, w1, b, s2)) == to_doubles(y3));
      CHECK(cpu::frozen_weights_entries() == 2);  // w1 (both strides share its packing) and w2
    }
    CHECK(cpu::frozen_weights_bytes() >= 2 * 16 * 72 * sizeof(float));
    {
      const cpu::FrozenWeightsScope nested;
      CHECK(to_doubles(conv2d_forward(x, w2, Tensor(), same3x3())) == to_doubles(y2));
      CHECK(cpu::frozen_weights_entries() == 2);
    }
    CHECK(cpu::frozen_weights_entries() == 2);  // still open: the outer scope keeps the cache

    // Other values at a cached address (what a temporary copy that reuses freed memory looks
    // like): a new entry, the new values' product.
    Tensor wa = w1.clone();
    CHECK(to_doubles(conv2d_forward(x, wa, b, same3x3())) == to_doubles(y1));
    CHECK(cpu::frozen_weights_entries() == 3);
    const std::vector<float> other = w2.to_vector();
    std::copy(other.begin(), other.end(), wa.f32());
    CHECK(to_doubles(conv2d_forward(x, wa, Tensor(), same3x3())) == to_doubles(y2));
    CHECK(cpu::frozen_weights_entries() == 4);
  }
  CHECK_FALSE(cpu::weights_frozen());
  CHECK(cpu::frozen_weights_entries() == 0);
}
