#pragma once
// The real executor (docs/ARCHITECTURE.md §5): --backend cuda (NCCL) or loopback (one GPU, copy
// proxy). One rank engine per local rank: one per process under MPI, one per thread with --gpus N.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cuda/cuda_backend.hpp"
#include "cuda/nvml_telemetry.hpp"
#include "cuda/rank_engine.hpp"
#include "dist/communicator.hpp"
#include "model/executor.hpp"

namespace ob::cuda {

// How local ranks map onto devices, decided before any GPU is touched (pure logic, tested).
struct rank_layout {
  int local_ranks = 1;  // engines in this process
  int world_size = 1;   // NCCL ranks in total
  int first_global_rank = 0;
  std::vector<int> devices;  // CUDA ordinal per local rank
  bool shares_gpus = false;  // some GPU hosts more than one rank (on any node)
};
// `max_local_slots`: the most ranks any process's node places (local_rank * L + L, max over
// processes); larger than device_count means GPUs are shared somewhere.
rank_layout plan_rank_layout(int gpus_option, int process_rank, int process_count, int local_rank,
                             int device_count, int max_local_slots);

class cuda_executor final : public executor {
 public:
  cuda_executor(const cuda_backend_options& options, communicator& comm);
  ~cuda_executor() override;

  std::string backend() const override { return loopback_ ? "loopback" : "cuda"; }
  bool simulated() const override { return false; }
  std::string label() const override;
  using executor::measure;
  // A layer or pair case runs on every local rank (measure_case); a training step runs this
  // process's stage (measure_step).
  program_measurements measure(const program_variants& variants,
                               const measure_options& opts) override;
  json environment() const override;

 private:
  json build_environment() const;
  // A layer or pair case on every local rank, its groups the collectives' (cuda_executor.cpp).
  variant_measurements measure_case(const variant_schedules& variants, const measure_options& opts);
  // A training step (cuda/step_measure.cpp): this process's rank runs its stage's schedule;
  // iteration times and op intervals come back for every stage, gathered over the ranks.
  program_measurements measure_step(const program_variants& variants, const measure_options& opts);
  // Refuses a step this process cannot run: several local ranks, another world size than the
  // step's layout, or loopback over more than one GPU.
  void check_step(const rank_grid& grid) const;
  // Every process reaches this for the same case, so the broadcast of the id is collective:
  // `needs_comm` must be the same on every rank.
  const std::string* world_id(bool needs_comm);
  std::vector<rank_result> run_engines(const variant_schedules& variants,
                                       const measure_options& opts, const std::string* id);

  cuda_backend_options options_;
  communicator& comm_;
  bool loopback_ = false;
  rank_layout layout_;
  std::shared_ptr<nvml_telemetry> nvml_;
  std::vector<std::unique_ptr<rank_engine>> engines_;
  std::optional<std::string> world_id_;  // ncclUniqueId bytes, once the world exists
  std::vector<std::string> setup_warnings_;
  json env_;
};

}  // namespace ob::cuda
