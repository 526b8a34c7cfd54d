// The step-level work of Megatron-LM's mid-2022 training path (megatron_2022, the code Korthikanti
// et al. 2022 ran) and of gradient accumulation without fusion (docs/ARCHITECTURE.md §9.3).
#include "plan/step_stage.hpp"

namespace ob::detail {

// Without gradient_accumulation_fusion every parameter's 16-bit gradient is added into its
// main_grad by the DDP hook (step_layer_extras.cpp has the layers'); here the output layer's
// and the embedding's, whose gradients are whole [V/t, h] tensors.
void stage_planner::main_grad_add(const std::string& name, std::int64_t params) {
  if (cfg_.grad_accum_fusion) return;
  const double p = static_cast<double>(params);
  elementwise_params e;
  e.bytes = static_cast<std::uint64_t>(p * grad_add_bytes_per_param(main_grad_type(in_)));
  e.flops = p;
  add_compute(name, e, "grad_add");
}

// Megatron-LM 2022's _communicate (megatron/p2p_communication.py, scatter_gather_tensors_in_
// pipeline, on by default) sends each activation without sequence parallelism as 1/t of it per
// TP rank (split_tensor_into_1d_equal_chunks) and, after the transfer and its device
// synchronize, all-gathers the pieces over TP on the compute stream (gather_split_1d_tensor).
// Returns what the pass that consumes the tensor waits on.
int stage_planner::gather_received(const std::string& name, int recv) {
  if (!scatter_gather_p2p()) return recv;
  const auto whole = static_cast<std::uint64_t>(w_.tokens) *
                     static_cast<std::uint64_t>(w_.model.hidden) * dtype_bytes(dtype::bf16);
  return add_compute(name + ".gather", tp_collective(coll_op::all_gather, whole), "pp", {recv});
}

// Megatron-LM 2022's local DDP (megatron/model/distributed.py allreduce_gradients, called from
// train_step for DDP-impl local, the default) divides the contiguous gradient buffer by the DP
// size before its all-reduce, `buffer_.data /= world_size`, at DP 1 too: one read and one write
// of every main grad this rank holds.
void stage_planner::scale_grads_2022() {
  if (!cfg_.megatron_2022) return;
  optimizer_pass("grad_scale", static_cast<double>(params_), 2.0 * dtype_bytes(main_grad_type(in_)),
                 1);
}

// With sequence parallelism, Megatron-LM 2022's train_step all-reduces over TP the gradients of
// the parameters marked sequence_parallel (megatron/training.py; megatron/mpu/layers.py marks
// the LayerNorms' weights and biases and the row-parallel layers' biases): one coalesced
// all-reduce after the backward. The flatten and unflatten copies are left out (a few MiB).
void stage_planner::reduce_sp_norm_grads_2022() {
  if (!cfg_.megatron_2022 || !cfg_.sequence_parallel || cfg_.tp <= 1) return;
  std::int64_t layers = 0;
  for (int n : layers_) layers += n;
  const std::int64_t h = w_.model.hidden;
  std::int64_t elems = layers * (4 * h + (w_.model.add_bias_linear ? 2 * h : 0));
  if (stage_ == cfg_.pp - 1) elems += 2 * h;  // the final LayerNorm
  const auto bytes = static_cast<std::uint64_t>(elems) * dtype_bytes(main_grad_type(in_));
  add_compute("sp_norm_grad_ar", tp_collective(coll_op::all_reduce, bytes), "sp_norm_grad");
}

}  // namespace ob::detail
