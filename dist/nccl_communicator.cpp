// The NCCL back end (see communicator.h): device tensors on real GPUs, one process per GPU.
// Built into the real-GPU library only (libcxr_cuda); the emulated device has
// nccl_unavailable.cpp instead.
//
// Set-up: rank 0 creates the unique id, MPI broadcasts it, every rank calls
// ncclCommInitRankConfig non-blocking (so that a rank that never arrives cannot hang the
// others: the wait below has a deadline). Collectives run on the compute stream, in stream
// order with the kernels, so all_reduce_sum_async costs the host nothing and overlaps
// backward on the GPU; wait() makes the caller's later kernels wait for it (no host wait).
// Faults: every wait for NCCL polls ncclCommGetAsyncError with the --dist-timeout deadline;
// an error or the deadline aborts the communicator (ncclCommAbort) and raises an error naming
// the rank, the operation and the back end. Host values (all_gather_bytes, barrier) go over MPI.
#include <mpi.h>
#include <nccl.h>

#include <chrono>
#include <thread>

#include "dist/backends.h"
#include "tensor/backend.h"
#include "tensor/error.h"

namespace cxr::dist {
namespace {

class NcclCommunicator;

class NcclWork final : public Work {
 public:
  double seconds() const override { return 0; }  // runs on the stream: not timed on the host
  void wait() override {}                         // stream order already makes later kernels wait
};

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(const WorldInfo& world, const CommOptions& o)
      : Communicator(world), timeout_(o.timeout_seconds), mpi_(make_mpi_communicator(world, o)) {
    CXR_CHECK(!backend::is_emulated() && backend::has_device(), "rank ", rank(),
              ": --dist-backend nccl needs a CUDA GPU, and none was found");
    ncclUniqueId id{};
    if (rank() == 0) check(ncclGetUniqueId(&id), "get unique id");
    std::vector<std::uint8_t> ids = mpi_->all_gather_bytes(&id, sizeof id);  // rank 0's id is the first
    std::memcpy(&id, ids.data(), sizeof id);
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    check(ncclCommInitRankConfig(&comm_, size(), id, rank(), &config), "init");
    wait_ready("init");
  }
  ~NcclCommunicator() override {
    if (comm_ != nullptr) ncclCommDestroy(comm_);
  }

  Backend backend() const override { return Backend::NCCL; }

  std::shared_ptr<Work> all_reduce_sum_async(Tensor& t) override {
    CXR_CHECK(t.is_cuda() && t.dtype() == DType::F32 && t.is_contiguous(), "rank ", rank(),
              ": all_reduce (nccl): expected a contiguous f32 tensor on the GPU");
    check(ncclAllReduce(t.f32(), t.f32(), static_cast<std::size_t>(t.numel()), ncclFloat32, ncclSum, comm_,
                        static_cast<cudaStream_t>(backend::compute_stream_handle())),
          "all_reduce");
    wait_ready("all_reduce");
    return std::make_shared<NcclWork>();
  }

  void broadcast(Tensor& t, int root) override {
    if (!t.is_cuda()) return mpi_->broadcast(t, root);
    check(ncclBroadcast(t.raw_data(), t.raw_data(), t.nbytes(), ncclUint8, root, comm_,
                        static_cast<cudaStream_t>(backend::compute_stream_handle())),
          "broadcast");
    wait_ready("broadcast");
  }

  std::vector<std::uint8_t> all_gather_bytes(const void* data, std::size_t bytes) override {
    return mpi_->all_gather_bytes(data, bytes);
  }
  void barrier() override { mpi_->barrier(); }

 private:
  void check(ncclResult_t r, const char* op) {
    if (r == ncclSuccess || r == ncclInProgress) return;
    const std::string last = ncclGetLastError(comm_);
    if (comm_ != nullptr) ncclCommAbort(comm_), comm_ = nullptr;
    CXR_FAIL("rank ", rank(), ": ", op, " (nccl) failed: ", ncclGetErrorString(r), last.empty() ? "" : " (" + last + ")");
  }
  // A non-blocking communicator: polls until the last call is issued, with the deadline.
  void wait_ready(const char* op) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_);
    for (;;) {
      ncclResult_t state = ncclSuccess;
      check(ncclCommGetAsyncError(comm_, &state), op);
      if (state == ncclSuccess) return;
      check(state, op);
      if (std::chrono::steady_clock::now() > deadline) {
        ncclCommAbort(comm_);
        comm_ = nullptr;
        CXR_FAIL("rank ", rank(), ": ", op, " (nccl) did not complete within ", timeout_,
                 " s (--dist-timeout): another rank has stopped or hangs; the communicator was aborted");
      }
      std::this_thread::yield();
    }
  }

  double timeout_;
  std::unique_ptr<Communicator> mpi_;
  ncclComm_t comm_ = nullptr;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(const WorldInfo& world, const CommOptions& options) {
  return std::make_unique<NcclCommunicator>(world, options);
}

}  // namespace cxr::dist
