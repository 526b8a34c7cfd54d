#include "plan/graph_scope.hpp"

#include <array>

namespace ob {

bool attention_slot(std::string_view slot) {
  static constexpr std::array<std::string_view, 12> prefixes = {
      "ln1_",           "qkv_",    "rope_",    "attn_", "proj_",  "bda_attn_",
      "residual_attn_", "q_down_", "kv_down_", "q_up_", "kv_up_", "mla_norm_"};
  for (std::string_view p : prefixes)
    if (slot.starts_with(p)) return true;
  return false;
}

void mark_graph_scopes(schedule& s, const step_config& cfg) {
  const bool whole = cfg.graphs(graph_scope::full_iteration), attn = cfg.graphs(graph_scope::attn);
  if (!whole && !attn) return;
  for (op& o : s.ops) {
    if (o.kind() == op_kind::host_sync) continue;
    if (whole)
      o.graphed = o.graphed || (o.slot != "optimizer" && o.slot != "embedding_grad");
    else
      o.graphed = o.graphed || attention_slot(o.slot);
  }
}

}  // namespace ob
