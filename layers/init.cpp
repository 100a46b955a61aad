// Parameter initialisation (see init.h).
#include "layers/init.h"

#include <cmath>

namespace cxr {

std::mt19937_64& init_generator() {
  static std::mt19937_64 gen(0);
  return gen;
}

void manual_seed(std::uint64_t seed) { init_generator().seed(seed); }

std::uint64_t next_layer_seed() { return init_generator()(); }

namespace {
std::int64_t receptive_field(const Shape& s) {
  std::int64_t r = 1;
  for (std::size_t d = 2; d < s.size(); ++d) r *= s[d];
  return r;
}
void check_init_target(const char* fn, const Tensor& t) {
  CXR_CHECK(t.defined() && t.is_cpu() && t.dtype() == DType::F32 && t.is_contiguous(), fn,
            ": expected a contiguous f32 CPU tensor, found ", t.defined() ? t.str() : std::string("undefined"));
}
}  // namespace

std::int64_t fan_in(const Shape& s) {
  CXR_CHECK(s.size() >= 2, "fan_in: needs at least 2 dimensions, found ", shape_str(s));
  return s[1] * receptive_field(s);
}

std::int64_t fan_out(const Shape& s) {
  CXR_CHECK(s.size() >= 2, "fan_out: needs at least 2 dimensions, found ", shape_str(s));
  return s[0] * receptive_field(s);
}

void uniform_(Tensor& t, float lo, float hi) {
  check_init_target("uniform_", t);
  std::uniform_real_distribution<float> d(lo, hi);
  float* p = t.f32();
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = d(init_generator());
}

void normal_(Tensor& t, float mean, float stddev) {
  check_init_target("normal_", t);
  std::normal_distribution<float> d(mean, stddev);
  float* p = t.f32();
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = d(init_generator());
}

void trunc_normal_(Tensor& t, float mean, float stddev, float lo, float hi) {
  check_init_target("trunc_normal_", t);
  CXR_CHECK(lo < hi, "trunc_normal_: empty interval [", lo, ", ", hi, "]");
  std::normal_distribution<float> d(mean, stddev);
  float* p = t.f32();
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    float v;
    do v = d(init_generator()); while (v < lo || v > hi);
    p[i] = v;
  }
}

void kaiming_uniform_default(Tensor& t, std::int64_t fan) {
  const float bound = fan > 0 ? 1.f / std::sqrt(static_cast<float>(fan)) : 0.f;
  uniform_(t, -bound, bound);
}

void kaiming_normal_fan_out(Tensor& t) {
  normal_(t, 0.f, std::sqrt(2.f / static_cast<float>(fan_out(t.shape()))));
}

}  // namespace cxr
