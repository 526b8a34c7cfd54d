// The settings `step --bridge-config` takes beyond the layout and the overlap flags
// (docs/BRIDGE_RULES.md §12): each resolved as Bridge and Megatron-Core would run it, named by
// the step axis it sets, with the field it came from; what step has no axis for is reported
// not_modelled instead of being dropped.
#include <algorithm>

#include "bridge/resolve_input.hpp"

namespace ob::resolve_detail {
namespace {

const char* const rules = " (docs/BRIDGE_RULES.md §12)";

std::string on_off(bool b) { return b ? "on" : "off"; }
std::string truth(bool b) { return b ? "true" : "false"; }

struct step_out {
  bridge_resolution& res;
  report& r;

  void add(const char* axis, std::string value, std::string source) {
    res.step_settings.push_back({axis, std::move(value), std::move(source)});
  }
  void not_modelled(const std::string& path, const std::string& msg) {
    r.warn(diag_code::not_modelled, path, msg + rules);
  }
  void no_effect(const std::string& path, const std::string& msg) {
    r.warn(diag_code::unused_field, path, msg + ": not carried into step" + rules);
  }
  void invalid(const std::string& path, const std::string& msg) {
    r.error(diag_code::step_setting_invalid, path, msg + rules);
  }
};

void join(std::string& list, const std::string& name) { list += (list.empty() ? "" : "+") + name; }

// The recompute modules step plans (spec/step_config.cpp's check_step refuses moe and
// shared_experts; Megatron's Mamba and MHC modules have no step counterpart).
bool step_plans_module(const std::string& m) {
  static const std::vector<std::string> planned = {"core_attn", "moe_act", "layernorm",
                                                   "mla_up_proj", "mlp"};
  return std::ranges::count(planned, m) > 0;
}

// Megatron-Core's TransformerConfig checks of recompute_method and recompute_num_layers.
void check_recompute(const step_in& t, step_out& o) {
  const bool full = *t.recompute_granularity == "full";
  if (full && !t.recompute_method)
    o.invalid("model.recompute_method",
              "unset with recompute_granularity full: Megatron-Core raises 'recompute_method must "
              "be \"block\" or \"uniform\"'");
  else if (full && !t.recompute_num_layers)
    o.invalid("model.recompute_num_layers",
              "unset with recompute_granularity full: Megatron-Core raises (it must be between 1 "
              "and the layers per pipeline rank)");
  else if (full && !(*t.recompute_method == "uniform" && *t.recompute_num_layers == 1))
    o.not_modelled("model.recompute_method",
                   "'" + *t.recompute_method + "' with recompute_num_layers " +
                       std::to_string(*t.recompute_num_layers) +
                       ": step recomputes every layer in full (uniform, 1 layer a unit)");
  if (!full && t.recompute_num_layers)
    o.invalid("model.recompute_num_layers",
              "set with recompute_granularity selective: Megatron-Core raises "
              "'recompute_num_layers must be None'");
}

// recompute_granularity and recompute_modules (Megatron-Core's default list: core_attn).
void carry_recompute(const step_in& t, step_out& o) {
  if (!t.recompute_granularity) {
    if (t.recompute_modules)
      o.no_effect("model.recompute_modules", "has no effect without recompute_granularity");
    return;
  }
  check_recompute(t, o);
  const bool selective = *t.recompute_granularity == "selective";
  std::string modules, dropped;
  for (const std::string& m : t.recompute_modules.value_or(std::vector<std::string>{"core_attn"}))
    join(step_plans_module(m) ? modules : dropped, m);
  if (selective && !dropped.empty())
    o.not_modelled("model.recompute_modules", dropped + " not planned by step: left out");
  // Selective with nothing step plans (or an empty list) recomputes nothing.
  const bool none = selective && modules.empty();
  o.add("recompute", none ? "none" : *t.recompute_granularity, "model.recompute_granularity");
  if (selective && !none)
    o.add("recompute_modules", modules,
          t.recompute_modules ? "model.recompute_modules"
                              : "model.recompute_granularity selective (recompute_modules unset: "
                                "Megatron-Core's [core_attn])");
}

// Megatron-Core's cpu_offloading with cpu_offloading_num_layers (activations only in step).
void carry_cpu_offload(const bridge_input& in, step_out& o) {
  const step_in& t = in.step;
  if (!t.cpu_offloading.value_or(false)) {
    if (t.cpu_offloading_num_layers.value_or(0) > 0)
      o.no_effect("model.cpu_offloading_num_layers", "has no effect without cpu_offloading true");
    if (t.cpu_offloading) o.add("cpu_offload_layers", "0", "model.cpu_offloading false");
    return;
  }
  if (in.shape.pp > 1)
    o.invalid("model.cpu_offloading",
              "true with pipeline_model_parallel_size " + std::to_string(in.shape.pp) +
                  ": Megatron-Core raises 'Currently there is no support for Pipeline "
                  "parallelism with CPU offloading'");
  if (t.recompute_granularity)
    o.invalid("model.cpu_offloading",
              "true with recompute_granularity " + *t.recompute_granularity +
                  ": Megatron-Core raises 'CPU offloading does not work when activation "
                  "recomputation is enabled'");
  if (t.cpu_offloading_weights.value_or(false))
    o.not_modelled("model.cpu_offloading_weights", "true: step offloads activations only");
  o.add("cpu_offload_layers", std::to_string(t.cpu_offloading_num_layers.value_or(0)),
        t.cpu_offloading_num_layers ? "model.cpu_offloading_num_layers"
                                    : "model.cpu_offloading (cpu_offloading_num_layers unset: "
                                      "Megatron-Core's 0)");
}

// A field Bridge's mixed-precision setup writes onto ddp (runtime_config_update step 2): with
// a mixed_precision object its value, or MixedPrecisionConfig's default, wins over ddp's.
void carry_precision_field(const char* axis, const char* field, bool mp_default, bool step_default,
                           const std::optional<bool>& mp, const std::optional<bool>& ddp,
                           const step_in& t, step_out& o) {
  const std::string f(field);
  if (t.mixed_precision_recipe) return;  // warned when read
  if (!t.mixed_precision) {
    // Without the section Bridge leaves ddp's value; unset, DistributedDataParallelConfig's
    // default (false for both fields) runs, carried where step's own default differs.
    if (ddp)
      o.add(axis, on_off(*ddp), "ddp." + f);
    else if (step_default)
      o.add(axis, "off", "ddp." + f + " unset (no mixed_precision): Megatron-Core's default false");
    return;
  }
  const bool v = mp.value_or(mp_default);
  if (ddp && *ddp != v)
    o.r.warn(diag_code::ddp_field_overwritten, "ddp." + f,
             "set to " + truth(*ddp) + " here but overwritten with " + truth(v) +
                 " by Bridge's mixed-precision setup (docs/BRIDGE_RULES.md §1 step 2, §12)");
  o.add(axis, on_off(v),
        mp ? "mixed_precision." + f
           : "mixed_precision (" + f + " unset: MixedPrecisionConfig's default " +
                 truth(mp_default) + ")");
}

// fp8_dot_product_attention: the model's, unless a mixed_precision object is given, whose value
// (MixedPrecisionConfig's default false when unset) Bridge's setup writes over the model's
// (update_config_with_precision_overrides). Carried only when one of the two is set.
void carry_fp8_dpa(const step_in& t, step_out& o) {
  const std::string f = "fp8_dot_product_attention";
  if (t.mixed_precision_recipe || (!t.model_fp8_dpa && !t.mp_fp8_dpa)) return;
  if (!t.mixed_precision) {
    o.add(f.c_str(), on_off(*t.model_fp8_dpa), "model." + f);
    return;
  }
  const bool v = t.mp_fp8_dpa.value_or(false);
  if (t.model_fp8_dpa && *t.model_fp8_dpa != v)
    o.r.warn(diag_code::model_field_overwritten, "model." + f,
             "set to " + truth(*t.model_fp8_dpa) + " here but overwritten with " + truth(v) +
                 " by Bridge's mixed-precision setup (docs/BRIDGE_RULES.md §12)");
  o.add(f.c_str(), on_off(v),
        t.mp_fp8_dpa ? "mixed_precision." + f
                     : "mixed_precision (" + f + " unset: MixedPrecisionConfig's default false)");
}

void carry_gradient_accumulation_fusion(const bridge_input& in, step_out& o) {
  if (in.shape.gradient_accumulation_fusion)
    o.add("grad_accum_fusion", on_off(*in.shape.gradient_accumulation_fusion),
          "model.gradient_accumulation_fusion");
  else if (!gradient_accumulation_fusion(in))
    o.add("grad_accum_fusion", "off",
          "model.gradient_accumulation_fusion unset: Bridge's GPTModelProvider default without "
          "Transformer Engine (platform.have_te false)");
}

// cross_entropy_fusion_impl counts only with cross_entropy_loss_fusion, on by default in
// Bridge's GPTModelProvider; the unfused loss saves the fp32 softmax as "native" does.
void carry_cross_entropy(const step_in& t, step_out& o) {
  if (!t.ce_loss_fusion && !t.ce_impl) return;
  const bool fused = t.ce_loss_fusion.value_or(true);
  const std::string impl = t.ce_impl.value_or("native");
  std::string source;
  if (!fused)
    source = "model.cross_entropy_loss_fusion false (the unfused loss, planned as native)";
  else if (t.ce_impl)
    source = "model.cross_entropy_fusion_impl" +
             std::string(t.ce_loss_fusion ? ""
                                          : " (cross_entropy_loss_fusion unset: "
                                            "GPTModelProvider's default true)");
  else
    source =
        "model.cross_entropy_loss_fusion true (cross_entropy_fusion_impl unset: "
        "Megatron-Core's native)";
  o.add("cross_entropy_fusion_impl", fused && impl == "te" ? "te" : "native", source);
}

// cp_comm_type: one type for every layer is carried; a list that mixes types (Megatron's
// per-layer form) has no step counterpart. a2a+p2p takes hierarchical_context_parallel_sizes,
// whose two levels Transformer Engine's a2a+p2p asserts (docs/BRIDGE_RULES.md §12).
void carry_cp_comm_type(const step_in& t, step_out& o) {
  const std::string hier = "model.hierarchical_context_parallel_sizes";
  const bool two = t.hierarchical_cp && t.hierarchical_cp->size() == 2;
  if (two)
    o.add("hierarchical_context_parallel_sizes",
          std::to_string(t.hierarchical_cp->at(0)) + "+" + std::to_string(t.hierarchical_cp->at(1)),
          hier);
  if (!t.cp_comm_type || t.cp_comm_type->empty()) return;
  const std::vector<std::string>& v = *t.cp_comm_type;
  const bool one = std::ranges::all_of(v, [&](const std::string& x) { return x == v.front(); });
  if (!one) {
    o.not_modelled("model.cp_comm_type",
                   "a list that mixes types: step plans one type for every layer; not carried");
    return;
  }
  if (v.front() == "a2a+p2p" && t.hierarchical_cp && !two)
    o.invalid(hier, "a2a+p2p with " + std::to_string(t.hierarchical_cp->size()) +
                        " levels: Transformer Engine asserts two CP groups (the a2a and the p2p "
                        "level)");
  o.add("cp_comm_type", v.front(),
        "model.cp_comm_type" + std::string(v.size() > 1 ? " (the same type for every layer)" : ""));
}

// Adam's moments: step plans both fp32 or both bf16 (use_precision_aware_optimizer).
void carry_moments(const step_in& t, step_out& o) {
  if (!t.precision_aware && !t.exp_avg_dtype && !t.exp_avg_sq_dtype) return;
  const std::string avg = t.exp_avg_dtype.value_or("fp32");
  const std::string sq = t.exp_avg_sq_dtype.value_or("fp32");
  if (!t.precision_aware.value_or(false)) {
    for (const auto& [name, v] : {std::pair{"exp_avg_dtype", avg}, {"exp_avg_sq_dtype", sq}})
      if (v != "fp32")
        o.invalid(std::string("optimizer.") + name,
                  v + " without use_precision_aware_optimizer: Megatron-Core asserts '" + name +
                      " can only be fp32 when not using precision-aware optimizer'");
    if (avg == "fp32" && sq == "fp32")
      o.add("exp_avg_dtype", "fp32", "optimizer.use_precision_aware_optimizer false");
    return;
  }
  if (avg == sq && (avg == "fp32" || avg == "bf16"))
    o.add("exp_avg_dtype", avg,
          "optimizer.exp_avg_dtype and exp_avg_sq_dtype (use_precision_aware_optimizer true)");
  else
    o.not_modelled("optimizer.exp_avg_dtype",
                   avg + " with exp_avg_sq_dtype " + sq +
                       ": step plans Adam's two moments both fp32 or both bf16; not carried");
}

// overlap_moe_expert_parallel_comm and delay_wgrad_compute: with comm_overlap, Bridge writes
// its value (default false) over the model's (§4.1); without, the model's stands.
void carry_ep_overlap(const char* axis, const char* field, const std::optional<bool>& comm,
                      const std::optional<bool>& model, bool has_comm, step_out& o) {
  const std::string f(field);
  if (!comm && !model) return;
  const bool v = has_comm ? comm.value_or(false) : *model;
  if (has_comm && model && *model != v)
    o.r.warn(diag_code::model_field_overwritten, "model." + f,
             "set to " + truth(*model) + " here but overwritten with " + truth(v) +
                 " by Bridge's comm_overlap setup (docs/BRIDGE_RULES.md §4.1)");
  const std::string source = !has_comm ? "model." + f
                             : comm    ? "comm_overlap." + f
                                       : "comm_overlap." + f + " unset: Bridge's default false";
  if (v)
    o.not_modelled(source.substr(0, source.find(' ')),
                   "carried into step, but Bridge's EP-overlap and delay_wgrad_compute "
                   "assertions (docs/BRIDGE_RULES.md §3 D, E) are not run here; step checks "
                   "those it plans");
  o.add(axis, on_off(v), source);
}

// The experts' layout: EP as given; ETP only where given (unset, Megatron-Core's experts take
// TP's size, which the step's own default already is).
void carry_expert_layout(const step_in& t, step_out& o) {
  if (t.ep) o.add("ep", std::to_string(*t.ep), "model.expert_model_parallel_size");
  if (t.etp) o.add("etp", std::to_string(*t.etp), "model.expert_tensor_parallel_size");
}

// The flex backend the config runs ("" when the dispatcher is not flex).
std::string flex_backend(const step_in& t) {
  return t.dispatcher_type == "flex" ? t.flex_backend.value_or("deepep") : "";
}

// moe_token_dispatcher_type (flex: moe_flex_dispatcher_backend, Megatron-Core's default deepep).
void carry_dispatcher(const step_in& t, step_out& o) {
  if (!t.dispatcher_type) {
    if (t.flex_backend)
      o.no_effect("model.moe_flex_dispatcher_backend",
                  "has no effect without moe_token_dispatcher_type flex");
    // A MoE model left unset runs TransformerConfig's default; a dense one has no dispatcher.
    if (t.num_moe_experts.value_or(0) > 0)
      o.add("moe_dispatcher", "allgather",
            "model.moe_token_dispatcher_type unset: Megatron-Core's default allgather");
    return;
  }
  if (*t.dispatcher_type != "flex") {
    o.add("moe_dispatcher", *t.dispatcher_type, "model.moe_token_dispatcher_type");
    return;
  }
  const std::string backend = flex_backend(t);
  if (backend == "ncclep") {
    o.not_modelled("model.moe_flex_dispatcher_backend",
                   "ncclep: step plans the flex dispatcher with deepep or hybridep only");
    return;
  }
  o.add("moe_dispatcher", backend,
        t.flex_backend ? "model.moe_token_dispatcher_type flex, moe_flex_dispatcher_backend"
                       : "model.moe_token_dispatcher_type flex (moe_flex_dispatcher_backend "
                         "unset: Megatron-Core's deepep)");
}

// Megatron-Core's TransformerConfig on the sync-free path: moe_expert_rank_capacity_factor only
// with the hybridep or ncclep flex backend, with hybridep only beside the op fuser (docs/MOE.md
// §21); step refuses the rest of what it does not plan, naming the field.
void carry_sync_free(const step_in& t, step_out& o) {
  const std::string backend = flex_backend(t);
  if (t.rank_capacity) {
    const std::string f = "model.moe_expert_rank_capacity_factor";
    if (backend != "hybridep" && backend != "ncclep")
      o.invalid(f,
                "set without moe_flex_dispatcher_backend hybridep or ncclep (and "
                "moe_token_dispatcher_type flex): Megatron-Core raises");
    else if (backend == "hybridep" && !t.te_op_fuser.value_or(false))
      o.invalid(f,
                "with hybridep and without use_transformer_engine_op_fuser: Megatron-Core "
                "raises");
    o.add("moe_expert_rank_capacity_factor", json(*t.rank_capacity).dump(), f);
  }
  if (t.te_op_fuser)
    o.add("use_transformer_engine_op_fuser", on_off(*t.te_op_fuser),
          "model.use_transformer_engine_op_fuser");
}

// moe_flex_dispatcher_num_sms, or Megatron-Core's deprecated moe_deepep_num_sms and
// moe_hybridep_num_sms (Bridge's recipes set the latter), which its __post_init__ routes to it
// when it is unset and raises on when the two differ.
void carry_flex_sms(const step_in& t, step_out& o) {
  std::optional<std::int64_t> sms = t.flex_num_sms;
  std::string source = "model.moe_flex_dispatcher_num_sms";
  for (const auto& [v, name] : {std::pair{t.hybridep_num_sms, "moe_hybridep_num_sms"},
                                {t.deepep_num_sms, "moe_deepep_num_sms"}}) {
    if (!v || t.flex_num_sms) continue;
    if (sms && *sms != *v) {
      o.invalid("model." + std::string(name),
                "differs from moe_hybridep_num_sms: Megatron-Core raises 'Conflicting deprecated "
                "SM-count knobs'");
      return;
    }
    sms = v;
    source = "model." + std::string(name) +
             " (deprecated: Megatron-Core routes it to moe_flex_dispatcher_num_sms)";
  }
  if (!sms) return;
  const std::string backend = flex_backend(t);
  if (backend != "deepep" && backend != "hybridep") {
    o.no_effect(source.substr(0, source.find(' ')),
                "sizes the flex dispatcher's kernels (deepep or hybridep), which this config "
                "does not run");
    return;
  }
  o.add("moe_flex_dispatcher_num_sms", std::to_string(*sms), source);
}

// cuda_graph_impl with cuda_graph_modules (or the deprecated cuda_graph_scope): Megatron-Core
// migrates a module list of "full_iteration" to the full_iteration impl, asserts the list empty
// under it, and ignores the list without an impl. step plans the full-iteration graph and TE's
// per-layer attn, moe_router and moe_preprocess graphs (docs/MOE.md §21).
void carry_graphs(const step_in& t, step_out& o) {
  std::string impl = t.cuda_graph_impl.value_or("none");
  std::vector<std::string> modules = t.graph_modules.value_or(std::vector<std::string>{});
  const std::string mf = "model." + t.graph_modules_field;
  std::erase(modules, "full");  // deprecated: the whole layer, as an empty list
  if (std::ranges::count(modules, "full_iteration") > 0) {
    if (impl == "transformer_engine")
      o.invalid(mf,
                "'full_iteration' with cuda_graph_impl transformer_engine: Megatron-Core "
                "asserts");
    std::erase(modules, "full_iteration");
    impl = "full_iteration";
  }
  const std::string source =
      t.cuda_graph_impl == impl
          ? "model.cuda_graph_impl"
          : mf + " (Megatron-Core migrates it to cuda_graph_impl " + impl + ")";
  if (impl == "none") {
    if (!modules.empty()) o.no_effect(mf, "has no effect with cuda_graph_impl none");
    return;
  }
  if (impl == "full_iteration") {
    if (!modules.empty())
      o.invalid(mf, "not empty with cuda_graph_impl full_iteration: Megatron-Core asserts");
    o.add("cuda_graph_scope", "full_iteration", source);
    return;
  }
  static const std::vector<std::string> planned = {"attn", "moe_router", "moe_preprocess"};
  const bool te_planned = impl == "transformer_engine" && !modules.empty() &&
                          std::ranges::all_of(modules, [&](const std::string& m) {
                            return std::ranges::count(planned, m) > 0;
                          });
  if (!te_planned) {
    std::string listed;
    for (const auto& m : modules) join(listed, m);
    o.not_modelled("model.cuda_graph_impl",
                   impl + " with modules [" + (listed.empty() ? "the whole layer" : listed) +
                       "]: step plans full_iteration and transformer_engine's attn, moe_router "
                       "and moe_preprocess graphs; not carried");
    return;
  }
  std::string scope;
  for (const std::string& m : planned)
    if (std::ranges::count(modules, m) > 0) join(scope, m);
  o.add("cuda_graph_scope", scope, "model.cuda_graph_impl transformer_engine, " + mf);
}

}  // namespace

void resolve_step_settings(const bridge_input& in, bridge_resolution& res, report& r) {
  step_out o{res, r};
  const step_in& t = in.step;
  carry_recompute(t, o);
  carry_cpu_offload(in, o);
  carry_precision_field("grad_reduce_in_fp32", "grad_reduce_in_fp32", true, true,
                        t.mp_grad_reduce_in_fp32, t.ddp_grad_reduce_in_fp32, t, o);
  carry_gradient_accumulation_fusion(in, o);
  carry_cross_entropy(t, o);
  carry_cp_comm_type(t, o);
  carry_precision_field("fp8_param_gather", "fp8_param_gather", false, false, t.mp_fp8_param_gather,
                        t.ddp_fp8_param_gather, t, o);
  carry_fp8_dpa(t, o);
  carry_moments(t, o);
  const bool has_comm = in.comm_overlap.has_value();
  const auto* co = has_comm ? &*in.comm_overlap : nullptr;
  carry_ep_overlap("delay_wgrad", "delay_wgrad_compute", co ? co->delay_wgrad : std::nullopt,
                   t.delay_wgrad, has_comm, o);
  carry_ep_overlap("moe_a2a_overlap", "overlap_moe_expert_parallel_comm",
                   co ? co->moe_a2a_overlap : std::nullopt, t.moe_a2a_overlap, has_comm, o);
  carry_expert_layout(t, o);
  carry_dispatcher(t, o);
  if (t.shared_expert_overlap)
    o.add("moe_shared_overlap", on_off(*t.shared_expert_overlap),
          "model.moe_shared_expert_overlap");
  carry_sync_free(t, o);
  carry_flex_sms(t, o);
  carry_graphs(t, o);
}

}  // namespace ob::resolve_detail
