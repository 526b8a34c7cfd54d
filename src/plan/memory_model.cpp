#include "plan/memory_model.hpp"

#include <algorithm>
#include <vector>

#include "plan/adam_state.hpp"
#include "plan/pp_schedule.hpp"
#include "plan/step_plan.hpp"
#include "plan/step_stage.hpp"

namespace ob {
namespace {

constexpr double gib = 1024.0 * 1024.0 * 1024.0;

// Bytes per token of one layer's stored tensors (docs/MEMORY.md §2), by what shards them.
struct layer_bytes {
  double replicated = 0;  // norms, GEMM inputs, dropout masks: sharded by TP only under SP
  double tp_sharded = 0;  // Q, K, V, the attention output, the MLP's hidden activations
  double scores = 0;      // the attention scores of unfused attention (per token, per key)
  double experts = 0;     // a MoE layer's routed experts: per local token, sharded by ETP
};

// Bytes per element of a GEMM input kept for the weight gradient (docs/MEMORY.md §2.2): the
// 16-bit tensor, or with a low-precision recipe the copy Transformer Engine's Linear quantized
// and keeps instead, one of its row- or column-wise data: fp8 1 byte (a per-tensor scale),
// mxfp8 1 + one E8M0 scale per 32, nvfp4 half a byte + one E4M3 scale per 16.
double saved_input_bytes(dtype type) {
  switch (type) {
    case dtype::fp8:
      return 1;
    case dtype::mxfp8:
      return 1 + 1.0 / 32;
    case dtype::nvfp4:
      return 0.5 + 1.0 / 16;
    default:
      return 2;
  }
}

// The MLP part of a layer: the dense MLP's FC1 and activation outputs, or a MoE layer's router
// scores, its routed experts' copies and its shared expert (docs/MEMORY.md §2), less what the
// case's recompute_modules drop (§2.1).
void add_mlp(layer_bytes& b, const model_spec& m, const step_config& cfg, bool moe) {
  const auto gated = [&](double f) { return m.gated_mlp ? 2 * f : f; };
  const double q = saved_input_bytes(m.type);  // the activation output is FC2's input
  if (!moe) {
    const double f = static_cast<double>(m.ffn_hidden);
    if (!cfg.recomputes(recompute_module::mlp)) b.tp_sharded += 2 * gated(f) + q * f;
    return;
  }
  const moe_shape& e = m.moe;
  const double fe = static_cast<double>(e.ffn_hidden),
               fs = static_cast<double>(e.shared_ffn_hidden);
  b.replicated += 4.0 * static_cast<double>(e.experts);  // fp32 router scores
  b.tp_sharded += 2 * gated(fs) + q * fs;
  // Each routed copy: the permuted token (FC1's input), FC1's and the activation's outputs; the
  // busiest EP rank holds moe_imbalance times the mean of topk copies per token. Under the
  // sync-free dispatch these tensors have the static budget's rows on every rank, the rank
  // capacity factor times the mean, whatever the real counts (docs/MEMORY.md §2.3).
  const double act = cfg.recomputes(recompute_module::moe_act) ? 0 : q * fe;
  const double rows = cfg.sync_free_moe() ? cfg.moe_expert_rank_capacity_factor : cfg.moe_imbalance;
  b.experts = static_cast<double>(e.topk) * rows *
              (q * static_cast<double>(m.hidden) + (2 * gated(fe) + act) / cfg.etp);
}

layer_bytes per_token(const model_spec& m, const step_config& cfg, bool moe) {
  const double h = static_cast<double>(m.hidden);
  const double hkv = static_cast<double>(m.kv_heads * m.head_dim());
  const double mask = m.hidden_dropout > 0 ? h : 0;  // one byte per element
  const double q = saved_input_bytes(m.type);
  layer_bytes b;
  // Two norms' inputs, the QKV and FC1 inputs (the norms' outputs, dropped by layernorm
  // recompute), the two dropout masks after the sub-layers. With fp8 the GEMMs keep their
  // quantized inputs (§2.2), but for MLA's down-projections (left 16-bit) and a MoE layer's
  // norm output, which the router keeps in 16 bits.
  const double qkv_in = m.mla.enabled ? 2 : q, fc1_in = moe ? 2 : q;
  b.replicated =
      4 * h + (cfg.recomputes(recompute_module::layernorm) ? 0 : (qkv_in + fc1_in) * h) + 2 * mask;
  // Q, K, V; the attention output (flash attention's and the projection's input: 16-bit, and
  // with delayed fp8 scaling also the projection's own fp8 copy); then the MLP's.
  const bool proj_copy = m.type == dtype::fp8 && m.scaling == fp8_scaling::delayed;
  b.tp_sharded = 2 * (h + 2 * hkv) + (2 + (proj_copy ? q : 0)) * h;
  if (m.mla.enabled) {
    // MLA (docs/MEMORY.md §2): per head a query and a key qk_dim wide and a value v_dim wide
    // (dropped by mla_up_proj recompute), the attention output heads x v_dim; the
    // up-projections' inputs are the gathered latents.
    const double heads = static_cast<double>(m.heads);
    const double qkv = heads * static_cast<double>(2 * m.qk_dim() + m.v_dim());
    b.tp_sharded = (cfg.recomputes(recompute_module::mla_up_proj) ? 0 : 2 * qkv) +
                   (2 + (proj_copy ? q : 0)) * heads * static_cast<double>(m.v_dim());
    b.replicated += 2.0 * static_cast<double>(m.mla.q_lora_rank + m.mla.kv_lora_rank);
  }
  add_mlp(b, m, cfg, moe);
  if (m.attention == attention_backend::unfused)
    b.scores = m.attention_dropout > 0 ? 5 : 2;  // softmax out; + dropout mask and output
  else
    b.tp_sharded += 4.0 * static_cast<double>(m.heads);  // flash: fp32 log-sum-exp per head
  return b;
}

}  // namespace

double layer_activation_bytes(const model_spec& m, const step_config& cfg, bool moe) {
  const double t = cfg.tp;
  const bool sp = cfg.sequence_parallel && cfg.tp > 1;
  const double tokens = static_cast<double>(m.seq_length) / cfg.cp * static_cast<double>(cfg.mbs);
  const layer_bytes b = per_token(m, cfg, moe);
  const double rep = sp ? 1.0 / t : 1.0;
  if (cfg.recompute == recompute_mode::full)
    return tokens * 2 * static_cast<double>(m.hidden) * rep;
  // Routed experts see the rank's own tokens: the sequence-parallel shard.
  double bytes = tokens * (b.replicated * rep + b.tp_sharded / t + b.experts * rep);
  // Scores: every local query against the whole sequence's keys, each head's share on its rank.
  if (!cfg.recomputes(recompute_module::core_attn))
    bytes +=
        tokens * b.scores * static_cast<double>(m.heads) * static_cast<double>(m.seq_length) / t;
  return bytes;
}

namespace {

// The global index of the first layer of each of the stage's chunks: the virtual stages in
// Megatron's order (chunk-major), each after all those before it.
std::vector<int> chunk_first_layers(const step_config& cfg, int stage) {
  std::vector<int> first(static_cast<std::size_t>(cfg.vp), 0);
  int at = 0;
  for (int v = 0; v < cfg.vp; ++v)
    for (int s = 0; s < cfg.pp; ++s) {
      if (s == stage) first[static_cast<std::size_t>(v)] = at;
      at += stage_chunk_layers(cfg, s)[static_cast<std::size_t>(v)];
    }
  return first;
}

bool is_moe_layer(const model_spec& m, int i) {
  const auto at = static_cast<std::size_t>(i);
  return m.moe.enabled() && (at >= m.moe.layers.size() || m.moe.layers[at]);
}

// Each of the stage's chunks' stored bytes per micro-batch: its layers', dense or MoE.
std::vector<double> chunk_bytes(const model_spec& m, const step_config& cfg, int stage) {
  const std::vector<int> layers = stage_chunk_layers(cfg, stage);
  std::vector<double> out(layers.size(), 0.0);
  if (!m.moe.enabled()) {  // one product, so that a dense model's figure stays as it was
    const double one = layer_activation_bytes(m, cfg);
    for (std::size_t c = 0; c < layers.size(); ++c) out[c] = one * layers[c];
    return out;
  }
  const std::vector<int> first = chunk_first_layers(cfg, stage);
  for (std::size_t c = 0; c < layers.size(); ++c)
    for (int i = first[c]; i < first[c] + layers[c]; ++i)
      out[c] += layer_activation_bytes(m, cfg, is_moe_layer(m, i));
  return out;
}

// The most activation bytes `stage` holds at once: Megatron's schedule run forward, each
// forward pass adding its chunk's layers until the matching backward frees them.
double peak_stored(const model_spec& m, const step_config& cfg, int stage) {
  const pp_layout layout{cfg.pp, cfg.vp, cfg.microbatches, cfg.moe_a2a_overlap};
  const std::vector<double> bytes = chunk_bytes(m, cfg, stage);
  const auto of = [&](int chunk) { return bytes[static_cast<std::size_t>(chunk)]; };
  const double per_layer = layer_activation_bytes(m, cfg, m.moe.enabled());
  double now = 0, peak = 0;
  for (const pp_action& a : pp_actions(layout, stage, false)) {
    if (a.what == pp_action::kind::comm) continue;
    // A combined step (a2a overlap) frees a backward layer as it stores a forward one: one layer
    // more at most, then whatever the forward chunk has beyond the backward's.
    if (a.what == pp_action::kind::forward_backward) {
      peak = std::max(peak, now + per_layer + std::max(0.0, of(a.chunk) - of(a.b_chunk)));
      now += of(a.chunk) - of(a.b_chunk);
      continue;
    }
    now += a.what == pp_action::kind::forward ? of(a.chunk) : -of(a.chunk);
    peak = std::max(peak, now);
  }
  return peak;
}

// Bytes per logit the loss keeps for its backward (docs/MEMORY.md §2.2): Megatron's native fused
// and unfused cross entropy save an fp32 softmax (Korthikanti et al. §4.3: 4sbv/t); TE's writes
// the gradient into the 16-bit logits in place and saves only them.
double logit_bytes(const step_config& cfg) {
  return cfg.cross_entropy == cross_entropy_impl::te ? 2 : 4;
}

// Offloaded layers (pp 1, docs/FSDP.md §5) keep their activations in host memory: TE frees
// layer i's once the forward of layer L - N + i starts and reloads it one layer ahead of the
// backward that needs it, so L - N layers' are on the GPU at most. The first N layers' own
// bytes, dense or MoE: the same bytes the estimate adds and the step's copies move.
double offloaded_bytes(const model_spec& m, const step_config& cfg) {
  const int n = cfg.cpu_offload_layers;
  if (n <= 0) return 0;
  if (!m.moe.enabled()) return n * layer_activation_bytes(m, cfg);
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += layer_activation_bytes(m, cfg, is_moe_layer(m, i));
  return sum;
}

// The stage's activations: the schedule's peak, the working layer of full recompute, and the
// loss's logits on the last stage.
double stage_activations(const model_spec& m, const step_config& cfg, int stage) {
  double bytes = peak_stored(m, cfg, stage) - offloaded_bytes(m, cfg);
  if (cfg.recompute == recompute_mode::full) {
    step_config whole = cfg;
    whole.recompute = recompute_mode::none;
    bytes += layer_activation_bytes(m, whole, m.moe.enabled());
  }
  const double tokens = static_cast<double>(m.seq_length) / cfg.cp * cfg.mbs;
  const double logits = logit_bytes(cfg) * tokens * static_cast<double>(m.vocab_size) / cfg.tp;
  if (stage == cfg.pp - 1) bytes += logits;
  // Each MTP layer on the last stage: one more layer's activations and logits, held from
  // the forward of the micro-batch until its backward (docs/MEMORY.md §2).
  if (stage == cfg.pp - 1 && m.mtp_num_layers > 0)
    bytes += static_cast<double>(m.mtp_num_layers) *
             (layer_activation_bytes(m, cfg, m.moe.last_is_moe()) + logits);
  return bytes;
}

// Parameters one GPU of a stage holds, by the group the distributed optimizer shards them over:
// everything but the routed experts over DP x CP, the routed experts over expert DP.
struct stage_params_split {
  double dense = 0, expert = 0;
  double total() const { return dense + expert; }
};

// One layer of a model with MoE or MLA on one GPU (docs/MEMORY.md §1): a dense layer's count, or
// a MoE layer's split as the step's DP buckets count it (detail::moe_layer_param_split).
stage_params_split moe_layer_params(const model_spec& m, const step_config& cfg, bool moe) {
  if (!moe) return {static_cast<double>(detail::layer_params(m, cfg.tp)), 0};
  const detail::moe_layer_split p = detail::moe_layer_param_split(m, cfg);
  return {static_cast<double>(p.dense), static_cast<double>(p.expert)};
}

// The MTP layers on the last stage: each a layer built as the model's last, its norms and eh
// projection; beyond one stage also the embedding's copy the MTP input needs.
void add_mtp_params(stage_params_split& p, const model_spec& m, const step_config& cfg,
                    double embedding) {
  const stage_params_split layer = moe_layer_params(m, cfg, m.moe.last_is_moe());
  const double h = static_cast<double>(m.hidden), n = static_cast<double>(m.mtp_num_layers);
  p.dense += n * (layer.dense + 3 * h + 2 * h * h / cfg.tp) + (cfg.pp > 1 ? embedding : 0);
  p.expert += n * layer.expert;
}

stage_params_split stage_params(const model_spec& m, const step_config& cfg, int stage) {
  stage_params_split p;
  const std::vector<int> layers = stage_chunk_layers(cfg, stage);
  const bool special = m.moe.enabled() || m.mla.enabled;
  const std::vector<int> first = special ? chunk_first_layers(cfg, stage) : std::vector<int>{};
  for (std::size_t c = 0; c < layers.size(); ++c) {
    if (!special) {
      p.dense += static_cast<double>(layers[c] * detail::layer_params(m, cfg.tp));
      continue;
    }
    for (int i = first[c]; i < first[c] + layers[c]; ++i) {
      const stage_params_split l = moe_layer_params(m, cfg, is_moe_layer(m, i));
      p.dense += l.dense;
      p.expert += l.expert;
    }
  }
  const double embedding = static_cast<double>(m.vocab_size / cfg.tp * m.hidden);
  if (stage == 0) p.dense += embedding;
  if (stage == cfg.pp - 1) p.dense += embedding;  // the output layer (a copy when tied)
  if (stage == cfg.pp - 1 && m.mtp_num_layers > 0) add_mtp_params(p, m, cfg, embedding);
  return p;
}

// Megatron's mixed precision (docs/MEMORY.md §1): 16-bit weights (fp8 adds its cached copy),
// fp32 or 16-bit main gradients, fp32 master weights and Adam's two moments, sharded by the
// distributed optimizer over DP x CP (routed experts: over expert DP); with 16-bit gradients it
// also keeps an fp32 copy.
// Megatron-FSDP (docs/FSDP.md): weights, gradients and optimizer all sharded over DP x CP, plus
// the unsharded layers it holds at once: the one computing and the one prefetched (16-bit), and
// at most two layers' gradient buffers (Megatron-FSDP's reduce-grad drain).
// Bytes per weight: 16-bit, plus fp8's cached copy; with fp8_param_gather the fp8 weight alone
// (mxfp8: its row- and column-wise data and one scale per 32 of each).
double weight_bytes(const model_spec& m, const step_config& cfg) {
  if (!is_low_precision(m.type)) return 2;
  if (!cfg.fp8_param_gather) return 3;
  return m.type == dtype::mxfp8 ? 2 + 2.0 / 32 : 1;
}

// Optimizer bytes per parameter (docs/MEMORY.md §1.1): the master weight (fp32, or the int16
// remainder TE's FusedAdam keeps beside a bf16 weight), Adam's moments (fp32, or bf16 with the
// precision-aware optimizer) and Megatron's fp32 copy of 16-bit gradients where it makes one.
double optimizer_bytes(const model_spec& m, const step_config& cfg) {
  return adam_state_of(m, cfg).held();
}

// Megatron-FSDP's fp32 copy of a 16-bit gradient shard: made for the optimizer once the backward
// is done (update_main_grads) and dropped at the next step's zero_grad (Megatron-LM
// megatron_fsdp/param_and_grad_buffer.py), so it never meets the activations.
double fsdp_grad_copy_bytes(const model_spec& m, const step_config& cfg) {
  return cfg.fsdp ? adam_state_of(m, cfg).grad_copy : 0;
}

// The input embedding's (first stage) or the output layer's (last) parameters on one GPU.
double vocab_params(const model_spec& m, const step_config& cfg) {
  return static_cast<double>(m.vocab_size / cfg.tp * m.hidden);
}

// Megatron-FSDP (docs/FSDP.md §2): weights, gradients and optimizer sharded over DP x CP; then
// fsdp_double_buffer's two fixed buffers, each one layer's parameters in their gathered dtype
// (fp8 with fp8_param_gather) and two of its gradients in the main gradients' dtype. The
// embedding and the output layer are no FSDP unit (Megatron-Core makes each transformer layer
// one): gathered whole in 16 bits (no TE module, so never fp8) before their forward and held
// until their backward; the output layer's whole gradient is made at the activations' peak.
void add_fsdp_state(memory_parts& out, const model_spec& m, const step_config& cfg,
                    const stage_params_split& p, int stage) {
  const double shards = cfg.dp * cfg.cp;
  const double grad_bytes = cfg.grad_reduce_in_fp32 ? 4 : 2;
  const stage_params_split layer = moe_layer_params(m, cfg, m.moe.enabled());
  const double unsharded = cfg.fp8_param_gather ? weight_bytes(m, cfg) : 2;
  const double output = stage == cfg.pp - 1 ? vocab_params(m, cfg) : 0;
  const double edges = output + (stage == 0 ? vocab_params(m, cfg) : 0);
  // SHARD_GRAD_OP (docs/FSDP.md §7) reshards a unit only after its backward, and every
  // pipeline schedule runs a forward of each of the stage's chunks before its first backward: at
  // the activations' peak all of the stage's layers are gathered, not two.
  const double gathered = cfg.fsdp_shard_grad_op ? p.total() - edges : 2 * layer.total();
  out.weights =
      (p.total() * weight_bytes(m, cfg) / shards + gathered * unsharded + 2 * edges) / gib;
  out.gradients =
      (p.total() * grad_bytes / shards + (2 * layer.total() + output) * grad_bytes) / gib;
  out.optimizer =
      p.total() * (optimizer_bytes(m, cfg) - fsdp_grad_copy_bytes(m, cfg)) / shards / gib;
}

void add_model_state(memory_parts& out, const model_spec& m, const step_config& cfg, int stage) {
  const stage_params_split p = stage_params(m, cfg, stage);
  if (cfg.fsdp) {
    add_fsdp_state(out, m, cfg, p, stage);
    return;
  }
  out.weights = p.total() * weight_bytes(m, cfg) / gib;
  out.gradients = p.total() * (cfg.grad_reduce_in_fp32 ? 4 : 2) / gib;
  const double shards = cfg.distributed_optimizer ? cfg.dp * cfg.cp : 1;
  const double expert_shards = cfg.distributed_optimizer ? cfg.edp : 1;
  const double per_param = optimizer_bytes(m, cfg);
  // In this order so that a dense model's figure stays bit-identical to the golden outputs.
  out.optimizer = p.dense * per_param / shards / gib + p.expert * per_param / expert_shards / gib;
}

// CP's all_gather (docs/MEMORY.md §3): the working layer's backward holds K and V gathered over
// the whole sequence and dK, dV as large before they are reduce-scattered, 16-bit each.
double cp_gather_bytes(const model_spec& m, const step_config& cfg) {
  if (cfg.cp == 1 || cfg.cp_comm_type != cp_comm::all_gather) return 0;
  const double seq = static_cast<double>(m.seq_length) * cfg.mbs;
  const double kv = static_cast<double>(m.mla.enabled ? m.heads : m.kv_heads) / cfg.tp;
  return 2 * 2 * seq * kv * static_cast<double>(m.qk_dim() + m.v_dim());
}

// NCCL's per-communicator buffers, TE's userbuffers (one [s·b, h] 16-bit buffer per
// overlapped GEMM) and the two pipeline receive buffers (docs/MEMORY.md §3).
double buffer_bytes(const model_spec& m, const step_config& cfg, int ub_buffers) {
  constexpr double nccl_per_communicator = 0.25 * gib;
  int communicators = 0;
  for (int size : {cfg.tp, cfg.cp, cfg.dp * cfg.cp, cfg.pp}) communicators += size > 1 ? 1 : 0;
  const double tokens = static_cast<double>(m.seq_length) / cfg.cp * cfg.mbs;
  const double h = static_cast<double>(m.hidden);
  const double ub = ub_buffers * 2 * tokens * h;
  const double p2p = cfg.pp > 1 ? 2 * 2 * tokens * h / (cfg.sequence_parallel ? cfg.tp : 1) : 0;
  return communicators * nccl_per_communicator + ub + p2p + cp_gather_bytes(m, cfg);
}

memory_parts stage_memory(const model_spec& m, const step_config& cfg, int stage, int ub) {
  memory_parts out;
  add_model_state(out, m, cfg, stage);
  out.activations = stage_activations(m, cfg, stage) / gib;
  // Megatron-FSDP's fp32 gradient copy counts only where it outgrows the activations it follows.
  if (cfg.fsdp) {
    const double copy = stage_params(m, cfg, stage).total() * fsdp_grad_copy_bytes(m, cfg) /
                        (cfg.dp * cfg.cp) / gib;
    out.optimizer += std::max(0.0, copy - out.activations);
  }
  out.buffers = buffer_bytes(m, cfg, ub) / gib;
  // The CUDA context and library workspaces, and the caching allocator's fragmentation.
  out.reserve = 1.0 + 0.05 * out.total();
  return out;
}

}  // namespace

memory_estimate estimate_memory(const model_spec& model, const gpu_spec& gpu,
                                const step_config& cfg, int ub_buffers) {
  memory_estimate best;
  for (int stage : {0, cfg.pp - 1}) {
    const memory_parts parts = stage_memory(model, cfg, stage, ub_buffers);
    if (stage == 0 || parts.total() > best.gib.total()) {
      best.gib = parts;
      best.stage = stage;
    }
  }
  if (gpu.hbm_gib > 0) best.fits = best.gib.total() <= gpu.hbm_gib;
  return best;
}

}  // namespace ob
