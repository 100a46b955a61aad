// The fused loss on CUDA (math in kernels/cxr_loss.h): ONE kernel computes loss, bce, mse,
// dz and db.
//
// cxr_loss_kernel: grid over the N*C (sample, class) pairs, kThreads pairs per block, one
//   thread per pair: its logit (BCE term + dz) and its 4 box coordinates (masked squared
//   error + db). Steps of every block:
//   1. Σ m over the WHOLE mask (N*C floats, from L2; every block computes the same exact
//      integer-valued sum), so each block knows max(1, 4 Σ m) and writes db directly; with a
//      label mask l, Σ l likewise (the BCE divisor L), so dz is written directly too.
//      Redundant reads: grid * N*C*4 bytes = 14 KB x 14 blocks at N = 256, negligible;
//      it would become quadratic only for N in the tens of thousands.
//   2. its pairs: dz, db written once, per-thread partial BCE / squared error in f32.
//   3. block_sum of both partials -> partials[2 b], partials[2 b + 1].
//   4. "last block done": thread 0 takes a ticket from an atomic counter (zeroed by a 4-byte
//      memset before the launch) after a __threadfence; the block that draws the last ticket
//      sums all partials in a fixed order and writes {loss, bce, mse}. Deterministic (no
//      float atomics), one launch.
// Traffic per pair: reads z, y, m, 4 b, 4 t, pw (cached) = 44 B (+ l: 4 B, and Σ l's pass),
// writes dz + 4 db = 20 B;
// N = 256: 3584 pairs, 230 KB: launch-latency bound (a few us) on any GPU.
#include "kernels/common/cuda.cuh"
#include "kernels/cuda/reduce.cuh"
#include "kernels/cxr_loss.h"
#include "tensor/tensor.h"

namespace cxr::cuda {
namespace {

constexpr unsigned kThreads = 256;

__global__ void cxr_loss_kernel(const float* __restrict__ z, const float* __restrict__ y, const float* __restrict__ pw,
                                const float* __restrict__ b, const float* __restrict__ t, const float* __restrict__ m,
                                std::int64_t nc, int classes, float box_weight, float* __restrict__ out3,
                                float* __restrict__ dz, float* __restrict__ db, float* partials, unsigned* counter,
                                std::int64_t nc_g, float boxes_g, const float* __restrict__ lm, float labels_g) {
  // 1. the mask total (exact: a sum of 0/1 values below 2^24), or the global batch's (LossShare)
  float mask_part = 0.0f;
  for (std::int64_t i = threadIdx.x; i < nc; i += blockDim.x) mask_part += m[i];
  const float local_total = block_sum(mask_part);
  const float mask_total = boxes_g >= 0.0f ? boxes_g : local_total;
  const float box_denom = fmaxf(1.0f, 4.0f * mask_total);
  float inv_nc = nc_g > 0 ? 1.0f / static_cast<float>(nc_g) : 0.0f;  // N = 0: zeros, as on the CPU
  if (lm) {  // block-uniform branch: the mean over the present labels
    float label_part = 0.0f;
    for (std::int64_t i = threadIdx.x; i < nc; i += blockDim.x) label_part += lm[i];
    const float local_labels = block_sum(label_part);
    const float label_total = labels_g >= 0.0f ? labels_g : local_labels;
    inv_nc = label_total > 0.0f ? 1.0f / label_total : 0.0f;
  }
  const float box_grad_scale = 2.0f * box_weight / box_denom;

  // 2. this thread's (sample, class) pair
  float bce_part = 0.0f, sq_part = 0.0f;
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < nc) {
    float d;
    const float l = lm ? lm[i] : 1.0f;
    bce_part = l * loss_math::bce_term<float>(z[i], y[i], pw[i % classes], &d);
    dz[i] = (l * d) * inv_nc;
    const float mk = m[i];
    for (int j = 0; j < 4; ++j) {
      const float s = loss_math::sigmoid<float>(b[i * 4 + j]);
      const float diff = s - t[i * 4 + j];
      sq_part += mk * diff * diff;
      db[i * 4 + j] = box_grad_scale * (mk * diff * s * (1.0f - s));
    }
  }

  // 3. block partials
  const float bce_block = block_sum(bce_part);
  const float sq_block = block_sum(sq_part);
  __shared__ unsigned is_last;
  if (threadIdx.x == 0) {
    partials[2 * blockIdx.x] = bce_block;
    partials[2 * blockIdx.x + 1] = sq_block;
    __threadfence();  // partials visible to every block before the ticket
    is_last = atomicAdd(counter, 1u) == gridDim.x - 1 ? 1u : 0u;
  }
  __syncthreads();
  if (!is_last) return;  // block-uniform

  // 4. the last block: fixed-order sum of every block's partials
  __threadfence();
  const volatile float* vp = partials;
  float bce_acc = 0.0f, sq_acc = 0.0f;
  for (unsigned k = threadIdx.x; k < gridDim.x; k += blockDim.x) {
    bce_acc += vp[2 * k];
    sq_acc += vp[2 * k + 1];
  }
  const float bce_total = block_sum(bce_acc);
  const float sq_total = block_sum(sq_acc);
  if (threadIdx.x == 0) {
    const float bce = bce_total * inv_nc;
    const float mse = sq_total / box_denom;
    out3[0] = bce + box_weight * mse;
    out3[1] = bce;
    out3[2] = mse;
  }
}

}  // namespace

void cxr_loss(const float* z, const float* y, const float* pw, const float* b, const float* t, const float* m,
              std::int64_t n, int classes, float box_weight, float* out3, float* dz, float* db, std::int64_t rows_g,
              double boxes_g, const float* lm, double labels_g) {
  const std::int64_t nc = n * classes;
  const unsigned grid = blocks_for(nc, kThreads);
  Tensor work = Tensor::empty({2 * static_cast<std::int64_t>(grid) + 1}, DType::F32, Device::CUDA);
  unsigned* counter = reinterpret_cast<unsigned*>(work.f32() + 2 * grid);
  CXR_CUDA_CHECK(cudaMemsetAsync(counter, 0, sizeof(unsigned), compute_stream()));
  launch_kernel(cxr_loss_kernel, grid, kThreads, 0, z, y, pw, b, t, m, nc, classes, box_weight, out3, dz, db,
                work.f32(), counter, rows_g * classes, static_cast<float>(boxes_g), lm, static_cast<float>(labels_g));
}

}  // namespace cxr::cuda
