// The distributed code paths on the emulated CUDA device, run under mpirun by
// tests/dist/run_dist_tests (the real GPU build's train_cxr cannot use --device cuda here):
//   1. the MPI back end's host-staged all-reduce (async) and broadcast of device tensors;
//   2. the gradient buckets (train/grad_reducer.h) over device gradients, started from the
//      grad-ready hook: the sums equal the gradients of both ranks' inputs on the CPU;
//   3. the NCCL back end refuses the emulated device with a message that says so.
// Exit 0 when every check holds; prints what failed otherwise.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>

#include "dist/communicator.h"
#include "layers/linear.h"
#include "layers/module.h"
#include "tensor/backend.h"
#include "train/grad_reducer.h"

namespace {

int failures = 0;
void check(bool ok, int rank, const std::string& what) {
  if (!ok) {
    std::fprintf(stderr, "rank %d: FAILED: %s\n", rank, what.c_str());
    ++failures;
  }
}

// max |a - b| / max(1, |b|) over two host vectors of the same size
double max_rel(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = a.size() == b.size() ? 0.0 : 1e30;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i)
    worst = std::max(worst, std::abs(double(a[i]) - b[i]) / std::max(1.0, std::abs(double(b[i]))));
  return worst;
}

}  // namespace

int main() {
  using namespace cxr;
  const dist::WorldInfo world = dist::world_from_environment();
  if (!world.distributed()) {
    std::fprintf(stderr, "run under mpirun -np 2 (or more)\n");
    return 2;
  }
  const auto comm = dist::make_communicator(world, {.backend = dist::Backend::MPI});
  const int rank = comm->rank(), n = comm->size();
  check(backend::is_emulated() && backend::has_device(), rank, "the emulated device");

  // 1. all-reduce and broadcast of device tensors (staged through the host)
  Tensor t = Tensor::full({1000}, static_cast<float>(rank + 1)).to(Device::CUDA);
  auto work = comm->all_reduce_sum_async(t);
  work->wait();
  const float expect = static_cast<float>(n * (n + 1) / 2);
  for (float v : t.to_vector()) check(v == expect, rank, "all_reduce of a device tensor");
  Tensor b = Tensor::full({7}, static_cast<float>(10 * rank)).to(Device::CUDA);
  comm->broadcast(b, 0);
  for (float v : b.to_vector()) check(v == 0.f, rank, "broadcast of a device tensor");

  // 2. gradient buckets over device gradients: two linear layers, buckets of 600 bytes (2 of them)
  Sequential net;
  net.add(std::make_unique<Linear>(16, 32));
  net.add(std::make_unique<Linear>(32, 4));
  std::mt19937_64 rng(7);  // the same weights on every rank
  for (auto& [name, p] : net.named_parameters()) p->value = Tensor::randn(p->value.shape(), rng, 0.f, 0.3f);
  std::vector<Tensor> xs;  // every rank's input, known to all (to compute the CPU reference)
  for (int r = 0; r < n; ++r) xs.push_back(Tensor::randn({5, 16}, rng));
  const Tensor dy = Tensor::full({5, 4}, 1.f);
  // CPU reference: the sum over ranks of each rank's gradients
  net.zero_grad();
  for (int r = 0; r < n; ++r) {
    net.forward(xs[static_cast<std::size_t>(r)]);
    net.backward(dy);
  }
  std::vector<std::vector<float>> reference;
  for (auto& [name, p] : net.named_parameters()) reference.push_back(p->grad.to_vector());
  // this rank on the device, reduced in buckets
  net.to(Device::CUDA);
  GradientReducer reducer(*comm, net.named_parameters(), /*bucket_bytes=*/600);
  net.zero_grad();
  reducer.begin();
  net.forward(xs[static_cast<std::size_t>(rank)].to(Device::CUDA));
  net.backward(dy.to(Device::CUDA));
  reducer.finish();
  check(reducer.bucket_count() >= 2, rank, "several buckets");
  std::size_t k = 0;
  for (auto& [name, p] : net.named_parameters()) {
    check(p->grad.is_cuda(), rank, name + " stays on the device");
    check(max_rel(p->grad.to_vector(), reference[k++]) < 1e-5, rank, "the reduced gradient of " + name);
  }

  // 3. NCCL on the emulated device: a clear error
  bool refused = false;
  try {
    dist::make_communicator(world, {.backend = dist::Backend::NCCL});
  } catch (const std::exception& e) {
    refused = std::string(e.what()).find("emulated CUDA device") != std::string::npos;
  }
  check(refused, rank, "--dist-backend nccl refused on the emulated device, naming it");

  comm->barrier();
  if (rank == 0 && failures == 0) std::printf("dist_emu_check: %d ranks, every check holds\n", n);
  return failures == 0 ? 0 : 1;
}
