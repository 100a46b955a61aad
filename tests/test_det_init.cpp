#include <doctest/doctest.h>

#include "tests/det_init.h"

TEST_CASE("deterministic tensors match the values tests/gen/det_init.py produces" * doctest::test_suite("tensor")) {
  // Values printed by: /usr/bin/python3 -c "import sys; sys.path.insert(0,'tests/gen'); import det_init as d;
  //   print(d.det_uniform('layer1.0.conv1.weight', [4], 0.5).tolist())"
  using cxr::test::det_uniform;
  auto v = det_uniform("layer1.0.conv1.weight", {4}, 0.5f).to_vector();
  const float expected[4] = {0.34144318103790283f, 0.49488723278045654f, -0.18962466716766357f, -0.23620325326919556f};
  for (int i = 0; i < 4; ++i) CHECK(v[i] == doctest::Approx(expected[i]).epsilon(1e-7));
  for (float x : det_uniform("x", {1000}, 1.f).to_vector()) CHECK((x >= -1.f && x < 1.f));
}
