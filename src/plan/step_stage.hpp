#pragma once
// The planner of one pipeline stage of a training step (plan/step_plan.hpp). Internal to the step
// planner: step_plan.cpp builds the stage's structure (streams, chunks, buckets) and
// step_stage_ops.cpp lays out its work (passes, p2p calls, DP, embedding, loss, optimizer).
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/moe_layer.hpp"
#include "model/workload.hpp"
#include "plan/pp_schedule.hpp"
#include "plan/step_plan.hpp"

namespace ob::detail {

// Bytes per logit the vocab-parallel cross entropy moves in each direction (fp32 softmax over
// bf16 logits, a few passes).
inline constexpr double loss_bytes_per_logit = 12;

// The name prefix of one pass's ops: chunk and micro-batch.
inline std::string pass_prefix(int chunk, int mb) {
  return "c" + std::to_string(chunk) + ".mb" + std::to_string(mb) + ".";
}

// Parameters of one transformer layer on one TP rank (the TP-sharded matrices plus the
// replicated LayerNorm weights and biases).
std::int64_t layer_params(const model_spec& m, int tp);
// A layer's attention weights on one TP rank: QKV and the output projection, or MLA's
// down-projections (whole on every rank), latent norms, TP-split up-projections and output.
std::int64_t attention_param_count(const model_spec& m, int tp);
// What one multi-token-prediction layer adds on the last stage (docs/MOE.md §14): its
// transformer layer (MoE when the model's last layer is), the two input norms, the final norm and
// the eh projection [2h -> h] split over TP.
std::int64_t mtp_layer_param_count(const model_spec& m, const step_config& c);
// A MoE layer's: the attention, the router, the shared expert split over TP and this rank's
// routed experts (experts / ep, each FFN split over etp). The one count of them: the DP buckets
// use the sum, the memory model the split (the routed experts shard over expert DP).
struct moe_layer_split {
  std::int64_t dense = 0;   // attention, norms, router, shared expert
  std::int64_t expert = 0;  // this rank's routed experts
};
moe_layer_split moe_layer_param_split(const model_spec& m, const step_config& c);
std::int64_t moe_layer_param_count(const model_spec& m, const step_config& c);

// Selective recomputation (docs/MEMORY.md §2.1): the forward steps of each recompute module the
// case names, run again in the backward before the first step that needs their output.
void add_recompute(layer_workload& w, const step_config& cfg);

// Without gradient_accumulation_fusion each weight-gradient GEMM writes a 16-bit gradient that
// Megatron's DDP hook then adds into the parameter's main_grad (step_layer_extras.cpp).
void add_grad_accumulation(layer_workload& w, dtype main_grad);
// The bytes a parameter's add into main_grad moves: the 16-bit gradient read, main_grad read and
// written in its type (the layers' adds and the output layer's and embedding's alike).
inline double grad_add_bytes_per_param(dtype main_grad) {
  return 2.0 + 2.0 * dtype_bytes(main_grad);
}
// Megatron-LM 2022's linear layers (megatron_2022): QKV's bias added after its GEMM, and the
// QKV and fc1 bias gradients summed over the tokens, each a kernel of its own.
void add_megatron_2022_biases(layer_workload& w);

// The ops of one pipeline stage, in the order its host enqueues them.
class stage_planner {
 public:
  // `windowed`: the layer of a model with a sliding window that attends through it (null
  // without one).
  stage_planner(const step_inputs& in, int stage, const layer_workload& w,
                const layer_workload* windowed);

  void build();
  schedule take() { return std::move(s_); }
  std::int64_t params() const { return params_; }
  // Bucket index per layer of chunk 0 (bucket 0 reduces first).
  const std::vector<int>& first_chunk_buckets() const { return bucket_of_.front(); }

  // The stage's p2p ops per direction, in call order (the links pair them across stages).
  std::vector<int> sends_next, recvs_prev, sends_prev, recvs_next;

