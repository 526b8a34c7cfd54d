#pragma once
// `overlap-bench resolve`: what Megatron-Bridge + Megatron-Core would actually run for a
// Bridge-style config (docs/ARCHITECTURE.md §4; the rules: docs/BRIDGE_RULES.md §1-4, §7-10), with
// every silent disable, overwrite or dropped field reported as a warning and every setting Megatron
// would reject later reported as an error now.
//
// Input (all sections optional but `model`; a top-level "comment" string is allowed):
//   model        tensor_model_parallel_size, pipeline_model_parallel_size,
//                virtual_pipeline_model_parallel_size, context_parallel_size, sequence_parallel,
//                hidden_size, seq_length, num_attention_heads, gradient_accumulation_fusion, fp8,
//                and the overlap fields a user may set directly (tp_comm_overlap,
//                tp_comm_overlap_cfg, tp_comm_bootstrap_backend, overlap_p2p_comm,
//                batch_p2p_comm, defer_embedding_wgrad_compute, wgrad_deferral_limit); for
//                `step` (docs/BRIDGE_RULES.md §12): cross_entropy_loss_fusion,
//                cross_entropy_fusion_impl, cpu_offloading, cpu_offloading_num_layers,
//                cpu_offloading_weights, moe_token_dispatcher_type, moe_flex_dispatcher_backend,
//                overlap_moe_expert_parallel_comm, delay_wgrad_compute,
//                moe_shared_expert_overlap, recompute_granularity, recompute_method,
//                recompute_num_layers, recompute_modules
//   comm_overlap Bridge's CommOverlapConfig: tp_comm_overlap (required, as in Bridge),
//                tp_comm_overlap_cfg (preset name | preset path | object keyed by GEMM | null),
//                tp_comm_bootstrap_backend, overlap_p2p_comm, batch_p2p_comm,
//                overlap_grad_reduce, overlap_param_gather,
//                overlap_param_gather_with_optimizer_step, align_param_gather, bucket_size,
//                data_parallel_size, defer_embedding_wgrad_compute, wgrad_deferral_limit,
//                overlap_moe_expert_parallel_comm, delay_wgrad_compute
//   ddp          use_distributed_optimizer, overlap_grad_reduce, overlap_param_gather,
//                align_param_gather, bucket_size, num_buckets, use_megatron_fsdp,
//                data_parallel_sharding_strategy (no_shard | optim | optim_grads |
//                optim_grads_params; Megatron-Core's default no_shard), grad_reduce_in_fp32,
//                fp8_param_gather
//   mixed_precision  Bridge's MixedPrecisionConfig as an object: grad_reduce_in_fp32,
//                fp8_param_gather (others: unused_field); a recipe name is not expanded
//   dist         use_megatron_fsdp, use_torch_fsdp2 (Bridge's DistributedInitConfig)
//   optimizer    use_distributed_optimizer, overlap_param_gather,
//                overlap_param_gather_with_optimizer_step, use_precision_aware_optimizer,
//                exp_avg_dtype, exp_avg_sq_dtype (fp32 | bf16 | fp16 | fp8, torch names too)
//   train        micro_batch_size
//   platform     gpu (a100 | h100 | h100_sxm | h200 | b200 | b300 | gb200 | gb300), have_te,
//                num_gpus
//   launcher     PerfEnvPlugin generation (B): enable_layernorm_sm_margin, layernorm_sm_margin,
//                moe_flex_dispatcher_backend, a2a_overlap, nccl_pp_comm_chunksize
// model/ddp/optimizer/dist accept fields the resolver does not model (a pasted Megatron config):
// each gives one warning. Every other section, and the top level, rejects unknown keys.
//
// Malformed input (a wrong JSON type, a value out of range, an unknown key in an owned section,
// a missing required field, a preset file that does not parse) throws config_error (exit 2)
// naming the file and JSON path: "in.json: model.hidden_size: expected a positive integer, got
// -5". Everything that parses yields an output object; rule violations land in `errors`.
//
// Output (bridge_resolution::to_json(), keys in this order):
//   model      tp_comm_overlap, tp_comm_overlap_cfg (preset expanded to {GEMM: {method, num_sm,
//              cga_size, [num_splits], set_sm_margin, [fp8_buf, atomic_gemm], [aggregate]}},
//              None slots dropped, fp8_buf "(False,)" kept as the marker; null when no preset;
//              still shown when TP overlap is off, as Bridge leaves it on the model),
//              tp_comm_bootstrap_backend, overlap_p2p_comm, batch_p2p_comm,
//              defer_embedding_wgrad_compute, wgrad_deferral_limit
//   ddp        use_distributed_optimizer, overlap_grad_reduce, overlap_param_gather,
//              align_param_gather, bucket_size (elements, not bytes; null = MCore default);
//              with Megatron-FSDP on (only then, so other outputs keep their bytes):
//              use_megatron_fsdp, data_parallel_sharding_strategy
//   optimizer  use_distributed_optimizer, overlap_param_gather,
//              overlap_param_gather_with_optimizer_step
//   env        CUDA_DEVICE_MAX_CONNECTIONS, NVTE_FWD_LAYERNORM_SM_MARGIN,
//              NVTE_BWD_LAYERNORM_SM_MARGIN, NCCL_P2P_NET_CHUNKSIZE (when it applies); strings
//   derived    data_parallel_size, num_gpus, gpu, gpu_sm100_or_newer, interleaved_pipeline,
//              comm_overlap_setup (did Bridge's setup run), dp_overlap_gate (did the DP
//              defaults apply), effective_bucket_size (what MCore's DDP uses: null = one bucket
//              per buffer, else bucket_size or max(40M, 1M x dp)), te_userbuffers
//              (te_effective_to_json of te_effective_overlap(); null when TP overlap is off)
//   step       only when not empty: {axis: {value, from}} for each step_settings entry
//   warnings   [{code, message}]     errors  [{code, message}]
// Messages start with "<file>: <JSON path>: " (fp8_buf_tuple_truthy names the preset file, where
// the value lives).
//
// The codes of `warnings` and `errors`, with their meaning, are in spec/diagnostics.cpp (and the
// README's table of codes).
//
// The phases (resolve.cpp) run in the order Bridge applies its rules: read the sections
// (resolve_input.cpp), world and DP size, the model side (TP gate, PP p2p defaults, user
// overrides), the DP gate, Megatron-Core's errors, Transformer Engine's view, the launcher
// environment, then the settings `step` takes (resolve_step.cpp); resolve_output.cpp prints the
// result.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/json_util.hpp"
#include "model/overlap_cfg.hpp"
#include "spec/diagnostics.hpp"
#include "spec/presets.hpp"

