#pragma once
// One rank's GPU work: the device, its cuBLASLt handle and workspaces, its NCCL communicators,
// and the measurement of one case (DESIGN §7). The executor owns one engine per local rank and
// drives each from its own thread in single-process multi-GPU mode.
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "core/executor.hpp"
#include "cuda/abort_signal.hpp"
#include "cuda/cublaslt_gemm.hpp"
#include "cuda/nccl_comms.hpp"
#include "cuda/nvml_telemetry.hpp"

namespace ob::cuda {

struct engine_identity {
  int local_index = 0;  // thread index in this process
  int device = 0;       // CUDA ordinal
  int global_rank = 0;  // NCCL rank
  int world_size = 1;
};

struct engine_settings {
  bool loopback = false;
  std::function<int(coll_op)> default_ctas;  // loopback copy-proxy CTAs for ctas == 0
  int cta_policy = -1;                       // NCCL_CTA_POLICY_*, -1 = unset
  int sm_count_hint = 0;
};

struct device_facts {
  std::string name;
  int sm_count = 0;
  int cc_major = 0, cc_minor = 0;
  std::size_t l2_bytes = 0, memory_bytes = 0;
  std::string pci_bus_id;
  int priority_least = 0, priority_greatest = 0;  // cudaDeviceGetStreamPriorityRange
};

struct run_settings {
  int warmup = 5;
  int iters = 20;
  bool graphs = false;
  bool verify = true;
  double timeout_s = 300;
};

struct rank_variant_result {
  std::vector<double> iter_ms;
  std::vector<op_interval> ops;
  std::int64_t wrong = 0;
};

struct rank_result {
  std::array<rank_variant_result, 5> variants;
  std::vector<std::string> warnings;
};

class rank_engine {
 public:
  rank_engine(engine_identity id, engine_settings settings, std::shared_ptr<nvml_telemetry> nvml);
  ~rank_engine();
  rank_engine(const rank_engine&) = delete;
  rank_engine& operator=(const rank_engine&) = delete;

  const device_facts& facts() const { return facts_; }
  const engine_identity& identity() const { return id_; }
  error_context context(std::string op = {}) const;

  // Measures one case. Call from the thread that drives this rank; it makes the device current.
  // `world_id` (ncclUniqueId bytes) is needed the first time a case has communication on the
  // cuda backend; every rank of the world must then call run() with the same schedules.
  rank_result run(const variant_schedules& variants, const run_settings& rs,
                  const std::string* world_id, abort_signal& abort);

  // Aborts this rank's NCCL communicators (another rank failed, or a watchdog fired).
  void abort_comms() noexcept;

  cublaslt_gemm& gemm() { return *gemm_; }
  // The GEMM workspace of stream slot `slot` (allocated on first use, kept across cases).
  void* workspace(std::size_t slot);

 private:
  class case_run;

  engine_identity id_;
  engine_settings settings_;
  std::shared_ptr<nvml_telemetry> nvml_;
  device_facts facts_;
  std::unique_ptr<cublaslt_gemm> gemm_;
  std::vector<device_buffer> workspaces_;
  std::unique_ptr<nccl_comm_cache> comms_;
  bool warned_sm_hint_ = false;
  bool warned_launch_order_ = false;
};

// Tolerances for a chunked GEMM output against the unchunked one (bf16/fp16 outputs of the same
// operands through different algorithms): a couple of output ulps, scaled by the typical
// magnitude sqrt(k)/3 of a dot product of k uniform [-1, 1] pairs.
struct gemm_tolerance {
  float rtol = 0, atol = 0;
};
gemm_tolerance chunked_gemm_tolerance(std::int64_t k, dtype t);

}  // namespace ob::cuda
