// A MoE layer's MLP on one stage (docs/MOE.md §5): the router, the permutation, the dispatch
// all-to-all over the expert-parallel group, the local experts' grouped GEMMs sized for the
// busiest EP rank, the combine all-to-all, the unpermutation and the shared expert, forward and
// backward. The attention half of the layer is the dense planner's (layer_appender without its
// MLP).
#include <algorithm>

#include "plan/step_stage.hpp"

namespace ob::detail {
namespace {

// The busiest rank's grouped GEMM as one op: every local expert a member with the busiest
// expert's tokens (moe_layer.hpp spreads a rank's copies evenly; the first experts take the
// remainder).
gemm_params grouped(const model_spec& m, const moe_rank_load& load, int etp, expert_gemm which) {
  std::vector<gemm_params> members = expert_gemms(m, load, etp, which, m.type);
  gemm_params g = members.front();
  g.group = static_cast<int>(members.size());
  return g;
}

}  // namespace

// Megatron's global layer index of layer `l` of `chunk` on this stage: the virtual stages before
// it, chunk-major (interleaved), hold the layers before it.
bool stage_planner::is_moe_layer(int chunk, int l) const {
  const auto& which = w_.model.moe.layers;
  if (!w_.model.moe.enabled()) return false;
  int index = l;
  for (int v = 0; v < chunk * cfg_.pp + stage_; ++v)
    index += stage_chunk_layers(cfg_, v % cfg_.pp)[static_cast<std::size_t>(v / cfg_.pp)];
  return index >= static_cast<int>(which.size()) || which[static_cast<std::size_t>(index)];
}

void stage_planner::plan_moe() {
  if (!w_.model.moe.enabled()) return;
  const std::int64_t tokens =
      cfg_.sequence_parallel && cfg_.tp > 1 ? w_.tokens / cfg_.tp : w_.tokens;
  const std::string field = cfg_.ep > 1 ? "--moe-imbalance" : "--ep";
  // The dispatch moves a rank's tokens, bf16; the experts see them gathered over ETP.
  dispatch_ = busiest_rank_load(w_.model, tokens, cfg_.ep, cfg_.moe_imbalance, dtype::bf16, field);
  experts_ = busiest_rank_load(w_.model, tokens * cfg_.etp, cfg_.ep, cfg_.moe_imbalance,
                               w_.model.type, field);
  if (cfg_.ep > 1)
    ep_ = s_.add_stream("ep", stream_role::comm, priorities_for(in_.knobs.priority).comm);
  const expert_grid grid{cfg_.etp, cfg_.ep, cfg_.edp, cfg_.pp};
  ep_nodes_ = ep_span(grid, in_.cluster.nvlink_domain).nodes;
}

// One exchange of the dispatched tokens (or their gradients) on the EP stream; -1 without EP.
// `gathers`: the direction that brings tokens to the experts (the forward's dispatch, the
// backward's combine), an all-gather of every rank's tokens under the allgather dispatcher (the
// other direction reduce-scatters them back); the flex backends are all-to-alls on the SMs they
// hold (docs/MOE.md §7).
int stage_planner::ep_all_to_all(const std::string& name, const char* slot, bool gathers) {
  if (ep_ < 0) return -1;
  collective_params c;
  c.op = coll_op::all_to_all;
  c.bytes = dispatch_.dispatch_bytes;
  c.group = comm_group::ep;
  c.group_size = cfg_.ep;
  c.nodes = ep_nodes_;
  if (cfg_.dispatcher == moe_dispatcher::allgather) {
    c.op = gathers ? coll_op::all_gather : coll_op::reduce_scatter;
    c.bytes = static_cast<std::uint64_t>(dispatch_.tokens_routed / w_.model.moe.topk) *
              static_cast<std::uint64_t>(w_.model.hidden) * dtype_bytes(dtype::bf16) *
              static_cast<std::uint64_t>(cfg_.ep);
  }
  c = with_nccl_knobs(c, in_.knobs);
  if (cfg_.dispatcher == moe_dispatcher::deepep) c.ctas = deepep_default_sms;
  if (cfg_.dispatcher == moe_dispatcher::hybridep) c.ctas = hybridep_default_sms;
  if (c.ctas > 0) c.ep = flex_exchange(!gathers);
  return s_.add_op(name, ep_, c, {appender_->last_compute()}, slot);
}

// The flex dispatcher's own protocol (sim/ep_dispatch.hpp): a combine where tokens return from
// the experts (DeepEP's backward runs a dispatch call for the combine's gradient and a combine
// call for the dispatch's).
ep_exchange stage_planner::flex_exchange(bool combine) const {
  ep_exchange x;
  x.backend =
      cfg_.dispatcher == moe_dispatcher::hybridep ? ep_backend::hybridep : ep_backend::deepep;
  x.combine = combine;
  x.tokens = dispatch_.tokens_routed / w_.model.moe.topk;
  x.hidden = w_.model.hidden;
  x.topk = w_.model.moe.topk;
  x.experts = w_.model.moe.experts;
  x.imbalance = cfg_.moe_imbalance;
  return x;
}

std::vector<int> stage_planner::waits_on(int op) {
  return op < 0 ? std::vector<int>{} : std::vector<int>{op};
}

elementwise_params stage_planner::moe_elementwise(double bytes_per_copy, double flops_per_copy,
                                                  bool experts) const {
  const double copies =
      static_cast<double>(experts ? experts_.tokens_received : dispatch_.tokens_routed);
  elementwise_params e;
  e.bytes = static_cast<std::uint64_t>(copies * bytes_per_copy);
  e.flops = copies * flops_per_copy;
  return e;
}

void stage_planner::moe_forward(const std::string& name) {
  moe_forward_tail(name, moe_forward_experts(name, moe_forward_head(name)));
}

void stage_planner::moe_backward(const std::string& name) {
  moe_backward_tail(name, moe_backward_experts(name, moe_backward_head(name)));
}

// Router and permutation, then the dispatch; returns it (-1 without EP).
int stage_planner::moe_forward_head(const std::string& name) {
  const model_spec& m = w_.model;
  const std::int64_t t = dispatch_.tokens_routed / m.moe.topk, h = m.hidden, E = m.moe.experts;
  add_compute(name + "moe_router", gemm_params{t, E, h, m.type, 0}, "moe_router");
  add_compute(name + "moe_permute", moe_elementwise(4.0 * h, 0, false), "moe_permute");
  return ep_all_to_all(name + "moe_dispatch", "moe_dispatch", true);
}

// The local experts once the dispatch has arrived, then the combine; returns it.
int stage_planner::moe_forward_experts(const std::string& name, int dispatch) {
  const model_spec& m = w_.model;
  add_compute(name + "moe_fc1", grouped(m, experts_, cfg_.etp, expert_gemm::fc1_fprop),
              "moe_experts", waits_on(dispatch));
  const double f = static_cast<double>(m.moe.ffn_hidden) / cfg_.etp, f1 = m.gated_mlp ? 2 * f : f;
  add_compute(name + "moe_act", moe_elementwise((f1 + f) * 2, 4 * f1, true), "moe_experts");
  add_compute(name + "moe_fc2", grouped(m, experts_, cfg_.etp, expert_gemm::fc2_fprop),
              "moe_experts");
  return ep_all_to_all(name + "moe_combine", "moe_combine", false);
}

void stage_planner::moe_forward_tail(const std::string& name, int combine) {
  const double h = static_cast<double>(w_.model.hidden);
  add_compute(name + "moe_unpermute", moe_elementwise(4 * h, h, false), "moe_permute",
              waits_on(combine));
  shared_expert(name, false);
}

// The shared expert's and the unpermutation's gradients, then the combine's; returns it.
int stage_planner::moe_backward_head(const std::string& name) {
  const double h = static_cast<double>(w_.model.hidden);
  shared_expert(name, true);
  add_compute(name + "moe_unpermute_bwd", moe_elementwise(4 * h, h, false), "moe_permute",
              appender_->take_pending_outputs());
  return ep_all_to_all(name + "moe_combine_bwd", "moe_combine", true);
}

// The experts' gradients, then the dispatch's (before the weight gradients under
// delay_wgrad_compute, which then run beside it); returns it.
int stage_planner::moe_backward_experts(const std::string& name, int combine) {
  const model_spec& m = w_.model;
  const auto gemm = [&](const char* op, expert_gemm which, std::vector<int> waits = {}) {
    add_compute(name + op, grouped(m, experts_, cfg_.etp, which), "moe_experts", std::move(waits));
  };
  gemm("moe_fc2_dgrad", expert_gemm::fc2_dgrad, waits_on(combine));
  if (!cfg_.delay_wgrad) gemm("moe_fc2_wgrad", expert_gemm::fc2_wgrad);
  const double f = static_cast<double>(m.moe.ffn_hidden) / cfg_.etp, f1 = m.gated_mlp ? 2 * f : f;
  add_compute(name + "moe_act_bwd", moe_elementwise((f1 + f) * 4, 6 * f1, true), "moe_experts");
  gemm("moe_fc1_dgrad", expert_gemm::fc1_dgrad);
  if (!cfg_.delay_wgrad) gemm("moe_fc1_wgrad", expert_gemm::fc1_wgrad);
  const int dispatch = ep_all_to_all(name + "moe_dispatch_bwd", "moe_dispatch", false);
  if (cfg_.delay_wgrad) {
    gemm("moe_fc2_wgrad", expert_gemm::fc2_wgrad);
    gemm("moe_fc1_wgrad", expert_gemm::fc1_wgrad);
  }
  return dispatch;
}

void stage_planner::moe_backward_tail(const std::string& name, int dispatch) {
  const model_spec& m = w_.model;
  const std::int64_t t = dispatch_.tokens_routed / m.moe.topk, h = m.hidden, E = m.moe.experts;
  add_compute(name + "moe_permute_bwd", moe_elementwise(4.0 * h, 0, false), "moe_permute",
              waits_on(dispatch));
  add_compute(name + "moe_router_dgrad", gemm_params{t, h, E, m.type, 0}, "moe_router");
  add_compute(name + "moe_router_wgrad", gemm_params{E, h, t, m.type, 0}, "moe_router");
}

// The shared expert: a dense gated MLP on every token of the rank, its FFN split over TP, after
// the routed experts' combine (without moe_shared_expert_overlap).
void stage_planner::shared_expert(const std::string& name, bool backward) {
  const model_spec& m = w_.model;
  if (m.moe.shared_ffn_hidden <= 0) return;
  const std::int64_t T = w_.tokens, h = m.hidden, f = m.moe.shared_ffn_hidden / cfg_.tp;
  const std::int64_t f1 = m.gated_mlp ? 2 * f : f;
  const std::string s = "moe_shared";
  if (!backward) {
    add_compute(name + "moe_shared_fc1", gemm_params{T, f1, h, m.type, 0}, s);
    add_compute(name + "moe_shared_fc2", gemm_params{T, h, f, m.type, 0}, s);
    return;
  }
  add_compute(name + "moe_shared_fc2_dgrad", gemm_params{T, f, h, m.type, 0}, s);
  add_compute(name + "moe_shared_fc2_wgrad", gemm_params{f, h, T, m.type, 0}, s);
  add_compute(name + "moe_shared_fc1_dgrad", gemm_params{T, h, f1, m.type, 0}, s);
  add_compute(name + "moe_shared_fc1_wgrad", gemm_params{h, f1, T, m.type, 0}, s);
}

}  // namespace ob::detail
