// Multi-token prediction on the last pipeline stage (docs/MOE.md §14), as Megatron-Core's
// MultiTokenPredictionBlock runs it: per MTP layer, the embedding of the tokens shifted by one
// more, the two input norms, the eh projection of [embedding, hidden] (2h -> h, split over TP),
// one transformer layer built as the model's last layer, and the output layer's logits and loss
// again.
#include "plan/step_stage.hpp"

namespace ob::detail {

std::int64_t stage_planner::mtp_params() const {
  if (!mtp_on_stage()) return 0;
  // Beyond one stage the last stage keeps its own copy of the embedding for the MTP input.
  const std::int64_t embedding = cfg_.pp > 1 ? embedding_params() : 0;
  return w_.model.mtp_num_layers * mtp_layer_param_count(w_.model, cfg_) + embedding;
}

namespace {

std::string mtp_prefix(const std::string& prefix, std::int64_t k) {
  return prefix + "mtp" + std::to_string(k) + ".";
}

}  // namespace

stage_planner::mtp_shape stage_planner::mtp_layer() const {
  const std::int64_t T = w_.tokens;
  const bool windowed = windowed_ && w_.model.windowed_layer(w_.model.layers);
  return {T, w_.model.hidden, cfg_.sequence_parallel ? T / cfg_.tp : T, w_.model.moe.last_is_moe(),
          windowed ? windowed_ : nullptr};
}

void stage_planner::mtp_forward(const std::string& prefix) {
  if (!mtp_on_stage()) return;
  const mtp_shape m = mtp_layer();
  const std::int64_t T = m.tokens, h = m.hidden;
  for (std::int64_t k = 0; k < w_.model.mtp_num_layers; ++k) {
    const std::string name = mtp_prefix(prefix, k);
    embedding_forward(name);
    add_compute(name + "mtp_norms",
                elementwise_params{static_cast<std::uint64_t>(m.local_tokens * h * 8),
                                   16.0 * m.local_tokens * h, 0, false},
                "mtp");
    if (cfg_.tp > 1 && cfg_.sequence_parallel)
      add_compute(name + "mtp_eh_proj.ag",
                  tp_collective(coll_op::all_gather, static_cast<std::uint64_t>(T * 2 * h * 2)),
                  "mtp");
    add_compute(name + "mtp_eh_proj", gemm_params{T, h / cfg_.tp, 2 * h, w_.model.type, 0}, "mtp");
    // The projection's column-parallel output is gathered whole again (then scattered back to
    // the sequence-parallel shard, a local slice).
    if (cfg_.tp > 1)
      add_compute(name + "mtp_eh_proj.out_ag",
                  tp_collective(coll_op::all_gather, static_cast<std::uint64_t>(T * h * 2)), "mtp");
    layer_forward(name, m.moe, m.variant);
    const std::vector<int> out = pass_outputs();
    next_waits_.insert(next_waits_.end(), out.begin(), out.end());
    logits_forward(name);
  }
}

void stage_planner::mtp_backward(const std::string& prefix) {
  if (!mtp_on_stage()) return;
  const mtp_shape m = mtp_layer();
  const std::int64_t T = m.tokens, h = m.hidden;
  for (std::int64_t k = w_.model.mtp_num_layers - 1; k >= 0; --k) {
    const std::string name = mtp_prefix(prefix, k);
    logits_backward(name);
    layer_backward(name, m.moe, m.variant);
    const std::vector<int> out = pass_outputs();
    next_waits_.insert(next_waits_.end(), out.begin(), out.end());
    add_compute(name + "mtp_eh_proj_dgrad", gemm_params{T, 2 * h, h / cfg_.tp, w_.model.type, 0},
                "mtp");
    if (cfg_.tp > 1)
      add_compute(
          name + "mtp_eh_proj.tp",
          tp_collective(cfg_.sequence_parallel ? coll_op::reduce_scatter : coll_op::all_reduce,
                        static_cast<std::uint64_t>(T * 2 * h * 2)),
          "mtp");
    add_compute(name + "mtp_eh_proj_wgrad", gemm_params{2 * h, h / cfg_.tp, T, w_.model.type, 0},
                "mtp");
    add_compute(name + "mtp_norms_bwd",
                elementwise_params{static_cast<std::uint64_t>(m.local_tokens * h * 16),
                                   32.0 * m.local_tokens * h, 0, false},
                "mtp");
    embedding_backward(name);
  }
}

}  // namespace ob::detail
