#include "plan/adam_state.hpp"

namespace ob {

// Megatron-Core (megatron/core/optimizer/optimizer_config.py,
// use_precision_aware_optimizer_no_fp8_or_ds_fp8) hands the master weights to TE's FusedAdam only
// when the recipe is not a block-scaled or current-scaling fp8 one; otherwise Megatron keeps fp32
// master weights, casts 16-bit gradients to fp32 and copies the updated weights back itself
// (distrib_optimizer.py, _copy_model_grads_to_main_grads and _copy_main_params_to_model_params).
// Megatron-FSDP keeps its own master weights (docs/FSDP.md).
adam_state adam_state_of(const model_spec& m, const step_config& cfg) {
  adam_state s;
  const bool sixteen_bit_grads = !cfg.grad_reduce_in_fp32;
  const bool te_recipe =
      !is_low_precision(m.type) || (m.type == dtype::fp8 && cfg.scaling == fp8_scaling::delayed);
  s.te_master = cfg.bf16_moments && te_recipe && !cfg.fsdp;
  s.moment = cfg.bf16_moments ? 2 : 4;
  // The weight Adam or the param copy writes: the fp8 weight itself under fp8_param_gather with
  // per-tensor fp8; an MXFP8 weight is written as bf16 into the parameter buffer and quantized
  // after its all-gather (docs/MEMORY.md §1.1); otherwise the 16-bit weight.
  s.weight = cfg.fp8_param_gather && m.type == dtype::fp8 ? 1 : 2;
  if (s.te_master) {
    // FusedAdam stores a bf16 weight's master as an int16 remainder (store_param_remainders,
    // Megatron's default), fp16 and fp8 weights' as fp32; it reads the gradient as it is.
    s.remainders = m.type != dtype::fp16 && !(cfg.fp8_param_gather && m.type == dtype::fp8);
    s.master = s.remainders ? 2 : 4;
    s.grad = sixteen_bit_grads ? 2 : 4;
    return s;
  }
  // Megatron-FSDP's precision-aware optimizer reads the gradients in place, as before.
  const bool copies_grads = sixteen_bit_grads && !(cfg.fsdp && cfg.bf16_moments);
  s.grad_copy = copies_grads ? 4 : 0;
  s.grad = copies_grads || !sixteen_bit_grads ? 4 : 2;
  return s;
}

}  // namespace ob
