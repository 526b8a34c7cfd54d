#pragma once
// Launching one lowered action: bound to this rank's device pointers, communicator and NCCL
// element type once, before timing, and then enqueued as often as the measurement asks.
#include <cuda_runtime.h>
#include <nccl.h>

#include <string_view>

#include "cuda/abort_signal.hpp"
#include "cuda/case_resources.hpp"
#include "cuda/lowering.hpp"

namespace ob::cuda {

class rank_engine;

struct bound_action {
  const lowered_action* a = nullptr;
  const void* x = nullptr;
  const void* w = nullptr;
  const void* x_scale = nullptr;  // block-scaled GEMMs
  const void* w_scale = nullptr;
  const void* src = nullptr;
  void* dst = nullptr;
  ncclComm_t comm = nullptr;
  ncclDataType_t nccl_type = ncclBfloat16;
};

// NCCL's element type for `t`. fp8 (e4m3) needs NCCL >= 2.24 in both the headers built against
// and the library loaded; otherwise config_error naming the op in `ctx`.
ncclDataType_t nccl_data_type(dtype t, const error_context& ctx);
// Resolves the NCCL element type of every NCCL action of a case, so that an unsupported one is a
// config error before any communicator is created. `ctx` names the rank; the op is added.
void require_nccl_types(const case_lowering& low, const error_context& ctx);

class action_launcher {
 public:
  action_launcher(rank_engine& engine, double timeout_s, abort_signal& abort)
      : e_(engine), timeout_s_(timeout_s), abort_(abort) {}

  // Resolves pointers and the communicator, and prepares what a launch inside the timed loop
  // must not do: a cuBLASLt heuristic query or a workspace cudaMalloc would stall it (and cannot
  // run inside a graph capture).
  bound_action bind(const lowered_action& a, const case_resources& res) const;
  void launch(const bound_action& b, cudaStream_t s) const;

 private:
  ncclResult_t all_to_all(const bound_action& b, cudaStream_t s) const;
  // NCCL 2.31's nccl*Config call with the per-collective cap (ncclCollConfig_t.maxCTAs).
  ncclResult_t configured_collective(const bound_action& b, cudaStream_t s) const;
  void launch_collective(const bound_action& b, cudaStream_t s) const;
  void launch_p2p(const bound_action& b, cudaStream_t s) const;
  static void host_sync(cudaStream_t s, const error_context& c);
  void finish_nccl(ncclResult_t rc, const bound_action& b, std::string_view call) const;

  rank_engine& e_;
  const double timeout_s_;
  abort_signal& abort_;
};

}  // namespace ob::cuda