 private:
  // Structure (step_plan.cpp).
  void make_streams();
  void plan_chunks();
  std::int64_t bucket_size() const;
  std::int64_t embedding_params() const;
  std::int64_t bucket_params(int chunk, int bucket) const;
  // Expert data parallelism (docs/MOE.md §5): with EP > 1 a MoE model's routed experts keep
  // buckets of their own, reduced and gathered over the expert-data-parallel group (none with
  // edp = 1); with EP 1 they stay in the dense buckets.
  void plan_expert_dp();
  bool split_experts() const { return w_.model.moe.enabled() && !cfg_.fsdp && cfg_.ep > 1; }
  bool expert_dp() const { return split_experts() && cfg_.edp > 1; }
  double optimizer_shard() const;
  std::int64_t expert_bucket_params(int chunk, int bucket) const;
  std::int64_t bucket_elems(int chunk, int bucket, bool expert) const {
    return expert ? expert_bucket_params(chunk, bucket) : bucket_params(chunk, bucket);
  }
  // Layer l holds routed experts and is the first of its expert bucket in the forward (the last
  // in the backward): where the bucket's gather is waited for and its reduction starts.
  bool first_expert_layer(int chunk, int l) const;
  bool overlapped_p2p() const { return cfg_.pp_overlap && cfg_.vp > 1; }
  // overlap_grad_reduce's buckets (Megatron-FSDP reduces per layer instead).
  bool bucketed_grads() const { return cfg_.dp_overlap && !cfg_.fsdp && dp_size_ > 1; }

  // Work (step_stage_ops.cpp).
  void gather_params();
  // Under the interleaved schedule the gathers follow its param_sync_func (docs/ARCHITECTURE.md
  // §9.3): chunk 0 at the previous step's end, chunk 1 at the start, chunk c + 1 before the
  // forward pass the schedule names.
  bool schedule_aligned_gather() const { return cfg_.vp > 1 && cfg_.dp_overlap; }
  void gather_chunk(int chunk, const std::vector<int>& after, bool waited);
  void gather_chunk_buckets(int chunk, const std::vector<int>& after, bool waited, bool expert);
  // The distributed optimizer gathers parameters: over DP, or over expert DP only.
  bool gathers_params() const {
    return cfg_.distributed_optimizer && !cfg_.fsdp && (dp_size_ > 1 || expert_dp());
  }
  void gather_due_chunk();
  void act(const pp_action& a);
  void forward_input(int chunk, const std::string& prefix);
  void backward_input(int chunk, const std::string& prefix);
  void forward(int chunk, int mb);
  void backward(int chunk, int mb);
  void backward_layer(int chunk, int layer, const std::string& prefix, bool last_of_chunk);
  // One layer's pass through the appender and, on a MoE layer, its experts; the backward after
  // its forward again under full recomputation.
  void layer_forward(const std::string& name, bool moe, const layer_workload* variant);
  void layer_backward(const std::string& name, bool moe, const layer_workload* variant);
  void reduce_finished_bucket(int chunk, int layer, bool last_of_chunk);
  void forward_backward(const pp_action& a);
  void forward_backward_layers(int f_chunk, int b_chunk, const std::string& fp,
                               const std::string& bp, bool last_of_chunk);
  void call(const pp_call& c);
  void finish_grads();
  void optimizer();
  void zero_grads();
  void optimizer_pass(const char* name, double elems, double bytes_per_elem, double flops_per_elem);
  int add_compute(const std::string& name, op_params p, const std::string& slot,
                  std::vector<int> waits = {});
  void hand_waits_to_layers();
  // Over DP x CP, or over expert DP for an expert bucket.
  collective_params dp_collective(coll_op op, std::int64_t elems, int bytes_per_elem,
                                  bool expert = false) const;
  // A layer parameter's bytes in the DP all-gather (docs/MEMORY.md §1.1): 1 with
  // fp8_param_gather, except that the distributed optimizer gathers MXFP8 weights as bf16 (2)
  // and quantizes them after; 2 without it.
  int param_bytes() const { return fp8_param_gather_in_fp8() ? 1 : 2; }
  bool fp8_param_gather_in_fp8() const {
    return cfg_.fp8_param_gather && (cfg_.fsdp || w_.model.type != dtype::mxfp8);
  }
  // The first forward of a bucket's layers waits for its all-gather (and MXFP8's quantization).
  void wait_for_params(int chunk, int bucket, bool expert = false);
  void quantize_params(int chunk, int bucket, bool expert = false);
  void reduce_buckets_at_end(bool expert);
  collective_params tp_collective(coll_op op, std::uint64_t bytes) const;
  p2p_params pp_transfer() const;

