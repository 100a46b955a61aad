// The back ends' factories (dist/communicator.cpp picks one). Each is defined once per build:
// mpi_communicator.cpp where MPI was found (else mpi_unavailable.cpp), nccl_communicator.cpp in
// the real-GPU library (nccl_unavailable.cpp on the emulated device).
#pragma once

#include <memory>

#include "dist/communicator.h"

namespace cxr::dist {

std::unique_ptr<Communicator> make_mpi_communicator(const WorldInfo& world, const CommOptions& options);
std::unique_ptr<Communicator> make_nccl_communicator(const WorldInfo& world, const CommOptions& options);

// MPI itself, shared by both back ends (NCCL exchanges its unique id over MPI): initialised
// once per process (MPI_THREAD_SERIALIZED), finalised at exit.
void ensure_mpi_initialized();
// MPI_Abort where MPI runs; false in a build without MPI or before MPI_Init.
bool mpi_abort(int exit_code);

}  // namespace cxr::dist
