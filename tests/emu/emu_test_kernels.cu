// Emulator self-test kernels. Compiled only for the emulated device ("cuda-emu"): the glob in
// CMakeLists.txt adds tests/emu/*.cu to cxr_tests_emu only, never to the nvcc build.
// Written as ordinary CUDA (launch_kernel, dynamic_smem), so they would run on a GPU too.
#include "tests/emu/emu_test_kernels.h"

#include <atomic>

#include "kernels/common/cuda.cuh"
#include "cuda_emu/wmma.h"

namespace cxr::emu_test {

namespace {

using cxr::cuda::launch_kernel;

dim3 to_dim3(dims d) { return dim3(d.x, d.y, d.z); }

// A device buffer of n T's, freed on scope exit.
template <typename T>
struct device_buffer {
  T* ptr = nullptr;
  std::size_t n = 0;
  explicit device_buffer(std::size_t count) : n(count) {
    CXR_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&ptr), n * sizeof(T)));
  }
  device_buffer(const std::vector<T>& host) : device_buffer(host.size()) {
    CXR_CUDA_CHECK(cudaMemcpy(ptr, host.data(), n * sizeof(T), cudaMemcpyHostToDevice));
  }
  ~device_buffer() { cudaFree(ptr); }
  device_buffer(const device_buffer&) = delete;
  device_buffer& operator=(const device_buffer&) = delete;
  std::vector<T> to_host() const {
    std::vector<T> host(n);
    CXR_CUDA_CHECK(cudaMemcpy(host.data(), ptr, n * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }
  void fill_bytes(int value) { CXR_CUDA_CHECK(cudaMemset(ptr, value, n * sizeof(T))); }
};

// ---- indices --------------------------------------------------------------------------------

__global__ void index_cover_kernel(int* count, int* dims_bad, dim3 grid, dim3 block) {
  if (blockDim.x != block.x || blockDim.y != block.y || blockDim.z != block.z || gridDim.x != grid.x ||
      gridDim.y != grid.y || gridDim.z != grid.z)
    atomicExch(dims_bad, 1);
  const unsigned long long block_id = blockIdx.x + gridDim.x * (blockIdx.y + 1ull * gridDim.y * blockIdx.z);
  const unsigned thread_id = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const unsigned long long threads = 1ull * blockDim.x * blockDim.y * blockDim.z;
  atomicAdd(&count[block_id * threads + thread_id], 1);
}

// ---- barriers -------------------------------------------------------------------------------

__global__ void reverse_kernel(const int* in, int* out) {
  __shared__ int buffer[256];
  const unsigned t = threadIdx.x;
  const unsigned base = blockIdx.x * 256;
  buffer[t] = in[base + t];
  __syncthreads();
  out[base + t] = buffer[255 - t];
}

__global__ void block_sum_kernel(const float* in, float* out, bool correct) {
  float* s = cxr::cuda::dynamic_smem<float>();
  const unsigned t = threadIdx.x;
  s[t] = in[blockIdx.x * blockDim.x + t];
  __syncthreads();
  for (unsigned stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (t < stride) s[t] += s[t + stride];
    if (correct) __syncthreads();  // the bug: without it, s[t + stride] may not be final yet
  }
  if (t == 0) out[blockIdx.x] = s[0];
}

__global__ void neighbour_kernel(int* out, bool with_barrier) {
  int* s = cxr::cuda::dynamic_smem<int>();
  const unsigned t = threadIdx.x;
  s[t] = static_cast<int>(t) * 10;
  if (with_barrier) __syncthreads();
  out[t] = s[(t + 1) % blockDim.x];
}

__global__ void early_exit_kernel(int* out, unsigned n) {
  __shared__ int s[1024];
  const unsigned t = threadIdx.x;
  if (t % 3 == 0 || t >= n) return;  // thread 0 leaves first: exited threads count as arrived
  s[t] = static_cast<int>(t) * 10;
  __syncthreads();
  const unsigned r = n - 1 - t;
  const int v = (r % 3 != 0) ? s[r] : -2;
  __syncthreads();  // a second barrier among the survivors
  s[t] = v;
  __syncthreads();
  out[t] = s[t];
}

__global__ void barrier_reduction_kernel(int* out) {
  const unsigned t = threadIdx.x;
  const int count = __syncthreads_count(t % 4 == 0);
  const int any = __syncthreads_or(t == blockDim.x - 1 && blockIdx.x == 1);
  const int all = __syncthreads_and(t < blockDim.x);
  const int not_all = __syncthreads_and(t != 3);
  if (t == 0) {
    out[blockIdx.x * 4 + 0] = count;
    out[blockIdx.x * 4 + 1] = any;
    out[blockIdx.x * 4 + 2] = all;
    out[blockIdx.x * 4 + 3] = not_all;
  }
}

constexpr int kTile = 16;

__global__ void tiled_matmul_kernel(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ c,
                                    int m, int k, int n) {
  __shared__ float ta[kTile][kTile];
  __shared__ float tb[kTile][kTile];
  const int row = static_cast<int>(blockIdx.y * kTile + threadIdx.y);
  const int col = static_cast<int>(blockIdx.x * kTile + threadIdx.x);
  float acc = 0.0f;
  for (int k0 = 0; k0 < k; k0 += kTile) {
    const int ka = k0 + static_cast<int>(threadIdx.x), kb = k0 + static_cast<int>(threadIdx.y);
    ta[threadIdx.y][threadIdx.x] = (row < m && ka < k) ? a[row * k + ka] : 0.0f;
    tb[threadIdx.y][threadIdx.x] = (kb < k && col < n) ? b[kb * n + col] : 0.0f;
    __syncthreads();
    for (int i = 0; i < kTile; ++i) acc = fmaf(ta[threadIdx.y][i], tb[i][threadIdx.x], acc);
    __syncthreads();
  }
  if (row < m && col < n) c[row * n + col] = acc;
}

__global__ void elementwise_kernel(const float* __restrict__ in, float* __restrict__ out, int n) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) out[i] = 2.0f * in[i] + 1.0f;
}