namespace ob {

// What the input config says about the model and its layout, as read (no Bridge rule applied),
// for a run that benchmarks the config as Bridge would run it.
struct bridge_model_input {
  std::int64_t tp = 1, pp = 1, cp = 1;  // model.*_parallel_size (default 1)
  std::optional<std::int64_t> vp;
  bool sequence_parallel = false;
  // ffn_hidden_size and num_query_groups matter to a run but not to Bridge's rules: they keep
  // their unused_field warning, and a value that is not a positive integer leaves them unset.
  std::optional<std::int64_t> hidden_size, ffn_hidden_size, num_attention_heads, num_query_groups,
      seq_length;
  std::optional<std::int64_t> micro_batch_size;  // train.micro_batch_size
  bool fp8 = false;                              // model.fp8 names a recipe
  // model.gradient_accumulation_fusion as given; nullopt: unset (Bridge's GPTModelProvider
  // default: on where Transformer Engine is installed, docs/BRIDGE_RULES.md §5).
  std::optional<bool> gradient_accumulation_fusion;
};

// A setting `step --bridge-config` takes from the config (docs/BRIDGE_RULES.md §12): the step
// axis it sets, its value as that axis spells it, and the config field it came from (with why,
// where a Bridge rule or default decided it).
struct step_setting {
  std::string axis, value, source;
};

// What Bridge + Megatron-Core end up running (the output sections, typed).
struct bridge_resolution {
  std::string file;
  bridge_model_input input;

