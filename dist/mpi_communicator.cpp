// The MPI back end (see communicator.h): Open MPI from Debian, or any MPI-3 library.
//
// Every MPI call runs on one communication thread (SerialExecutor), so MPI needs only
// MPI_THREAD_SERIALIZED and the training thread never blocks in MPI: all_reduce_sum_async
// queues MPI_Allreduce and returns; wait() waits for it with the deadline of --dist-timeout.
// Device tensors are staged through host memory (a copy each way): the fallback for GPUs
// without NCCL, and for two processes sharing one GPU.
// Errors: MPI_ERRORS_RETURN on the communicator, each return code turned into a message with
// the rank, the operation, the back end and MPI_Error_string.
#include <mpi.h>

#include <cstdlib>
#include <cstring>
#include <sstream>

#include "dist/backends.h"
#include "dist/serial_executor.h"
#include "tensor/error.h"

namespace cxr::dist {
namespace {

std::string mb(std::size_t bytes) {
  std::ostringstream os;
  os.precision(3);
  os << static_cast<double>(bytes) / 1e6 << " MB";
  return os.str();
}

void check_mpi(int rc, int rank, const std::string& what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int len = 0;
  MPI_Error_string(rc, text, &len);
  CXR_FAIL("rank ", rank, ": ", what, " failed: ", std::string(text, static_cast<std::size_t>(len)));
}

void finalize_at_exit() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

class MpiWork final : public Work {
 public:
  MpiWork(SerialExecutor& ex, std::shared_ptr<SerialExecutor::Job> job, double timeout, int rank,
          std::function<void()> after = {})
      : ex_(ex), job_(std::move(job)), timeout_(timeout), rank_(rank), after_(std::move(after)) {}
  void wait() override {
    if (waited_) return;
    if (!ex_.wait(job_, timeout_))
      CXR_FAIL("rank ", rank_, ": ", job_->what, " did not complete within ", timeout_,
               " s (--dist-timeout): another rank has stopped or hangs (the launcher's message names it)");
    waited_ = true;
    if (after_) after_();
  }
  double seconds() const override { return job_->seconds; }

 private:
  SerialExecutor& ex_;
  std::shared_ptr<SerialExecutor::Job> job_;
  double timeout_;
  int rank_;
  std::function<void()> after_;  // device tensors: the copy back from the host buffer
  bool waited_ = false;
};

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator(const WorldInfo& world, const CommOptions& o) : Communicator(world), timeout_(o.timeout_seconds) {
    ensure_mpi_initialized();
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CXR_CHECK(rank == world.rank && size == world.size, "MPI says rank ", rank, " of ", size, " but the launcher's (",
              world.launcher, ") environment says rank ", world.rank, " of ", world.size);
    MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  }
  ~MpiCommunicator() override {
    executor_.reset();  // runs what is queued, joins the thread
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm_);
  }

  Backend backend() const override { return Backend::MPI; }

  std::shared_ptr<Work> all_reduce_sum_async(Tensor& t) override {
    CXR_CHECK(t.dtype() == DType::F32 && t.is_contiguous(), "rank ", rank(),
              ": all_reduce (mpi): expected a contiguous f32 tensor, found ", dtype_name(t.dtype()));
    const std::string what = "all_reduce (mpi, " + mb(t.nbytes()) + ")";
    Tensor host = t.is_cpu() ? t : t.cpu();  // host-staged: one copy down now, one up in wait()
    float* p = host.f32();
    const auto n = static_cast<int>(t.numel());
    auto job = executor_->submit(
        [this, p, n, what] { check_mpi(MPI_Allreduce(MPI_IN_PLACE, p, n, MPI_FLOAT, MPI_SUM, comm_), rank(), what); },
        what);
    std::function<void()> after;
    if (!t.is_cpu()) after = [t, host]() mutable { t.copy_(host); };
    return std::make_shared<MpiWork>(*executor_, std::move(job), timeout_, rank(), std::move(after));
  }

  void broadcast(Tensor& t, int root) override {
    CXR_CHECK(t.is_contiguous(), "rank ", rank(), ": broadcast (mpi): expected a contiguous tensor");
    const std::string what = "broadcast (mpi, " + mb(t.nbytes()) + ", from rank " + std::to_string(root) + ")";
    Tensor host = t.is_cpu() ? t : t.cpu();
    auto* p = static_cast<char*>(host.raw_data());
    const std::size_t bytes = t.nbytes();
    run(
        [&] {
          for (std::size_t off = 0; off < bytes; off += kChunk) {  // counts are ints: large tensors in chunks
            const int n = static_cast<int>(std::min(kChunk, bytes - off));
            check_mpi(MPI_Bcast(p + off, n, MPI_BYTE, root, comm_), rank(), what);
          }
        },
        what);
    if (!t.is_cpu()) t.copy_(host);
  }

  std::vector<std::uint8_t> all_gather_bytes(const void* data, std::size_t bytes) override {
    const std::string what = "all_gather (mpi, " + mb(bytes) + ")";
    CXR_CHECK(bytes < (1u << 31), "rank ", rank(), ": ", what, ": more than 2 GB from one rank");
    std::vector<std::uint8_t> out;
    run(
        [&] {
          int mine = static_cast<int>(bytes);
          std::vector<int> counts(static_cast<std::size_t>(size())), offsets(counts.size());
          check_mpi(MPI_Allgather(&mine, 1, MPI_INT, counts.data(), 1, MPI_INT, comm_), rank(), what);
          long long total = 0;
          for (std::size_t r = 0; r < counts.size(); ++r) {
            offsets[r] = static_cast<int>(total);
            total += counts[r];
          }
          CXR_CHECK(total < (1ll << 31), "rank ", rank(), ": ", what, ": more than 2 GB in all");
          out.resize(static_cast<std::size_t>(total));
          check_mpi(MPI_Allgatherv(data, mine, MPI_BYTE, out.data(), counts.data(), offsets.data(), MPI_BYTE, comm_),
                    rank(), what);
        },
        what);
    return out;
  }

  void barrier() override {
    run([&] { check_mpi(MPI_Barrier(comm_), rank(), "barrier (mpi)"); }, "barrier (mpi)");
  }

 private:
  static constexpr std::size_t kChunk = std::size_t{1} << 30;

  // A blocking call: queued behind the pending all-reduces, waited for with the deadline.
  void run(std::function<void()> f, const std::string& what) {
    MpiWork(*executor_, executor_->submit(std::move(f), what), timeout_, rank()).wait();
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  double timeout_;
  std::unique_ptr<SerialExecutor> executor_ = std::make_unique<SerialExecutor>();
};

}  // namespace

void ensure_mpi_initialized() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) return;
  int provided = 0;
  const int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
  CXR_CHECK(rc == MPI_SUCCESS, "MPI_Init_thread failed (code ", rc, ")");
  CXR_CHECK(provided >= MPI_THREAD_SERIALIZED, "the MPI library gives thread level ", provided,
            ", below MPI_THREAD_SERIALIZED: its collectives cannot run on a communication thread");
  std::atexit(finalize_at_exit);
}

bool mpi_abort(int exit_code) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized) return false;
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  return true;
}

std::unique_ptr<Communicator> make_mpi_communicator(const WorldInfo& world, const CommOptions& options) {
  return std::make_unique<MpiCommunicator>(world, options);
}

}  // namespace cxr::dist
