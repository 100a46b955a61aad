// The emulated CUDA device (and a build without NCCL): the NCCL back end cannot run, and says
// why. The MPI back end stages device tensors through the host instead.
#include "dist/backends.h"
#include "tensor/error.h"

namespace cxr::dist {

std::unique_ptr<Communicator> make_nccl_communicator(const WorldInfo& world, const CommOptions&) {
  CXR_FAIL("rank ", world.rank, ": --dist-backend nccl needs NCCL and a real CUDA GPU; this build runs ",
#if CXR_CUDA_EMULATION
           "the emulated CUDA device",
#else
           "without NCCL",
#endif
           " (use --dist-backend mpi, which stages device tensors through the host)");
}

}  // namespace cxr::dist
