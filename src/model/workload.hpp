#pragma once
// Model + parallel layout -> the ops of one transformer layer on one TP rank (docs/ARCHITECTURE.md
// §3).
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "model/ir.hpp"
#include "model/model_spec.hpp"

namespace ob {

// How context parallelism exchanges the attention's inputs (Megatron-Core's
// TransformerConfig.cp_comm_type, Transformer Engine's attention with CP; docs/ARCHITECTURE.md
// §9.3): `p2p` a ring of K/V blocks beside the core's chunks, `all_gather` K and V gathered
// before the core and their gradients reduce-scattered after it, `a2a` Q, K, V and the output
// exchanged head-for-sequence (DeepSpeed Ulysses), `a2a_p2p` the all-to-all over a first level
// of CP ranks around a ring over the second (hierarchical_context_parallel_sizes).
enum class cp_comm { p2p, all_gather, a2a, a2a_p2p };
template <>
struct enum_names<cp_comm> {
  static constexpr std::string_view noun = "CP communication type";
  static constexpr std::array names = {
      enum_entry{cp_comm::p2p, "p2p"}, enum_entry{cp_comm::all_gather, "all_gather"},
      enum_entry{cp_comm::a2a, "a2a"}, enum_entry{cp_comm::a2a_p2p, "a2a+p2p"}};
};

struct parallel_layout {
  int tp = 1, cp = 1, dp = 1, pp = 1, vpp = 1;
  bool sequence_parallel = true;
};

// How a GEMM slot relates to the TP communication it can overlap.
enum class comm_relation {
  ag_input,        // an all-gather produces the GEMM's input (ring_exchange / none)
  rs_output,       // a reduce-scatter consumes the GEMM's output (pipeline / ring_exchange / none)
  independent_ag,  // an unrelated all-gather runs beside it (TE bulk dgrad)
  independent_rs,  // an unrelated reduce-scatter runs beside it (TE bulk wgrad)
  external,        // reuses another slot's gathered input; no comm of its own
  ar_output,       // TP without sequence parallelism: an all-reduce of the GEMM's output
};
template <>
struct enum_names<comm_relation> {
  static constexpr std::string_view noun = "comm relation";
  static constexpr std::array names = {enum_entry{comm_relation::ag_input, "ag_input"},
                                       enum_entry{comm_relation::rs_output, "rs_output"},
                                       enum_entry{comm_relation::independent_ag, "independent_ag"},
                                       enum_entry{comm_relation::independent_rs, "independent_rs"},
                                       enum_entry{comm_relation::external, "external"},
                                       enum_entry{comm_relation::ar_output, "ar_output"}};
};

struct layer_gemm {
  std::string slot;  // "qkv_fprop", ...
  bool backward = false;
  gemm_params gemm;  // the whole GEMM on this rank, [M, K] x [K, N]
  comm_relation relation = comm_relation::external;
  coll_op comm = coll_op::all_gather;
  std::uint64_t comm_bytes = 0;   // nccl-tests size of the TP collective (0 for external)
  dtype comm_type = dtype::bf16;  // its element type: the GEMM input for gathered activations
  // For independent_rs: the slot whose output is reduce-scattered; the RS waits on it.
  std::string comm_input_slot;
};

struct layer_elementwise {
  std::string slot;  // "ln1_fwd", "attn_fwd", ...
  bool backward = false;
  elementwise_params params;
  // Consumes the output of the reduce-scatters enqueued before it (the planner adds the waits).
  bool consumes_pending_rs = false;
};

using layer_step = std::variant<layer_gemm, layer_elementwise>;

struct layer_workload {
  model_spec model;
  parallel_layout layout;
  std::int64_t tokens = 0;                              // T = seq·mbs/cp, all TP ranks' tokens
  std::vector<layer_step> steps;                        // forward then backward, in execution order
  const layer_gemm& gemm(std::string_view slot) const;  // throws std::out_of_range
  double gemm_flops(bool backward) const;
};

// Throws config_error when the layout does not divide the model (heads, ffn, seq by tp/cp).
// `windowed`: the layer attends through the model's sliding window (model_spec::windowed_layer);
// only its attention core differs from a full layer's.
layer_workload make_layer_workload(const model_spec& model, const parallel_layout& layout,
                                   bool windowed = false);

// Megatron's gradient_accumulation_fusion (docs/ARCHITECTURE.md §9.3): every weight-gradient GEMM
// of the layer adds its product into the parameter's main_grad buffer of type `main_grad` (beta =
// 1), so it reads and writes that buffer instead of writing a bf16 gradient.
void accumulate_weight_gradients(layer_workload& w, dtype main_grad);

// Keys one query attends to on average in the attention core, as the cost model counts them: a
// full causal layer half the sequence (seq / 2), a full bidirectional one all of it, a causal
// sliding window of w tokens min(i + 1, w) for the query at position i, averaged over the
// sequence (docs/MOE.md §14).
double attended_keys(const model_spec& model, bool windowed);

// A fused attention kernel works on tiles of attention_tile queries by attention_tile keys and
// computes every tile the mask leaves any key of (docs/MOE.md §14.3): a windowed causal layer
// computes the key tiles its band touches, twice its attended keys at a window of one tile.
// computed_keys is what the kernel computes per query on average; the full layers keep
// attended_keys (their diagonal tiles, B / 2 more keys a query, are not counted).
inline constexpr std::int64_t attention_tile = 128;
double computed_keys(const model_spec& model, bool windowed);

}  // namespace ob
