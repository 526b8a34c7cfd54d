// One stage's work in host enqueue order: parameter gathers, the pipeline schedule's passes and
// p2p calls, gradient buckets, the embedding, output layer and loss, and the optimizer step
// (docs/ARCHITECTURE.md §9).
#include <algorithm>

#include "plan/adam_state.hpp"
#include "plan/step_stage.hpp"

namespace ob::detail {
// ---- ops ------------------------------------------------------------------------------------

int stage_planner::add_compute(const std::string& name, op_params p, const std::string& slot,
                               std::vector<int> waits) {
  waits.insert(waits.end(), next_waits_.begin(), next_waits_.end());
  next_waits_.clear();
  std::sort(waits.begin(), waits.end());
  waits.erase(std::unique(waits.begin(), waits.end()), waits.end());
  std::erase_if(waits, [&](int id) { return s_.ops[id].stream == target_.compute; });
  const int id = s_.add_op(name, target_.compute, std::move(p), std::move(waits), slot);
  appender_->set_last_compute(id);
  return id;
}

// The layers' first compute op takes over what the stage's next compute op had to wait on.
void stage_planner::hand_waits_to_layers() {
  appender_->wait_before_next_compute(std::exchange(next_waits_, {}));
}

collective_params stage_planner::dp_collective(coll_op op, std::int64_t elems, int bytes_per_elem,
                                               bool expert) const {
  collective_params c;
  c.op = op;
  c.bytes = static_cast<std::uint64_t>(elems) * static_cast<std::uint64_t>(bytes_per_elem);
  c.type = bytes_per_elem == 4 ? dtype::fp32 : dtype::bf16;
  c.group = expert ? comm_group::edp : comm_group::dp;
  c.group_size = expert ? cfg_.edp : dp_size_;
  c.nodes = expert ? edp_nodes_ : dp_nodes_;
  return with_nccl_knobs(c, in_.knobs);
}

collective_params stage_planner::tp_collective(coll_op op, std::uint64_t bytes) const {
  collective_params c;
  c.op = op;
  c.bytes = bytes;
  c.group = comm_group::tp;
  c.group_size = cfg_.tp;
  c.nodes = target_.tp_nodes;
  return with_nccl_knobs(c, in_.knobs);
}

// One activation (or its gradient) between stages: the sequence-parallel shard of one
// micro-batch, [seq / cp / tp, mbs, h] in bf16.
p2p_params stage_planner::pp_transfer() const {
  p2p_params p;
  const bool split = cfg_.sequence_parallel || scatter_gather_p2p();
  const std::uint64_t tokens =
      static_cast<std::uint64_t>(w_.tokens) / (split ? static_cast<std::uint64_t>(cfg_.tp) : 1);
  p.bytes = tokens * static_cast<std::uint64_t>(w_.model.hidden) * dtype_bytes(dtype::bf16);
  p.group = comm_group::pp;
  p.group_size = cfg_.pp;
  p.ctas = in_.gpu.nccl_ctas_p2p;
  p.nodes = pp_nodes_;
  return p;
}

std::vector<int> stage_planner::pass_outputs() {
  std::vector<int> out = appender_->take_pending_outputs();
  if (appender_->last_compute() >= 0) out.push_back(appender_->last_compute());
  return out;
}

// ---- the pipeline schedule ------------------------------------------------------------------

void stage_planner::act(const pp_action& a) {
  switch (a.what) {
    case pp_action::kind::forward:
      return forward(a.chunk, a.microbatch);
    case pp_action::kind::backward:
      return backward(a.chunk, a.microbatch);
    case pp_action::kind::comm:
      return call(a.call);
    case pp_action::kind::forward_backward:
      return forward_backward(a);
  }
}

// One p2p call: each transfer on its direction's stream. Batched calls (batch_p2p_comm) are
// waited for at once by the compute stream; with overlap_p2p_comm only the consumer waits.
void stage_planner::call(const pp_call& c) {
  std::vector<int> ops;
  const auto add = [&](bool on, int stream, const char* name, const std::vector<int>& waits,
                       std::vector<int>& list) {
    if (!on) return -1;
    p2p_params x = pp_transfer();
    const bool next = stream == send_next_ || stream == recv_next_;
    const bool sends = stream == send_next_ || stream == send_prev_;
    x.direction = sends ? p2p_direction::send : p2p_direction::recv;
    (sends ? x.send_peer : x.recv_peer) = next ? 1 : -1;
    const int id = s_.add_op(name, stream, x, waits, "pp");
    list.push_back(id);
    ops.push_back(id);
    return id;
  };
  add(c.send_next, send_next_, "pp.send_next", fwd_output_, sends_next);
  add(c.send_prev, send_prev_, "pp.send_prev", bwd_output_, sends_prev);
  const int fwd_in = add(c.recv_prev, recv_prev_, "pp.recv_prev", {}, recvs_prev);
  const int bwd_in = add(c.recv_next, recv_next_, "pp.recv_next", {}, recvs_next);
  if (!overlapped_p2p()) next_waits_.insert(next_waits_.end(), ops.begin(), ops.end());
  device_sync(ops);
  if (fwd_in >= 0) fwd_inputs_.push_back(gather_received("pp.recv_prev", fwd_in));
  if (bwd_in >= 0) bwd_inputs_.push_back(gather_received("pp.recv_next", bwd_in));
}

// Megatron's batched p2p call ends in torch.cuda.synchronize() (batch_p2p_sync, on by default
// with batch_p2p_comm: 1F1B without virtual stages; docs/MOE.md §16): the host waits for every
// stream, the call's transfers and any gradient reduction in flight included, before it enqueues
// the next pass.
void stage_planner::device_sync(const std::vector<int>& transfers) {
  if (pp_sync_ < 0 || transfers.empty()) return;
  last_on_stream_.resize(s_.streams.size(), -1);
  for (; scanned_ < s_.ops.size(); ++scanned_)
    last_on_stream_[static_cast<std::size_t>(s_.ops[scanned_].stream)] = s_.ops[scanned_].id;
  std::vector<int> waits;
  for (std::size_t st = 0; st < last_on_stream_.size(); ++st)
    if (static_cast<int>(st) != pp_sync_ && last_on_stream_[st] >= 0)
      waits.push_back(last_on_stream_[st]);
  s_.add_op("pp.device_sync", pp_sync_, host_sync_params{0, true}, std::move(waits), "pp");
}

// A forward pass's input: the embedding on the first virtual stage, else the activation received
// from the previous stage.
void stage_planner::forward_input(int chunk, const std::string& prefix) {
  if (first_virtual_stage(stage_, chunk)) {
    embedding_forward(prefix);
  } else if (!fwd_inputs_.empty()) {
    next_waits_.push_back(fwd_inputs_.front());
    fwd_inputs_.pop_front();
  }
}

// A backward pass's input: the loss's gradient on the last virtual stage, else the gradient
// received from the next stage.
void stage_planner::backward_input(int chunk, const std::string& prefix) {
  if (last_virtual_stage(layout_, stage_, chunk)) {
    output_backward(prefix);
  } else if (!bwd_inputs_.empty()) {
    next_waits_.push_back(bwd_inputs_.front());
    bwd_inputs_.pop_front();
  }
}

void stage_planner::forward(int chunk, int mb) {
  const std::string prefix = pass_prefix(chunk, mb);
  gather_due_chunk();
  forward_input(chunk, prefix);
  const bool first_pass = forwards_done_[chunk]++ == 0;
  for (int l = 0; l < layers_[chunk]; ++l) {
    // The first pass of a bucket's first layer needs its gathered parameters.
    if (first_pass && (l == 0 || bucket_of_[chunk][l - 1] != bucket_of_[chunk][l]))
      wait_for_params(chunk, bucket_of_[chunk][l]);
    if (first_pass && first_expert_layer(chunk, l))
      wait_for_params(chunk, expert_bucket_of_[chunk][l], true);
    fsdp_before_layer(prefix, chunk, l, false);
    layer_forward(prefix + "L" + std::to_string(l) + ".", is_moe_layer(chunk, l),
                  layer_variant(chunk, l));
    offload_after_forward(prefix, chunk, l);
  }
  fwd_output_ = pass_outputs();
  if (last_virtual_stage(layout_, stage_, chunk)) {
    next_waits_.insert(next_waits_.end(), fwd_output_.begin(), fwd_output_.end());
    output_forward(prefix);
  }
}

void stage_planner::backward(int chunk, int mb) {
  const std::string prefix = pass_prefix(chunk, mb);
  backward_input(chunk, prefix);
  const bool last_of_chunk = ++backwards_done_[chunk] == cfg_.microbatches;
  for (int l = layers_[chunk] - 1; l >= 0; --l) backward_layer(chunk, l, prefix, last_of_chunk);
  if (first_virtual_stage(stage_, chunk)) {
    embedding_backward(prefix);
    if (last_of_chunk && bucketed_grads() && !bucket_of_[chunk].empty())
      grad_reduce(chunk, bucket_of_[chunk].front(), {appender_->last_compute()});
  }
  bwd_output_ = pass_outputs();
}

// A layer's backward (after its forward again under full recomputation); on the chunk's last
// micro-batch a bucket whose every gradient is now ready starts its reduction (overlap_grad_
// reduce), except the one holding the embedding, which waits for the embedding's backward.
void stage_planner::backward_layer(int chunk, int l, const std::string& prefix, bool last) {
  fsdp_before_layer(prefix, chunk, l, true);
  reload_before_backward(prefix, chunk, l);
  layer_backward(prefix + "L" + std::to_string(l) + ".", is_moe_layer(chunk, l),
                 layer_variant(chunk, l));
  fsdp_after_backward(prefix, chunk, l);
  reduce_finished_bucket(chunk, l, last);
}

void stage_planner::layer_forward(const std::string& name, bool moe,
                                  const layer_workload* variant) {
  hand_waits_to_layers();
  appender_->forward(name, !moe, variant);
  if (moe) moe_forward(name);
}

void stage_planner::layer_backward(const std::string& name, bool moe,
                                   const layer_workload* variant) {
  if (cfg_.recompute == recompute_mode::full) layer_forward(name + "re.", moe, variant);
  if (moe) moe_backward(name);
  hand_waits_to_layers();
  appender_->backward(name, !moe, variant);
}

void stage_planner::reduce_finished_bucket(int chunk, int l, bool last) {
  // The experts' gradients are ready once the layer's are; their bucket group launches apart from
  // the dense one, on the expert DP group's stream (docs/MOE.md §5).
  if (last && cfg_.dp_overlap && expert_dp() && first_expert_layer(chunk, l))
    grad_reduce(chunk, expert_bucket_of_[chunk][l], {appender_->last_compute()}, true);
  const auto& of = bucket_of_[chunk];
  const bool bucket_done = l == 0 || of[l - 1] != of[l];
  const bool waits_for_embedding = l == 0 && first_virtual_stage(stage_, chunk);
  if (last && bucket_done && bucketed_grads() && !waits_for_embedding)
    grad_reduce(chunk, of[l], {appender_->last_compute()});
}

// ---- overlap_moe_expert_parallel_comm ---------------------------------------------------------

// One micro-batch's forward beside another's backward, layer by layer (Megatron's combined 1F1B
// step, docs/MOE.md §6): each all-to-all of one runs on the EP stream while the other's compute
// runs on the compute stream. The passes take their inputs and hand on their outputs as
// forward() and backward() do.
void stage_planner::forward_backward(const pp_action& a) {
  const int fc = a.chunk, bc = a.b_chunk;
  const std::string fp = pass_prefix(fc, a.microbatch), bp = pass_prefix(bc, a.b_microbatch);
  gather_due_chunk();
  forward_input(fc, fp);
  backward_input(bc, bp);
  const bool last = ++backwards_done_[bc] == cfg_.microbatches;
  ++forwards_done_[fc];
  forward_backward_layers(fc, bc, fp, bp, last);
  fwd_output_ = pass_outputs();
  if (last_virtual_stage(layout_, stage_, fc)) {
    next_waits_.insert(next_waits_.end(), fwd_output_.begin(), fwd_output_.end());
    output_forward(fp);
  }
  if (first_virtual_stage(stage_, bc)) {
    embedding_backward(bp);
    if (last && cfg_.dp_overlap && dp_size_ > 1 && !bucket_of_[bc].empty())
      grad_reduce(bc, bucket_of_[bc].front(), {appender_->last_compute()});
  }
  bwd_output_ = pass_outputs();
}

// Forward layer i with backward layer n - 1 - i while both chunks have layers (Megatron's
// TransformerModelChunkSchedulePlan.run), then the backward's remaining layers, then the
// forward's.
void stage_planner::forward_backward_layers(int fc, int bc, const std::string& fp,
                                            const std::string& bp, bool last) {
  const int nf = layers_[fc], nb = layers_[bc], pairs = std::min(nf, nb);
  const auto lname = [](const std::string& p, int l) { return p + "L" + std::to_string(l) + "."; };
  for (int i = 0; i < pairs; ++i) {
    const int fl = i, bl = nb - 1 - i;
    const std::string fn = lname(fp, fl), bn = lname(bp, bl);
    const bool fmoe = is_moe_layer(fc, fl), bmoe = is_moe_layer(bc, bl);
    const int b_combine = bmoe ? moe_backward_head(bn) : -1;
    hand_waits_to_layers();
    appender_->forward(fn, !fmoe, layer_variant(fc, fl));
    const int f_dispatch = fmoe ? moe_forward_head(fn) : -1;
    const int b_dispatch = bmoe ? moe_backward_experts(bn, b_combine) : -1;
    const int f_combine = fmoe ? moe_forward_experts(fn, f_dispatch) : -1;
    if (bmoe) moe_backward_tail(bn, b_dispatch);
    hand_waits_to_layers();
    appender_->backward(bn, !bmoe, layer_variant(bc, bl));
    reduce_finished_bucket(bc, bl, last);
    if (fmoe) moe_forward_tail(fn, f_combine);
  }
  for (int bl = nb - 1 - pairs; bl >= 0; --bl) backward_layer(bc, bl, bp, last);
  for (int fl = pairs; fl < nf; ++fl)
    layer_forward(lname(fp, fl), is_moe_layer(fc, fl), layer_variant(fc, fl));
}

// ---- data parallelism -----------------------------------------------------------------------

// The distributed optimizer all-gathers the updated parameters before the forward that needs
// them: asynchronously per bucket ahead of the first pass (overlap_param_gather), or all at once
// on the compute stream. Under the interleaved schedule only chunk 1's gather is issued here;
// chunk 0's was issued at the previous step's end (optimizer()) and the others are issued by
// gather_due_chunk().
void stage_planner::gather_params() {
  if (!gathers_params()) return;
  if (schedule_aligned_gather()) return gather_chunk(1, {}, true);
  for (int c = 0; c < cfg_.vp; ++c) gather_chunk(c, {}, true);
}

// One chunk's buckets: the dense ones over DP, then the experts' over expert DP. A gather issued
// behind compute work waits for it (the collective's stream waits for the current stream).
// `waited`: its first forward waits for it.
void stage_planner::gather_chunk(int c, const std::vector<int>& after, bool waited) {
  if (dp_size_ > 1) gather_chunk_buckets(c, after, waited, false);
  if (expert_dp()) gather_chunk_buckets(c, after, waited, true);
}

// The last bucket first, as the backward filled them.
void stage_planner::gather_chunk_buckets(int c, const std::vector<int>& after, bool waited,
                                         bool expert) {
  const auto& of = (expert ? expert_bucket_of_ : bucket_of_)[static_cast<std::size_t>(c)];
  const int count = of.empty() ? 0 : of.front() + 1;
  for (int b = count - 1; b >= 0; --b) {
    const std::int64_t elems = bucket_elems(c, b, expert);
    if (elems == 0) continue;  // an expert bucket of dense layers only
    const collective_params ag = dp_collective(coll_op::all_gather, elems, param_bytes(), expert);
    const std::string name = bucket_op_name(c, b, waited ? "param_ag" : "param_ag_next", expert);
    if (cfg_.dp_overlap) {
      const int id = s_.add_op(name, expert ? edp_ : dp_, ag, after, "param_gather");
      if (waited) (expert ? expert_param_gather_ : param_gather_)[{c, b}] = id;
    } else {
      add_compute(name, ag, "param_gather");
      quantize_params(c, b, expert);
    }
  }
}

// Before the stage's k-th virtual forward pass the interleaved schedule launches chunk c + 1's
// gather when k + stage is the first micro-batch of chunk c (c >= 1, c + 1 < vp): pp + stage
// passes ahead of that chunk's first forward.
void stage_planner::gather_due_chunk() {
  const int k = forward_passes_++;
  if (!schedule_aligned_gather() || !gathers_params()) return;
  const int id = k + stage_;
  if (id % cfg_.pp != 0 || id >= cfg_.pp * cfg_.vp || id >= cfg_.microbatches * cfg_.vp) return;
  const int next = id / cfg_.pp + 1;
  if (next < 2 || next >= cfg_.vp) return;
  std::vector<int> after;
  if (appender_->last_compute() >= 0) after.push_back(appender_->last_compute());
  gather_chunk(next, std::move(after), true);
}

// With MXFP8 weights under fp8_param_gather, Megatron-Core all-gathers a bucket's weights as
// bf16 into the gradient buffer, then quantizes each into its MXFP8 storage on the compute stream
// when the forward first needs it (param_and_grad_buffer.py _post_param_sync,
// copy_tensors_to_quantized_params; docs/MEMORY.md §1.1): a read of the bf16 weight and a write
// of its row- and column-wise data with their scales.
void stage_planner::wait_for_params(int chunk, int bucket, bool expert) {
  const auto& gathers = expert ? expert_param_gather_ : param_gather_;
  const auto ag = gathers.find({chunk, bucket});
  if (ag == gathers.end()) return;
  next_waits_.push_back(ag->second);
  quantize_params(chunk, bucket, expert);
}

void stage_planner::quantize_params(int chunk, int bucket, bool expert) {
  if (!cfg_.fp8_param_gather || fp8_param_gather_in_fp8()) return;
  const double elems = static_cast<double>(bucket_elems(chunk, bucket, expert));
  elementwise_params q;
  q.bytes = static_cast<std::uint64_t>(elems * (2 + 2 * dtype_operand_bytes(dtype::mxfp8)));
  q.flops = 2 * elems;
  add_compute(bucket_op_name(chunk, bucket, "param_quantize", expert), q, "param_gather");
}

std::string stage_planner::bucket_op_name(int chunk, int bucket, const char* what, bool expert) {
  return "c" + std::to_string(chunk) + (expert ? ".eb" : ".b") + std::to_string(bucket) + "." +
         what;
}

// A bucket's gradient reduction: reduce-scatter for the distributed optimizer, else all-reduce,
// in fp32 with grad_reduce_in_fp32.
collective_params stage_planner::grad_reduce_params(int chunk, int bucket, bool expert) const {
  const coll_op op = cfg_.distributed_optimizer ? coll_op::reduce_scatter : coll_op::all_reduce;
  return dp_collective(op, bucket_elems(chunk, bucket, expert), cfg_.grad_reduce_in_fp32 ? 4 : 2,
                       expert);
}

void stage_planner::grad_reduce(int chunk, int bucket, std::vector<int> after, bool expert) {
  grad_reduces_.push_back(s_.add_op(bucket_op_name(chunk, bucket, "grad_reduce", expert),
                                    expert ? edp_ : dp_, grad_reduce_params(chunk, bucket, expert),
                                    std::move(after), "grad_reduce"));
}

// Without overlap_grad_reduce every bucket is reduced at the end of the backward, on the
// compute stream, the dense buckets first; tied embeddings all-reduce their gradients between
// the first and the last stage.
void stage_planner::finish_grads() {
  reduce_sp_norm_grads_2022();
  scale_grads_2022();
  if (!cfg_.dp_overlap && !cfg_.fsdp && dp_size_ > 1) reduce_buckets_at_end(false);
  if (!cfg_.dp_overlap && expert_dp()) reduce_buckets_at_end(true);
  // MTP keeps a copy of the embedding on the last stage, reduced as a tied one is.
  const bool shared = w_.model.tie_embeddings || w_.model.mtp_num_layers > 0;
  if (shared && cfg_.pp > 1 && (stage_ == 0 || stage_ == cfg_.pp - 1)) {
    collective_params c;
    c.op = coll_op::all_reduce;
    c.bytes = static_cast<std::uint64_t>(embedding_params()) * (cfg_.grad_reduce_in_fp32 ? 4 : 2);
    c.group = comm_group::pp;
    c.group_size = 2;
    c.nodes = pp_nodes_;
    add_compute("embedding_grad_ar", c, "embedding_grad");
  }
}

void stage_planner::reduce_buckets_at_end(bool expert) {
  for (int c = 0; c < cfg_.vp; ++c) {
    const auto& of = (expert ? expert_bucket_of_ : bucket_of_)[static_cast<std::size_t>(c)];
    const int buckets = of.empty() ? 0 : of.front() + 1;
    for (int b = 0; b < buckets; ++b)
      if (bucket_elems(c, b, expert) > 0)
        add_compute(bucket_op_name(c, b, "grad_reduce", expert), grad_reduce_params(c, b, expert),
                    "grad_reduce");
  }
}

// One memory-bound pass of the optimizer over `elems` parameters, on the compute stream.
void stage_planner::optimizer_pass(const char* name, double elems, double bytes_per_elem,
                                   double flops_per_elem) {
  elementwise_params e;
  e.bytes = static_cast<std::uint64_t>(elems * bytes_per_elem);
  e.flops = elems * flops_per_elem;
  add_compute(name, e, "optimizer");
}

// Megatron zeroes the gradient buffers (every parameter's main_grad this rank holds, before the
// reduce-scatter shards it) at the start of each step (zero_grad_buffer): one write of the buffer.
void stage_planner::zero_grads() {
  const double held = static_cast<double>(params_) / (cfg_.fsdp ? std::max(dp_size_, 1) : 1);
  optimizer_pass("grad_zero", held, dtype_bytes(main_grad_type(in_)), 0);
}

// The parameters this rank's optimizer steps: with the distributed optimizer (or FSDP) its
// 1 / (DP x CP) of the DP buckets and, when the experts have buffers of their own, 1 / edp of
// the routed experts', which the distributed optimizer shards over expert DP (docs/MOE.md §5).
double stage_planner::optimizer_shard() const {
  if (!cfg_.distributed_optimizer && !cfg_.fsdp) return static_cast<double>(params_);
  double experts = 0;
  if (split_experts())
    for (const auto& chunk : expert_params_)
      for (std::int64_t n : chunk) experts += static_cast<double>(n);
  const double dense = static_cast<double>(params_) - experts;
  return dense / std::max(dp_size_, 1) + experts / std::max(cfg_.edp, 1);
}

// Once every gradient bucket has been reduced, Megatron-Core's optimizer step over this rank's
// shard (docs/ARCHITECTURE.md §9.3), each pass's bytes from the types it moves (adam_state,
// docs/MEMORY.md §1.1): 16-bit main grads cast to fp32 (not when TE's FusedAdam reads them in
// place), fp16's unscale and inf check, the gradient norm (a local pass, then its all-reduce over
// every rank), Adam, and the updated master weights copied into the model's weights (fused into
// Adam when FusedAdam keeps the master weights). Clipping (a further read and write of the
// gradients, only when the norm exceeds clip_grad) is not planned.
void stage_planner::optimizer() {
  const double shard = optimizer_shard();
  const adam_state adam = adam_state_of(w_.model, cfg_);
  next_waits_.insert(next_waits_.end(), grad_reduces_.begin(), grad_reduces_.end());
  if (adam.grad_copy > 0)
    optimizer_pass("main_grad_cast", shard, dtype_bytes(main_grad_type(in_)) + adam.grad_copy, 1);
  if (w_.model.type == dtype::fp16) optimizer_pass("grad_unscale", shard, 2 * adam.grad, 2);
  optimizer_pass("grad_norm", shard, adam.grad, 2);
  collective_params norm;
  norm.op = coll_op::all_reduce;
  norm.bytes = 4;
  norm.type = dtype::bf16;
  norm.group = comm_group::dp;
  norm.group_size = cfg_.gpus;
  norm.nodes = std::max(1, cfg_.gpus / in_.cluster.nvlink_domain);
  add_compute("grad_norm_ar", norm, "optimizer");
  optimizer_pass("optimizer_step", shard, adam.step_bytes(), 10);
  if (adam.param_copy_bytes() > 0) optimizer_pass("param_copy", shard, adam.param_copy_bytes(), 0);
  // The next step's first chunk, gathered once the updated weights exist (the step's own chunk 0
  // was gathered so by the step before it: gather_params()).
  if (schedule_aligned_gather() && gathers_params())
    gather_chunk(0, {appender_->last_compute()}, false);
}

// ---- embedding, output layer and loss -------------------------------------------------------

void stage_planner::embedding_forward(const std::string& prefix) {
  const auto th = static_cast<std::uint64_t>(w_.tokens) * w_.model.hidden * 2;
  add_compute(prefix + "embedding", elementwise_params{th * 2, 0, 0, false}, "embedding");
  // Megatron-LM 2022 all-reduces the lookup and then keeps this rank's sequence shard
  // (scatter_to_sequence_parallel_region, a view); Megatron-Core reduce-scatters it.
  const bool scatters = cfg_.sequence_parallel && !cfg_.megatron_2022;
  if (cfg_.tp > 1)
    add_compute(prefix + "embedding.tp",
                tp_collective(scatters ? coll_op::reduce_scatter : coll_op::all_reduce, th),
                "embedding");
}

// The lookup's weight gradient is no fused wgrad GEMM: autograd builds it dense (zeros of the
// table's [V/t, h], the tokens' rows scattered into it) and DDP's backward hook adds it into
// main_grad on every micro-batch, gradient_accumulation_fusion or not (docs/ARCHITECTURE.md §9.3).
void stage_planner::embedding_backward(const std::string& prefix) {
  const auto th = static_cast<std::uint64_t>(w_.tokens) * w_.model.hidden * 2;
  if (cfg_.tp > 1 && cfg_.sequence_parallel)
    add_compute(prefix + "embedding_bwd.ag", tp_collective(coll_op::all_gather, th), "embedding");
  const auto table = static_cast<std::uint64_t>(embedding_params());
  if (!cfg_.fsdp)
    add_compute(prefix + "embedding_grad_zero", elementwise_params{table * 2, 0, 0, false},
                "embedding");
  add_compute(prefix + "embedding_bwd", elementwise_params{th * 2, 0, 0, false}, "embedding");
  if (cfg_.fsdp) return main_grad_add(prefix + "embedding_grad_add", embedding_params());
  elementwise_params add;
  add.bytes = static_cast<std::uint64_t>(static_cast<double>(table) *
                                         grad_add_bytes_per_param(main_grad_type(in_)));
  add.flops = static_cast<double>(table);
  add_compute(prefix + "embedding_grad_add", add, "grad_add");
}

// The main output layer and loss, then each MTP layer's (Megatron runs the MTP block on the
// decoder's output before the logits; on one compute stream the order changes no time).
void stage_planner::output_forward(const std::string& prefix) {
  logits_forward(prefix);
  mtp_forward(prefix);
}

void stage_planner::output_backward(const std::string& prefix) {
  mtp_backward(prefix);
  logits_backward(prefix);
}

void stage_planner::logits_forward(const std::string& prefix) {
  const std::int64_t T = w_.tokens, h = w_.model.hidden, v = w_.model.vocab_size / cfg_.tp;
  const std::int64_t local = cfg_.sequence_parallel ? T / cfg_.tp : T;
  add_compute(
      prefix + "final_ln",
      elementwise_params{static_cast<std::uint64_t>(local * h * 4), 8.0 * local * h, 0, false},
      "output");
  if (cfg_.tp > 1 && cfg_.sequence_parallel)
    add_compute(prefix + "output.ag",
                tp_collective(coll_op::all_gather, static_cast<std::uint64_t>(T * h * 2)),
                "output");
  add_compute(prefix + "output_fprop", gemm_params{T, v, h, dtype::bf16, 0}, "output");
  add_compute(prefix + "loss",
              elementwise_params{static_cast<std::uint64_t>(T * v * loss_bytes_per_logit),
                                 5.0 * T * v, 0, false},
              "loss");
  // Vocab-parallel cross entropy: the max, the sum of exponentials and the target logit.
  if (cfg_.tp > 1)
    for (int i = 0; i < 3; ++i)
      add_compute(prefix + "loss.ar" + std::to_string(i),
                  tp_collective(coll_op::all_reduce, static_cast<std::uint64_t>(T * 4)), "loss");
}

void stage_planner::logits_backward(const std::string& prefix) {
  const std::int64_t T = w_.tokens, h = w_.model.hidden, v = w_.model.vocab_size / cfg_.tp;
  add_compute(prefix + "loss_bwd",
              elementwise_params{static_cast<std::uint64_t>(T * v * loss_bytes_per_logit),
                                 3.0 * T * v, 0, false},
              "loss");
  add_compute(prefix + "output_dgrad", gemm_params{T, h, v, dtype::bf16, 0}, "output");
  if (cfg_.tp > 1)
    add_compute(
        prefix + "output.tp",
        tp_collective(cfg_.sequence_parallel ? coll_op::reduce_scatter : coll_op::all_reduce,
                      static_cast<std::uint64_t>(T * h * 2)),
        "output");
  gemm_params wgrad{h, v, T, dtype::bf16, 0};
  if (cfg_.grad_accum_fusion) {  // as the layers' (model/workload.hpp)
    wgrad.accumulate = true;
    wgrad.out = main_grad_type(in_);
  }
  add_compute(prefix + "output_wgrad", wgrad, "output");
  main_grad_add(prefix + "output_grad_add", embedding_params());
}

}  // namespace ob::detail
