#pragma once
// Ranks for the benchmark itself (not for NCCL data): who am I, how many, and the few
// cross-rank reductions the harness needs. MPI when launched under mpirun and built with it;
// a single rank otherwise.
#include <memory>
#include <string>
#include <vector>

namespace ob {

class communicator {
 public:
  virtual ~communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual int local_rank() const = 0;
  virtual std::string flavour() const = 0;  // "none", "Open MPI v4.1.4", ...
  // Element-wise max across ranks, result on every rank (the slowest rank sets the step).
  virtual void max_reduce(std::vector<double>& values) = 0;
  // Element-wise sum across ranks, result on every rank (e.g. #wrong counts).
  virtual void sum_reduce(std::vector<long long>& values) = 0;
  // Rank `root`'s bytes on every rank (an ncclUniqueId, a config).
  virtual void broadcast(std::string& bytes, int root) = 0;
  virtual void barrier() = 0;
  bool is_root() const { return rank() == 0; }
};

// True when the environment says we were started by mpirun/srun (OMPI_*, PMIX_*, PMI_*, SLURM_*).
bool launched_by_mpi_launcher();

// MPI when built with it and launched by a launcher (or `force_mpi`); single-rank otherwise.
// Throws config_error when the launcher started several ranks but the build has no MPI.
std::unique_ptr<communicator> make_communicator(int* argc, char*** argv, bool force_mpi = false);

std::unique_ptr<communicator> make_single_communicator();

}  // namespace ob
