#pragma once
// One GEMM slot's TP-overlap setting, as Transformer Engine's userbuffers take it
// (docs/BRIDGE_RULES.md §2.4, §6.2).
#include <map>
#include <string>
#include <string_view>

#include "base/enum_names.hpp"

namespace ob {

enum class overlap_method { none, bulk, pipeline, ring_exchange, external };
template <>
struct enum_names<overlap_method> {
  static constexpr std::string_view noun = "overlap method";
  static constexpr std::array names = {enum_entry{overlap_method::none, "none"},
                                       enum_entry{overlap_method::bulk, "bulk"},
                                       enum_entry{overlap_method::pipeline, "pipeline"},
                                       enum_entry{overlap_method::ring_exchange, "ring_exchange"},
                                       enum_entry{overlap_method::external, "external"}};
};

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
