// Where this process stands in a distributed job, as the launcher says (no MPI call needed):
//   Open MPI's mpirun   OMPI_COMM_WORLD_RANK / _SIZE / _LOCAL_RANK
//   Slurm's srun        SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID
//   MPICH, PMIx         PMI_RANK / PMI_SIZE, PMIX_RANK (local rank: MPI_LOCALRANKID)
// A process started without a launcher, or as the only process of one (mpirun -np 1), is rank 0
// of 1: training then runs exactly as a single-process run (no MPI is initialised).
#pragma once

#include <string>

namespace cxr::dist {

struct WorldInfo {
  int rank = 0;
  int size = 1;
  int local_rank = 0;    // among the ranks of this machine: picks the GPU (--device cuda)
  std::string launcher;  // "mpirun", "srun", "pmi", or "" (none)
  bool distributed() const { return size > 1; }
  // "rank R: " in a distributed job (the start of its messages, which share one terminal), else "".
  std::string message_prefix() const { return distributed() ? "rank " + std::to_string(rank) + ": " : ""; }
};

// Reads the launcher's environment variables; a malformed value is an error naming it.
WorldInfo world_from_environment();

}  // namespace cxr::dist
