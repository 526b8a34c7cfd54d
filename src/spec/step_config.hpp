#pragma once
// The training step's settings (docs/ARCHITECTURE.md §9): a step scenario (flags of `step`, or a
// scenario file with "scenario": "step") and the sweep over its axes. Every axis but the model
// and the GPU takes a list of values; each point of the product is one step case.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/enum_names.hpp"
#include "model/cluster.hpp"
#include "model/ir.hpp"
#include "model/knobs.hpp"
#include "model/model_spec.hpp"
#include "model/workload.hpp"
#include "spec/pipeline_layout.hpp"
#include "spec/scenario.hpp"
#include "spec/sweep_axes.hpp"

namespace ob {

enum class recompute_mode { none, selective, full };
template <>
struct enum_names<recompute_mode> {
  static constexpr std::string_view noun = "recompute mode";
  static constexpr std::array names = {enum_entry{recompute_mode::none, "none"},
                                       enum_entry{recompute_mode::selective, "selective"},
                                       enum_entry{recompute_mode::full, "full"}};
};

// Megatron-Core's recompute_modules (TransformerConfig, selective granularity; docs/MEMORY.md
// §2.1): the submodules whose saved activations are dropped and recomputed in the backward. A
// bit each, so that a case holds a set; `--recompute selective` alone is {core_attn}, Megatron's
// default list.
enum class recompute_module : unsigned {
  core_attn = 1,
  moe_act = 2,
  layernorm = 4,
  mla_up_proj = 8,
  mlp = 16,
  moe = 32,
  shared_experts = 64
};
template <>
struct enum_names<recompute_module> {
  static constexpr std::string_view noun = "recompute module";
  static constexpr std::array names = {
      enum_entry{recompute_module::core_attn, "core_attn"},
      enum_entry{recompute_module::moe_act, "moe_act"},
      enum_entry{recompute_module::layernorm, "layernorm"},
      enum_entry{recompute_module::mla_up_proj, "mla_up_proj"},
      enum_entry{recompute_module::mlp, "mlp"},
      enum_entry{recompute_module::moe, "moe"},
      enum_entry{recompute_module::shared_experts, "shared_experts"}};
};

// Which fused cross entropy computes the loss (Megatron-Core's cross_entropy_fusion_impl with
// cross_entropy_loss_fusion; docs/MEMORY.md §2.2): `native` (and the unfused loss) saves an fp32
// softmax of the logits for the backward; `te` (Transformer Engine's parallel_cross_entropy, which
// Megatron-Bridge's performance launcher sets) writes the gradient into the 16-bit logits in
// place and saves only them.
enum class cross_entropy_impl { native, te };
template <>
struct enum_names<cross_entropy_impl> {
  static constexpr std::string_view noun = "cross entropy implementation";
  static constexpr std::array names = {enum_entry{cross_entropy_impl::native, "native"},
                                       enum_entry{cross_entropy_impl::te, "te"}};
};

// Megatron-Core's cuda_graph_modules under cuda_graph_impl "transformer_engine"
// (TransformerConfig): the parts of a layer captured in CUDA graphs, a bit each (docs/MOE.md §17,
// §18). "moe_router": the router; "moe_preprocess": MoELayer.preprocess(), the dispatcher's
// counting and permutation (Megatron requires moe_router with it); "attn": TE's per-layer graph
// of the attention block (input LayerNorm, self-attention, its bias-dropout-add);
// "full_iteration": every op of the forward and backward passes (Megatron's cuda_graph_impl
// "local" with scope full_iteration, Bridge's cuda_graph_impl "full_iteration"), the optimizer
// step left eager.
enum class graph_scope : unsigned {
  moe_router = 1,
  moe_preprocess = 2,
  attn = 4,
  full_iteration = 8
};
template <>
struct enum_names<graph_scope> {
  static constexpr std::string_view noun = "CUDA graph scope";
  static constexpr std::array names = {enum_entry{graph_scope::moe_router, "moe_router"},
                                       enum_entry{graph_scope::moe_preprocess, "moe_preprocess"},
                                       enum_entry{graph_scope::attn, "attn"},
                                       enum_entry{graph_scope::full_iteration, "full_iteration"}};
};

// A set of an enum's bits as Megatron's list fields are written here: names joined by '+', or
// "none".
template <class E>
std::string bit_set_name(unsigned set) {
  std::string typed;
  for (const auto& e : enum_names<E>::names)
    if ((set & static_cast<unsigned>(e.value)) != 0)
      typed += (typed.empty() ? "" : "+") + std::string(e.name);
  return typed.empty() ? "none" : typed;
}

// How a MoE layer's tokens reach their experts (Megatron's moe_token_dispatcher_type, with the
// flex dispatcher's backends; docs/MOE.md §7).
enum class moe_dispatcher { alltoall, allgather, deepep, hybridep };
template <>
struct enum_names<moe_dispatcher> {
  static constexpr std::string_view noun = "MoE dispatcher";
  static constexpr std::array names = {enum_entry{moe_dispatcher::alltoall, "alltoall"},
                                       enum_entry{moe_dispatcher::allgather, "allgather"},
                                       enum_entry{moe_dispatcher::deepep, "deepep"},
                                       enum_entry{moe_dispatcher::hybridep, "hybridep"}};
};
// SMs the flex dispatcher's kernels hold by default: DeepEP 20 (DeepSeek-V3 report §3.2: 20 SMs
// saturate NVLink and InfiniBand), HybridEP 16 (its README's benchmark runs on 16); docs/MOE.md §7.
inline constexpr int deepep_default_sms = 20;
inline constexpr int hybridep_default_sms = 16;

// One step's layout and overlap settings (Megatron's names).
struct step_config {
  int gpus = 8;
  int tp = 1, pp = 1, vp = 1, cp = 1;
  // cp_comm_type: how CP exchanges the attention's inputs (model/workload.hpp).
  cp_comm cp_comm_type = cp_comm::p2p;
  // hierarchical_context_parallel_sizes (a2a+p2p): the all-to-all level (consecutive CP ranks)
  // and the ring level over it; 0: not given.
  int cp_a2a = 0, cp_p2p = 0;
  // Expert layers (docs/MOE.md §2): expert parallel and expert tensor parallel sizes; etp 0
  // takes tp, as Megatron's expert_tensor_parallel_size does by default.
  int ep = 1, etp = 0;
  // The busiest EP rank's routed tokens over the mean: 1.0 force-balanced (Bridge's performance
  // tables) up to ep (docs/MOE.md §5).
  double moe_imbalance = 1.0;
  // delay_wgrad_compute: the experts' weight gradients run after the dispatch's backward
  // all-to-all is issued, beside it (docs/MOE.md §5).
  bool delay_wgrad = false;
  // overlap_moe_expert_parallel_comm: one micro-batch's dispatch and combine beside the previous
  // one's backward compute (docs/MOE.md §6).
  bool moe_a2a_overlap = false;
  moe_dispatcher dispatcher = moe_dispatcher::alltoall;
  // moe_shared_expert_overlap: the shared expert on a stream of its own beside the dispatch and
  // the combine (docs/MOE.md §8).
  bool moe_shared_overlap = false;
  // moe_expert_capacity_factor: each expert takes at most this times its balanced share of a
  // rank's token copies and drops the rest; 0 is dropless (docs/MOE.md §9).
  double moe_capacity_factor = 0;
  // moe_expert_rank_capacity_factor: HybridEP's static token budget per EP rank, this times the
  // balanced share; the dispatch and the fused grouped MLP then keep the token counts on the
  // device, so no MoE layer syncs the host for them and a full-iteration graph can hold the
  // layer (Megatron-Core's sync-free path, docs/MOE.md §21). 0: off (the counts' host sync).
  double moe_expert_rank_capacity_factor = 0;
  bool sync_free_moe() const { return moe_expert_rank_capacity_factor > 0; }
  // use_transformer_engine_op_fuser with NVTE_CUTEDSL_FUSED_GROUPED_MLP: the experts' fc1, GLU
  // and fc2 as Transformer Engine's fused grouped MLP (cuDNN's CuTe DSL grouped GEMMs, the GLU
  // and the MXFP8 casts in their epilogues; docs/MOE.md §21).
  bool te_op_fuser = false;
  // moe_flex_dispatcher_num_sms: SMs the DeepEP or HybridEP kernels hold; 0: the backend's
  // default (deepep_default_sms, hybridep_default_sms).
  int flex_sms = 0;
  int mbs = 1;
  int gbs = 0;                // 0: one micro-batch per data-parallel rank (mbs x dp)
  int seq = 0;                // 0: the model's seq_length
  std::optional<dtype> type;  // nullopt: the model's
  fp8_scaling scaling = fp8_scaling::delayed;  // fp8_recipe: TE's per-tensor scaling recipe
  // fp8_dot_product_attention (TE's fp8_dpa): the fused attention on fp8 inputs under the fp8
  // recipe, with the casts TE adds around it (docs/ARCHITECTURE.md §5.1, item 5).
  bool fp8_dpa = false;
  recompute_mode recompute = recompute_mode::none;
  // recompute_modules as bits of recompute_module; check_step sets {core_attn} under selective
  // when none are given, and selective when some are (docs/MEMORY.md §2.1).
  unsigned recompute_modules = 0;
  // cuda_graph_modules as bits of graph_scope; 0: every op eager.
  unsigned cuda_graph_scope = 0;
  bool graphs(graph_scope g) const { return (cuda_graph_scope & static_cast<unsigned>(g)) != 0; }
  bool recomputes(recompute_module m) const {
    const unsigned set = recompute_modules != 0
                             ? recompute_modules
                             : static_cast<unsigned>(recompute_module::core_attn);
    return recompute == recompute_mode::selective && (set & static_cast<unsigned>(m)) != 0;
  }
  bool sequence_parallel = true;      // with tp > 1
  bool tp_overlap = true;             // TE userbuffers: the Bridge preset for the shape, or TE's
  bool dp_overlap = true;             // overlap_grad_reduce and overlap_param_gather
  bool pp_overlap = true;             // overlap_p2p_comm (interleaved) instead of batch_p2p_comm
  bool distributed_optimizer = true;  // reduce-scatter grads, all-gather params
  // Megatron-FSDP (use_megatron_fsdp, optim_grads_params, docs/FSDP.md): weights, gradients and
  // optimizer sharded over DP; each layer all-gathered before its forward and its backward, its
  // gradients reduce-scattered after; replaces the distributed optimizer's buckets.
  bool fsdp = false;
  // With fsdp: PyTorch FSDP's ShardingStrategy.SHARD_GRAD_OP (the Llama 3 paper's FSDP, docs/
  // FSDP.md §7) instead: a unit gathered when a pass needs it sharded, kept after its forward,
  // resharded after its backward, its gradients reduce-scattered then; `--fsdp shard_grad_op`.
  bool fsdp_shard_grad_op = false;
  // Activation offloading (Megatron-Core's cpu_offloading_num_layers, TE's CPU offload context;
  // docs/FSDP.md §5): the first N layers' saved activations copied to host memory after their
  // forward and back before their backward, on streams of their own; 0: none.
  int cpu_offload_layers = 0;
  bool grad_reduce_in_fp32 = true;  // Megatron-Bridge's recipes reduce fp32 gradients
  cross_entropy_impl cross_entropy = cross_entropy_impl::native;  // cross_entropy_fusion_impl
  // gradient_accumulation_fusion (Megatron's default, on): weight-gradient GEMMs add into the
  // main_grad buffer (beta = 1) rather than writing a gradient (docs/ARCHITECTURE.md §9.3).
  bool grad_accum_fusion = true;
  // Megatron-LM's mid-2022 training path, the code Korthikanti et al. 2022 ran (docs/
  // ARCHITECTURE.md §9.3): local DDP scales the gradients by 1/DP at every DP size, pipeline p2p
  // without sequence parallelism is split over TP and gathered, the embedding all-reduces before
  // the sequence-parallel scatter, and the linear layers add and reduce biases in kernels of
  // their own (no Transformer Engine).
  bool megatron_2022 = false;
  // fp8_param_gather (Megatron-Bridge's fp8 mixed-precision configs): the weights kept in fp8
  // (mxfp8: its row- and column-wise copies) without a 16-bit copy, and gathered in fp8.
  bool fp8_param_gather = false;
  // exp_avg_dtype and exp_avg_sq_dtype bf16 (use_precision_aware_optimizer, as Bridge's
  // DeepSeek-V3 recipe sets them with main_grads_dtype bf16): Adam's moments in 16 bits and no
  // fp32 copy of the gradients (docs/MEMORY.md §1).
  bool bf16_moments = false;
  std::int64_t bucket_size = 0;  // elements; 0: Bridge's default (128 Mi for dp > 1)
  int layers = 0;                // 0: the model's; fewer scales the model down
  // pipeline_model_parallel_layout (docs/MOE.md §14.2): each virtual stage's layers; nullopt:
  // the even split.
  std::optional<pipeline_layout> stage_layout;
  std::optional<int> cdmc;  // nullopt: what Bridge's launcher sets for the layout
  int gpus_per_node = 0;    // 0: the cluster's
  int nvlink_domain = 0;    // 0: the cluster's (docs/ARCHITECTURE.md §5.4)
  double nic_gbps = 0;      // 0: the cluster's

