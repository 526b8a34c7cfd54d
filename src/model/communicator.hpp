#pragma once
// Ranks of the benchmark itself (not NCCL's): who am I, how many, and the few cross-rank
// reductions a sweep needs. The pipeline (src/run) measures through this interface; src/dist
// implements it (MPI, or a single rank).
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

}  // namespace ob