// ---- tensor cores (wmma) ----------------------------------------------------------------------

template <class LayoutA, class LayoutB>
__global__ void wmma_tf32_kernel(const float* a, const float* b, const float* c, float* d, bool round_inputs) {
  namespace wmma = nvcuda::wmma;
  wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, LayoutA> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, LayoutB> fb;
  wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc;
  wmma::load_matrix_sync(fa, a, std::is_same_v<LayoutA, wmma::row_major> ? 8 : 16);
  wmma::load_matrix_sync(fb, b, std::is_same_v<LayoutB, wmma::row_major> ? 16 : 8);
  wmma::load_matrix_sync(acc, c, 16, wmma::mem_row_major);
  if (round_inputs) {
    for (int i = 0; i < fa.num_elements; ++i) fa.x[i] = wmma::__float_to_tf32(fa.x[i]);
    for (int i = 0; i < fb.num_elements; ++i) fb.x[i] = wmma::__float_to_tf32(fb.x[i]);
  }
  wmma::mma_sync(acc, fa, fb, acc);
  wmma::store_matrix_sync(d, acc, 16, wmma::mem_row_major);
}

__global__ void float_to_tf32_kernel(const float* in, float* out, int n) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) out[i] = nvcuda::wmma::__float_to_tf32(in[i]);
}

// ---- warp collectives -------------------------------------------------------------------------

struct case_table {
  int n;
  shuffle_case c[16];
};

case_table make_cases() {
  const std::vector<shuffle_case> v = shuffle_cases();
  case_table t{};
  t.n = static_cast<int>(v.size());
  for (int i = 0; i < t.n; ++i) t.c[i] = v[static_cast<std::size_t>(i)];
  return t;
}

template <typename T>
__global__ void shuffle_kernel(const T* in, T* out, case_table cases) {
  const unsigned t = threadIdx.x;
  const T v = in[t];
  for (int i = 0; i < cases.n; ++i) {
    const shuffle_case c = cases.c[i];
    T r{};
    switch (c.kind) {
      case 0: r = __shfl_sync(0xffffffffu, v, c.param, c.width); break;
      case 1: r = __shfl_up_sync(0xffffffffu, v, static_cast<unsigned>(c.param), c.width); break;
      case 2: r = __shfl_down_sync(0xffffffffu, v, static_cast<unsigned>(c.param), c.width); break;
      default: r = __shfl_xor_sync(0xffffffffu, v, c.param, c.width); break;
    }
    out[static_cast<unsigned>(i) * blockDim.x + t] = r;
  }
}

