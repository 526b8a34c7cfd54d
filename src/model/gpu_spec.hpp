#pragma once
// One GPU model: datasheet figures plus the simulator's calibration constants
// (configs/gpus/<name>.json). Every value in the file carries its source.
#include <array>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "model/ir.hpp"

namespace ob {

// NCCL's three protocols, in the order of its tuning tables.
enum class nccl_protocol { ll, ll128, simple };
inline constexpr int nccl_protocol_count = 3;
const char* to_string(nccl_protocol p);

// What the model needs of one NCCL protocol on NVLink (docs/ARCHITECTURE.md §5.1).
struct nccl_protocol_constants {
  double base_us = 0;       // latency of the first ring step (NCCL's base + one NVLink hop)
  double hop_us = 0;        // latency of each further ring step
  double bw_fraction = 1;   // share of the effective link and per-channel rate it reaches
  double thread_bytes = 0;  // NCCL's per-thread threshold: fewer channels below it (x ranks)
};

// One EP dispatcher's protocol constants (`sim.ep_dispatch.<backend>`, docs/MOE.md §7): the
// SMs it holds move wire_bytes / sm_gbps plus token_sm_us per token copy (dispatch) or
// combine_token_sm_us (combine), split over the SMs; NVLink caps them; each call pays a fixed
// dispatch_us / combine_us (layout, notify, the host's view of the counts). 0 sm_gbps: unknown.
struct ep_dispatch_constants {
  int default_sms = 0;
  double sm_gbps = 0, token_sm_us = 0, combine_token_sm_us = 0;
  double dispatch_us = 0, combine_us = 0;
  bool known() const { return sm_gbps > 0; }
};

struct gpu_spec {
  std::string name;          // file stem: h100_sxm
  std::string display_name;  // "NVIDIA H100 SXM 80GB"
  int compute_capability_major = 9;
  int sm_count = 0;
  double peak_tflops_bf16 = 0, peak_tflops_fp16 = 0, peak_tflops_fp8 = 0;  // dense tensor
  // Blackwell's block-scaled formats; 0 where the GPU has no tensor cores for them.
  double peak_tflops_mxfp8 = 0, peak_tflops_nvfp4 = 0;
  double hbm_gbps = 0;
  double hbm_gib = 0;      // memory a process can allocate from; 0 when the file does not say
  double nvlink_gbps = 0;  // per direction, per GPU
  double nic_gbps = 0;     // per NIC, per direction
  int gemm_tile_m = 128, gemm_tile_n = 256;
  // Per-SM rate of a half-width tile relative to the full tile (sim's tile choice).
  double small_tile_efficiency = 0.9;
  // Host costs (µs).
  double launch_us = 0, nccl_launch_us = 0, event_us = 0, graph_node_us = 0;
  // Host time per kernel that an eager framework op issues (dispatch, autograd, the launch and
  // the Python between ops), measured in public profiles (docs/MOE.md §20): what every eager
  // compute kernel and every host-only framework op costs the host. launch_us is the launch
  // call alone (host syncs' copies and the simulator's own delays).
  double eager_op_us = 0;
  // Host time of one torch.distributed (c10d) collective call issued from eager Python
  // (ProcessGroupNCCL's events and work object, the NCCL enqueue and launch), measured in public
  // profiles (docs/MOE.md §20): what a step's DP bucket and NCCL EP collectives cost the host.
  // nccl_launch_us stays the cost of an NCCL call issued from C++ (a benchmark harness, TE).
  double c10d_call_us = 0;
  // A host sync (op_kind::host_sync): from the device-to-host copy's start until the host thread
  // runs again after its wait.
  double host_sync_us = 0;
  // Launches the host can have outstanding before cudaLaunchKernel blocks: the host of a long
  // schedule (a training step) stays at most this many ops ahead of the GPU.
  int max_pending_launches = 1024;
  // Device-side delay before a dependency resolved in another hardware queue is seen.
  double cross_queue_event_us = 0;
  // NCCL's protocols on NVLink, indexed by nccl_protocol.
  std::array<nccl_protocol_constants, nccl_protocol_count> nccl_proto{};
  // NCCL's chunk pipeline: until a channel has moved nccl_fill_bytes it runs at
  // 1 / (1 + nccl_fill_fraction) of its rate (paid as latency).
  double nccl_fill_fraction = 0, nccl_fill_bytes = 0;
  int nccl_threads = 512;  // threads per NCCL CTA (the channel-count rule's nt)
  // NVLink SHARP all-reduce: fixed latency and busbw relative to the ring; 0 = not available.
  double nvls_latency_us = 0, nvls_bw_factor = 0;
  // NCCL's symmetric-memory kernels (NCCL 2.27): their NVLink latency relative to the usual
  // kernels'; 0 = none (a symmetric window is refused on this GPU).
  double nccl_symmetric_latency_factor = 0;
  // DeepEP's normal and low-latency kernels and HybridEP; absent from the file: unknown.
  ep_dispatch_constants deepep, deepep_low_latency, hybridep;
  // Calibration: fraction of per-SM peak a GEMM tile achieves.
  double gemm_efficiency_bf16 = 0, gemm_efficiency_fp16 = 0, gemm_efficiency_fp8 = 0;
  double gemm_efficiency_mxfp8 = 0, gemm_efficiency_nvfp4 = 0;
  // GEMM model v2: once per CTA (prologue, pipeline fill, last epilogue), once per work unit
  // (epilogue store), once per split-K unit (partial-sum fixup); K slices no shorter than
  // gemm_splitk_min_k, at most gemm_splitk_max per tile; the share of the shorter of math and
  // memory time that does not overlap the longer.
  double gemm_setup_us = 0, gemm_unit_overhead_us = 0, gemm_splitk_fixup_us = 0;
  int gemm_splitk_min_k = 1024, gemm_splitk_max = 1;
  double gemm_mem_overlap_loss = 0;
  // HBM interference (docs/ARCHITECTURE.md §5.1, item 8): a GEMM reads gemm_hbm_traffic times
  // its compulsory bytes from HBM (L2 misses re-read operands); every byte a collective moves
  // costs comm_hbm_traffic bytes of HBM (read at the source, written at the destination). Each
  // side slows by 1 + sensitivity x the other's share of HBM, and both by the oversubscription
  // when their demands together exceed it.
  double gemm_hbm_traffic = 1, comm_hbm_traffic = 1;
  double gemm_hbm_sensitivity = 0, comm_hbm_sensitivity = 0;
  double nccl_channel_gbps = 0;     // one channel (one CTA) at most
  double nccl_link_efficiency = 1;  // achievable fraction of NVLink after protocol overhead
  // `sim.nccl_default_ctas`: channels per key; a collective reads the key its
  // collective_traits row names (model/collective_traits.hpp).
  std::map<std::string, int, std::less<>> nccl_default_ctas;
  int nccl_ctas_p2p = 8;
  double copy_engine_gbps = 0;               // p2p through copy engines (no SM)
  double elementwise_hbm_efficiency = 0.85;  // memory-bound kernels' fraction of HBM
  // Fraction of the dense bf16/fp16 peak a fused flash-attention kernel's counted FLOPs reach.
  double flash_attention_efficiency_fwd = 0, flash_attention_efficiency_bwd = 0;
  // The same for FlashAttention-2 (attention_backend flash2); 0 where the GPU file has no
  // `flash_attention_efficiency.flash2`.
  double flash2_efficiency_fwd = 0, flash2_efficiency_bwd = 0;
  // The same for cuDNN's fused attention on fp8 inputs (Transformer Engine's fp8_dpa), as a
  // fraction of the bf16 peak: per-tensor scales (`flash_attention_efficiency.fp8`) and MXFP8
  // block scales (`.mxfp8`); 0 where the file has none (fp8 attention refused on this GPU).
  double fp8_attention_efficiency_fwd = 0, fp8_attention_efficiency_bwd = 0;
  double mxfp8_attention_efficiency_fwd = 0, mxfp8_attention_efficiency_bwd = 0;
  bool has_fp8_attention(dtype t) const {
    return (t == dtype::mxfp8 ? mxfp8_attention_efficiency_fwd : fp8_attention_efficiency_fwd) > 0;
  }
  // Share of that rate a fused kernel keeps while it draws and applies a dropout mask.
  double flash_attention_dropout_rate = 1;
  // Tensor-core rate of a GPU busy for seconds (a training step) relative to the short loops the
  // GEMM constants are fitted to: under the power limit the clock settles lower.
  double sustained_clock_factor = 1;

