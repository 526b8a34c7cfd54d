#pragma once
// Warnings and errors with a stable code (`resolve` output, preset loading, a run's Bridge
// config). Every code, its severity and what it means live in one table (diagnostics.cpp); the
// README's list of codes is checked against it by a test. The rules behind them are described in
// docs/ARCHITECTURE.md §4.
#include <string>
#include <string_view>
#include <vector>

#include "base/enum_names.hpp"

namespace ob {

enum class diag_code {
  // warnings
  unused_field,
  not_modelled,
  comm_overlap_absent,
  tp_overlap_disabled_tp_lt_2,
  tp_overlap_disabled_sequence_parallel_off,
  tp_overlap_disabled_no_te,
  tp_overlap_ungated,
  tp_overlap_no_preset,
  tp_comm_overlap_cfg_unused,
  preset_mismatch,
  fp8_buf_tuple_truthy,
  model_field_overwritten,
  ddp_field_overwritten,
  optimizer_field_overwritten,
  dp_overlap_settings_dropped,
  dp_defaults_skipped_optimizer_only,
  distributed_optimizer_synced,
  overlap_param_gather_mismatch,
  bucket_size_bridge_default,
  overlap_param_gather_with_optimizer_step_off,
  p2p_both_disabled,
  data_parallel_size_overwritten,
  num_gpus_defaulted,
  platform_gpu_defaulted,
  nccl_chunksize_ignored,
  cdmc_generations_differ,
  cdmc_tp_dp_conflict,
  fsdp_distributed_optimizer_forced,
  fsdp_strategy_not_planned,
  // errors
  unknown_preset,
  sequence_parallel_without_tp,
  heads_not_divisible_by_tp,
  overlap_p2p_comm_without_interleaving,
  overlap_and_batch_p2p_comm,
  defer_embedding_wgrad_pp1,
  defer_embedding_wgrad_no_gradient_accumulation_fusion,
  defer_embedding_wgrad_negative_limit,
  world_size_not_divisible,
  data_parallel_size_zero,
  num_buckets_with_bucket_size,
  te_userbuffers_invalid,
  fsdp_and_torch_fsdp2,
  fsdp_cdmc_1,
  step_setting_invalid,
};

enum class severity { warning, error };

struct diag_info {
  diag_code code;
  severity level;
  std::string_view meaning;  // one line: what triggers it
};

// Every code, in the order of diag_code.
const std::vector<diag_info>& diagnostic_table();
const diag_info& info_of(diag_code c);

template <>
struct enum_names<diag_code> {
  static constexpr std::string_view noun = "diagnostic code";
  static constexpr std::array names = {
      enum_entry{diag_code::unused_field, "unused_field"},
      enum_entry{diag_code::not_modelled, "not_modelled"},
      enum_entry{diag_code::comm_overlap_absent, "comm_overlap_absent"},
      enum_entry{diag_code::tp_overlap_disabled_tp_lt_2, "tp_overlap_disabled_tp_lt_2"},
      enum_entry{diag_code::tp_overlap_disabled_sequence_parallel_off,
                 "tp_overlap_disabled_sequence_parallel_off"},
      enum_entry{diag_code::tp_overlap_disabled_no_te, "tp_overlap_disabled_no_te"},
      enum_entry{diag_code::tp_overlap_ungated, "tp_overlap_ungated"},
      enum_entry{diag_code::tp_overlap_no_preset, "tp_overlap_no_preset"},
      enum_entry{diag_code::tp_comm_overlap_cfg_unused, "tp_comm_overlap_cfg_unused"},
      enum_entry{diag_code::preset_mismatch, "preset_mismatch"},
      enum_entry{diag_code::fp8_buf_tuple_truthy, "fp8_buf_tuple_truthy"},
      enum_entry{diag_code::model_field_overwritten, "model_field_overwritten"},
      enum_entry{diag_code::ddp_field_overwritten, "ddp_field_overwritten"},
      enum_entry{diag_code::optimizer_field_overwritten, "optimizer_field_overwritten"},
      enum_entry{diag_code::dp_overlap_settings_dropped, "dp_overlap_settings_dropped"},
      enum_entry{diag_code::dp_defaults_skipped_optimizer_only,
                 "dp_defaults_skipped_optimizer_only"},
      enum_entry{diag_code::distributed_optimizer_synced, "distributed_optimizer_synced"},
      enum_entry{diag_code::overlap_param_gather_mismatch, "overlap_param_gather_mismatch"},
      enum_entry{diag_code::bucket_size_bridge_default, "bucket_size_bridge_default"},
      enum_entry{diag_code::overlap_param_gather_with_optimizer_step_off,
                 "overlap_param_gather_with_optimizer_step_off"},
      enum_entry{diag_code::p2p_both_disabled, "p2p_both_disabled"},
      enum_entry{diag_code::data_parallel_size_overwritten, "data_parallel_size_overwritten"},
      enum_entry{diag_code::num_gpus_defaulted, "num_gpus_defaulted"},
      enum_entry{diag_code::platform_gpu_defaulted, "platform_gpu_defaulted"},
      enum_entry{diag_code::nccl_chunksize_ignored, "nccl_chunksize_ignored"},
      enum_entry{diag_code::cdmc_generations_differ, "cdmc_generations_differ"},
      enum_entry{diag_code::cdmc_tp_dp_conflict, "cdmc_tp_dp_conflict"},
      enum_entry{diag_code::fsdp_distributed_optimizer_forced, "fsdp_distributed_optimizer_forced"},
      enum_entry{diag_code::fsdp_strategy_not_planned, "fsdp_strategy_not_planned"},
      enum_entry{diag_code::unknown_preset, "unknown_preset"},
      enum_entry{diag_code::sequence_parallel_without_tp, "sequence_parallel_without_tp"},
      enum_entry{diag_code::heads_not_divisible_by_tp, "heads_not_divisible_by_tp"},
      enum_entry{diag_code::overlap_p2p_comm_without_interleaving,
                 "overlap_p2p_comm_without_interleaving"},
      enum_entry{diag_code::overlap_and_batch_p2p_comm, "overlap_and_batch_p2p_comm"},
      enum_entry{diag_code::defer_embedding_wgrad_pp1, "defer_embedding_wgrad_pp1"},
      enum_entry{diag_code::defer_embedding_wgrad_no_gradient_accumulation_fusion,
                 "defer_embedding_wgrad_no_gradient_accumulation_fusion"},
      enum_entry{diag_code::defer_embedding_wgrad_negative_limit,
                 "defer_embedding_wgrad_negative_limit"},
      enum_entry{diag_code::world_size_not_divisible, "world_size_not_divisible"},
      enum_entry{diag_code::data_parallel_size_zero, "data_parallel_size_zero"},
      enum_entry{diag_code::num_buckets_with_bucket_size, "num_buckets_with_bucket_size"},
      enum_entry{diag_code::te_userbuffers_invalid, "te_userbuffers_invalid"},
      enum_entry{diag_code::fsdp_and_torch_fsdp2, "fsdp_and_torch_fsdp2"},
      enum_entry{diag_code::fsdp_cdmc_1, "fsdp_cdmc_1"},
      enum_entry{diag_code::step_setting_invalid, "step_setting_invalid"}};
};

struct diagnostic {
  diag_code code;
  std::string message;  // starts with "<file>: <JSON path>: " where a file is involved
  std::string_view name() const { return to_string(code); }
};

}  // namespace ob
