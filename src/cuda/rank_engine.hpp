#pragma once
// One rank's GPU: the device, its cuBLASLt handle and workspaces, its NCCL communicators, kept
// across cases; and the measurement of one case (docs/ARCHITECTURE.md §6), lowered on the host
// (cuda/lowering.hpp) and measured by a case_run (cuda/case_run.hpp). The executor owns one
// engine per local rank and drives each from its own thread in single-process multi-GPU mode.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cuda/abort_signal.hpp"
#include "cuda/cublaslt_gemm.hpp"
#include "cuda/cuda_backend.hpp"
#include "cuda/lowering.hpp"
#include "cuda/nccl_comms.hpp"
#include "cuda/nvml_telemetry.hpp"
#include "model/executor.hpp"

namespace ob::cuda {

class watchdog;

struct engine_identity {
  int local_index = 0;  // thread index in this process
  int device = 0;       // CUDA ordinal
  int global_rank = 0;  // NCCL rank
  int world_size = 1;
};

struct device_facts {
  std::string name;
  int sm_count = 0;
  int cc_major = 0, cc_minor = 0;
  std::size_t l2_bytes = 0, memory_bytes = 0;
  std::string pci_bus_id;
  int priority_least = 0, priority_greatest = 0;  // cudaDeviceGetStreamPriorityRange
};

// One rank's measurements of a case: the variants measure_options::variants leaves out stay
// empty. Notes for the case's result go in `warnings`, not in the variants.
struct rank_result {
  variant_measurements variants;
  std::vector<std::string> warnings;
};

// A training step's stage on this rank (cuda_executor::measure_step): the whole program (the
// rank lowers its own stage and creates every stage's communicators) and its layout.
struct stage_run {
  const program_variants* program = nullptr;
  rank_grid grid;
  // Called on every rank before the timed rounds and before the instrumented iteration (a
  // barrier), so the ranks' timelines start together.
  std::function<void()> sync;
};

class rank_engine {
 public:
  rank_engine(engine_identity id, const cuda_backend_options& options,
              std::shared_ptr<nvml_telemetry> nvml);
  ~rank_engine();
  rank_engine(const rank_engine&) = delete;
  rank_engine& operator=(const rank_engine&) = delete;

  const device_facts& facts() const { return facts_; }
  const engine_identity& identity() const { return id_; }
  const cuda_backend_options& options() const { return options_; }
  const nvml_telemetry* nvml() const { return nvml_.get(); }
  error_context context(std::string op = {}) const;

  // Measures one case. Call from the thread that drives this rank; it makes the device current.
  // `world_id` (ncclUniqueId bytes) is needed the first time a case has communication on the
  // cuda backend; every rank of the world must then call run() with the same schedules and
  // options.
  // With `stage`, `variants` are that stage's schedules (stage_schedules).
  rank_result run(const variant_schedules& variants, const measure_options& opts,
                  const std::string* world_id, abort_signal& abort,
                  const stage_run* stage = nullptr);

  // Creates the world communicator (the first time) and then those of `keys` that do not exist
  // yet, in order: collective, every rank must pass the same keys.
  // `grid`: a step's layout (who is in each communicator), or none for a single layer.
  void setup_comms(const std::vector<comm_key>& keys, const std::optional<rank_grid>& grid,
                   const std::string* world_id, double timeout_s, abort_signal& abort,
                   watchdog& dog);
  // The communicators; throws runtime_failure before setup_comms created them.
  nccl_comm_cache& comms();
  bool has_comms() const { return comms_ != nullptr; }
  // Aborts this rank's NCCL communicators (another rank failed, or a watchdog fired).
  void abort_comms() noexcept;

  cublaslt_gemm& gemm() { return *gemm_; }
  // The GEMM workspace of stream slot `slot` (allocated on first use, kept across cases).
  void* workspace(std::size_t slot);

 private:
  lowering_target target() const;
  // Refuses (config_error) a case whose buffers do not fit the GPU's free memory.
  void check_memory(const case_lowering& low) const;
  // Warnings that hold for every case on this engine, given with the first case they apply to.
  void engine_warnings(const variant_schedules& variants, const measure_options& opts,
                       std::vector<std::string>& out);

  engine_identity id_;
  cuda_backend_options options_;
  std::shared_ptr<nvml_telemetry> nvml_;
  device_facts facts_;
  std::unique_ptr<cublaslt_gemm> gemm_;
  std::vector<device_buffer> workspaces_;
  std::unique_ptr<nccl_comm_cache> comms_;
  bool warned_sm_hint_ = false;
  bool warned_launch_order_ = false;
};

}  // namespace ob::cuda