  // Megatron-LM 2022 (megatron_2022) and gradient accumulation without fusion
  // (step_stage_2022.cpp).
  void main_grad_add(const std::string& name, std::int64_t params);
  bool scatter_gather_p2p() const {
    return cfg_.megatron_2022 && !cfg_.sequence_parallel && cfg_.tp > 1;
  }
  int gather_received(const std::string& name, int recv);
  void scale_grads_2022();
  void reduce_sp_norm_grads_2022();
  void embedding_forward(const std::string& prefix);
  void embedding_backward(const std::string& prefix);
  void output_forward(const std::string& prefix);
  void output_backward(const std::string& prefix);
  void logits_forward(const std::string& prefix);
  void logits_backward(const std::string& prefix);
  // The index of chunk's layer l in the model, and the ops its pass lays out (the windowed
  // workload on a sliding-window layer, else null: the appender's own).
  int global_layer(int chunk, int l) const;
  const layer_workload* layer_variant(int chunk, int l) const;

  // Multi-token prediction on the last stage (step_stage_mtp.cpp).
  void mtp_forward(const std::string& prefix);
  void mtp_backward(const std::string& prefix);
  bool mtp_on_stage() const { return stage_ == cfg_.pp - 1 && w_.model.mtp_num_layers > 0; }
  struct mtp_shape {
    std::int64_t tokens, hidden, local_tokens;  // local: the sequence-parallel shard
    bool moe;
    const layer_workload* variant;
  };
  mtp_shape mtp_layer() const;
  std::int64_t mtp_params() const;
  void grad_reduce(int chunk, int bucket, std::vector<int> after, bool expert = false);
  collective_params grad_reduce_params(int chunk, int bucket, bool expert = false) const;
  // c<chunk>.b<bucket>.<what>, c<chunk>.eb<bucket>.<what> for an expert bucket.
  static std::string bucket_op_name(int chunk, int bucket, const char* what, bool expert = false);
  std::vector<int> pass_outputs();

  // Megatron-FSDP (step_stage_fsdp.cpp).
  int fsdp_gather(const std::string& prefix, int chunk, int l, bool backward,
                  std::vector<int> after);
  void fsdp_before_layer(const std::string& prefix, int chunk, int l, bool backward);
  void fsdp_after_backward(const std::string& prefix, int chunk, int l);
  void fsdp_edges(bool start);
  // PyTorch FSDP's SHARD_GRAD_OP (step_stage_fsdp.cpp, docs/FSDP.md §7): each unit's passes in
  // the schedule's order, which of them gather, and the gathers prefetched.
  struct unit_pass {
    int chunk = 0, layer = 0, microbatch = 0;
    bool backward = false;
    bool gathers = false;      // the unit is sharded when this pass starts
    std::ptrdiff_t prev = -1;  // the unit's previous pass (-1: none)
  };
  void sgo_plan(const std::vector<pp_action>& actions);
  void sgo_before_layer(int chunk, int l, bool backward);
  int sgo_gather(std::size_t pass, std::vector<int> after);

  // Activation offloading to the host (step_stage_offload.cpp).
  bool offloaded(int chunk, int l) const;
  int host_copy(const std::string& name, int chunk, int l, std::vector<int> after, bool to_host);
  void offload_after_forward(const std::string& prefix, int chunk, int l);
  void reload_before_backward(const std::string& prefix, int chunk, int l);

