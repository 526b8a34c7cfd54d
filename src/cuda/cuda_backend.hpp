#pragma once
// The CUDA backend's entry points for the CLI. Includes no CUDA header, so the CLI (and any
// pure-C++ file) can include it; it exists only in builds with CUDA (OB_HAVE_CUDA).
#include <functional>
#include <memory>
#include <string>

#include "dist/communicator.hpp"
#include "model/cdmc.hpp"
#include "model/executor.hpp"
#include "model/ir.hpp"

namespace ob {

// CUDA devices visible to this process; 0 when there is no driver or no device. Never throws.
int cuda_device_count() noexcept;

// What the executor is built with: settings that hold for its lifetime. How each case is measured
// (iterations, graphs, timeout, verification, variants) is measure_options, per call.
struct cuda_backend_options {
  std::string backend = "cuda";  // "cuda" (NCCL) or "loopback" (one GPU, copy proxy)
  // Single-process mode: local ranks, one thread per GPU. 0 = one rank per process (MPI or
  // single). More ranks than GPUs run several ranks per GPU (NCCL >= 2.30 only).
  int gpus = 0;
  // CTAs of a collective whose IR op says 0 (library default), for the loopback copy proxy.
  // Unset: 16.
  std::function<int(coll_op)> default_ctas;
  // The SM count the plan assumed (its GPU file); a device with another count gets a warning.
  int sm_count_hint = 0;
  // ncclConfig_t.CTAPolicy: "" leaves it unset; "default" | "efficiency" | "zero" (NCCL >= 2.27,
  // applied only when the loaded library has it).
  std::string nccl_cta_policy;

  bool loopback() const { return backend == "loopback"; }
};

// The executor for --backend cuda or loopback. Throws runtime_failure("no CUDA device found; use
// --backend sim") without a GPU (exit 3), config_error for bad options (exit 2).
std::unique_ptr<executor> make_cuda_executor(const cuda_backend_options& options,
                                             communicator& comm);

}  // namespace ob
