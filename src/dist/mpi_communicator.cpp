// Built only when MPI is found (CMake drops mpi_*.cpp otherwise).
#include <mpi.h>

#include <cstdlib>
#include <string>

#include "core/error.hpp"
#include "dist/communicator.hpp"

namespace ob {
namespace {

void check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    throw runtime_failure(std::string("MPI: ") + what + " failed: " + std::string(msg, len));
  }
}

// Owns MPI_Init/MPI_Finalize and the node-local communicator.
class mpi_communicator final : public communicator {
 public:
  mpi_communicator(int* argc, char*** argv) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      check(MPI_Init(argc, argv), "MPI_Init");
      owns_init_ = true;
    }
    check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
    check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local_),
          "MPI_Comm_split_type");
    check(MPI_Comm_rank(local_, &local_rank_), "MPI_Comm_rank(local)");
    // The launcher's own idea of the local rank must agree, or GPUs get double-booked.
    for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID"}) {
      if (const char* v = std::getenv(name); v && *v && std::atoi(v) != local_rank_)
        throw runtime_failure("rank " + std::to_string(rank_) + ": MPI local rank " +
                              std::to_string(local_rank_) + " disagrees with " + name + "=" + v);
    }
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(version, &len);
    flavour_ = std::string(version, len);
    if (auto nl = flavour_.find_first_of(",\n"); nl != std::string::npos) flavour_.resize(nl);
  }
  ~mpi_communicator() override {
    if (local_ != MPI_COMM_NULL) MPI_Comm_free(&local_);
    if (owns_init_) MPI_Finalize();
  }
  mpi_communicator(const mpi_communicator&) = delete;
  mpi_communicator& operator=(const mpi_communicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  std::string flavour() const override { return flavour_; }
  void max_reduce(std::vector<double>& values) override {
    check(MPI_Allreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_DOUBLE,
                        MPI_MAX, MPI_COMM_WORLD),
          "MPI_Allreduce(max)");
  }
  void sum_reduce(std::vector<long long>& values) override {
    check(MPI_Allreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_LONG_LONG,
                        MPI_SUM, MPI_COMM_WORLD),
          "MPI_Allreduce(sum)");
  }
  void broadcast(std::string& bytes, int root) override {
    long long n = static_cast<long long>(bytes.size());
    check(MPI_Bcast(&n, 1, MPI_LONG_LONG, root, MPI_COMM_WORLD), "MPI_Bcast(size)");
    bytes.resize(static_cast<std::size_t>(n));
    check(MPI_Bcast(bytes.data(), static_cast<int>(n), MPI_BYTE, root, MPI_COMM_WORLD),
          "MPI_Bcast");
  }
  void barrier() override { check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }

 private:
  bool owns_init_ = false;
  int rank_ = 0, size_ = 1, local_rank_ = 0;
  MPI_Comm local_ = MPI_COMM_NULL;
  std::string flavour_;
};

}  // namespace

std::unique_ptr<communicator> make_communicator(int* argc, char*** argv, bool force_mpi) {
  if (force_mpi || launched_by_mpi_launcher())
    return std::make_unique<mpi_communicator>(argc, argv);
  return make_single_communicator();
}

}  // namespace ob
