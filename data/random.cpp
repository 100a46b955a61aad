// The normal distribution of Rng (kept out of the header: it needs <cmath>).
#include "data/random.h"

#include <cmath>

namespace cxr::data {

double Rng::normal() {
  const double u1 = 1.0 - uniform();  // (0, 1]
  const double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

}  // namespace cxr::data
