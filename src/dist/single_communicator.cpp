#include <cstdlib>
#include <string>

#include "base/error.hpp"
#include "dist/communicator.hpp"

namespace ob {
namespace {

class single_communicator final : public communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  std::string flavour() const override { return "none"; }
  void max_reduce(std::vector<double>&) override {}
  void sum_reduce(std::vector<long long>&) override {}
  void broadcast(std::string&, int) override {}
  void barrier() override {}
};

}  // namespace

std::unique_ptr<communicator> make_single_communicator() {
  return std::make_unique<single_communicator>();
}

bool launched_by_mpi_launcher() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(name)) return true;
  return false;
}

#ifndef OB_HAVE_MPI
namespace {
int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}
}  // namespace

std::unique_ptr<communicator> make_communicator(int*, char***, double, bool force_mpi) {
  const int world = env_int("OMPI_COMM_WORLD_SIZE", env_int("PMI_SIZE", 1));
  if (force_mpi || world > 1)
    throw config_error(
        "this overlap-bench was built without MPI, but " +
        std::string(force_mpi ? "MPI was requested"
                              : "the launcher started " + std::to_string(world) + " ranks") +
        "; rebuild with libopenmpi-dev installed (scripts/setup.sh)");
  return make_single_communicator();
}
#endif

}  // namespace ob
