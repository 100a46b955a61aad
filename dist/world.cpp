// The launcher's environment (see world.h).
#include "dist/world.h"

#include <cstdlib>
#include <string>

#include "tensor/error.h"

namespace cxr::dist {
namespace {

// The integer value of `name`, or `fallback` when unset; an error when not a number >= 0.
int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  CXR_CHECK(end != v && *end == '\0' && x >= 0 && x < (1L << 30), "the launcher's environment variable ", name,
            " is '", v, "': expected a number >= 0");
  return static_cast<int>(x);
}

bool has(const char* name) { return std::getenv(name) != nullptr; }

}  // namespace

WorldInfo world_from_environment() {
  WorldInfo w;
  if (has("OMPI_COMM_WORLD_SIZE")) {
    w.launcher = "mpirun";
    w.rank = env_int("OMPI_COMM_WORLD_RANK", 0);
    w.size = env_int("OMPI_COMM_WORLD_SIZE", 1);
    w.local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK", 0);
  } else if (has("SLURM_PROCID") && has("SLURM_NTASKS") && (has("PMI_FD") || has("PMIX_RANK") || has("PMI_RANK"))) {
    w.launcher = "srun";
    w.rank = env_int("SLURM_PROCID", 0);
    w.size = env_int("SLURM_NTASKS", 1);
    w.local_rank = env_int("SLURM_LOCALID", 0);
  } else if (has("PMI_SIZE") || has("PMIX_RANK")) {
    w.launcher = "pmi";
    w.rank = env_int(has("PMI_RANK") ? "PMI_RANK" : "PMIX_RANK", 0);
    w.size = env_int("PMI_SIZE", 1);
    w.local_rank = env_int("MPI_LOCALRANKID", 0);
  }
  CXR_CHECK(w.size >= 1 && w.rank < w.size, "the launcher (", w.launcher, ") says rank ", w.rank, " of ", w.size,
            " processes: the rank must be below the size");
  return w;
}

}  // namespace cxr::dist
