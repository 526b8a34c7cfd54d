// Selective recomputation in the layer every stage runs (docs/MEMORY.md §2.1): for each of
// Megatron-Core's recompute_modules the case names, the forward steps of that module are run
// again in the backward, just before the first backward step that needs what they produce. The
// memory model drops the same tensors (plan/memory_model.cpp), so one set of rules decides both.
// MoE-layer modules (moe_act) are planned with the experts (step_stage_moe.cpp).
#include <algorithm>
#include <string_view>

#include "plan/step_stage.hpp"

namespace ob::detail {
namespace {

std::string_view slot_of(const layer_step& s) {
  if (const auto* e = std::get_if<layer_elementwise>(&s)) return e->slot;
  return std::get<layer_gemm>(s).slot;
}
bool backward_of(const layer_step& s) {
  if (const auto* e = std::get_if<layer_elementwise>(&s)) return e->backward;
  return std::get<layer_gemm>(s).backward;
}

// The recomputed step's slot: "_fwd" or "_fprop" becomes "_recompute" (attn_fwd_scores ->
// attn_recompute_scores, q_up_fprop -> q_up_recompute), else "_recompute" is appended. The slot
// keeps its first word, so a MoE layer still leaves out the dense MLP's (plan.cpp).
std::string recompute_slot(std::string slot) {
  for (std::string_view tag : {"_fwd", "_fprop"}) {
    const std::size_t at = slot.find(tag);
    if (at != std::string::npos) return slot.replace(at, tag.size(), "_recompute");
  }
  return slot + "_recompute";
}

// What one module recomputes: the forward steps whose slot starts with one of `copies`,
// inserted before the first backward step whose slot starts with one of `before`.
struct module_rule {
  recompute_module module;
  std::vector<std::string_view> copies, before;
};

// In forward order, so that inserting each before its target keeps that order (the MLA up
// projections before the core attention that reads their output). Under mlp the recomputed MLP
// casts its own input, so the second norm's rule moves ahead of it.
std::vector<module_rule> rules(bool mla, bool mlp) {
  module_rule ln2{
      recompute_module::layernorm, {"ln2_fwd", "fc1_fp8_in"}, {"fc1_fp8_dout", "fc1_dgrad"}};
  if (mlp) ln2 = {recompute_module::layernorm, {"ln2_fwd"}, {"fc2_fp8_dout", "fc2_dgrad"}};
  return {
      {recompute_module::layernorm,
       {"ln1_fwd", "qkv_fp8_in"},
       {mla ? "kv_down_dgrad" : "qkv_fp8_dout", mla ? "kv_down_dgrad" : "qkv_dgrad"}},
      ln2,
      {recompute_module::mla_up_proj, {"q_up_fprop", "kv_up_fprop"}, {"attn_bwd"}},
      {recompute_module::core_attn, {"attn_fwd"}, {"attn_bwd"}},
      {recompute_module::mlp,
       {"fc1_fp8_in", "fc1_fprop", "act_fwd", "fc2_fp8_in", "fc2_fprop"},
       {"fc2_fp8_dout", "fc2_dgrad"}},
  };
}

bool starts_with_any(std::string_view slot, const std::vector<std::string_view>& prefixes) {
  return std::any_of(prefixes.begin(), prefixes.end(),
                     [&](std::string_view p) { return slot.starts_with(p); });
}

void apply(layer_workload& w, const module_rule& r) {
  std::vector<layer_step> again;
  for (const layer_step& s : w.steps) {
    if (backward_of(s) || !starts_with_any(slot_of(s), r.copies)) continue;
    layer_step copy = s;
    std::visit(
        [](auto& step) {
          step.slot = recompute_slot(step.slot);
          step.backward = true;
        },
        copy);
    again.push_back(std::move(copy));
  }
  const auto at = std::find_if(w.steps.begin(), w.steps.end(), [&](const layer_step& s) {
    return backward_of(s) && starts_with_any(slot_of(s), r.before);
  });
  w.steps.insert(at, again.begin(), again.end());
}

}  // namespace

void add_recompute(layer_workload& w, const step_config& cfg) {
  if (cfg.recompute != recompute_mode::selective) return;
  for (const module_rule& r : rules(w.model.mla.enabled, cfg.recomputes(recompute_module::mlp)))
    if (cfg.recomputes(r.module)) apply(w, r);
}

}  // namespace ob::detail
