// Communicator: the collectives of data-parallel training, behind one small interface with two
// back ends (docs/distributed.md):
//   MPI   (dist/mpi_communicator.cpp)   CPU tensors; device tensors staged through the host
//   NCCL  (dist/nccl_communicator.cpp)  device tensors on a real GPU; its unique id goes over MPI
// and a trivial one for a single process (every collective is the identity).
//
//   auto comm = make_communicator(world_from_environment(), {.backend = Backend::MPI});
//   comm->broadcast(weights, 0);                       // rank 0's values everywhere
//   auto work = comm->all_reduce_sum_async(bucket);   // starts; backward goes on
//   ...  work->wait();                                 // bucket = the sum over ranks
//
// Every rank must call the same collectives in the same order with the same sizes (as in MPI
// and NCCL). Results are the same bits on every rank and, for a given world size and message
// size, from run to run (MPI's and NCCL's reduction order depends on those only), which is what
// makes two distributed runs with the same seed bit-identical.
//
// Errors name the rank, the operation and the back end ("rank 1: all_reduce (mpi, 4.2 MB):
// ..."). A collective that does not complete within `timeout_seconds` (another rank died or
// hangs) is an error too: the caller then ends the whole job (abort_job), so no rank waits
// forever.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "dist/world.h"
#include "tensor/tensor.h"

namespace cxr::dist {

enum class Backend { Single, MPI, NCCL };
const char* backend_name(Backend b);  // "single", "mpi", "nccl"
// "mpi" / "nccl" (UsageError otherwise).
Backend parse_backend(const std::string& name);

struct CommOptions {
  Backend backend = Backend::MPI;
  double timeout_seconds = 60;  // a collective not done by then: the job is ended
};

// An operation in flight. wait() returns when it is done (an error on failure or timeout);
// seconds() is how long the back end worked on it.
class Work {
 public:
  virtual ~Work() = default;
  virtual void wait() = 0;
  virtual double seconds() const = 0;
};

class Communicator {
 public:
  explicit Communicator(WorldInfo world) : world_(std::move(world)) {}
  virtual ~Communicator() = default;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const { return world_.rank; }
  int size() const { return world_.size; }
  int local_rank() const { return world_.local_rank; }
  const WorldInfo& world() const { return world_; }
  virtual Backend backend() const = 0;

  // t (f32, contiguous) = the element-wise sum of every rank's t. t must stay alive and
  // untouched until wait().
  virtual std::shared_ptr<Work> all_reduce_sum_async(Tensor& t) = 0;
  void all_reduce_sum(Tensor& t) { all_reduce_sum_async(t)->wait(); }
  // t (any dtype, contiguous) = root's t on every rank.
  virtual void broadcast(Tensor& t, int root) = 0;
  // Every rank's bytes, concatenated in rank order (the sizes may differ between ranks).
  virtual std::vector<std::uint8_t> all_gather_bytes(const void* data, std::size_t bytes) = 0;
  virtual void barrier() = 0;

  // Typed all-gather of host values: every rank's vector, concatenated in rank order.
  template <typename T>
  std::vector<T> all_gather(const std::vector<T>& values) {
    const std::vector<std::uint8_t> b = all_gather_bytes(values.data(), values.size() * sizeof(T));
    std::vector<T> out(b.size() / sizeof(T));
    if (!b.empty()) std::memcpy(out.data(), b.data(), b.size());
    return out;
  }
 protected:
  WorldInfo world_;
};

// The communicator of this process: Single when world.size == 1, else the back end asked for
// (an error naming why it cannot run here: a build without MPI, NCCL without a real GPU).
std::unique_ptr<Communicator> make_communicator(const WorldInfo& world, const CommOptions& options);

// Ends every process of the job at once after an error on this rank (MPI_Abort; a single
// process: nothing). The message has been printed by then. Does not return when distributed.
void abort_job(int exit_code);

}  // namespace cxr::dist
