#pragma once
// The knobs of a planned case that change what is enqueued (docs/ARCHITECTURE.md §3): launch
// order, stream priorities, SM margins, CTAs, passes, TE's launch ordering. Sweep axes parse into
// them (spec/sweep_axes.hpp); the planners read them (plan/plan.hpp). CDMC is not one: it changes
// only how the executor maps streams to queues (model/cdmc.hpp).
#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "base/enum_names.hpp"
#include "model/nccl_config.hpp"

namespace ob {

enum class launch_order { comm_first, gemm_first };
enum class priority_mode { comm_high, equal, compute_high };
template <>
struct enum_names<launch_order> {
  static constexpr std::string_view noun = "order";
  static constexpr std::array names = {enum_entry{launch_order::comm_first, "comm_first"},
                                       enum_entry{launch_order::gemm_first, "gemm_first"}};
};
template <>
struct enum_names<priority_mode> {
  static constexpr std::string_view noun = "priority";
  static constexpr std::array names = {enum_entry{priority_mode::comm_high, "comm_high"},
                                       enum_entry{priority_mode::equal, "equal"},
                                       enum_entry{priority_mode::compute_high, "compute_high"}};
};

// The stream priorities a priority mode gives, in CUDA's convention (lower = higher priority;
// Transformer Engine gives its comm streams the highest). One table for the layer, pair and step
// planners.
struct stream_priorities {
  int compute = 0, comm = 0;
};
constexpr stream_priorities priorities_for(priority_mode p) {
  switch (p) {
    case priority_mode::comm_high:
      return {0, -1};
    case priority_mode::equal:
      return {0, 0};
    case priority_mode::compute_high:
      return {-1, 0};
  }
  return {};
}

struct plan_knobs {
  launch_order order = launch_order::comm_first;
  priority_mode priority = priority_mode::comm_high;
  // GEMM SM margin for GEMMs that overlap communication; nullopt = from each slot's
  // set_sm_margin/num_sm (the preset's own choice).
  std::optional<int> sm_margin;
  int comm_ctas = 0;            // > 0 overrides every collective's CTA count
  int layernorm_sm_margin = 0;  // NVTE_{FWD,BWD}_LAYERNORM_SM_MARGIN
  bool forward = true;
  bool backward = true;
  // Transformer Engine's launch-ordering event (Hopper, CUDA >= 12.3, CDMC > 1): a GEMM that
  // overlaps a comm kernel enqueued before it waits until that kernel has started, so the
  // persistent GEMM cannot take its SMs first (docs/BRIDGE_RULES.md §6.3).
  bool te_launch_ordering = false;
  // NCCL's communicator settings for the case's collectives (the optional sweep axes cta_policy,
  // symmetric, min_ctas, max_ctas, nccl_algo, nccl_version; docs/ARCHITECTURE.md §5.5). The
  // policy zero applies to all-gathers; reductions keep their SM kernels.
  nccl_comm_config nccl;
  std::string nccl_algorithm;  // "" = NCCL's choice; ring | nvls | nvls_tree | tree
};

}  // namespace ob
