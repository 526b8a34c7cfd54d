// Built only when MPI is found (CMake drops mpi_*.cpp otherwise).
#include <mpi.h>

#include <chrono>
#include <cstdlib>
#include <exception>
#include <string>
#include <thread>

#include "base/error.hpp"
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

// Owns MPI_Init/MPI_Finalize, the node-local communicator and two duplicates of the world: one
// for the reductions, one for broadcasts. A rank that skips a reduction (or dies) then leaves
// the others waiting in that reduction rather than pairing it with a later broadcast.
class mpi_communicator final : public communicator {
 public:
  mpi_communicator(int* argc, char*** argv, double timeout_s) : timeout_s_(timeout_s) {
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
    for (MPI_Comm* c : {&reduce_, &bcast_}) {
      check(MPI_Comm_dup(MPI_COMM_WORLD, c), "MPI_Comm_dup");
      // Errors come back to check() with the rank and the call, instead of aborting the job.
      check(MPI_Comm_set_errhandler(*c, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    }
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
    // On an error the other ranks may be gone or stuck in a collective, and MPI_Finalize would
    // wait for them: leave without it, and mpirun ends the job with this rank's exit code.
    if (std::uncaught_exceptions() > 0) return;
    for (MPI_Comm* c : {&reduce_, &bcast_, &local_})
      if (*c != MPI_COMM_NULL) MPI_Comm_free(c);
    if (owns_init_) MPI_Finalize();
  }
  mpi_communicator(const mpi_communicator&) = delete;
  mpi_communicator& operator=(const mpi_communicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  std::string flavour() const override { return flavour_; }
  void max_reduce(std::vector<double>& values) override {
    MPI_Request r = MPI_REQUEST_NULL;
    check(MPI_Iallreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_DOUBLE,
                         MPI_MAX, reduce_, &r),
          "MPI_Iallreduce(max)");
    wait(r, "MPI_Iallreduce(max)");
  }
  void sum_reduce(std::vector<long long>& values) override {
    MPI_Request r = MPI_REQUEST_NULL;
    check(MPI_Iallreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()),
                         MPI_LONG_LONG, MPI_SUM, reduce_, &r),
          "MPI_Iallreduce(sum)");
    wait(r, "MPI_Iallreduce(sum)");
  }
  void broadcast(std::string& bytes, int root) override {
    long long n = static_cast<long long>(bytes.size());
    MPI_Request r = MPI_REQUEST_NULL;
    check(MPI_Ibcast(&n, 1, MPI_LONG_LONG, root, bcast_, &r), "MPI_Ibcast(size)");
    wait(r, "MPI_Ibcast(size)");
    bytes.resize(static_cast<std::size_t>(n));
    check(MPI_Ibcast(bytes.data(), static_cast<int>(n), MPI_BYTE, root, bcast_, &r), "MPI_Ibcast");
    wait(r, "MPI_Ibcast");
  }
  void barrier() override {
    MPI_Request r = MPI_REQUEST_NULL;
    check(MPI_Ibarrier(bcast_, &r), "MPI_Ibarrier");
    wait(r, "MPI_Ibarrier");
  }

 private:
  // Polls `r` until it completes or --timeout passes; then hang_error names this rank and `what`.
  // Spins briefly (a sim case is short), then yields, then sleeps, so oversubscribed ranks leave
  // the cores to the ones still measuring.
  void wait(MPI_Request& r, const char* what) {
    using clock = std::chrono::steady_clock;
    const auto start = clock::now();
    const auto deadline = start + std::chrono::duration<double>(timeout_s_);
    for (long polls = 0;; ++polls) {
      int done = 0;
      check(MPI_Test(&r, &done, MPI_STATUS_IGNORE), what);
      if (done) return;
      const auto now = clock::now();
      if (now >= deadline)
        throw hang_error("rank " + std::to_string(rank_) + ": no answer within " +
                         std::to_string(static_cast<long>(timeout_s_)) + " s (--timeout) in " +
                         what + ": another rank skipped it, hung or died");
      if (polls < 1000) continue;
      if (now - start < std::chrono::milliseconds(10))
        std::this_thread::yield();
      else
        std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
  }

  double timeout_s_;
  bool owns_init_ = false;
  int rank_ = 0, size_ = 1, local_rank_ = 0;
  MPI_Comm local_ = MPI_COMM_NULL, reduce_ = MPI_COMM_NULL, bcast_ = MPI_COMM_NULL;
  std::string flavour_;
};

}  // namespace

std::unique_ptr<communicator> make_communicator(int* argc, char*** argv, double timeout_s,
                                                bool force_mpi) {
  if (force_mpi || launched_by_mpi_launcher())
    return std::make_unique<mpi_communicator>(argc, argv, timeout_s);
  return make_single_communicator();
}

}  // namespace ob