  // model
  bool tp_comm_overlap = false;
  std::optional<tp_overlap_layer> tp_comm_overlap_cfg;  // nullopt: null (no preset)
  std::optional<userbuffers_preset> preset;             // when the cfg named a preset
  std::optional<std::string> tp_comm_bootstrap_backend;
  bool overlap_p2p_comm = false, batch_p2p_comm = false;
  bool defer_embedding_wgrad_compute = false;
  std::int64_t wgrad_deferral_limit = 0;
  // ddp
  bool ddp_use_distributed_optimizer = false, overlap_grad_reduce = false,
       ddp_overlap_param_gather = false, align_param_gather = false;
  std::optional<std::int64_t> bucket_size;  // elements; nullopt = Megatron-Core's default
  // Megatron-FSDP (dist.use_megatron_fsdp or ddp.use_megatron_fsdp: Bridge sets both), its
  // sharding strategy, and whether `step` plans it (optim_grads_params: step --fsdp on).
  bool use_megatron_fsdp = false;
  std::string sharding_strategy = "no_shard";
  bool step_fsdp() const { return use_megatron_fsdp && sharding_strategy == "optim_grads_params"; }
  // optimizer
  bool optimizer_use_distributed_optimizer = false, optimizer_overlap_param_gather = false,
       overlap_param_gather_with_optimizer_step = false;
  // env: name -> value, in output order
  std::vector<std::pair<std::string, std::string>> env;
  // derived
  std::int64_t data_parallel_size = 1, num_gpus = 8;
  std::optional<std::string> gpu;  // platform.gpu
  bool gpu_sm100_or_newer = false, interleaved_pipeline = false, comm_overlap_setup = false,
       dp_overlap_gate = false;
  std::optional<std::int64_t> effective_bucket_size;  // nullopt: one bucket per buffer
  // What Transformer Engine runs per GEMM slot; nullopt when TP overlap is off or the config
  // does not resolve.
  std::optional<slot_overlap_map> te_userbuffers;

  // step: the settings `step` takes beyond the layout and overlap flags above, in the order
  // of step's axes; only those the config decides (unset ones keep step's defaults, §12).
  std::vector<step_setting> step_settings;

  std::vector<diagnostic> warnings, errors;

  bool has_errors() const { return !errors.empty(); }
  // The `resolve` command's output, keys in the documented order.
  ordered_json to_json() const;
};

// Malformed input throws config_error (exit 2) naming the file and JSON path; everything that
// parses yields a resolution, with rule violations in `errors`.
bridge_resolution resolve_bridge(const json& input, const std::string& file);
// Loads `path` (config_error when it cannot be read or parsed) and resolves it.
bridge_resolution resolve_bridge_file(const std::string& path);

// Megatron-Bridge's launcher rule for CUDA_DEVICE_MAX_CONNECTIONS (docs/BRIDGE_RULES.md §8 B):
// the one copy that `resolve` and the training step both apply, so the two cannot drift.
struct launcher_layout {
  bool sm100_or_newer = false;
  int tp = 1, cp = 1, dp = 1, pp = 1;
  bool a2a_overlap = false;      // the MoE all-to-all overlap the launcher checks on Hopper
  bool deep_dispatcher = false;  // deepep / hybridep
};
// `later_generations`: the perf scripts' and today's recipes' rule (§8 C, D) rather than the
// PerfEnvPlugin's (§8 B); they differ on Blackwell.
int launcher_cdmc_rule(const launcher_layout& l, bool later_generations);

}  // namespace ob
