// Megatron-FSDP on one stage (docs/FSDP.md): parameters, gradients and optimizer state sharded
// over DP x CP (optim_grads_params, ZeRO-3). Each layer's parameters are all-gathered before its
// forward and again before its backward; the gather of the next layer runs on the DP stream while
// the current one computes (Megatron-FSDP's unshard prefetch); each layer's gradients are
// reduce-scattered on their own stream after its backward, every micro-batch, beside the layers
// that follow (its async reduce-grad). The embedding and the output layer are gathered once at the
// start of the step and reduced once at the end.
//
// PyTorch FSDP's SHARD_GRAD_OP (fsdp_shard_grad_op, docs/FSDP.md §7) follows each unit (a layer
// of a virtual stage) through the pipeline schedule: a pass gathers the unit only if it is
// sharded then; the forward keeps it gathered, the backward reshards it and reduce-scatters its
// gradients. The next gather in the schedule's order, whatever chunk it belongs to, is issued
// when a pass starts, so that it runs beside that pass.
#include <set>

#include "base/error.hpp"
#include "plan/step_stage.hpp"

namespace ob::detail {

// The all-gather of one layer's parameters (bf16) on the DP stream, started once `after` ran.
int stage_planner::fsdp_gather(const std::string& prefix, int chunk, int l, bool backward,
                               std::vector<int> after) {
  const std::int64_t elems =
      chunk_params_[static_cast<std::size_t>(chunk)][static_cast<std::size_t>(l)];
  const std::string name =
      prefix + "L" + std::to_string(l) + (backward ? ".fsdp_ag_bwd" : ".fsdp_ag");
  return s_.add_op(name, dp_, dp_collective(coll_op::all_gather, elems, param_bytes()),
                   std::move(after), "param_gather");
}

// Before layer l of a pass: its gather (prefetched, or issued now for the pass's first layer)
// holds the layer back; the next layer's gather starts beside it.
void stage_planner::fsdp_before_layer(const std::string& prefix, int chunk, int l, bool backward) {
  if (!cfg_.fsdp || dp_size_ <= 1) return;
  if (cfg_.fsdp_shard_grad_op) return sgo_before_layer(chunk, l, backward);
  const std::vector<int> now = appender_->last_compute() >= 0
                                   ? std::vector<int>{appender_->last_compute()}
                                   : std::vector<int>{};
  const auto key = std::make_pair(chunk, l);
  auto it = fsdp_prefetched_.find(key);
  const int ag =
      it != fsdp_prefetched_.end() ? it->second : fsdp_gather(prefix, chunk, l, backward, now);
  if (it != fsdp_prefetched_.end()) fsdp_prefetched_.erase(it);
  next_waits_.push_back(ag);
  const int next = backward ? l - 1 : l + 1;
  if (next >= 0 && next < layers_[static_cast<std::size_t>(chunk)])
    fsdp_prefetched_[{chunk, next}] = fsdp_gather(prefix, chunk, next, backward, now);
}

// After layer l's backward: its gradients reduce-scatter beside the next layers' backward.
void stage_planner::fsdp_after_backward(const std::string& prefix, int chunk, int l) {
  if (!cfg_.fsdp || dp_size_ <= 1) return;
  const std::int64_t elems =
      chunk_params_[static_cast<std::size_t>(chunk)][static_cast<std::size_t>(l)];
  const collective_params rs =
      dp_collective(coll_op::reduce_scatter, elems, cfg_.grad_reduce_in_fp32 ? 4 : 2);
  grad_reduces_.push_back(s_.add_op(prefix + "L" + std::to_string(l) + ".fsdp_rs", fsdp_rs_, rs,
                                    {appender_->last_compute()}, "grad_reduce"));
}

// SHARD_GRAD_OP's state per unit across the schedule: gathered by the first pass that finds it
// sharded, kept after a forward, resharded after a backward (FSDP's docstring for the strategy,
// outside no_sync).
void stage_planner::sgo_plan(const std::vector<pp_action>& actions) {
  std::set<std::pair<int, int>> gathered;
  std::map<std::pair<int, int>, std::ptrdiff_t> last;
  const auto pass = [&](int chunk, int mb, int l, bool backward) {
    const auto unit = std::make_pair(chunk, l);
    unit_pass p{chunk, l, mb, backward, gathered.count(unit) == 0, -1};
    if (auto it = last.find(unit); it != last.end()) p.prev = it->second;
    last[unit] = static_cast<std::ptrdiff_t>(sgo_passes_.size());
    sgo_passes_.push_back(p);
    if (backward)
      gathered.erase(unit);
    else
      gathered.insert(unit);
  };
  for (const pp_action& a : actions) {
    const int n = layers_[static_cast<std::size_t>(a.chunk)];
    if (a.what == pp_action::kind::forward)
      for (int l = 0; l < n; ++l) pass(a.chunk, a.microbatch, l, false);
    else if (a.what == pp_action::kind::backward)
      for (int l = n - 1; l >= 0; --l) pass(a.chunk, a.microbatch, l, true);
  }
}

int stage_planner::sgo_gather(std::size_t i, std::vector<int> after) {
  const unit_pass& p = sgo_passes_[i];
  return fsdp_gather(pass_prefix(p.chunk, p.microbatch), p.chunk, p.layer, p.backward,
                     std::move(after));
}

// Before a unit's pass: its gather if it is sharded (prefetched, or issued now), then the
// prefetch of the next pass that gathers, unless its unit has a pass before it (which must
// reshard it first).
void stage_planner::sgo_before_layer(int chunk, int l, bool backward) {
  const std::size_t i = sgo_at_++;
  if (i >= sgo_passes_.size() || sgo_passes_[i].chunk != chunk || sgo_passes_[i].layer != l ||
      sgo_passes_[i].backward != backward)
    throw runtime_failure("step planner: SHARD_GRAD_OP's passes out of the schedule's order");
  const std::vector<int> now = appender_->last_compute() >= 0
                                   ? std::vector<int>{appender_->last_compute()}
                                   : std::vector<int>{};
  if (sgo_passes_[i].gathers) {
    auto it = sgo_prefetched_.find(i);
    next_waits_.push_back(it != sgo_prefetched_.end() ? it->second : sgo_gather(i, now));
  }
  std::size_t j = i + 1;
  while (j < sgo_passes_.size() && !sgo_passes_[j].gathers) ++j;
  if (j < sgo_passes_.size() && !sgo_prefetched_.count(j) &&
      sgo_passes_[j].prev < static_cast<std::ptrdiff_t>(i))
    sgo_prefetched_[j] = sgo_gather(j, now);
}

// The embedding and output layer: gathered before the step's first compute, reduced after its
// last backward.
void stage_planner::fsdp_edges(bool start) {
  if (!cfg_.fsdp || dp_size_ <= 1) return;
  std::int64_t elems = 0;
  if (stage_ == 0) elems += embedding_params();
  if (stage_ == cfg_.pp - 1) elems += embedding_params();
  if (elems == 0) return;
  if (start) {
    next_waits_.push_back(s_.add_op("fsdp_ag_embedding", dp_,
                                    dp_collective(coll_op::all_gather, elems, 2), {},
                                    "param_gather"));
    return;
  }
  grad_reduces_.push_back(
      s_.add_op("fsdp_rs_embedding", fsdp_rs_,
                dp_collective(coll_op::reduce_scatter, elems, cfg_.grad_reduce_in_fp32 ? 4 : 2),
                {appender_->last_compute()}, "grad_reduce"));
}

}  // namespace ob::detail
