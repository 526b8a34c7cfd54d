#pragma once
// What a training step's timeline says (docs/ARCHITECTURE.md §9.4): where the step time went,
// in parts that add up to it, and the throughput figures Megatron reports.
#include <cstdint>
#include <vector>

#include "core/executor.hpp"
#include "core/model_spec.hpp"
#include "core/program.hpp"

namespace ob {

// Milliseconds of the step on its critical stage (the one that finishes last). Every instant of
// that stage's compute stream is counted once: computing (compute, or optimizer for the Adam
// step and the gradient norm), running a collective or p2p op serially (that group's exposed
// time), or standing still. A still stretch is charged to what the next compute op waited for:
// a received activation or gradient is bubble until its sender started sending and pp_exposed
// after; a TP, CP or DP op is that group's exposed time. A still stretch nothing explains is
// charged to the communication group in flight for most of it, else `other`.
struct step_breakdown {
  double compute = 0, tp_exposed = 0, cp_exposed = 0, dp_exposed = 0, pp_exposed = 0, bubble = 0,
         optimizer = 0, other = 0;
  double total() const;
};

// `intervals[s]`: stage s's op intervals (µs) from one iteration of the overlapped variant.
step_breakdown attribute_step(const program& p,
                              const std::vector<std::vector<op_interval>>& intervals,
                              int& critical_stage);

// Megatron-LM's model FLOPs per step (megatron/training/training.py,
// num_floating_point_operations): forward and backward of every layer, attention with GQA and
// the full sequence, the MLP (x 3/2 with a gated linear unit) and the logits; recomputation is
// not counted.
double model_flops_per_step(const model_spec& m, std::int64_t global_batch, std::int64_t seq,
                            std::int64_t layers);

}  // namespace ob
