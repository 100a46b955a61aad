// Data-parallel pieces of the training run (see distributed.h).
#include "train/distributed.h"

#include <algorithm>

#include "tensor/error.h"

namespace cxr {

void broadcast_buffers(dist::Communicator& comm, Module& model) {
  if (comm.size() == 1) return;
  for (auto& [name, b] : model.named_buffers()) comm.broadcast(*b, 0);
}

void broadcast_state(dist::Communicator& comm, Module& model) {
  if (comm.size() == 1) return;
  for (auto& [name, p] : model.named_parameters()) comm.broadcast(p->value, 0);
  broadcast_buffers(comm, model);
}

StepAgreement agree_on_step(dist::Communicator& comm, std::int64_t rows, double boxes, int signal, double labels) {
  StepAgreement a;
  if (comm.size() == 1) return {rows, 0, boxes, labels, signal};
  const std::vector<double> all = comm.all_gather(
      std::vector<double>{static_cast<double>(rows), boxes, static_cast<double>(signal), labels});
  for (int r = 0; r < comm.size(); ++r) {
    const double* v = &all[static_cast<std::size_t>(r) * 4];
    if (r < comm.rank()) a.row_begin += static_cast<std::int64_t>(v[0]);
    a.rows += static_cast<std::int64_t>(v[0]);
    a.boxes += v[1];
    a.signal = std::max(a.signal, static_cast<int>(v[2]));
    a.labels += v[3];
  }
  return a;
}

int agree_on_signal(dist::Communicator& comm, int signal) {
  if (comm.size() == 1) return signal;
  int s = 0;
  for (int v : comm.all_gather(std::vector<int>{signal})) s = std::max(s, v);
  return s;
}

void check_replicas(dist::Communicator& comm, Module& model, const std::string& when) {
  if (comm.size() == 1) return;
  // FNV-1a over the bytes of every parameter and buffer, in order.
  std::uint64_t h = 1469598103934665603ull;
  auto mix = [&](const Tensor& t) {
    const Tensor c = t.cpu().contiguous();
    const auto* p = static_cast<const std::uint8_t*>(c.raw_data());
    for (std::size_t i = 0; i < c.nbytes(); ++i) h = (h ^ p[i]) * 1099511628211ull;
  };
  for (auto& [name, p] : model.named_parameters()) mix(p->value);
  for (auto& [name, b] : model.named_buffers()) mix(*b);
  const std::vector<std::uint64_t> all = comm.all_gather(std::vector<std::uint64_t>{h});
  for (int r = 1; r < comm.size(); ++r)
    CXR_CHECK(all[static_cast<std::size_t>(r)] == all[0], "rank ", comm.rank(), ": the weights of rank ", r,
              " differ from rank 0's ", when, ": the replicas diverged (a collective gave different results on "
              "different ranks)");
}

}  // namespace cxr
