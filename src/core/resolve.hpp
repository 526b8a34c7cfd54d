#pragma once
// `overlap-bench resolve`: what Megatron-Bridge + Megatron-Core would actually run for a
// Bridge-style config (DESIGN §3; reference megatron_bridge_overlap.md §1-4, §7-10), with every
// silent disable, overwrite or dropped field reported as a warning and every setting Megatron
// would reject later reported as an error now.
//
// Input (all sections optional but `model`; a top-level "comment" string is allowed):
//   model        tensor_model_parallel_size, pipeline_model_parallel_size,
//                virtual_pipeline_model_parallel_size, context_parallel_size, sequence_parallel,
//                hidden_size, seq_length, num_attention_heads, gradient_accumulation_fusion, fp8,
//                and the overlap fields a user may set directly (tp_comm_overlap,
//                tp_comm_overlap_cfg, tp_comm_bootstrap_backend, overlap_p2p_comm,
//                batch_p2p_comm, defer_embedding_wgrad_compute, wgrad_deferral_limit)
//   comm_overlap Bridge's CommOverlapConfig: tp_comm_overlap (required, as in Bridge),
//                tp_comm_overlap_cfg (preset name | preset path | object keyed by GEMM | null),
//                tp_comm_bootstrap_backend, overlap_p2p_comm, batch_p2p_comm,
//                overlap_grad_reduce, overlap_param_gather,
//                overlap_param_gather_with_optimizer_step, align_param_gather, bucket_size,
//                data_parallel_size, defer_embedding_wgrad_compute, wgrad_deferral_limit,
//                overlap_moe_expert_parallel_comm, delay_wgrad_compute
//   ddp          use_distributed_optimizer, overlap_grad_reduce, overlap_param_gather,
//                align_param_gather, bucket_size, num_buckets
//   optimizer    use_distributed_optimizer, overlap_param_gather,
//                overlap_param_gather_with_optimizer_step
//   train        micro_batch_size
//   platform     gpu (a100 | h100 | h100_sxm | h200 | b200 | b300 | gb200 | gb300), have_te,
//                num_gpus
//   launcher     PerfEnvPlugin generation (B): enable_layernorm_sm_margin, layernorm_sm_margin,
//                moe_flex_dispatcher_backend, a2a_overlap, nccl_pp_comm_chunksize
// model/ddp/optimizer accept fields the resolver does not model (a pasted Megatron config):
// each gives one warning. Every other section, and the top level, rejects unknown keys.
//
// Malformed input (a wrong JSON type, a value out of range, an unknown key in an owned section,
// a missing required field, a preset file that does not parse) throws config_error (exit 2)
// naming the file and JSON path: "in.json: model.hidden_size: expected a positive integer, got
// -5". Everything that parses yields an output object; rule violations land in `errors`.
//
// Output (ordered_json, keys in this order):
//   model      tp_comm_overlap, tp_comm_overlap_cfg (preset expanded to {GEMM: {method, num_sm,
//              cga_size, [num_splits], set_sm_margin, [fp8_buf, atomic_gemm], [aggregate]}},
//              None slots dropped, fp8_buf "(False,)" kept as the marker; null when no preset;
//              still shown when TP overlap is off, as Bridge leaves it on the model),
//              tp_comm_bootstrap_backend, overlap_p2p_comm, batch_p2p_comm,
//              defer_embedding_wgrad_compute, wgrad_deferral_limit
//   ddp        use_distributed_optimizer, overlap_grad_reduce, overlap_param_gather,
//              align_param_gather, bucket_size (elements, not bytes; null = MCore default)
//   optimizer  use_distributed_optimizer, overlap_param_gather,
//              overlap_param_gather_with_optimizer_step
//   env        CUDA_DEVICE_MAX_CONNECTIONS, NVTE_FWD_LAYERNORM_SM_MARGIN,
//              NVTE_BWD_LAYERNORM_SM_MARGIN, NCCL_P2P_NET_CHUNKSIZE (when it applies); strings
//   derived    data_parallel_size, num_gpus, gpu, gpu_sm100_or_newer, interleaved_pipeline,
//              comm_overlap_setup (did Bridge's setup run), dp_overlap_gate (did the DP
//              defaults apply), effective_bucket_size (what MCore's DDP uses: null = one bucket
//              per buffer, else bucket_size or max(40M, 1M x dp)), te_userbuffers
//              (te_effective_to_json of te_effective_overlap(); null when TP overlap is off)
//   warnings   [{code, message}]     errors  [{code, message}]
// Messages start with "<file>: <JSON path>: " (fp8_buf_tuple_truthy names the preset file, where
// the value lives).
//
// Warning codes:
//   unused_field                  a model/ddp/optimizer field the resolver does not model;
//                                 names the nearest modelled field (edit distance): maybe a typo
//   not_modelled                  an expert-parallel / MoE field (expert_model_parallel_size,
//                                 expert_tensor_parallel_size, num_moe_experts,
//                                 overlap_moe_expert_parallel_comm, delay_wgrad_compute,
//                                 moe_*): accepted, but Bridge's EP checks (§3 D, E) are not run
//   comm_overlap_absent           no comm_overlap: Bridge skips its setup; MCore defaults and
//                                 the values on model/ddp/optimizer stand (§1 step 5)
//   tp_overlap_disabled_tp_lt_2   TP gate, reason 1 (§3 B): tp_comm_overlap silently off
//   tp_overlap_disabled_sequence_parallel_off   TP gate, reason 2
//   tp_overlap_disabled_no_te     TP gate, reason 3 (platform.have_te false)
//   tp_overlap_ungated            no comm_overlap, model.tp_comm_overlap true with TP < 2 or
//                                 without SP: Bridge's gate does not run
//   tp_overlap_no_preset          TP overlap on without a preset: TE built-in defaults (§4.2)
//   tp_comm_overlap_cfg_unused    a preset is given but TP overlap is off
//   preset_mismatch               preset metadata (hidden, tp, cp, seq_length, mbs, dtype, gpu)
//                                 differs from the run; Bridge never checks (§11.2)
//   fp8_buf_tuple_truthy          a pipeline GEMM's fp8_buf is the truthy (False,) (§11.3)
//   model_field_overwritten       a value set on model is replaced by Bridge's (§4.1, §11.5)
//   ddp_field_overwritten         a value set on ddp is replaced (§4.5, §11.5)
//   optimizer_field_overwritten   a value set on optimizer is replaced (§4.5)
//   dp_overlap_settings_dropped   DP fields on comm_overlap ignored: no distributed optimizer
//                                 on ddp (§4.3, §11.4)
//   dp_defaults_skipped_optimizer_only   only optimizer.use_distributed_optimizer is set: the
//                                 DP gate reads ddp's flag before the sync, DP defaults lost
//                                 (§1 step 6)
//   distributed_optimizer_synced  ddp/optimizer use_distributed_optimizer differed; both on
//   overlap_param_gather_mismatch ddp and optimizer overlap_param_gather still differ
//   bucket_size_bridge_default    Bridge's 128 Mi-element bucket replaces MCore's
//                                 max(40M, 1M x dp) (§4.4, §10, §11.8)
//   overlap_param_gather_with_optimizer_step_off   PP > 1 with VP: Bridge keeps it off (§11.9)
//   p2p_both_disabled             PP > 1 and a user override leaves both p2p flags false (§11.7)
//   data_parallel_size_overwritten  comm_overlap.data_parallel_size differs from
//                                 num_gpus / (tp·cp·pp), which Bridge writes over it (§1 step 3)
//   num_gpus_defaulted            no platform.num_gpus or data_parallel_size: 8 assumed
//                                 (PerfEnvPlugin's default)
//   platform_gpu_defaulted        no platform.gpu: treated as Hopper (gpu_sm100_or_newer=False)
//   nccl_chunksize_ignored        launcher.nccl_pp_comm_chunksize with PP = 1: not set (§8 B)
//   cdmc_generations_differ       launcher generation (B) and (C)/(D) give different
//                                 CUDA_DEVICE_MAX_CONNECTIONS (§8, §11.11)
//   cdmc_tp_dp_conflict           TP overlap on Hopper wants CDMC 1 while DP overlap on other
//                                 streams wants more than one hardware queue
// (§11.10, finalize() idempotence, cannot arise from a static file.)
//
// Error codes:
//   unknown_preset                tp_comm_overlap_cfg names no preset (lists the known ones)
//   sequence_parallel_without_tp  sequence_parallel with TP <= 1 (MCore, §5)
//   heads_not_divisible_by_tp     num_attention_heads % TP != 0 (MCore TransformerConfig)
//   overlap_p2p_comm_without_interleaving   overlap_p2p_comm with PP > 1 and no VP (§5)
//   overlap_and_batch_p2p_comm    both p2p flags with the interleaved schedule (§5)
//   defer_embedding_wgrad_pp1     defer_embedding_wgrad_compute with PP = 1 (§5)
//   defer_embedding_wgrad_no_gradient_accumulation_fusion   ... without
//                                 gradient_accumulation_fusion (§5)
//   defer_embedding_wgrad_negative_limit   ... with wgrad_deferral_limit < 0, Bridge's default
//                                 -1 included (§5, §11.6)
//   world_size_not_divisible      num_gpus % (tp·cp·pp) != 0 (§1 step 3)
//   data_parallel_size_zero       num_gpus < tp·cp·pp
//   num_buckets_with_bucket_size  ddp.num_buckets with a bucket_size (MCore assertion, §4.6)
//   te_userbuffers_invalid        Transformer Engine's initialize_ub would reject the TP overlap
//                                 config (§6.3), including atomic GEMM without FP8
#include <string>

#include "core/json_util.hpp"

namespace ob {

ordered_json resolve_bridge_config(const json& input, const std::string& file);
// Loads `path` (config_error when it cannot be read or parsed) and resolves it.
ordered_json resolve_bridge_file(const std::string& path);
// True when the output of resolve_bridge_config has a non-empty `errors` (exit 2).
bool resolve_has_errors(const ordered_json& resolved);

}  // namespace ob
