// Gathered predictions (see gather_inference.h).
#include "eval/gather_inference.h"

#include <algorithm>

#include "tensor/error.h"

namespace cxr {

namespace {

std::vector<std::uint8_t> join_names(const std::vector<std::string>& names) {
  std::vector<std::uint8_t> b;
  for (const auto& n : names) {
    b.insert(b.end(), n.begin(), n.end());
    b.push_back(0);
  }
  return b;
}

std::vector<std::string> split_names(const std::vector<std::uint8_t>& b) {
  std::vector<std::string> names;
  std::string cur;
  for (std::uint8_t c : b) {
    if (c == 0) names.push_back(std::move(cur)), cur.clear();
    else cur.push_back(static_cast<char>(c));
  }
  return names;
}

}  // namespace

InferenceResult gather_inference(dist::Communicator& comm, const InferenceResult& local) {
  if (comm.size() == 1) return local;
  InferenceResult all;
  all.probs = comm.all_gather(local.probs);
  all.labels = comm.all_gather(local.labels);
  all.boxes = comm.all_gather(local.boxes);
  all.target_boxes = comm.all_gather(local.target_boxes);
  all.box_mask = comm.all_gather(local.box_mask);
  all.indices = comm.all_gather(local.indices);
  const std::vector<std::uint8_t> names = join_names(local.names);
  all.names = split_names(comm.all_gather_bytes(names.data(), names.size()));
  // n, the loss sum and the slowest rank's time, summed in rank order.
  const std::vector<double> per_rank =
      comm.all_gather(std::vector<double>{static_cast<double>(local.n), local.loss * static_cast<double>(local.n),
                                          local.seconds});
  double loss_sum = 0;
  for (int r = 0; r < comm.size(); ++r) {
    all.n += static_cast<std::int64_t>(per_rank[static_cast<std::size_t>(r) * 3]);
    loss_sum += per_rank[static_cast<std::size_t>(r) * 3 + 1];
    all.seconds = std::max(all.seconds, per_rank[static_cast<std::size_t>(r) * 3 + 2]);
  }
  all.loss = all.n > 0 ? loss_sum / static_cast<double>(all.n) : 0.0;
  CXR_CHECK(static_cast<std::int64_t>(all.names.size()) == all.n, "rank ", comm.rank(),
            ": gathered predictions: ", all.names.size(), " names for ", all.n, " images");
  return all;
}

}  // namespace cxr
