#include "core/workload.hpp"

#include <stdexcept>

#include "core/error.hpp"

namespace ob {

std::string_view to_string(comm_relation r) {
  switch (r) {
    case comm_relation::ag_input:
      return "ag_input";
    case comm_relation::rs_output:
      return "rs_output";
    case comm_relation::independent_ag:
      return "independent_ag";
    case comm_relation::independent_rs:
      return "independent_rs";
    case comm_relation::external:
      return "external";
    case comm_relation::ar_output:
      return "ar_output";
  }
  return "?";
}

const layer_gemm& layer_workload::gemm(std::string_view slot) const {
  for (const auto& s : steps)
    if (const auto* g = std::get_if<layer_gemm>(&s); g && g->slot == slot) return *g;
  throw std::out_of_range("no GEMM slot " + std::string(slot));
}

double layer_workload::gemm_flops(bool backward) const {
  double total = 0;
  for (const auto& s : steps)
    if (const auto* g = std::get_if<layer_gemm>(&s); g && g->backward == backward)
      total += g->gemm.flops();
  return total;
}

namespace {

void require_divisible(std::int64_t value, std::int64_t by, const std::string& what,
                       const std::string& by_what) {
  if (by <= 0 || value % by != 0)
    throw config_error("parallel layout: " + what + " (" + std::to_string(value) +
                       ") is not divisible by " + by_what + " (" + std::to_string(by) + ")");
}

}  // namespace

layer_workload make_layer_workload(const model_spec& model, const parallel_layout& layout) {
  const std::int64_t t = layout.tp;
  if (t < 1 || layout.cp < 1) throw config_error("parallel layout: tp and cp must be >= 1");
  require_divisible(model.heads, t, "num_attention_heads", "tp");
  require_divisible(model.kv_heads, t, "num_query_groups", "tp");
  require_divisible(model.ffn_hidden, t, "ffn_hidden_size", "tp");
  require_divisible(model.hidden, t, "hidden_size", "tp");
  require_divisible(model.seq_length, layout.cp, "seq_length", "cp");
  const std::int64_t T = model.tokens() / layout.cp;
  // Sequence parallelism shards T over TP ranks between the TP regions.
  if (layout.sequence_parallel)
    require_divisible(T, t, "tokens (seq_length x micro_batch / cp)", "tp");

  layer_workload w;
  w.model = model;
  w.layout = layout;
  w.tokens = T;
  const std::int64_t h = model.hidden;
  const std::int64_t f = model.ffn_hidden;
  const std::int64_t f1 = model.gated_mlp ? 2 * f : f;  // SwiGLU doubles fc1's output
  const std::int64_t qkv = model.qkv_width();
  const dtype dt = model.type;
  const auto in_bytes = static_cast<std::uint64_t>(dtype_bytes(dt));
  // Gradients and GEMM outputs travel in bf16 even in fp8 runs (TE's RS buffers are bf16 unless
  // fp8_buf says otherwise), while gathered activations use the GEMM input type.
  const std::uint64_t out_bytes = 2;
  const auto TH = static_cast<std::uint64_t>(T) * static_cast<std::uint64_t>(h);
  const std::int64_t local_T = layout.sequence_parallel ? T / t : T;
  const bool sp = layout.sequence_parallel && t > 1;

  auto gemm = [&](std::string slot, bool bwd, std::int64_t m, std::int64_t k, std::int64_t n,
                  comm_relation rel, coll_op op, std::uint64_t bytes, std::string input = {}) {
    layer_gemm g;
    g.slot = std::move(slot);
    g.backward = bwd;
    g.gemm = gemm_params{m, n, k, dt, 0};
    g.relation = sp ? rel : comm_relation::external;
    g.comm = op;
    g.comm_bytes = sp && rel != comm_relation::external ? bytes : 0;
    // Without sequence parallelism, TP all-reduces the row-parallel outputs (proj, fc2) in the
    // forward and the column-parallel input gradients (qkv, fc1 dgrad) in the backward.
    const bool reduces_output = g.slot == "proj_fprop" || g.slot == "fc2_fprop" ||
                                g.slot == "qkv_dgrad" || g.slot == "fc1_dgrad";
    if (!layout.sequence_parallel && t > 1 && reduces_output) {
      g.relation = comm_relation::ar_output;
      g.comm = coll_op::all_reduce;
      g.comm_bytes = TH * out_bytes;
    }
    g.comm_input_slot = std::move(input);
    w.steps.emplace_back(std::move(g));
  };
  // LayerNorms consume the residual stream, i.e. the reduce-scattered output before them.
  auto elementwise = [&](std::string slot, bool bwd, std::uint64_t bytes, double flops,
                         bool persistent) {
    layer_elementwise e;
    e.slot = std::move(slot);
    e.backward = bwd;
    e.params = elementwise_params{bytes, flops, 0, persistent};
    e.consumes_pending_rs = persistent;
    w.steps.emplace_back(std::move(e));
  };

  const auto ln_bytes = static_cast<std::uint64_t>(local_T) * h * (2 + in_bytes);
  const double ln_flops = 8.0 * static_cast<double>(local_T) * h;
  // Flash attention forward: about 4·T·seq·h/t FLOPs (two GEMM-like passes), half when causal;
  // it reads q, k, v and writes o.
  const double attn_fwd_flops =
      4.0 * static_cast<double>(T) * model.seq_length * h / t * (model.causal ? 0.5 : 1.0);
  const auto attn_bytes = static_cast<std::uint64_t>(T) * ((qkv + h) / t) * 2;
  const auto act_bytes = static_cast<std::uint64_t>(T) * ((f1 + f) / t) * 2;

  const std::int64_t ffn_rank = f / t;
  // Forward.
  elementwise("ln1_fwd", false, ln_bytes, ln_flops, true);
  gemm("qkv_fprop", false, T, h, qkv / t, comm_relation::ag_input, coll_op::all_gather,
       TH * in_bytes);
  elementwise("attn_fwd", false, attn_bytes, attn_fwd_flops, false);
  gemm("proj_fprop", false, T, h / t, h, comm_relation::rs_output, coll_op::reduce_scatter,
       TH * out_bytes);
  elementwise("ln2_fwd", false, ln_bytes, ln_flops, true);
  gemm("fc1_fprop", false, T, h, f1 / t, comm_relation::ag_input, coll_op::all_gather,
       TH * in_bytes);
  elementwise("act_fwd", false, act_bytes, 4.0 * static_cast<double>(T) * f1 / t, false);
  gemm("fc2_fprop", false, T, ffn_rank, h, comm_relation::rs_output, coll_op::reduce_scatter,
       TH * out_bytes);
  // Backward (the order TE runs it: each module's dgrad, then its wgrad).
  gemm("fc2_dgrad", true, T, h, ffn_rank, comm_relation::ag_input, coll_op::all_gather,
       TH * out_bytes);
  gemm("fc2_wgrad", true, ffn_rank, T, h, comm_relation::external, coll_op::all_gather, 0);
  elementwise("act_bwd", true, act_bytes * 2, 6.0 * static_cast<double>(T) * f1 / t, false);
  gemm("fc1_dgrad", true, T, f1 / t, h, comm_relation::independent_ag, coll_op::all_gather,
       TH * in_bytes);
  gemm("fc1_wgrad", true, h, T, f1 / t, comm_relation::independent_rs, coll_op::reduce_scatter,
       TH * out_bytes, "fc1_dgrad");
  elementwise("ln2_bwd", true, ln_bytes * 2, 2 * ln_flops, true);
  gemm("proj_dgrad", true, T, h, h / t, comm_relation::ag_input, coll_op::all_gather,
       TH * out_bytes);
  gemm("proj_wgrad", true, h / t, T, h, comm_relation::external, coll_op::all_gather, 0);
  elementwise("attn_bwd", true, attn_bytes * 2, 2.5 * attn_fwd_flops, false);
  gemm("qkv_dgrad", true, T, qkv / t, h, comm_relation::independent_ag, coll_op::all_gather,
       TH * in_bytes);
  gemm("qkv_wgrad", true, h, T, qkv / t, comm_relation::independent_rs, coll_op::reduce_scatter,
       TH * out_bytes, "qkv_dgrad");
  elementwise("ln1_bwd", true, ln_bytes * 2, 2 * ln_flops, true);
  return w;
}

}  // namespace ob
