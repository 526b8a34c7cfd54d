#pragma once
// What a training step's timeline says (docs/ARCHITECTURE.md §9.4): where the step time went,
// in parts that add up to it, and the throughput figures Megatron reports.
#include <cstdint>
#include <vector>

#include "analysis/diagnosis.hpp"
#include "model/executor.hpp"
#include "model/model_spec.hpp"
#include "model/program.hpp"

namespace ob {

// Milliseconds of the step on its critical stage (the one that finishes last). Every instant of
// that stage's compute stream is counted once: computing (compute, or optimizer for the Adam
// step and the gradient norm), running a collective or p2p op serially (that group's exposed
// time), or standing still. A still stretch is charged to what the next compute op waited for:
// a received activation or gradient is bubble until its sender started sending and pp_exposed
// after; a TP, CP, DP or EP op is that group's exposed time. A still stretch nothing explains is
// charged to the communication group in flight for most of it, else `other`.
struct step_breakdown {
  double compute = 0, tp_exposed = 0, cp_exposed = 0, dp_exposed = 0, pp_exposed = 0, bubble = 0,
         optimizer = 0, other = 0;
  double ep_exposed = 0;  // a MoE layer's dispatch and combine all-to-alls (docs/MOE.md §5)
  double total() const;
};

// The same walk in the diagnosis vocabulary (docs/ARCHITECTURE.md §7.1): every stretch that is
// neither compute nor optimizer, i.e. the step's exposed time, charged to a cause. A comm op on
// the compute stream is serialized_same_stream; waiting for the other stage to send is bubble;
// waiting for a gradient bucket after the backward (grad_reduce, embedding_grad) is late_bucket;
// waiting for any other TP, CP, DP or PP op, or its transfer, is tail_not_overlapped; the rest
// is other. `where` is the op's slot or the group.
struct step_attribution {
  step_breakdown breakdown;
  std::vector<cause_share> causes;  // one entry per stretch, summed by diagnosis_of
  int critical_stage = 0;
  double exposed_ms() const;  // everything but compute and optimizer
};

// `intervals[s]`: stage s's op intervals (µs) from one iteration of the overlapped variant.
// `hottest_share`: under routing imbalance the planned rank is the busiest EP rank (docs/MOE.md
// §4); the share of its routed experts' time (slot moe_experts) that the mean rank, with fewer
// tokens, spends waiting at the combine instead (1 − mean / busiest load, an estimate linear in
// the tokens). That share is charged to ep_exposed as hottest_expert, not to compute.
step_attribution attribute_step(const program& p,
                                const std::vector<std::vector<op_interval>>& intervals,
                                double hottest_share = 0);

// Megatron-LM's model FLOPs per step (megatron/training/training.py,
// num_floating_point_operations): forward and backward of every layer, attention with GQA and
// the full sequence, the MLP (x 3/2 with a gated linear unit; on a MoE layer the top-k routed
// experts and the shared expert) and the logits; recomputation is not counted. MLA layers count
// as Megatron's MLA term does (causal core), sliding-window layers' core over the window, and
// each MTP layer as one more last layer with its norms, eh projection and logits (docs/MOE.md §14).
double model_flops_per_step(const model_spec& m, std::int64_t global_batch, std::int64_t seq,
                            std::int64_t layers);

}  // namespace ob
