#pragma once
// Megatron-Core's pipeline schedules as data (docs/ARCHITECTURE.md §9.2): for one stage, the
// order of forward and backward passes over (model chunk, micro-batch) and the point-to-point
// calls between them. 1F1B (one chunk per stage) and interleaved 1F1B (vp chunks per stage), with
// the warm-up, steady and cool-down counts Megatron computes.
#include <vector>

namespace ob {

// One call of Megatron's p2p_communication layer: what it sends and receives, to and from the
// next and the previous stage. A call may be batched (all its transfers in one group).
struct pp_call {
  bool send_next = false, recv_next = false;  // with stage + 1: activation out, gradient in
  bool send_prev = false, recv_prev = false;  // with stage - 1: gradient out, activation in
  // Forward (activations) or backward (gradients) tensors move in this call; steady-state
  // interleaved calls move both.
  bool any() const { return send_next || recv_next || send_prev || recv_prev; }
};

struct pp_action {
  // forward_backward: Megatron's combined 1F1B step (overlap_moe_expert_parallel_comm), the
  // forward of (chunk, microbatch) merged layer by layer with the backward of
  // (b_chunk, b_microbatch).
  enum class kind { forward, backward, comm, forward_backward };
  kind what = kind::forward;
  int chunk = 0;                      // model chunk (virtual stage index on this rank)
  int microbatch = 0;                 // forward/backward
  pp_call call;                       // comm
  int b_chunk = 0, b_microbatch = 0;  // forward_backward: the backward's
};

struct pp_layout {
  int pp = 1;            // pipeline stages
  int vp = 1;            // model chunks per stage (1 = non-interleaved)
  int microbatches = 1;  // per pipeline, per step
  // overlap_moe_expert_parallel_comm: without a pipeline, the first forward alone, then each
  // forward merged with the previous micro-batch's backward, then the last backward; interleaved,
  // one more warm-up forward and every steady-state forward merged with its backward
  // (docs/MOE.md §6). Megatron refuses it with pp > 1 and no virtual stages.
  bool a2a_overlap = false;
};

// The actions of `stage`, in Megatron's order. Interleaving requires microbatches % pp == 0
// (the caller checks). `split_fwd_bwd` (overlap_p2p_comm): the interleaved steady state sends
// and receives activations and gradients in two calls instead of one batched call.
std::vector<pp_action> pp_actions(const pp_layout& l, int stage, bool split_fwd_bwd);

// Warm-up forward passes before the first backward on `stage`.
int pp_warmup(const pp_layout& l, int stage);

// The first and the last virtual stage: where the embedding and the loss run.
inline bool first_virtual_stage(int stage, int chunk) { return stage == 0 && chunk == 0; }
inline bool last_virtual_stage(const pp_layout& l, int stage, int chunk) {
  return stage == l.pp - 1 && chunk == l.vp - 1;
}

}  // namespace ob
