#include "spec/diagnostics.hpp"

namespace ob {

const std::vector<diag_info>& diagnostic_table() {
  using enum diag_code;
  constexpr severity W = severity::warning, E = severity::error;
  static const std::vector<diag_info> table = {
      {unused_field, W,
       "a model/ddp/optimizer field the resolver does not model; names the nearest modelled "
       "field (a typo?)"},
      {not_modelled, W,
       "an expert-parallel / MoE setting, a Bridge setting `step` cannot plan, or communication "
       "the layer scenario does not model"},
      {comm_overlap_absent, W,
       "no comm_overlap section: Bridge skips its setup, Megatron-Core defaults stand"},
      {tp_overlap_disabled_tp_lt_2, W, "TP overlap silently switched off: tensor parallel < 2"},
      {tp_overlap_disabled_sequence_parallel_off, W,
       "TP overlap silently switched off: sequence parallelism is off"},
      {tp_overlap_disabled_no_te, W,
       "TP overlap silently switched off: Transformer Engine not available"},
      {tp_overlap_ungated, W,
       "model.tp_comm_overlap on with TP < 2 or without SP, and no comm_overlap: nothing gates "
       "it"},
      {tp_overlap_no_preset, W, "TP overlap on without a preset: Transformer Engine's defaults"},
      {tp_comm_overlap_cfg_unused, W, "a preset is given but TP overlap is off"},
      {preset_mismatch, W,
       "the preset was tuned for another hidden size, TP, CP, sequence, micro-batch, dtype or "
       "GPU than the run"},
      {fp8_buf_tuple_truthy, W,
       "a pipeline GEMM's fp8_buf is the (False,) tuple default, which Python treats as true"},
      {model_field_overwritten, W,
       "a value set on model is replaced by Bridge's comm_overlap setup"},
      {ddp_field_overwritten, W, "a value set on ddp is replaced by Bridge's DP-overlap setup"},
      {optimizer_field_overwritten, W,
       "a value set on optimizer is replaced by Bridge's DP-overlap setup"},
      {dp_overlap_settings_dropped, W,
       "DP-overlap fields on comm_overlap ignored: no distributed optimizer on ddp"},
      {dp_defaults_skipped_optimizer_only, W,
       "only optimizer.use_distributed_optimizer is set: Bridge's DP defaults are skipped"},
      {distributed_optimizer_synced, W,
       "ddp and optimizer disagreed on use_distributed_optimizer: both end up on"},
      {overlap_param_gather_mismatch, W, "ddp and optimizer overlap_param_gather still differ"},
      {bucket_size_bridge_default, W,
       "Bridge's 128 Mi-element bucket replaces Megatron-Core's max(40M, 1M x dp)"},
      {overlap_param_gather_with_optimizer_step_off, W,
       "DP overlap with PP > 1 and VP: Bridge keeps overlap_param_gather_with_optimizer_step "
       "off"},
      {p2p_both_disabled, W,
       "comm_overlap leaves both p2p flags false with PP > 1: send/recv neither batched nor "
       "overlapped"},
      {data_parallel_size_overwritten, W,
       "comm_overlap.data_parallel_size differs from num_gpus / (tp x cp x pp)"},
      {num_gpus_defaulted, W, "no platform.num_gpus or data_parallel_size: 8 GPUs assumed"},
      {platform_gpu_defaulted, W, "no platform.gpu: treated as Hopper"},
      {nccl_chunksize_ignored, W, "launcher.nccl_pp_comm_chunksize with PP = 1: not set"},
      {cdmc_generations_differ, W,
       "the launcher generations give different CUDA_DEVICE_MAX_CONNECTIONS"},
      {cdmc_tp_dp_conflict, W,
       "TP overlap on Hopper wants CDMC 1 while DP overlap wants several hardware queues"},
      {fsdp_distributed_optimizer_forced, W,
       "Megatron-FSDP on: Bridge turns ddp/optimizer use_distributed_optimizer on"},
      {fsdp_strategy_not_planned, W,
       "Megatron-FSDP with a data_parallel_sharding_strategy other than optim_grads_params: "
       "step plans it as the distributed optimizer"},
      {unknown_preset, E, "tp_comm_overlap_cfg names no known preset"},
      {sequence_parallel_without_tp, E, "sequence_parallel with tensor parallel <= 1"},
      {heads_not_divisible_by_tp, E, "num_attention_heads is not a multiple of tensor parallel"},
      {overlap_p2p_comm_without_interleaving, E,
       "overlap_p2p_comm with PP > 1 and no virtual pipeline"},
      {overlap_and_batch_p2p_comm, E, "both p2p flags with the interleaved schedule"},
      {defer_embedding_wgrad_pp1, E, "defer_embedding_wgrad_compute with PP = 1"},
      {defer_embedding_wgrad_no_gradient_accumulation_fusion, E,
       "defer_embedding_wgrad_compute without gradient_accumulation_fusion"},
      {defer_embedding_wgrad_negative_limit, E,
       "defer_embedding_wgrad_compute with wgrad_deferral_limit < 0 (Bridge's default -1)"},
      {world_size_not_divisible, E, "num_gpus is not divisible by tp x cp x pp"},
      {data_parallel_size_zero, E, "num_gpus is smaller than tp x cp x pp"},
      {num_buckets_with_bucket_size, E, "ddp.num_buckets together with a bucket_size"},
      {te_userbuffers_invalid, E,
       "Transformer Engine's initialize_ub would reject the TP-overlap config (or an atomic GEMM "
       "without FP8)"},
      {fsdp_and_torch_fsdp2, E, "use_megatron_fsdp and use_torch_fsdp2 together"},
      {fsdp_cdmc_1, E,
       "Megatron-FSDP with CUDA_DEVICE_MAX_CONNECTIONS 1 (Bridge asserts > 1 or unset)"},
      {step_setting_invalid, E,
       "a setting `step` takes that Megatron-Core rejects: CPU offloading with PP or "
       "recomputation, optimizer dtypes without the precision-aware optimizer, full recomputation "
       "without a method, selective with recompute_num_layers"},
  };
  return table;
}

const diag_info& info_of(diag_code c) { return diagnostic_table()[static_cast<std::size_t>(c)]; }

}  // namespace ob
