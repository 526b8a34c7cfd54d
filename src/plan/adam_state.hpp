#pragma once
// How Megatron-Core's optimizer holds and updates one parameter of this rank's shard
// (docs/MEMORY.md §1.1): who keeps the master weight, and the width of every tensor Adam reads
// or writes. The one source of the memory model's optimizer bytes and of the step's optimizer
// passes (docs/CALIBRATION.md §3.7), so that the two cannot disagree.
#include "model/model_spec.hpp"
#include "spec/step_config.hpp"

namespace ob {

struct adam_state {
  // Transformer Engine's FusedAdam keeps the master weight and writes the model weight itself
  // (use_precision_aware_optimizer with 16-bit or delayed-scaling fp8 weights): Adam reads the
  // main gradient in its own dtype, and there is neither an fp32 gradient copy nor a param copy.
  bool te_master = false;
  // store_param_remainders: the master weight is the bf16 weight plus an int16 remainder, which
  // Adam reads and writes together.
  bool remainders = false;
  double master = 4;     // bytes of the master weight Adam keeps: fp32, or the int16 remainder
  double moment = 4;     // bytes of each of exp_avg and exp_avg_sq (exp_avg_dtype)
  double grad = 4;       // bytes of the main gradient as Adam and the norm read it
  double grad_copy = 0;  // Megatron's fp32 copy of 16-bit main gradients (.float())
  double weight = 2;     // bytes of the model weight the update writes (16-bit, or fp8)

  // Bytes of optimizer state per parameter: the master weight, both moments, the gradient copy.
  double held() const { return master + 2 * moment + grad_copy; }
  // Bytes Adam's kernel moves per parameter: it reads the gradient, reads and writes the master
  // weight and both moments and, when it keeps the master weight, writes the model weight (and
  // reads it too, to rebuild the fp32 value, with remainders).
  double step_bytes() const {
    const double model_weight = te_master ? (remainders ? 2 : 1) * weight : 0;
    return grad + 2 * master + 4 * moment + model_weight;
  }
  // Megatron's separate copy of the updated master weights into the model weights (none when
  // FusedAdam keeps the master weight): read 4, write the weight.
  double param_copy_bytes() const { return te_master ? 0 : 4 + weight; }
};

adam_state adam_state_of(const model_spec& m, const step_config& cfg);

}  // namespace ob