template <typename T>
std::vector<T> run_shuffles(unsigned threads, T (*value)(unsigned)) {
  std::vector<T> in(threads);
  for (unsigned t = 0; t < threads; ++t) in[t] = value(t);
  const case_table cases = make_cases();
  device_buffer<T> d_in(in), d_out(static_cast<std::size_t>(cases.n) * threads);
  launch_kernel(shuffle_kernel<T>, dim3(1), dim3(threads), 0, d_in.ptr, d_out.ptr, cases);
  return d_out.to_host();
}

__global__ void vote_kernel(unsigned* out) {
  const unsigned t = threadIdx.x;
  const unsigned lane = t % 32;
  out[5 * t + 3] = __activemask();  // before any lane can have finished (see docs/emulation.md)
  out[5 * t + 0] = __ballot_sync(0xffffffffu, lane % 3 == 0);
  out[5 * t + 1] = static_cast<unsigned>(__any_sync(0xffffffffu, lane == 5));
  out[5 * t + 2] = static_cast<unsigned>(__all_sync(0xffffffffu, t < 40));
  out[5 * t + 4] = lane < 16 ? __ballot_sync(0x0000ffffu, lane & 1) : 0u;  // a partial mask
}

__global__ void warp_sum_kernel(const float* in, float* out) {
  const unsigned t = blockIdx.x * blockDim.x + threadIdx.x;
  float v = in[t];
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  if (threadIdx.x % 32 == 0) out[t / 32] = v;
}

__global__ void shuffle_rounds_kernel(int* out, int rounds) {
  const unsigned lane = threadIdx.x % 32;
  int v = static_cast<int>(threadIdx.x);
  for (int r = 0; r < rounds; ++r) {
    v += __shfl_xor_sync(0xffffffffu, v, 1 << (r % 5));
    if (lane == 31) v += __shfl_sync(0x80000000u, v, 31);  // a one-lane collective in between
    if (r % 4 == 3) __syncwarp();
    v &= 0xffff;
  }
  out[threadIdx.x] = v;
}

// ---- atomics and shared memory ----------------------------------------------------------------

struct atomic_state {
  int int_sum;
  unsigned uint_sum;
  unsigned long long ull_sum;
  int max_value, min_value;
  int lock;
  int locked_counter;
  unsigned sub_result;
  float float_sum;
  double double_sum;
};

__global__ void atomics_kernel(atomic_state* s) {
  const int gid = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  atomicAdd(&s->int_sum, 1);
  atomicAdd(&s->uint_sum, 2u);
  atomicAdd(&s->ull_sum, 3ull);
  atomicMax(&s->max_value, gid);
  atomicMin(&s->min_value, gid - 5);
  atomicSub(&s->sub_result, 1u);
  atomicAdd(&s->float_sum, 0.1f);
  atomicAdd(&s->double_sum, 0.25);
  // A spin lock around a non-atomic increment (one thread per block takes part).
  if (threadIdx.x == 0) {
    while (atomicCAS(&s->lock, 0, 1) != 0) {
    }
    __threadfence();
    volatile int* counter = &s->locked_counter;
    *counter = *counter + 1;
    __threadfence();
    atomicExch(&s->lock, 0);
  }
}

__global__ void dynamic_smem_kernel(unsigned long long* out, unsigned bytes) {
  unsigned char* s = cxr::cuda::dynamic_smem<unsigned char>();
  const unsigned t = threadIdx.x, threads = blockDim.x;
  const unsigned chunk = (bytes + threads - 1) / threads;
  auto pattern = [](unsigned i) { return static_cast<unsigned char>((i * 7 + 1) % 255); };
  unsigned long long poisoned = 0, matched = 0;
  for (unsigned i = t * chunk; i < bytes && i < (t + 1) * chunk; ++i) {
    poisoned += s[i] == 0xFF;
    s[i] = pattern(i);
  }
  __syncthreads();
  const unsigned u = (t + 1) % threads;  // check the neighbour's chunk
  for (unsigned i = u * chunk; i < bytes && i < (u + 1) * chunk; ++i) matched += s[i] == pattern(i);
  atomicAdd(&out[2 * blockIdx.x + 0], poisoned);
  atomicAdd(&out[2 * blockIdx.x + 1], matched);
}

__global__ void empty_kernel() {}

__global__ void out_of_bounds_kernel(int* out, int n) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i <= n) out[i] = i;  // the bug: <= instead of <
}

}  // namespace

// ---- launchers --------------------------------------------------------------------------------