  double peak_tflops(dtype t) const;
  bool supports(dtype t) const { return peak_tflops(t) > 0; }
  // Throws config_error naming `field`, the GPU file and the dtype when this GPU has no tensor
  // cores for `t` (fp8 on A100, mxfp8 or nvfp4 before Blackwell).
  void require(dtype t, const std::string& field) const;
  double gemm_efficiency(dtype t) const;
  // Fraction of the bf16 peak at which an elementwise op's FLOPs run; `dropout`: a fused
  // attention kernel that applies attention dropout (flash_attention_dropout_rate).
  double math_efficiency(elementwise_math m, bool dropout = false) const;
  // `rate`, or a config_error naming the GPU file's missing `flash_attention_efficiency.<key>`.
  double fp8_attention_rate(double rate, const char* key) const;
  int default_ctas(coll_op op) const;
  const nccl_protocol_constants& proto(nccl_protocol p) const {
    return nccl_proto[static_cast<int>(p)];
  }
  bool has_nvls() const { return nvls_bw_factor > 0; }
  bool has_symmetric_kernels() const { return nccl_symmetric_latency_factor > 0; }
  // HBM bytes per µs GEMMs and collectives can share.
  double hbm_bytes_per_us() const { return hbm_gbps * elementwise_hbm_efficiency * 1e3; }
  double nvlink_effective_gbps() const { return nvlink_gbps * nccl_link_efficiency; }
};

// The GPU as a long, continuously busy run sees it: every tensor-core efficiency (GEMM and flash
// attention) times sustained_clock_factor; memory, links and the datasheet peaks unchanged.
gpu_spec at_sustained_clock(gpu_spec g);

// Loads and validates; errors name the file and field (exit 2). `ref` is a name in
// configs/gpus/ or a path.
gpu_spec load_gpu_spec(const std::string& ref, const std::string& field = "--gpu");

// The GPU families the tool knows, in one table: the family a preset or a Bridge config names
// ("h100"), its compute capability (9: Hopper, 10: Blackwell) and the names that belong to it
// ("h100_sxm" is a GPU file of family h100). A GPU file's compute_capability_major must agree
// with its family's (tests/unit/test_config.cpp).
struct gpu_family_info {
  std::string_view family;
  int compute_capability_major;
};
inline constexpr std::array<gpu_family_info, 7> gpu_families = {{{"a100", 8},
                                                                 {"h100", 9},
                                                                 {"h200", 9},
                                                                 {"b200", 10},
                                                                 {"b300", 10},
                                                                 {"gb200", 10},
                                                                 {"gb300", 10}}};
// "h100_sxm" -> "h100", "b200" -> "b200": the name up to its first underscore.
std::string gpu_family(std::string_view gpu);
// The family's entry, or nullptr for a name of no known family.
const gpu_family_info* find_gpu_family(std::string_view gpu_family_or_name);
// Blackwell or newer (compute capability 10+): Bridge's launcher and TE treat it apart.
bool is_sm100_or_newer(std::string_view gpu_family_or_name);
// The families' names, for a config field's allowed values.
std::vector<std::string> gpu_family_names();

}  // namespace ob
