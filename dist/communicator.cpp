// Communicator: names, the single-process communicator, the choice of back end (see
// communicator.h).
#include "dist/communicator.h"

#include "dist/backends.h"
#include "tensor/error.h"

namespace cxr::dist {
namespace {

class DoneWork final : public Work {
 public:
  void wait() override {}
  double seconds() const override { return 0; }
};

// One process: every collective is the identity.
class SingleCommunicator final : public Communicator {
 public:
  explicit SingleCommunicator(const WorldInfo& w) : Communicator(w) {}
  Backend backend() const override { return Backend::Single; }
  std::shared_ptr<Work> all_reduce_sum_async(Tensor&) override { return std::make_shared<DoneWork>(); }
  void broadcast(Tensor&, int) override {}
  std::vector<std::uint8_t> all_gather_bytes(const void* data, std::size_t bytes) override {
    const auto* p = static_cast<const std::uint8_t*>(data);
    return std::vector<std::uint8_t>(p, p + bytes);
  }
  void barrier() override {}
};

}  // namespace

const char* backend_name(Backend b) {
  switch (b) {
    case Backend::Single: return "single";
    case Backend::MPI: return "mpi";
    case Backend::NCCL: return "nccl";
  }
  return "?";
}

Backend parse_backend(const std::string& name) {
  if (name == "mpi") return Backend::MPI;
  if (name == "nccl") return Backend::NCCL;
  throw UsageError("--dist-backend must be mpi or nccl, got '" + name + "'");
}

std::unique_ptr<Communicator> make_communicator(const WorldInfo& world, const CommOptions& options) {
  if (!world.distributed()) return std::make_unique<SingleCommunicator>(world);
  CXR_CHECK(options.timeout_seconds > 0, "--dist-timeout must be positive, got ", options.timeout_seconds);
  switch (options.backend) {
    case Backend::MPI: return make_mpi_communicator(world, options);
    case Backend::NCCL: return make_nccl_communicator(world, options);
    case Backend::Single: break;
  }
  CXR_FAIL("rank ", world.rank, ": a job of ", world.size, " processes needs the mpi or the nccl back end");
}

void abort_job(int exit_code) { mpi_abort(exit_code); }

}  // namespace cxr::dist