std::vector<int> index_cover(dims grid, dims block, bool& dims_ok) {
  const std::size_t total = std::size_t{grid.x} * grid.y * grid.z * block.x * block.y * block.z;
  device_buffer<int> count(total), bad(1);
  count.fill_bytes(0);
  bad.fill_bytes(0);
  launch_kernel(index_cover_kernel, to_dim3(grid), to_dim3(block), 0, count.ptr, bad.ptr, to_dim3(grid),
                to_dim3(block));
  dims_ok = bad.to_host()[0] == 0;
  return count.to_host();
}

std::vector<int> reverse_blocks(const std::vector<int>& in) {
  device_buffer<int> d_in(in), d_out(in.size());
  launch_kernel(reverse_kernel, dim3(static_cast<unsigned>(in.size() / 256)), dim3(256), 0, d_in.ptr, d_out.ptr);
  return d_out.to_host();
}

std::vector<float> block_sums(const std::vector<float>& in, unsigned threads, bool correct) {
  const unsigned blocks = static_cast<unsigned>(in.size() / threads);
  device_buffer<float> d_in(in), d_out(blocks);
  launch_kernel(block_sum_kernel, dim3(blocks), dim3(threads), threads * sizeof(float), d_in.ptr, d_out.ptr,
                correct);
  return d_out.to_host();
}

std::vector<int> neighbour_read(unsigned threads, bool with_barrier) {
  device_buffer<int> d_out(threads);
  launch_kernel(neighbour_kernel, dim3(1), dim3(threads), threads * sizeof(int), d_out.ptr, with_barrier);
  return d_out.to_host();
}

std::vector<shuffle_case> shuffle_cases() {
  return {{0, 3, 32},  {0, 2, 8},  {0, 31, 16}, {1, 1, 32},  {1, 3, 16}, {1, 2, 4},
          {2, 4, 32},  {2, 2, 8},  {2, 1, 2},   {3, 1, 32},  {3, 16, 32}, {3, 5, 8},
          {3, 8, 8},   {0, 0, 1},  {2, 16, 32}, {1, 31, 32}};
}

std::vector<std::int64_t> shuffles_int(unsigned threads) {
  const std::vector<int> r = run_shuffles<int>(threads, [](unsigned t) { return static_cast<int>(t * 7 + 3); });
  return std::vector<std::int64_t>(r.begin(), r.end());
}
std::vector<float> shuffles_float(unsigned threads) {
  return run_shuffles<float>(threads, [](unsigned t) { return static_cast<float>(t) * 0.5f + 1.0f; });
}
std::vector<unsigned> shuffles_unsigned(unsigned threads) {
  return run_shuffles<unsigned>(threads, [](unsigned t) { return t * 3u + 1000000000u; });
}
std::vector<double> shuffles_double(unsigned threads) {
  return run_shuffles<double>(threads, [](unsigned t) { return static_cast<double>(t) * 1.25 + 1e10; });
}

std::vector<unsigned> votes(unsigned threads) {
  device_buffer<unsigned> d_out(5 * std::size_t{threads});
  launch_kernel(vote_kernel, dim3(1), dim3(threads), 0, d_out.ptr);
  return d_out.to_host();
}

std::vector<float> warp_sums(const std::vector<float>& in) {
  device_buffer<float> d_in(in), d_out(in.size() / 32);
  launch_kernel(warp_sum_kernel, dim3(static_cast<unsigned>(in.size() / 128)), dim3(128), 0, d_in.ptr, d_out.ptr);
  return d_out.to_host();
}

std::vector<int> shuffle_rounds(unsigned threads, int rounds) {
  device_buffer<int> d_out(threads);
  launch_kernel(shuffle_rounds_kernel, dim3(1), dim3(threads), 0, d_out.ptr, rounds);
  return d_out.to_host();
}

atomic_results atomics(unsigned blocks, unsigned threads) {
  atomic_state init{};
  init.max_value = -1000;
  init.min_value = 1 << 30;
  init.sub_result = blocks * threads + 7;
  device_buffer<atomic_state> d_state(std::vector<atomic_state>{init});
  launch_kernel(atomics_kernel, dim3(blocks), dim3(threads), 0, d_state.ptr);
  const atomic_state s = d_state.to_host()[0];
  return atomic_results{s.int_sum,        s.uint_sum,   s.ull_sum,   s.max_value, s.min_value,
                        s.locked_counter, s.sub_result, s.float_sum, s.double_sum};
}

