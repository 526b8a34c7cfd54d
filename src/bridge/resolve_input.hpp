#pragma once
// The input sections of a Bridge-style config as `resolve` reads them (resolve.hpp describes the
// format), before any Bridge rule is applied. Internal to the resolver (resolve*.cpp).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/json_util.hpp"
#include "bridge/resolve.hpp"
#include "spec/diagnostics.hpp"
#include "spec/presets.hpp"

namespace ob::resolve_detail {

// Collects warnings and errors in the order they are found; every message starts with
// "<file>: <JSON path>: ", so a user can find the value that caused it.
struct report {
  std::string file;
  std::vector<diagnostic> warnings, errors;

  std::string at(const std::string& path) const { return file + ": " + path + ": "; }
  void warn(diag_code code, const std::string& path, const std::string& msg) {
    warnings.push_back({code, at(path) + msg});
  }
  void error(diag_code code, const std::string& path, const std::string& msg) {
    errors.push_back({code, at(path) + msg});
  }
};

// A tp_comm_overlap_cfg value: a preset name or path, an object keyed by GEMM, or null.
struct overlap_cfg_value {
  bool given = false;    // not null
  bool invalid = false;  // unknown preset (already reported)
  std::string path;      // JSON path, for messages
  std::optional<userbuffers_preset> preset;
  std::optional<tp_overlap_layer> layer;  // nullopt when not given or invalid
};

// The model fields beyond its shape that Bridge's comm_overlap setup writes over (unset: the
// user left Megatron-Core's default).
struct model_in {
  std::optional<bool> tp_comm_overlap, overlap_p2p_comm, batch_p2p_comm, defer;
  std::optional<std::int64_t> wgrad_deferral_limit;
  bool backend_set = false;  // null is a value here: Bridge writes None onto the model
  std::optional<std::string> backend;
  overlap_cfg_value cfg;
};

// Bridge's CommOverlapConfig; unset optionals are None, which Bridge's own defaults replace.
struct comm_in {
  bool tp_comm_overlap = false;
  overlap_cfg_value cfg;
  std::optional<std::string> backend = "nccl";  // Bridge default since PR #1395; never None
  std::optional<bool> overlap_p2p_comm, batch_p2p_comm, overlap_grad_reduce, overlap_param_gather,
      opg_with_step, align_param_gather, defer;
  std::optional<std::int64_t> bucket_size, data_parallel_size, wgrad_deferral_limit;
  std::optional<bool> moe_a2a_overlap, delay_wgrad;  // overlap_moe_expert_parallel_comm, ...
};

struct ddp_in {
  std::optional<bool> use_dist_opt, overlap_grad_reduce, overlap_param_gather, align_param_gather;
  std::optional<std::int64_t> bucket_size, num_buckets;
  bool use_megatron_fsdp = false;
  std::optional<std::string> sharding_strategy;  // data_parallel_sharding_strategy
};

// Bridge's DistributedInitConfig: the FSDP switches (the rest of a pasted one is unused).
struct dist_in {
  bool use_megatron_fsdp = false, use_torch_fsdp2 = false;
};

struct optimizer_in {
  std::optional<bool> use_dist_opt, overlap_param_gather, opg_with_step;
};

struct platform_in {
  std::optional<std::string> gpu;
  bool have_te = true;
  std::optional<std::int64_t> num_gpus;
};

// PerfEnvPlugin generation (B)'s settings, with its defaults.
struct launcher_in {
  bool enable_ln_margin = true;
  std::int64_t ln_margin = 16;
  std::optional<std::string> dispatcher;
  bool a2a_overlap = false;
  std::optional<std::int64_t> pp_chunksize;
};

// The settings `step` takes beyond the layout and the overlap flags (docs/BRIDGE_RULES.md §12),
// as the config gives them; unset: nullopt.
struct step_in {
  // model
  std::optional<bool> ce_loss_fusion;  // cross_entropy_loss_fusion
  std::optional<std::string> ce_impl;  // cross_entropy_fusion_impl
  // cp_comm_type: one type for every layer, or Megatron-Core's list of one per layer.
  std::optional<std::vector<std::string>> cp_comm_type;
  std::optional<std::vector<std::int64_t>> hierarchical_cp;  // hierarchical_context_parallel_sizes
  std::optional<bool> cpu_offloading;
  std::optional<std::int64_t> cpu_offloading_num_layers;
  std::optional<bool> cpu_offloading_weights;
  std::optional<std::string> dispatcher_type, flex_backend;  // moe_token_dispatcher_type, ...
  std::optional<std::int64_t> num_moe_experts;
  std::optional<std::int64_t> ep, etp;  // expert_model_parallel_size, expert_tensor_parallel_size
  std::optional<bool> moe_a2a_overlap, delay_wgrad, shared_expert_overlap;  // on the model
  std::optional<std::string> recompute_granularity, recompute_method;
  std::optional<std::int64_t> recompute_num_layers;
  std::optional<std::vector<std::string>> recompute_modules;
  // The sync-free MoE path (docs/BRIDGE_RULES.md §12): moe_expert_rank_capacity_factor,
  // use_transformer_engine_op_fuser, the flex dispatcher's SMs under Megatron-Core's name and its
  // two deprecated ones, cuda_graph_impl and the graph module list (cuda_graph_modules, or the
  // deprecated cuda_graph_scope; which one in graph_modules_field).
  std::optional<double> rank_capacity;
  std::optional<bool> te_op_fuser;
  std::optional<std::int64_t> flex_num_sms, deepep_num_sms, hybridep_num_sms;
  std::optional<std::string> cuda_graph_impl;
  std::optional<std::vector<std::string>> graph_modules;
  std::string graph_modules_field;
  // ddp, and mixed_precision (which Bridge writes over ddp's when the section is there)
  std::optional<bool> ddp_grad_reduce_in_fp32, ddp_fp8_param_gather;
  bool mixed_precision = false;         // the section is given (not null)
  bool mixed_precision_recipe = false;  // given as a recipe name, which is not expanded
  std::optional<bool> mp_grad_reduce_in_fp32, mp_fp8_param_gather;
  // fp8_dot_product_attention on the model and on mixed_precision (whose value Bridge writes
  // over the model's when the section is there)
  std::optional<bool> model_fp8_dpa, mp_fp8_dpa;
  // optimizer: dtypes as fp32 | bf16 | fp16 | fp8
  std::optional<bool> precision_aware;  // use_precision_aware_optimizer
  std::optional<std::string> exp_avg_dtype, exp_avg_sq_dtype;
};

struct bridge_input {
  bridge_model_input shape;  // model's shape and layout, train.micro_batch_size
  model_in model;
  std::optional<comm_in> comm_overlap;  // nullopt: absent or null, Bridge skips its setup
  ddp_in ddp;
  dist_in dist;
  optimizer_in optimizer;
  platform_in platform;
  launcher_in launcher;
  step_in step;
};

// gradient_accumulation_fusion as the model runs it: the config's value; unset, Bridge's
// GPTModelProvider default (on where Transformer Engine imports; without it, on only where
// APEX's fused_weight_gradient_mlp_cuda does, which a config does not say: taken as off).
inline bool gradient_accumulation_fusion(const bridge_input& in) {
  return in.shape.gradient_accumulation_fusion.value_or(in.platform.have_te);
}

// Reads every section (config_error on malformed input); fields a pasted Megatron config carries
// but the resolver does not model, and an unknown preset, are reported to `r`.
bridge_input read_bridge_input(const json& input, report& r);

// The settings `step` takes from the config, resolved as Bridge would run them, into
// res.step_settings; what step has no axis for is reported not_modelled (resolve_step.cpp).
void resolve_step_settings(const bridge_input& in, bridge_resolution& res, report& r);

}  // namespace ob::resolve_detail
