#pragma once
// Making the benchmark's communicator (model/communicator.hpp): MPI when launched under mpirun and
// built with it; a single rank otherwise.
#include <memory>
#include <string>
#include <vector>

#include "model/communicator.hpp"

namespace ob {

// True when the environment says we were started by mpirun/srun (OMPI_*, PMIX_*, PMI_*, SLURM_*).
bool launched_by_mpi_launcher();

// MPI when built with it and launched by a launcher (or `force_mpi`); single-rank otherwise.
// Throws config_error when the launcher started several ranks but the build has no MPI. Every
// cross-rank call gives up after `timeout_s` (--timeout) with a hang_error naming the rank and
// the MPI call, so a dead or stuck rank never blocks the others for ever.
std::unique_ptr<communicator> make_communicator(int* argc, char*** argv, double timeout_s = 300,
                                                bool force_mpi = false);

std::unique_ptr<communicator> make_single_communicator();

}  // namespace ob