std::vector<std::uint64_t> dynamic_smem_check(unsigned bytes, unsigned threads, unsigned blocks) {
  device_buffer<unsigned long long> d_out(2 * std::size_t{blocks});
  d_out.fill_bytes(0);
  launch_kernel(dynamic_smem_kernel, dim3(blocks), dim3(threads), bytes, d_out.ptr, bytes);
  const std::vector<unsigned long long> r = d_out.to_host();
  return std::vector<std::uint64_t>(r.begin(), r.end());
}

std::vector<int> early_exit_reverse(unsigned threads, unsigned n) {
  device_buffer<int> d_out(threads);  // cudaMalloc poisons: untouched entries read -1
  launch_kernel(early_exit_kernel, dim3(1), dim3(threads), 0, d_out.ptr, n);
  return d_out.to_host();
}

std::vector<int> barrier_reductions(unsigned threads) {
  device_buffer<int> d_out(8);
  launch_kernel(barrier_reduction_kernel, dim3(2), dim3(threads), 0, d_out.ptr);
  return d_out.to_host();
}

std::vector<float> tiled_matmul(const std::vector<float>& a, const std::vector<float>& b, int m, int k, int n) {
  device_buffer<float> d_a(a), d_b(b), d_c(static_cast<std::size_t>(m) * n);
  const dim3 grid(static_cast<unsigned>((n + kTile - 1) / kTile), static_cast<unsigned>((m + kTile - 1) / kTile));
  launch_kernel(tiled_matmul_kernel, grid, dim3(kTile, kTile), 0, d_a.ptr, d_b.ptr, d_c.ptr, m, k, n);
  return d_c.to_host();
}

std::vector<float> wmma_tf32(const std::vector<float>& a, bool a_row_major, const std::vector<float>& b,
                             bool b_row_major, const std::vector<float>& c, bool round_inputs) {
  using nvcuda::wmma::col_major;
  using nvcuda::wmma::row_major;
  device_buffer<float> d_a(a), d_b(b), d_c(c), d_d(256);
  const auto run = [&](auto kernel) {
    launch_kernel(kernel, dim3(1), dim3(32), 0, d_a.ptr, d_b.ptr, d_c.ptr, d_d.ptr, round_inputs);
  };
  if (a_row_major && b_row_major) run(wmma_tf32_kernel<row_major, row_major>);
  else if (a_row_major) run(wmma_tf32_kernel<row_major, col_major>);
  else if (b_row_major) run(wmma_tf32_kernel<col_major, row_major>);
  else run(wmma_tf32_kernel<col_major, col_major>);
  return d_d.to_host();
}

std::vector<float> float_to_tf32(const std::vector<float>& in) {
  const int n = static_cast<int>(in.size());
  device_buffer<float> d_in(in), d_out(in.size());
  launch_kernel(float_to_tf32_kernel, dim3(cxr::cuda::blocks_for(n, 256)), dim3(256), 0, d_in.ptr, d_out.ptr, n);
  return d_out.to_host();
}

std::vector<float> elementwise(const std::vector<float>& in) {
  const int n = static_cast<int>(in.size());
  device_buffer<float> d_in(in), d_out(in.size());
  launch_kernel(elementwise_kernel, dim3(cxr::cuda::blocks_for(n, 256)), dim3(256), 0, d_in.ptr, d_out.ptr, n);
  return d_out.to_host();
}

int raw_launch(dims grid, dims block, std::size_t smem_bytes, bool& ran) {
  std::atomic<bool> any{false};
  cuda_emu::launch(to_dim3(grid), to_dim3(block), smem_bytes, [&] { any.store(true); });
  ran = any.load();
  return static_cast<int>(cudaGetLastError());
}

void checked_launch(dims grid, dims block, std::size_t smem_bytes) {
  launch_kernel(empty_kernel, to_dim3(grid), to_dim3(block), smem_bytes);
}

void out_of_bounds_write(int n) {
  device_buffer<int> d_out(static_cast<std::size_t>(n));
  launch_kernel(out_of_bounds_kernel, dim3(cxr::cuda::blocks_for(n + 1, 64)), dim3(64), 0, d_out.ptr, n);
}

std::uint64_t context_switches() { return cuda_emu::context_switches(); }

}  // namespace cxr::emu_test
