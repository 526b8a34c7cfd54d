#pragma once
// The host-only PyTorch ops of one MoE layer (docs/MOE.md §17): the small tensor ops Megatron-Core
// issues around the router, the dispatcher and the permutation that the plan folds into a few
// ops or leaves out. Each is counted from Megatron-Core's code (the count per function is in the
// doc), minus the plan's own op that stands in for the group (it pays its own launch already).
// They are host work only: the host pays a launch for each (sim/host.cpp), their GPU time is
// left out.
#include "model/ir.hpp"
#include "spec/step_config.hpp"

namespace ob::detail {

// Counts by the plan op they are issued before. Unfused paths (no moe_router_fusion or
// moe_permute_fusion), softmax top-k routing with the load-balancing aux loss, dropless.
struct moe_host_counts {
  int router = 0;          // moe_router_scores: top-k, softmax, routing map, aux loss
  int preprocess = 0;      // moe_permute: the dispatcher's counting (MoELayer.preprocess)
  int permute = 0;         // moe_permute: the argsort permutation beyond the plan's one op
  int counts_copy = 0;     // moe_counts_sync: the side stream's wait, copies and event
  int after_dispatch = 0;  // moe_fc1: the probs' all-to-all, the sort by local expert
  int before_combine = 0;  // moe_combine: the sort back
  int unpermute = 0;       // moe_unpermute: the scatter-add beyond the plan's op, the shared add
  int combine_bwd = 0;     // moe_combine_bwd
  int dispatch_bwd = 0;    // moe_dispatch_bwd
  int permute_bwd = 0;     // moe_permute_bwd
  int router_bwd = 0;      // moe_router_scores_bwd: autograd's nodes of the router's ops
};

// Per dispatcher: alltoall and allgather from token_dispatcher.py/moe_utils.py; DeepEP's
// _DeepepManager (unfused multihot and permute after the dispatch); _HybridEPManager (its kernels
// permute; the counts' cast and sum after the dispatch).
constexpr moe_host_counts moe_host_ops(moe_dispatcher d) {
  switch (d) {
    case moe_dispatcher::alltoall:
      return {.router = 20,
              .preprocess = 7,
              .permute = 5,
              .counts_copy = 6,
              .after_dispatch = 3,
              .before_combine = 1,
              .unpermute = 2,
              .combine_bwd = 1,
              .dispatch_bwd = 3,
              .permute_bwd = 4,
              .router_bwd = 9};
    case moe_dispatcher::allgather:
      return {.router = 20, .permute = 5, .unpermute = 2, .permute_bwd = 4, .router_bwd = 9};
    case moe_dispatcher::deepep:
      return {.router = 20,
              .preprocess = 1,
              .after_dispatch = 18,
              .before_combine = 1,
              .unpermute = 1,
              .dispatch_bwd = 5,
              .router_bwd = 9};
    case moe_dispatcher::hybridep:
      return {.router = 20, .after_dispatch = 2, .router_bwd = 9};
  }
  return {};
}

// Transformer Engine's GroupedLinear, on the path the published rows ran (no device-initiated
// grouped GEMM: TE v2.15 `nvte_multi_tensor_gemm` takes CUTLASS's grouped kernel only on Hopper
// with NVTE_USE_CUTLASS_GROUPED_GEMM, else `multi_stream_cublas_gemm`), launches one cuBLAS GEMM
// per expert with tokens, round-robin over its 4 compute streams (`num_compute_streams`,
// docs/MOE.md §19). A plan op of `members` of them pays one launch; each further member is a host
// op of one launch. The stream events around them (1 + 3 a used stream, at event_us) are left out.
constexpr int te_grouped_gemm_streams = 4;
// Also TE's MXFP8 split_quantize before them: one quantize kernel per expert (docs/MOE.md §19.2).
constexpr int grouped_gemm_host_ops(int members) { return members > 1 ? members - 1 : 0; }

// add_bias_linear on a MoE layer (docs/MOE.md §14.3), Megatron-Core's unfused grouped MLP. fc2's
// GroupedLinear returns its biases (skip_bias_add), and TEGroupedMLP._apply_bias scales each local
// expert's by its tokens' routing weights in a Python loop: per expert a multiply and an add (the
// splits are views), then one cat of the whole output. Autograd's backward runs, per expert, the
// multiply's two gradients (each a multiply and a reduction to the operand's shape) and the bias
// parameter's DDP hook (main_grad.add_); then the splits' backwards (a cat of the output's
// gradient, one of the routing weights') and the weights' gradient accumulation with the
// activation's. fc1's bias rides in the grouped GEMM's epilogues (Transformer Engine's BIAS and
// BGRADB); the DDP hook adds each expert's gradient. The router's bias rides in its GEMM's
// epilogue; its backward sums the logits' gradient over the tokens, and the hook adds it.
constexpr int fc2_bias_fwd_kernels(int local_experts) { return 2 * local_experts; }
constexpr int fc2_bias_bwd_kernels(int local_experts) { return 5 * local_experts; }
constexpr int fc2_bias_cat_bwd_host_ops = 2;  // the weights' cat and their gradients' add
constexpr int bias_grad_hook_host_ops = 1;    // DDP's main_grad.add_ for a bias parameter

// Adds `n` host ops before op `id` (none when id < 0) and marks it captured when `graphed`.
inline void add_host_work(schedule& s, int id, int n, bool graphed = false) {
  if (id < 0) return;
  op& o = s.ops[static_cast<std::size_t>(id)];
  o.host_ops += n;
  o.graphed = o.graphed || graphed;
}

}  // namespace ob::detail
