#pragma once
// One GPU model: datasheet figures plus the simulator's calibration constants
// (configs/gpus/<name>.json). Every value in the file carries its source.
#include <string>

#include "core/ir.hpp"

namespace ob {

struct gpu_spec {
  std::string name;          // file stem: h100_sxm
  std::string display_name;  // "NVIDIA H100 SXM 80GB"
  int compute_capability_major = 9;
  int sm_count = 0;
  double peak_tflops_bf16 = 0, peak_tflops_fp16 = 0, peak_tflops_fp8 = 0;  // dense tensor
  double hbm_gbps = 0;
  double nvlink_gbps = 0;  // per direction, per GPU
  double nic_gbps = 0;     // per NIC, per direction
  int gemm_tile_m = 128, gemm_tile_n = 256;
  // Per-SM rate of a half-width tile relative to the full tile (sim's tile choice).
  double small_tile_efficiency = 0.9;
  // Host costs (µs).
  double launch_us = 0, nccl_launch_us = 0, event_us = 0, graph_node_us = 0;
  // Launches the host can have outstanding before cudaLaunchKernel blocks: the host of a long
  // schedule (a training step) stays at most this many ops ahead of the GPU.
  int max_pending_launches = 1024;
  // Device-side delay before a dependency resolved in another hardware queue is seen.
  double cross_queue_event_us = 0;
  // NCCL per-step latency (µs) by protocol, NVLink ring.
  double nccl_step_us_ll = 0, nccl_step_us_ll128 = 0, nccl_step_us_simple = 0;
  // Per-hop latency added per ring step beyond the first, and the largest per-rank message
  // NCCL sends with LL (beyond it the model uses Simple).
  double nccl_hop_us = 0;
  double nccl_ll_max_bytes_per_rank = 0;
  // Calibration: fraction of per-SM peak a GEMM tile achieves.
  double gemm_efficiency_bf16 = 0, gemm_efficiency_fp16 = 0, gemm_efficiency_fp8 = 0;
  // Slowdown factors while GEMM and communication run together (HBM/L2 sharing).
  double gemm_contention = 1, comm_contention = 1;
  double nccl_channel_gbps = 0;     // one channel (one CTA) at most
  double nccl_link_efficiency = 1;  // achievable fraction of NVLink after protocol overhead
  int nccl_ctas_all_gather = 16, nccl_ctas_reduce_scatter = 16, nccl_ctas_all_reduce = 16,
      nccl_ctas_p2p = 8;
  double copy_engine_gbps = 0;               // p2p through copy engines (no SM)
  double elementwise_hbm_efficiency = 0.85;  // memory-bound kernels' fraction of HBM

  double peak_tflops(dtype t) const;
  bool supports(dtype t) const { return peak_tflops(t) > 0; }
  // Throws config_error naming `field` when this GPU has no tensor cores for `t` (fp8 on A100).
  void require(dtype t, const std::string& field) const;
  double gemm_efficiency(dtype t) const;
  int default_ctas(coll_op op) const;
  double nvlink_effective_gbps() const { return nvlink_gbps * nccl_link_efficiency; }
};

// Loads and validates; errors name the file and field (exit 2). `ref` is a name in
// configs/gpus/ or a path.
gpu_spec load_gpu_spec(const std::string& ref, const std::string& field = "--gpu");

}  // namespace ob
