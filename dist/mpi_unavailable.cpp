// A build without MPI (CMake did not find it): distributed runs are an error that says how to
// get it. Single-process runs need none of this.
#include "dist/backends.h"
#include "tensor/error.h"

namespace cxr::dist {

std::unique_ptr<Communicator> make_mpi_communicator(const WorldInfo& world, const CommOptions&) {
  CXR_FAIL("rank ", world.rank, ": this train_cxr was built without MPI, so it cannot join a job of ", world.size,
           " processes (install libopenmpi-dev and rebuild: scripts/setup)");
}
void ensure_mpi_initialized() { CXR_FAIL("this train_cxr was built without MPI (install libopenmpi-dev)"); }
bool mpi_abort(int) { return false; }

}  // namespace cxr::dist