  // MoE layers (step_stage_moe.cpp).
  void plan_moe();
  bool is_moe_layer(int chunk, int l) const;
  void moe_forward(const std::string& name);
  void moe_backward(const std::string& name);
  int moe_forward_head(const std::string& name);
  int moe_forward_experts(const std::string& name, int dispatch);
  void moe_forward_tail(const std::string& name, int combine);
  int moe_backward_head(const std::string& name);
  int moe_backward_experts(const std::string& name, int combine);
  void moe_backward_tail(const std::string& name, int dispatch);
  int shared_expert(const std::string& name, bool backward, std::vector<int> waits);
  int ep_all_to_all(const std::string& name, const char* slot, bool gathers);
  void etp_exchange(const std::string& name, coll_op op, std::vector<int> waits);
  ep_exchange flex_exchange(bool combine) const;
  static std::vector<int> waits_on(int op);
  elementwise_params moe_elementwise(double bytes_per_copy, double flops_per_copy,
                                     bool experts) const;
  void mxfp8_cast(const std::string& name, double width, std::vector<int> waits = {},
                  bool fused = false);
  int expert_gemm_op(const std::string& name, expert_gemm which, std::vector<int> waits = {});
  void expert_fc2_bias(const std::string& name, bool backward, std::vector<int> waits);
  void token_count_sync(const std::string& name, int router);
  elementwise_params router_scores(bool backward) const;
  int counts_exchange(const std::string& name, int scores);
  void device_sync(const std::vector<int>& transfers);

  const step_inputs& in_;
  const step_config& cfg_;
  const int stage_;
  const layer_workload& w_;
  const layer_workload* windowed_;
  const pp_layout layout_;
  schedule s_;
  layer_target target_;
  std::unique_ptr<layer_appender> appender_;
  int recv_prev_ = 0, send_next_ = 0, recv_next_ = 0, send_prev_ = 0, dp_ = 0;
  int pp_nodes_ = 1, dp_size_ = 1, dp_nodes_ = 1;
  int fsdp_rs_ = -1;                                    // Megatron-FSDP's reduce-scatter stream
  std::map<std::pair<int, int>, int> fsdp_prefetched_;  // (chunk, layer) -> its next gather
  std::vector<unit_pass> sgo_passes_;                   // SHARD_GRAD_OP: every unit pass
  std::size_t sgo_at_ = 0;                              // the next of them to lay out
  std::map<std::size_t, int> sgo_prefetched_;           // pass -> its prefetched gather
  int offload_ = -1;                              // the offload stream (cpu_offload_layers > 0)
  std::map<int, int> offload_d2h_, offload_h2d_;  // layer -> its copy of this micro-batch
  std::vector<int> layers_;                       // per chunk
  std::vector<std::vector<int>> bucket_of_;       // per chunk, per layer: its bucket
  std::int64_t params_ = 0;
  moe_rank_load dispatch_, experts_;  // the busiest EP rank: its dispatch, its experts' tokens
  int ep_ = -1, ep_nodes_ = 1;        // the EP stream (ep > 1) and the nodes its group spans
  int etp_nodes_ = 1;                 // the nodes the expert TP group spans
  int shared_ = -1;                   // the shared expert's stream under moe_shared_expert_overlap
  int counts_d2h_ = -1;               // the stream of the token counts' device-to-host copy
  int pp_sync_ = -1;  // batch_p2p_sync's device synchronize (1F1B without virtual stages)
  std::vector<int> last_on_stream_;  // the last op of each stream among the first `scanned_`
  std::size_t scanned_ = 0;
  int shared_fwd_ = -1, shared_bwd_ = -1;                // its pending output and input gradient
  std::vector<std::vector<std::int64_t>> chunk_params_;  // per chunk, per layer
  // The routed experts' share of chunk_params_ (0 without split_experts()) and their buckets.
  std::vector<std::vector<std::int64_t>> expert_params_;
  std::vector<std::vector<int>> expert_bucket_of_;
  int edp_ = -1, edp_nodes_ = 1;  // the expert DP stream (overlapped), the nodes its group spans
  // (chunk, expert bucket) -> its all-gather op, as param_gather_ below.
  std::map<std::pair<int, int>, int> expert_param_gather_;

  // State while the actions are laid out.
  std::vector<int> next_waits_;                        // what the next compute op waits on
  std::deque<int> fwd_inputs_, bwd_inputs_;            // received, not yet consumed
  std::vector<int> fwd_output_, bwd_output_;           // what a send of the latest pass waits on
  std::map<std::pair<int, int>, int> param_gather_;    // (chunk, bucket) -> all-gather op
  std::vector<int> grad_reduces_;                      // every DP reduction, for the optimizer
  std::map<int, int> forwards_done_, backwards_done_;  // per chunk
  int forward_passes_ = 0;                             // virtual forward passes laid out
};

}  // namespace ob::detail
