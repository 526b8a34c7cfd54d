#pragma once
// One GEMM slot's TP-overlap setting, as Transformer Engine's userbuffers take it
// (reference megatron_bridge_overlap.md §2.4, §6.2).
#include <map>
#include <string>
#include <string_view>

namespace ob {

enum class overlap_method { none, bulk, pipeline, ring_exchange, external };
std::string_view to_string(overlap_method m);
overlap_method parse_overlap_method(std::string_view s, std::string_view field);

struct gemm_overlap_cfg {
  overlap_method method = overlap_method::none;
  int num_sm = 0;              // comm SMs (NCCL maxCTAs with NCCL as substrate)
  int cga_size = 1;            // NCCL cgaClusterSize
  bool set_sm_margin = false;  // GEMM gets SMs - num_sm
  int num_splits = 1;          // pipeline chunks; ring_exchange uses tp whatever this says
  bool aggregate = false;
  bool atomic_gemm = false;
  bool fp8_buf = false;
};

// The layer's GEMM slots, in the order the reference lists them.
inline constexpr std::string_view gemm_slots[] = {
    "qkv_fprop", "qkv_dgrad", "qkv_wgrad", "proj_fprop", "proj_dgrad", "proj_wgrad",
    "fc1_fprop", "fc1_dgrad", "fc1_wgrad", "fc2_fprop",  "fc2_dgrad",  "fc2_wgrad"};

using slot_overlap_map = std::map<std::string, gemm_overlap_cfg, std::less<>>;

}  // namespace ob
