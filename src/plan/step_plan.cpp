#include "plan/step_plan.hpp"

#include <algorithm>
#include <optional>

#include "base/error.hpp"
#include "plan/graph_scope.hpp"
#include "plan/step_stage.hpp"

namespace ob {
namespace detail {

std::int64_t layer_params(const model_spec& m, int tp) {
  const std::int64_t h = m.hidden, f = m.ffn_hidden, f1 = m.gated_mlp ? 2 * f : f;
  if (m.mla.enabled) return attention_param_count(m, tp) + h * (f1 + f) / tp + 4 * h;
  return h * (m.qkv_width() + m.heads * m.head_dim() + f1 + f) / tp + 4 * h;
}

std::int64_t attention_param_count(const model_spec& m, int tp) {
  const std::int64_t h = m.hidden;
  if (!m.mla.enabled) return h * (m.qkv_width() + m.heads * m.head_dim()) / tp;
  const mla_shape& a = m.mla;
  const std::int64_t q_up = m.heads * m.qk_dim() / tp;
  const std::int64_t q =
      a.q_lora_rank > 0 ? h * a.q_lora_rank + a.q_lora_rank * (q_up + 1) : h * q_up;
  const std::int64_t kv = h * (a.kv_lora_rank + a.qk_pos_emb_head_dim) +
                          a.kv_lora_rank * (m.heads * (a.qk_head_dim + m.v_dim()) / tp + 1);
  return q + kv + m.heads * m.v_dim() * h / tp;
}

std::int64_t mtp_layer_param_count(const model_spec& m, const step_config& c) {
  const std::int64_t h = m.hidden;
  return (m.moe.last_is_moe() ? moe_layer_param_count(m, c) : layer_params(m, c.tp)) + 3 * h +
         2 * h * h / c.tp;
}

moe_layer_split moe_layer_param_split(const model_spec& m, const step_config& c) {
  const std::int64_t h = m.hidden, gate = m.gated_mlp ? 3 : 2;
  const std::int64_t attention = attention_param_count(m, c.tp) + 4 * h;
  const std::int64_t shared = h * gate * m.moe.shared_ffn_hidden / c.tp;
  const std::int64_t experts = m.moe.experts / c.ep * h * gate * m.moe.ffn_hidden / c.etp;
  return {attention + h * m.moe.experts + shared, experts};
}

std::int64_t moe_layer_param_count(const model_spec& m, const step_config& c) {
  const moe_layer_split p = moe_layer_param_split(m, c);
  return p.dense + p.expert;
}

stage_planner::stage_planner(const step_inputs& in, int stage, const layer_workload& w,
                             const layer_workload* windowed)
    : in_(in),
      cfg_(in.cfg),
      stage_(stage),
      w_(w),
      windowed_(windowed),
      layout_{cfg_.pp, cfg_.vp, cfg_.microbatches, cfg_.moe_a2a_overlap} {
  s_.name = "stage" + std::to_string(stage);
  s_.eager_framework = true;  // Megatron issues every kernel from eager PyTorch (docs/MOE.md §20)
  make_streams();
  plan_moe();
  plan_expert_dp();
  // Created last, so that every other stream keeps its id (and its hardware queue).
  if (cfg_.pp > 1 && !overlapped_p2p()) pp_sync_ = s_.add_stream("pp_sync", stream_role::p2p, 0);
  appender_ = std::make_unique<layer_appender>(w_, in.tp_methods, in.gpu, in.knobs, target_);
  plan_chunks();
}

void stage_planner::build() {
  gather_params();
  zero_grads();
  fsdp_edges(true);
  const std::vector<pp_action> actions = pp_actions(layout_, stage_, overlapped_p2p());
  if (cfg_.fsdp && cfg_.fsdp_shard_grad_op) sgo_plan(actions);
  for (const pp_action& a : actions) act(a);
  fsdp_edges(false);
  finish_grads();
  optimizer();
  mark_graph_scopes(s_, cfg_);
  s_.validate();
}

// Creation order decides hardware queues under CDMC: compute and Transformer Engine's streams
// exist before training starts; PyTorch creates its NCCL streams on first use.
void stage_planner::make_streams() {
  const stream_priorities prio = priorities_for(in_.knobs.priority);
  const int comm_prio = prio.comm;
  const int compute_prio = prio.compute;
  target_.s = &s_;
  target_.compute = s_.add_stream("compute", stream_role::compute, compute_prio);
  target_.comm = s_.add_stream("tp_comm", stream_role::comm, comm_prio);
  target_.p2p = s_.add_stream("tp_p2p", stream_role::p2p, comm_prio);
  // Transformer Engine's cp_stream: the ring's K/V exchange, or under all_gather the second
  // query chunk's attention (compute beside compute; docs/ARCHITECTURE.md §9.3).
  if (cfg_.cp > 1) {
    const bool chunks = cfg_.cp_comm_type == cp_comm::all_gather;
    target_.cp = s_.add_stream("cp", chunks ? stream_role::compute : stream_role::p2p, 0);
  }
  recv_prev_ = s_.add_stream("pp_recv_prev", stream_role::p2p, 0);
  send_next_ = s_.add_stream("pp_send_next", stream_role::p2p, 0);
  recv_next_ = s_.add_stream("pp_recv_next", stream_role::p2p, 0);
  send_prev_ = s_.add_stream("pp_send_prev", stream_role::p2p, 0);
  dp_ = s_.add_stream("dp", stream_role::comm, 0);
  const rank_grid grid{cfg_.tp, cfg_.cp, cfg_.dp, cfg_.pp};
  const int gpn = in_.cluster.nvlink_domain;  // groups inside it stay on NVLink
  target_.tp_nodes = span_of(comm_group::tp, grid, gpn).nodes;
  target_.cp_nodes = span_of(comm_group::cp, grid, gpn).nodes;
  target_.cp_ctas = in_.gpu.nccl_ctas_p2p;
  target_.cp_type = cfg_.cp_comm_type;
  if (cfg_.cp_comm_type == cp_comm::a2a_p2p) {
    // Megatron-Core's hierarchical groups: the a2a level's ranks are CP neighbours, the ring's
    // are cp_a2a CP ranks apart (parallel_state.create_hierarchical_groups).
    target_.cp_a2a = cfg_.cp_a2a;
    target_.cp_a2a_nodes = span_of(comm_group::cp, {cfg_.tp, cfg_.cp_a2a, 1, 1}, gpn).nodes;
    target_.cp_p2p_nodes =
        span_of(comm_group::cp, {cfg_.tp * cfg_.cp_a2a, cfg_.cp_p2p, 1, 1}, gpn).nodes;
  }
  pp_nodes_ = grid.stride(comm_group::pp) >= gpn ? 2 : 1;
  // Gradients reduce over DP x CP: the ranks with the same TP and PP coordinates.
  dp_size_ = cfg_.dp * cfg_.cp;
  const rank_grid dpcp{cfg_.tp, 1, dp_size_, cfg_.pp};
  dp_nodes_ = span_of(comm_group::dp, dpcp, gpn).nodes;
  if (cfg_.fsdp) fsdp_rs_ = s_.add_stream("fsdp_rs", stream_role::comm, 0);
  // TE's CPU offload runs its copies both ways on one stream of its own (docs/FSDP.md §5).
  if (cfg_.cpu_offload_layers > 0) offload_ = s_.add_stream("offload", stream_role::p2p, 0);
}

// Megatron splits the layers evenly over pp x vp chunks; when the embedding and the loss are
// counted as layers, the first and the last virtual stage hold one layer fewer.
void stage_planner::plan_chunks() {
  const std::int64_t dense = layer_params(w_.model, cfg_.tp);
  layers_ = stage_chunk_layers(cfg_, stage_);
  for (int c = 0; c < cfg_.vp; ++c) {
    const auto n = static_cast<std::size_t>(layers_[static_cast<std::size_t>(c)]);
    // A MoE layer's routed experts fill buckets of their own, apart from its dense parameters
    // (docs/MOE.md §5); under Megatron-FSDP they stay with the rest.
    std::vector<std::int64_t> per_layer(n, dense), experts(n, 0), rest(n, dense);
    for (std::size_t l = 0; l < n; ++l) {
      if (!is_moe_layer(c, static_cast<int>(l))) continue;
      const moe_layer_split p = moe_layer_param_split(w_.model, cfg_);
      per_layer[l] = p.dense + p.expert;
      if (split_experts()) experts[l] = p.expert;
      rest[l] = per_layer[l] - experts[l];
    }
    // Only the first chunk of the first stage splits its gradients into buckets; every other
    // chunk reduces one bucket (docs/BRIDGE_RULES.md §10), the experts' buffer alike.
    const std::int64_t size = stage_ == 0 && c == 0 && cfg_.dp_overlap ? bucket_size() : 0;
    bucket_of_.push_back(bucket_layers(rest, size));
    expert_bucket_of_.push_back(bucket_layers(experts, size));
    for (std::int64_t p : per_layer) params_ += p;
    chunk_params_.push_back(std::move(per_layer));
    expert_params_.push_back(std::move(experts));
  }
  if (stage_ == 0) params_ += embedding_params();
  if (stage_ == cfg_.pp - 1) params_ += embedding_params();  // the output layer
  params_ += mtp_params();
}

// Megatron-Core's DDP keeps the parameters that are not all-reduced over DP (the routed experts')
// in buffers of their own, reduced and gathered over the expert-data-parallel group, whose ranks
// are etp x ep apart: with EP filling a node, one GPU a node (docs/MOE.md §5).
void stage_planner::plan_expert_dp() {
  if (!expert_dp()) return;
  const rank_grid grid{cfg_.tp, cfg_.cp, cfg_.dp, cfg_.pp, cfg_.etp, cfg_.ep};
  edp_nodes_ = span_of(comm_group::edp, grid, in_.cluster.nvlink_domain).nodes;
  // PyTorch runs each process group's collectives on an NCCL stream of its own.
  if (cfg_.dp_overlap) edp_ = s_.add_stream("edp", stream_role::comm, 0);
}

int stage_planner::global_layer(int chunk, int l) const {
  int index = l;
  for (int v = 0; v < chunk * cfg_.pp + stage_; ++v)
    index += stage_chunk_layers(cfg_, v % cfg_.pp)[static_cast<std::size_t>(v / cfg_.pp)];
  return index;
}

const layer_workload* stage_planner::layer_variant(int chunk, int l) const {
  return windowed_ && w_.model.windowed_layer(global_layer(chunk, l)) ? windowed_ : nullptr;
}

std::int64_t stage_planner::bucket_size() const {
  if (cfg_.bucket_size > 0) return cfg_.bucket_size;
  return 128LL * 1024 * 1024;  // Bridge's default, in elements (docs/BRIDGE_RULES.md §4.4)
}

std::int64_t stage_planner::embedding_params() const {
  return w_.model.vocab_size / cfg_.tp * w_.model.hidden;
}

// The elements one bucket reduces: its layers, plus the embedding (first layers of the first
// virtual stage) or the output layer (last layers of the last virtual stage).
std::int64_t stage_planner::bucket_params(int chunk, int bucket) const {
  const auto& of = bucket_of_[chunk];
  const auto c = static_cast<std::size_t>(chunk);
  std::int64_t n = 0;
  for (std::size_t l = 0; l < of.size(); ++l)
    if (of[l] == bucket) n += chunk_params_[c][l] - expert_params_[c][l];
  const int highest = of.empty() ? 0 : of.front();
  if (first_virtual_stage(stage_, chunk) && bucket == highest) n += embedding_params();
  if (last_virtual_stage(layout_, stage_, chunk) && bucket == 0)
    n += embedding_params() + mtp_params();
  return n;
}

std::int64_t stage_planner::expert_bucket_params(int chunk, int bucket) const {
  const auto c = static_cast<std::size_t>(chunk);
  std::int64_t n = 0;
  for (std::size_t l = 0; l < expert_bucket_of_[c].size(); ++l)
    if (expert_bucket_of_[c][l] == bucket) n += expert_params_[c][l];
  return n;
}

bool stage_planner::first_expert_layer(int chunk, int l) const {
  const auto& of = expert_bucket_of_[static_cast<std::size_t>(chunk)];
  const auto& p = expert_params_[static_cast<std::size_t>(chunk)];
  const auto i = static_cast<std::size_t>(l);
  if (p[i] == 0) return false;
  for (std::size_t k = 0; k < i; ++k)
    if (of[k] == of[i] && p[k] > 0) return false;
  return true;
}

}  // namespace detail

std::vector<int> stage_chunk_layers(const step_config& cfg, int stage) {
  if (cfg.stage_layout) {
    std::vector<int> out;
    for (int c = 0; c < cfg.vp; ++c)
      out.push_back(cfg.stage_layout->count(static_cast<std::size_t>(c * cfg.pp + stage), 't'));
    return out;
  }
  const int chunks = cfg.pp * cfg.vp;
  const bool accounted = cfg.layers_used % chunks != 0;
  const int per_chunk = (cfg.layers_used + (accounted ? 2 : 0)) / chunks;
  const pp_layout layout{cfg.pp, cfg.vp, cfg.microbatches};
  std::vector<int> out;
  for (int c = 0; c < cfg.vp; ++c) {
    int n = per_chunk;
    if (accounted && first_virtual_stage(stage, c)) --n;
    if (accounted && last_virtual_stage(layout, stage, c)) --n;
    out.push_back(n);
  }
  return out;
}

std::vector<int> bucket_layers(const std::vector<std::int64_t>& layer_params,
                               std::int64_t bucket_size) {
  std::vector<int> out(layer_params.size(), 0);
  int bucket = 0;
  std::int64_t filled = 0;
  for (std::size_t i = layer_params.size(); i-- > 0;) {
    out[i] = bucket;
    filled += layer_params[i];
    if (bucket_size > 0 && filled >= bucket_size && i > 0) {
      ++bucket;
      filled = 0;
    }
  }
  return out;
}

dtype main_grad_type(const step_inputs& in) {
  if (in.cfg.grad_reduce_in_fp32) return dtype::fp32;
  return in.model.type == dtype::fp16 ? dtype::fp16 : dtype::bf16;
}

namespace {

// The layer every stage runs: the model at the step's shape, plus what selective recomputation
// runs again in the backward (step_recompute.cpp).
layer_workload step_layer(const step_inputs& in, bool windowed) {
  parallel_layout l;
  l.tp = in.cfg.tp;
  l.cp = in.cfg.cp;
  l.dp = in.cfg.dp;
  l.pp = in.cfg.pp;
  l.vpp = in.cfg.vp;
  l.sequence_parallel = in.cfg.sequence_parallel;
  layer_workload w = make_layer_workload(in.model, l, windowed);
  if (in.cfg.grad_accum_fusion)
    accumulate_weight_gradients(w, main_grad_type(in));
  else
    detail::add_grad_accumulation(w, main_grad_type(in));
  if (in.cfg.megatron_2022) detail::add_megatron_2022_biases(w);
  detail::add_recompute(w, in.cfg);
  return w;
}

// Pairs the k-th send towards a stage with the k-th receive on it, per direction.
void link_stages(step_plan& out, const std::vector<std::unique_ptr<detail::stage_planner>>& st) {
  const int pp = static_cast<int>(st.size());
  for (int s = 0; s < pp; ++s) {
    const int next = (s + 1) % pp, prev = (s - 1 + pp) % pp;
    const auto pair = [&](const std::vector<int>& sends, int to, const std::vector<int>& recvs) {
      if (sends.size() != recvs.size())
        throw runtime_failure("step planner: stage " + std::to_string(s) + " sends " +
                              std::to_string(sends.size()) + " tensors to stage " +
                              std::to_string(to) + ", which receives " +
                              std::to_string(recvs.size()));
      for (std::size_t k = 0; k < sends.size(); ++k)
        out.prog.links.push_back({s, sends[k], to, recvs[k]});
    };
    pair(st[s]->sends_next, next, st[next]->recvs_prev);
    pair(st[s]->sends_prev, prev, st[prev]->recvs_next);
  }
}

}  // namespace

step_plan plan_step(const step_inputs& in) {
  const layer_workload w = step_layer(in, false);
  std::optional<layer_workload> windowed;
  if (in.model.window_size > 0) windowed = step_layer(in, true);
  std::vector<std::unique_ptr<detail::stage_planner>> stages;
  for (int s = 0; s < in.cfg.pp; ++s) {
    stages.push_back(
        std::make_unique<detail::stage_planner>(in, s, w, windowed ? &*windowed : nullptr));
    stages.back()->build();
  }
  step_plan out;
  out.prog.name = "step/" + in.model.name;
  out.prog.grid = {in.cfg.tp, in.cfg.cp, in.cfg.dp, in.cfg.pp, in.cfg.etp, in.cfg.ep};
  link_stages(out, stages);
  for (const auto& st : stages) out.prog.stages.push_back(st->take());
  out.params_per_rank_stage0 = stages.front()->params();
  return out;
}

}  // namespace ob
