// A MoE layer's MLP on one stage (docs/MOE.md §5): the router, the permutation, the dispatch
// all-to-all over the expert-parallel group, the local experts' grouped GEMMs sized for the
// busiest EP rank, the combine all-to-all, the unpermutation and the shared expert, forward and
// backward. The attention half of the layer is the dense planner's (layer_appender without its
// MLP).
#include <algorithm>
#include <utility>

#include "plan/moe_host_ops.hpp"
#include "plan/step_stage.hpp"

namespace ob::detail {
namespace {

// The busiest rank's expert GEMMs are expert_gemms()'s members (moe_layer.hpp spreads a rank's
// copies evenly; the first experts take the remainder). A member without work launches nothing.
bool has_work(const gemm_params& g) { return g.m > 0 && g.n > 0 && g.k > 0; }

int launched(const std::vector<gemm_params>& members) {
  return static_cast<int>(std::count_if(members.begin(), members.end(), has_work));
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
  const double cap = cfg_.moe_capacity_factor;
  dispatch_ =
      busiest_rank_load(w_.model, tokens, cfg_.ep, cfg_.moe_imbalance, dtype::bf16, field, cap);
  experts_ = busiest_rank_load(w_.model, tokens * cfg_.etp, cfg_.ep, cfg_.moe_imbalance,
                               w_.model.type, field, cap);
  if (cfg_.ep > 1)
    ep_ = s_.add_stream("ep", stream_role::comm, priorities_for(in_.knobs.priority).comm);
  if (cfg_.moe_shared_overlap)
    shared_ = s_.add_stream("moe_shared", stream_role::compute,
                            priorities_for(in_.knobs.priority).compute);
  counts_d2h_ = s_.add_stream("moe_counts_d2h", stream_role::p2p, 0);
  const expert_grid grid{cfg_.etp, cfg_.ep, cfg_.edp, cfg_.pp};
  ep_nodes_ = ep_span(grid, in_.cluster.nvlink_domain).nodes;
  // ETP ranks are neighbours in the expert rank order (docs/MOE.md §2).
  etp_nodes_ = (cfg_.etp + in_.cluster.nvlink_domain - 1) / in_.cluster.nvlink_domain;
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
  if (c.ctas > 0 && cfg_.flex_sms > 0) c.ctas = cfg_.flex_sms;  // moe_flex_dispatcher_num_sms
  if (c.ctas > 0) {
    c.ep = flex_exchange(!gathers);
    // DeepEP and HybridEP hold their own SMs whatever NCCL's policy or per-call cap.
    c.nccl.policy = cta_policy::standard;
    c.nccl.coll_max_ctas[static_cast<std::size_t>(coll_op::all_to_all)] = 0;
  }
  return s_.add_op(name, ep_, c, {appender_->last_compute()}, slot);
}

// With ETP > 1 Megatron's alltoall dispatcher all-gathers the dispatched tokens over the expert
// TP group before the experts and reduce-scatters their outputs after them, on the compute
// stream (the backward swaps the two); `bytes` is the gathered side, the experts' tokens. The
// allgather and flex dispatchers exchange over TP x EP as one group instead.
void stage_planner::etp_exchange(const std::string& name, coll_op op, std::vector<int> waits) {
  if (cfg_.etp <= 1 || cfg_.dispatcher != moe_dispatcher::alltoall) return;
  collective_params c;
  c.op = op;
  c.bytes = static_cast<std::uint64_t>(experts_.tokens_received) *
            static_cast<std::uint64_t>(w_.model.hidden) * dtype_bytes(dtype::bf16);
  c.group = comm_group::tp;
  c.group_size = cfg_.etp;
  c.nodes = etp_nodes_;
  add_compute(name, with_nccl_knobs(c, in_.knobs), "moe_etp", std::move(waits));
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
  // What the busiest rank receives over the mean, after a capacity factor's drop (§9).
  x.imbalance = kept_load(cfg_.moe_imbalance, cfg_.moe_capacity_factor);
  return x;
}

// The busiest rank's grouped GEMM as Transformer Engine's GroupedLinear runs it (moe_host_ops.hpp,
// docs/MOE.md §19): one cuBLAS GEMM per expert, round-robin over te_grouped_gemm_streams
// streams. The members are equal, so the streams' kernels start and end together: the plan runs
// them as waves of that many members, each wave one grouped op (its own tail of tiles) on the
// compute stream; the first keeps `name`, the others add _w2, _w3, ... Each further member of a
// wave is a host launch. Returns the first wave. Under use_transformer_engine_op_fuser the fused
// grouped MLP runs each grouped GEMM as one persistent CuTe DSL kernel over every local expert's
// tiles (cuDNN's MoE tile scheduler walks the device counts): one op, one launch.
int stage_planner::expert_gemm_op(const std::string& name, expert_gemm which,
                                  std::vector<int> waits) {
  const std::vector<gemm_params> members =
      expert_gemms(w_.model, experts_, cfg_.etp, which, w_.model.type);
  const int n = std::max(1, launched(members));
  const auto busy = std::find_if(members.begin(), members.end(), has_work);
  gemm_params g = busy != members.end() ? *busy : members.front();
  const int per_wave = cfg_.te_op_fuser ? n : te_grouped_gemm_streams;
  int first_wave = -1;
  for (int first = 0, wave = 1; first < n; first += per_wave, ++wave) {
    g.group = std::min(per_wave, n - first);
    const std::string op = wave == 1 ? name : name + "_w" + std::to_string(wave);
    const int id =
        add_compute(op, g, "moe_experts", wave == 1 ? std::move(waits) : std::vector<int>{});
    if (!cfg_.te_op_fuser) add_host_work(s_, id, grouped_gemm_host_ops(g.group));
    if (wave == 1) first_wave = id;
  }
  return first_wave;
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

// MXFP8 (docs/MOE.md §4.1): before a grouped GEMM reads an expert input or output gradient, TE
// quantizes the 16-bit tensor into one E8M0 scale per 32 consecutive values. The blocks run
// along one dimension, so the rowwise copy (fprop, dgrad) and the columnwise copy (wgrad) each
// get their own scales from the 16-bit tensor: one HBM pass reads 2 bytes an element and writes
// 1 + 1 bytes and 2/32 of scales. Megatron's grouped MLP applies the activation outside TE, so
// no kernel fuses the cast. `width`: elements per token copy; nothing under other types.
// Transformer Engine's fused grouped MLP (use_transformer_engine_op_fuser) quantizes the inputs
// it reads from 16-bit tensors as one grouped kernel (group_quantize), and the rest in its GEMMs'
// epilogues (`fused`: nothing planned).
void stage_planner::mxfp8_cast(const std::string& name, double width, std::vector<int> waits,
                               bool fused) {
  if (w_.model.type != dtype::mxfp8 || (fused && cfg_.te_op_fuser)) return;
  constexpr double bytes_per_elem = 2.0 + 1.0 + 1.0 + 2.0 / 32.0;
  const int id = add_compute(name, moe_elementwise(bytes_per_elem * width, 2 * width, true),
                             "moe_experts", std::move(waits));
  // TE v2.15's split_quantize quantizes an MXFP8 input one expert at a time (one kernel each,
  // on the current stream; docs/MOE.md §19.2): the pass's bytes are the plan op's, every further
  // expert a host launch.
  if (cfg_.te_op_fuser) return;
  add_host_work(s_, id,
                grouped_gemm_host_ops(launched(expert_gemms(
                    w_.model, experts_, cfg_.etp, expert_gemm::fc1_fprop, w_.model.type))));
}

// fc2's bias under add_bias_linear (GPT-OSS; docs/MOE.md §14.3), as Megatron-Core's unfused
// grouped MLP adds it after fc2 (moe_host_ops.hpp): one plan op for the per-expert passes, each
// expert's further kernels host ops, then the cat. All bf16, hidden wide, a routed copy each:
// forward the multiply writes 2 bytes an element and the add reads 4 and writes 2, the cat reads
// and writes 2; backward two multiplies (read 2, write 2) and two reductions (read 2), then the
// cat of the output's gradient. The routing weights (one value a copy) and the biases (hidden
// wide an expert) are left out of the bytes. Under the fused grouped MLP Transformer Engine
// scales and adds the bias inside its own ops: nothing is planned.
void stage_planner::expert_fc2_bias(const std::string& name, bool backward,
                                    std::vector<int> waits) {
  if (!w_.model.add_bias_linear || cfg_.te_op_fuser) return;
  const double h = static_cast<double>(w_.model.hidden);
  const int local = experts_.local_experts;
  const std::string pass = backward ? "moe_fc2_bias_bwd" : "moe_fc2_bias";
  const int id = add_compute(
      name + pass, moe_elementwise(backward ? 12 * h : 8 * h, backward ? 4 * h : 2 * h, true),
      "moe_experts", std::move(waits));
  const int kernels = backward ? fc2_bias_bwd_kernels(local) : fc2_bias_fwd_kernels(local);
  add_host_work(s_, id, kernels - 1);
  const int cat = add_compute(name + (backward ? "moe_fc2_bias_cat_bwd" : "moe_fc2_bias_cat"),
                              moe_elementwise(4 * h, 0, true), "moe_experts");
  if (backward) add_host_work(s_, cat, fc2_bias_cat_bwd_host_ops);
}

// Dropless routing needs the tokens per expert (and the all-to-all's splits) on the host: the
// grouped GEMM's m_splits and the alltoallv's sizes are host lists (docs/MOE.md §16). Megatron's
// alltoall dispatcher copies them on a side stream once the router has counted them and blocks
// the host on that copy before the EP all-to-all (before the first permutation under a capacity
// factor); the allgather dispatcher's `.cpu()` and DeepEP's host wait for its notify kernel's
// counts do the same. The host stops there until the router has run, so the GPU's queue drains
// and the launches after it are exposed.
// Under moe_expert_rank_capacity_factor (the sync-free dispatch) HybridEP's buffers have a static
// size and the fused grouped MLP reads the counts from device memory (Megatron-Core's
// _HybridEPManager and TEGroupedMLP._fused_forward), so nothing waits: no op is planned.
void stage_planner::token_count_sync(const std::string& name, int router) {
  if (cfg_.sync_free_moe()) return;
  const auto counts = static_cast<std::uint64_t>(w_.model.moe.experts + 2 * cfg_.ep);
  const int sync = s_.add_op(name + "moe_counts_sync", counts_d2h_, host_sync_params{counts * 8},
                             {router}, "moe_router");
  add_host_work(s_, sync, moe_host_ops(cfg_.dispatcher).counts_copy);
}

// The router's work after its GEMM, as memory passes over the [tokens, experts] scores in fp32
// (Megatron's router.py computes the score function and the aux loss in fp32): forward, the
// logits read and the probabilities written by the score function, read again by the top-k and
// by the aux loss's own scores, and the boolean routing map written (4 + 4 + 4 + 4 + 1 bytes per
// token and expert); backward, the probabilities' gradient and the probabilities read and the
// logits' gradient written (12). Each pass an assumption of one kernel's traffic (docs/MOE.md
// §16); the top-k values and indices (top-k per token) are left out.
elementwise_params stage_planner::router_scores(bool backward) const {
  const double scores =
      static_cast<double>(dispatch_.tokens_routed / w_.model.moe.topk) * w_.model.moe.experts;
  elementwise_params e;
  e.bytes = static_cast<std::uint64_t>(scores * (backward ? 12.0 : 17.0));
  e.flops = scores * (backward ? 4.0 : 8.0);
  return e;
}

// Megatron's alltoall dispatcher gathers every EP rank's per-expert counts before it knows the
// all-to-all's output splits (`preprocess`: gather_from_sequence_parallel_region over the TP x EP
// group, a synchronous all-gather on the compute stream; experts x 8 bytes a rank). The flex
// dispatchers exchange them inside their own protocol, the allgather dispatcher with its routing
// map. Returns the op the counts' host copy waits on.
int stage_planner::counts_exchange(const std::string& name, int scores) {
  if (ep_ < 0 || cfg_.dispatcher != moe_dispatcher::alltoall) return scores;
  collective_params c;
  c.op = coll_op::all_gather;
  c.bytes =
      static_cast<std::uint64_t>(w_.model.moe.experts) * 8 * static_cast<std::uint64_t>(cfg_.ep);
  c.type = dtype::fp32;
  c.group = comm_group::ep;
  c.group_size = cfg_.ep;
  c.nodes = ep_nodes_;
  return add_compute(name + "moe_counts_ag", with_nccl_knobs(c, in_.knobs), "moe_dispatch");
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
  const int input = appender_->last_compute();
  const moe_host_counts host = moe_host_ops(cfg_.dispatcher);
  const bool graph_router = cfg_.graphs(graph_scope::moe_router);
  const bool graph_pre = cfg_.graphs(graph_scope::moe_preprocess);
  const dtype gate = router_gemm_type(m.type);
  add_host_work(s_, add_compute(name + "moe_router", gemm_params{t, E, h, gate, 0}, "moe_router"),
                0, graph_router);
  const int scores = add_compute(name + "moe_router_scores", router_scores(false), "moe_router");
  add_host_work(s_, scores, host.router, graph_router);
  const int router = counts_exchange(name, scores);
  if (router != scores) add_host_work(s_, router, 0, graph_pre);
  const bool dropping = cfg_.moe_capacity_factor > 0;
  if (dropping) token_count_sync(name, router);
  add_host_work(
      s_, add_compute(name + "moe_permute", moe_elementwise(4.0 * h, 0, false), "moe_permute"),
      host.preprocess + host.permute, graph_pre);
  if (!dropping) token_count_sync(name, router);
  const int dispatch = ep_all_to_all(name + "moe_dispatch", "moe_dispatch", true);
  // moe_shared_expert_overlap: the shared expert's forward is issued once the dispatch is, on
  // its own stream, from the layer's input.
  if (shared_ >= 0) shared_fwd_ = shared_expert(name, false, waits_on(input));
  return dispatch;
}

// The local experts once the dispatch has arrived, then the combine; returns it.
int stage_planner::moe_forward_experts(const std::string& name, int dispatch) {
  const model_spec& m = w_.model;
  etp_exchange(name + "moe_etp_ag", coll_op::all_gather, waits_on(dispatch));
  const double f = static_cast<double>(m.moe.ffn_hidden) / cfg_.etp, f1 = m.gated_mlp ? 2 * f : f;
  mxfp8_cast(name + "moe_fc1_mxfp8_in", static_cast<double>(m.hidden), waits_on(dispatch));
  const int fc1 = expert_gemm_op(name + "moe_fc1", expert_gemm::fc1_fprop, waits_on(dispatch));
  if (ep_ >= 0) add_host_work(s_, fc1, moe_host_ops(cfg_.dispatcher).after_dispatch);
  // The fused grouped MLP computes the GLU and the probabilities' scale in fc1's epilogue and
  // writes fc2's input quantized (TE's grouped_gemm_activation_kernel): no pass of its own.
  if (!cfg_.te_op_fuser)
    add_compute(name + "moe_act", moe_elementwise((f1 + f) * 2, 4 * f1, true), "moe_experts");
  mxfp8_cast(name + "moe_fc2_mxfp8_in", f, {}, true);
  expert_gemm_op(name + "moe_fc2", expert_gemm::fc2_fprop);
  expert_fc2_bias(name, false, {});
  etp_exchange(name + "moe_etp_rs", coll_op::reduce_scatter, {});
  const int combine = ep_all_to_all(name + "moe_combine", "moe_combine", false);
  add_host_work(s_, combine, moe_host_ops(cfg_.dispatcher).before_combine);
  return combine;
}

void stage_planner::moe_forward_tail(const std::string& name, int combine) {
  const double h = static_cast<double>(w_.model.hidden);
  std::vector<int> waits = waits_on(combine);
  if (shared_ >= 0) waits.push_back(std::exchange(shared_fwd_, -1));  // the two outputs add
  add_host_work(s_,
                add_compute(name + "moe_unpermute", moe_elementwise(4 * h, h, false), "moe_permute",
                            std::move(waits)),
                moe_host_ops(cfg_.dispatcher).unpermute);
  if (shared_ < 0) shared_expert(name, false, {});
}

// The shared expert's and the unpermutation's gradients, then the combine's; returns it.
int stage_planner::moe_backward_head(const std::string& name) {
  const double h = static_cast<double>(w_.model.hidden);
  std::vector<int> grad = appender_->take_pending_outputs();
  if (shared_ < 0) shared_expert(name, true, {});
  std::vector<int> side = grad;  // what the shared expert's backward waits on beside it
  side.insert(side.end(), next_waits_.begin(), next_waits_.end());
  if (appender_->last_compute() >= 0) side.push_back(appender_->last_compute());
  add_compute(name + "moe_unpermute_bwd", moe_elementwise(4 * h, h, false), "moe_permute",
              std::move(grad));
  const int combine = ep_all_to_all(name + "moe_combine_bwd", "moe_combine", true);
  add_host_work(s_, combine, moe_host_ops(cfg_.dispatcher).combine_bwd);
  if (shared_ >= 0) shared_bwd_ = shared_expert(name, true, std::move(side));
  return combine;
}

// The experts' gradients, then the dispatch's (before the weight gradients under
// delay_wgrad_compute, which then run beside it); returns it.
int stage_planner::moe_backward_experts(const std::string& name, int combine) {
  const model_spec& m = w_.model;
  const auto gemm = [&](const char* op, expert_gemm which, std::vector<int> waits = {}) {
    return expert_gemm_op(name + op, which, std::move(waits));
  };
  // fc1's biases: their gradients come out of its weight gradient's GEMMs; DDP's hook adds each
  // expert's to its main_grad (moe_host_ops.hpp).
  const int fc1_bias_adds =
      w_.model.add_bias_linear && !cfg_.te_op_fuser ? experts_.local_experts : 0;
  etp_exchange(name + "moe_etp_rs_bwd", coll_op::all_gather, waits_on(combine));
  expert_fc2_bias(name, true, waits_on(combine));
  mxfp8_cast(name + "moe_fc2_mxfp8_dout", static_cast<double>(m.hidden), waits_on(combine));
  const double f = static_cast<double>(m.moe.ffn_hidden) / cfg_.etp, f1 = m.gated_mlp ? 2 * f : f;
  // recompute_modules moe_act: the activation's output, fc2's input, is made again for its
  // weight gradient (docs/MEMORY.md §2.1).
  if (cfg_.recomputes(recompute_module::moe_act))
    add_compute(name + "moe_act_recompute", moe_elementwise((f1 + f) * 2, 4 * f1, true),
                "moe_experts", waits_on(combine));
  gemm("moe_fc2_dgrad", expert_gemm::fc2_dgrad, waits_on(combine));
  if (!cfg_.delay_wgrad) gemm("moe_fc2_wgrad", expert_gemm::fc2_wgrad);
  // Fused: fc2's dgrad runs the GLU's backward and quantizes fc1's output gradient in its
  // epilogue (TE's grouped_gemm_dactivation_kernel).
  if (!cfg_.te_op_fuser)
    add_compute(name + "moe_act_bwd", moe_elementwise((f1 + f) * 4, 6 * f1, true), "moe_experts");
  mxfp8_cast(name + "moe_fc1_mxfp8_dout", f1, {}, true);
  gemm("moe_fc1_dgrad", expert_gemm::fc1_dgrad);
  if (!cfg_.delay_wgrad)
    add_host_work(s_, gemm("moe_fc1_wgrad", expert_gemm::fc1_wgrad), fc1_bias_adds);
  etp_exchange(name + "moe_etp_ag_bwd", coll_op::reduce_scatter, {});
  const int dispatch = ep_all_to_all(name + "moe_dispatch_bwd", "moe_dispatch", false);
  add_host_work(s_, dispatch, moe_host_ops(cfg_.dispatcher).dispatch_bwd);
  if (cfg_.delay_wgrad) {
    gemm("moe_fc2_wgrad", expert_gemm::fc2_wgrad);
    add_host_work(s_, gemm("moe_fc1_wgrad", expert_gemm::fc1_wgrad), fc1_bias_adds);
  }
  return dispatch;
}

void stage_planner::moe_backward_tail(const std::string& name, int dispatch) {
  const model_spec& m = w_.model;
  const std::int64_t t = dispatch_.tokens_routed / m.moe.topk, h = m.hidden, E = m.moe.experts;
  const moe_host_counts host = moe_host_ops(cfg_.dispatcher);
  const bool graph_router = cfg_.graphs(graph_scope::moe_router);
  add_host_work(s_,
                add_compute(name + "moe_permute_bwd", moe_elementwise(4.0 * h, 0, false),
                            "moe_permute", waits_on(dispatch)),
                host.permute_bwd, cfg_.graphs(graph_scope::moe_preprocess));
  add_host_work(s_, add_compute(name + "moe_router_scores_bwd", router_scores(true), "moe_router"),
                host.router_bwd, graph_router);
  const dtype gate = router_gemm_type(m.type);
  for (const auto& [what, g] : {std::pair{"moe_router_dgrad", gemm_params{t, h, E, gate, 0}},
                                std::pair{"moe_router_wgrad", gemm_params{E, h, t, gate, 0}}})
    add_host_work(s_, add_compute(name + what, g, "moe_router"), 0, graph_router);
  // The router's bias (add_bias_linear; docs/MOE.md §14.3): Megatron's gating function sums the
  // logits' gradient over the tokens, in the logits' dtype (moe_router_dtype unset: the input's,
  // bf16), and DDP's hook adds it to its main_grad.
  if (m.add_bias_linear) {
    elementwise_params sum;
    sum.bytes = static_cast<std::uint64_t>(t * E) * dtype_bytes(dtype::bf16);
    sum.flops = static_cast<double>(t * E);
    add_host_work(s_, add_compute(name + "moe_router_bgrad", sum, "moe_router"),
                  bias_grad_hook_host_ops, graph_router);
  }
  // The shared expert's input gradient adds to the routed path's before the attention's backward,
  // and its weight gradients join the layer's bucket: the compute stream waits for its stream.
  if (shared_ >= 0) next_waits_.push_back(std::exchange(shared_bwd_, -1));
}

// The shared expert: a dense gated MLP on every token of the rank, its FFN split over TP. Without
// moe_shared_expert_overlap it runs on the compute stream after the routed experts' combine (and
// first in the backward); with it, on its own stream after `waits` (docs/MOE.md §8). Returns its
// last op on that stream (the output, or the last weight gradient, which the layer's gradient
// bucket needs); -1 on the compute stream or without a shared expert.
int stage_planner::shared_expert(const std::string& name, bool backward, std::vector<int> waits) {
  const model_spec& m = w_.model;
  if (m.moe.shared_ffn_hidden <= 0) return -1;
  const std::int64_t T = w_.tokens, h = m.hidden, f = m.moe.shared_ffn_hidden / cfg_.tp;
  const std::int64_t f1 = m.gated_mlp ? 2 * f : f;
  int out = -1;
  const auto gemm = [&](const char* op, gemm_params g) {
    const std::string s = "moe_shared";
    if (shared_ < 0) return add_compute(name + op, g, s);
    return s_.add_op(name + op, shared_, g, std::exchange(waits, {}), s);
  };
  if (!backward) {
    gemm("moe_shared_fc1", gemm_params{T, f1, h, m.type, 0});
    out = gemm("moe_shared_fc2", gemm_params{T, h, f, m.type, 0});
  } else {
    gemm("moe_shared_fc2_dgrad", gemm_params{T, f, h, m.type, 0});
    gemm("moe_shared_fc2_wgrad", gemm_params{f, h, T, m.type, 0});
    gemm("moe_shared_fc1_dgrad", gemm_params{T, h, f1, m.type, 0});
    out = gemm("moe_shared_fc1_wgrad", gemm_params{h, f1, T, m.type, 0});
  }
  return shared_ >= 0 ? out : -1;
}

}  // namespace ob::detail