  // Derived by check_step.
  int dp = 1;
  int edp = 1;           // expert data parallel: gpus / (etp x ep x pp)
  int microbatches = 1;  // per pipeline, per step
  int layers_used = 0;
};

// A step scenario: the model, GPU and cluster, and the axes to sweep.
struct step_scenario {
  std::string file;  // the scenario file; empty for `step` flags
  std::string model = "gpt3_175b";
  std::string gpu;      // empty: the cluster's GPU, else h100_sxm
  std::string cluster;  // empty: a cluster from the GPU file (gpus_per_node, nic_gbps)
  std::string bridge_config;
  launch_ordering te_launch_ordering = launch_ordering::automatic;
  std::vector<sweep_axis> axes;  // only the axes given
  step_config base;              // what an axis not given keeps (a Bridge config's settings)
  // Where a base value came from, axis -> "file: field" (a Bridge config's step settings), so
  // a message about an axis not swept names that field rather than a flag never given.
  std::vector<std::pair<std::string, std::string>> base_sources;
  int warmup = 5, iters = 20;
  bool allow_oom = false;  // --allow-oom: predict cases over the GPU's memory (never recommended)
};

// Every step axis, in the order a case id lists them: the step's own (step_config.cpp's table),
// then the layer knobs a step takes for the TP overlap inside each layer (order, sm_margin,
// comm_ctas, priority: layer_axes' step knobs).
const std::vector<std::string_view>& step_axis_names();
bool is_step_axis(std::string_view name);

// One point of a step sweep.
struct step_case {
  std::string id;  // "tp=4,pp=8" (the swept axes), or "default"
  ordered_json params = ordered_json::object();
  step_config cfg;
  plan_knobs knobs;
};

// Names an axis in messages: "--tp" for flags, "x.json: sweep.tp" for a scenario file, or
// where its base value came from when it is not swept ("bridge.json: model.fp8_param_gather").
std::string axis_label(const step_scenario& sc, std::string_view axis);

// The Cartesian product of the scenario's axes (last fastest). Values are parsed here; a bad one
// is a config_error naming the flag or field (exit 2).
std::vector<step_case> expand_step_cases(const step_scenario& sc);

// Sets one value of a step axis (one of step_config.cpp's table, not a layer knob) in `cfg`,
// parsed as the axis parses it; a bad value is a config_error naming `where`. For defaults that
// come from elsewhere (a Bridge config's settings).
void set_step_axis(step_config& cfg, std::string_view axis, const std::string& value,
                   const std::string& where);

// Applies `--set axis=v1,v2` to a step scenario: any step axis; config_error otherwise.
void apply_step_override(step_scenario& sc, const std::string& assignment);

// Loads a scenario file with "scenario": "step" (keys: model, gpu, cluster, bridge_config,
// te_launch_ordering, sweep {axis: [values]}, measure {warmup, iters}).
step_scenario load_step_scenario(const std::string& path);

// Checks the layout against the model and the cluster and fills the derived fields. Every
// inconsistency throws config_error naming the flag or field: tp not dividing the heads or query
// groups, pp x vp not dividing the layers, gpus not divisible by tp x pp x cp, gbs not divisible
// by mbs x dp, vp without pp > 1, seq not divisible by 2 x cp, ...
void check_step(const step_scenario& sc, step_config& cfg, const model_spec& model,
                const gpu_spec& gpu, const cluster_spec& cluster);

}  // namespace ob
