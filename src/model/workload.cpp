#include "model/workload.hpp"

#include <algorithm>
#include <stdexcept>

#include "base/error.hpp"
#include "base/units.hpp"

namespace ob {

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

void check_layout(const model_spec& model, const parallel_layout& layout) {
  const std::int64_t t = layout.tp;
  if (t < 1 || layout.cp < 1) throw config_error("parallel layout: tp and cp must be >= 1");
  require_divisible(model.heads, t, "num_attention_heads", "tp");
  require_divisible(model.kv_heads, t, "num_query_groups", "tp");
  require_divisible(model.ffn_hidden, t, "ffn_hidden_size", "tp");
  require_divisible(model.hidden, t, "hidden_size", "tp");
  require_divisible(model.seq_length, layout.cp, "seq_length", "cp");
  if (model.mla.enabled && model.attention == attention_backend::unfused)
    throw config_error("model " + model.name +
                       ": multi-latent attention is modelled with attention_backend flash only");
  if (layout.cp > 1 && model.attention == attention_backend::unfused)
    throw config_error("parallel layout: context parallelism (cp " + std::to_string(layout.cp) +
                       ") needs attention_backend flash; model " + model.name + " is unfused");
  // The token dimension of every GEMM; beyond this the simulator's work explodes.
  if (model.tokens() / layout.cp > max_gemm_dim)
    throw config_error("parallel layout: tokens (seq_length x micro_batch / cp = " +
                       std::to_string(model.tokens() / layout.cp) + ") exceed " +
                       std::to_string(max_gemm_dim) + ", the largest GEMM dimension modelled");
  // Sequence parallelism shards T over TP ranks between the TP regions.
  if (layout.sequence_parallel)
    require_divisible(model.tokens() / layout.cp, t, "tokens (seq_length x micro_batch / cp)",
                      "tp");
}

// Appends one layer's steps in execution order. Sizes follow the shapes table of
// docs/ARCHITECTURE.md §3.1: T tokens, h hidden, f ffn hidden, t = tp.
class layer_builder {
 public:
  layer_builder(layer_workload& w, bool windowed)
      : w_(w),
        windowed_(windowed && w.model.window_size > 0),
        keys_(computed_keys(w.model, windowed)),
        t_(w.layout.tp),
        T_(w.tokens),
        h_(w.model.hidden),
        f_(w.model.ffn_hidden),
        f1_(w.model.gated_mlp ? 2 * f_ : f_),  // SwiGLU doubles fc1's output
        qkv_(w.model.mla.enabled ? w.model.heads * (2 * w.model.qk_dim() + w.model.v_dim())
                                 : w.model.qkv_width()),
        a_(w.model.heads * w.model.v_dim()),
        dt_(w.model.type),
        in_bytes_(dtype_bytes(dt_)),
        TH_(static_cast<std::uint64_t>(T_) * static_cast<std::uint64_t>(h_)),
        local_T_(w.layout.sequence_parallel ? T_ / t_ : T_),
        sp_(w.layout.sequence_parallel && t_ > 1),
        current_(dt_ == dtype::fp8 && w.model.scaling == fp8_scaling::current) {}

  void forward() {
    elementwise("ln1_fwd", false, ln_fwd_bytes(), ln_flops(), true);
    quantize("qkv_fp8_in", false, local_th(), true);
    if (w_.model.mla.enabled)
      mla_forward();
    else
      gemm("qkv_fprop", false, T_, h_, qkv_ / t_, comm_relation::ag_input, coll_op::all_gather,
           activation_ag());
    rope("rope_fwd", false);
    attention_forward();
    quantize("proj_fp8_in", false, rows(a_), false);
    gemm("proj_fprop", false, T_, a_ / t_, h_, comm_relation::rs_output, coll_op::reduce_scatter,
         output_comm());
    bias_forward("proj_bias_fwd");
    residual_forward("bda_attn_fwd");
    elementwise("ln2_fwd", false, ln_fwd_bytes(), ln_flops(), true);
    quantize("fc1_fp8_in", false, local_th(), true);
    gemm("fc1_fprop", false, T_, h_, f1_ / t_, comm_relation::ag_input, coll_op::all_gather,
         activation_ag());
    elementwise("act_fwd", false, act_bytes(), 4.0 * static_cast<double>(T_) * f1_ / t_, false);
    quantize("fc2_fp8_in", false, rows(f_), true);
    gemm("fc2_fprop", false, T_, f_ / t_, h_, comm_relation::rs_output, coll_op::reduce_scatter,
         output_comm());
    bias_forward("fc2_bias_fwd");
    residual_forward("bda_mlp_fwd");
  }

  // The order Transformer Engine runs the backward: each module's dgrad, then its wgrad.
  void backward() {
    dropout_backward("bda_mlp_bwd");
    bias_backward("fc2_bias_bgrad");
    quantize("fc2_fp8_dout", true, local_th(), false);
    gemm("fc2_dgrad", true, T_, h_, f_ / t_, comm_relation::ag_input, coll_op::all_gather,
         output_comm());
    gemm("fc2_wgrad", true, f_ / t_, T_, h_, comm_relation::external, coll_op::all_gather, {});
    elementwise("act_bwd", true, act_bytes() * 2, 6.0 * static_cast<double>(T_) * f1_ / t_, false);
    quantize("fc1_fp8_dout", true, rows(f1_), true);
    gemm("fc1_dgrad", true, T_, f1_ / t_, h_, comm_relation::independent_ag, coll_op::all_gather,
         activation_ag());
    gemm("fc1_wgrad", true, h_, T_, f1_ / t_, comm_relation::independent_rs,
         coll_op::reduce_scatter, output_comm(), "fc1_dgrad");
    elementwise("ln2_bwd", true, ln_bytes() * 2, 2 * ln_flops(), true);
    residual_backward("residual_mlp_bwd");
    dropout_backward("bda_attn_bwd");
    bias_backward("proj_bias_bgrad");
    quantize("proj_fp8_dout", true, local_th(), false);
    gemm("proj_dgrad", true, T_, h_, a_ / t_, comm_relation::ag_input, coll_op::all_gather,
         output_comm());
    gemm("proj_wgrad", true, a_ / t_, T_, h_, comm_relation::external, coll_op::all_gather, {});
    attention_backward();
    rope("rope_bwd", true);
    if (w_.model.mla.enabled) {
      mla_backward();
    } else {
      quantize("qkv_fp8_dout", true, rows(qkv_), false);
      gemm("qkv_dgrad", true, T_, qkv_ / t_, h_, comm_relation::independent_ag, coll_op::all_gather,
           activation_ag());
      gemm("qkv_wgrad", true, h_, T_, qkv_ / t_, comm_relation::independent_rs,
           coll_op::reduce_scatter, output_comm(), "qkv_dgrad");
    }
    elementwise("ln1_bwd", true, ln_bytes() * 2, 2 * ln_flops(), true);
    residual_backward("residual_attn_bwd");
  }

 private:
  // Megatron's bias-dropout-add after each sub-layer: reads the reduced output and the residual,
  // writes the sum (and a 1-byte mask with hidden dropout); it consumes the reduce-scatter before
  // it. In the backward the residual's gradient is added to the LayerNorm's input gradient, and
  // hidden dropout's mask is applied to the gradient before the dgrad GEMM.
  void residual_forward(const char* slot) {
    const double dropout = w_.model.hidden_dropout > 0 ? 1 : 0;
    elementwise(slot, false, bytes(local_th() * (6 + dropout)), local_th(), false, true);
  }
  void residual_backward(const char* slot) {
    elementwise(slot, true, bytes(local_th() * 6), local_th(), false);
  }
  void dropout_backward(const char* slot) {
    if (w_.model.hidden_dropout > 0)
      elementwise(slot, true, bytes(local_th() * 5), local_th(), false);
  }
  // add_bias_linear (docs/MOE.md §14.3): the row-parallel projections (proj, fc2) return their
  // bias for the bias-dropout-add (skip_bias_add). Without bias_dropout_fusion Megatron adds it in
  // a kernel of its own before the residual add (and dropout at p = 0 launches none); in the
  // backward autograd sums the output gradient over the tokens for the bias either way. The QKV
  // and fc1 biases ride in the GEMM epilogue (Transformer Engine's Linear) and cost no kernel. The
  // fc2_ names drop out of a MoE layer, whose experts return no bias to the bias-dropout-add.
  void bias_forward(const char* slot) {
    if (!w_.model.add_bias_linear || w_.model.bias_dropout_fusion) return;
    elementwise(slot, false, bytes(local_th() * 4 + 2.0 * h_), local_th(), false, true);
  }
  void bias_backward(const char* slot) {
    if (w_.model.add_bias_linear) elementwise(slot, true, bytes(local_th() * 2), local_th(), false);
  }
  // The rotary embedding of each local query and key head (docs/MOE.md §14.3). Fused (Transformer
  // Engine's kernel): one read and one write of q and k in each direction. Unfused (PyTorch ops in
  // Megatron-Core's rope_utils.py), 2-byte element accesses per rotated element: forward t * cos
  // (2), the negated half (1), rotate_half's cat (2), * sin (2), the add (3) and the cat with the
  // empty pass-through part (2) = 12; backward grad * sin (2), the negated half (1), the halves'
  // cat (2), grad * cos (2) and the sum of the two paths (3) = 10. One op per direction here;
  // the unfused path's five or six kernels per tensor are launched as one.
  void rope(const char* slot, bool bwd) {
    if (!w_.model.rotary() || w_.model.mla.enabled) return;
    const double rotated = static_cast<double>(T_) *
                           static_cast<double>((w_.model.heads + w_.model.kv_heads) / t_) *
                           static_cast<double>(w_.model.head_dim());
    const double accesses = w_.model.rope_fused() ? 2 : (bwd ? 10 : 12);
    elementwise(slot, bwd, bytes(rotated * accesses * 2), 3 * rotated, false);
  }
  double local_th() const { return static_cast<double>(local_T_) * static_cast<double>(h_); }
  // All T tokens by `width / t` columns: a column-parallel GEMM's output on this rank.
  double rows(std::int64_t width) const {
    return static_cast<double>(T_) * static_cast<double>(width / t_);
  }

  // fp8 with current scaling (model_spec.hpp): before a GEMM reads a tensor in fp8, its amax is
  // found, then it is cast, each an HBM pass over the 16-bit tensor (TE's FP8 Current Scaling
  // guide: two reads per quantization, one with delayed scaling). A LayerNorm or activation
  // kernel finds the amax while it writes its 16-bit output (`fused_amax`; TE's normalization and
  // activation extensions, FUSED_NORM_AMAX_FP8 / FUSED_ACTIVATION_AMAX_FP8); elsewhere a separate
  // amax kernel reads the tensor first. Not modelled: weights (TE casts them once per step, its
  // first micro-batch), the transposed fp8 copy Hopper's wgrad reads, and the 4-byte amax
  // all-reduce over TP of a sequence-parallel input (docs/CALIBRATION.md §3.8).
  void quantize(const std::string& tensor, bool bwd, double elems, bool fused_amax) {
    if (!current_) return;
    if (!fused_amax) elementwise(tensor + "_amax", bwd, bytes(2 * elems), elems, false);
    elementwise(tensor + "_cast", bwd, bytes(3 * elems), 2 * elems, false);
  }

  // The attention core between qkv and proj. Every slot's name starts with attn_fwd or attn_bwd:
  // context parallelism and selective recomputation find the core by that prefix.
  void attention_forward() {
    if (fused_attention(w_.model.attention)) {
      const bool fa2 = w_.model.attention == attention_backend::flash2;
      if (fa2) fa2_input_copy("attn_fwd", false);
      dpa_cast("qkv_fp8_dpa", false, qkv_elems(), true);
      elementwise("attn_fwd", false, attn_bytes(), attn_fwd_flops() + sink_flops(2), false, false,
                  attention_math(false));
      mark_attention_dropout();
      dpa_cast("proj_fp8_dpa_out", false, rows(a_), false);
      if (fa2) fa2_output_copy("attn_fwd", false);
      return;
    }
    // Unfused: each kernel writes or reads the n scores (16-bit; the dropout mask is 1 byte). A
    // window only masks (the scores stay s x s); with it, or with a sink, the softmax reads an
    // arbitrary mask, 1 byte a score. A sink is a column concatenated to the scores (one more
    // pass over them) and sliced off the probabilities (a view) (docs/MOE.md §14.3).
    const double n = score_count(), d = static_cast<double>(w_.model.head_dim());
    elementwise("attn_fwd_scores", false, qkv_read_bytes() + bytes(2 * n), 2 * n * d, false);
    if (sinks()) elementwise("attn_fwd_sink", false, bytes(4 * n), 0, false);
    elementwise("attn_fwd_softmax", false, bytes((arbitrary_mask() ? 5 : 4) * n), 5 * n, false);
    if (w_.model.attention_dropout > 0)
      elementwise("attn_fwd_dropout", false, bytes(5 * n), 2 * n, false);
    elementwise("attn_fwd", false, bytes(2 * n) + qkv_read_bytes() / 3, 2 * n * d, false);
    // Megatron's core attention returns the context as [s, b, h/t]: the [b, heads, s, d] bmm
    // output is permuted and copied (`permute(2, 0, 1, 3).contiguous()` in Megatron-LM's
    // CoreAttention and Megatron-Core's DotProductAttention); its gradient is a view.
    elementwise("attn_fwd_permute", false, bytes(4 * rows(a_)), 0, false);
  }
  // Megatron's autograd order: context GEMMs (dV, dP), dropout, softmax, score GEMMs (dQ, dK).
  void attention_backward() {
    if (fused_attention(w_.model.attention)) {
      const bool fa2 = w_.model.attention == attention_backend::flash2;
      if (fa2) fa2_output_copy("attn_bwd", true);
      dpa_cast("proj_fp8_dpa_dout", true, rows(a_), true);
      elementwise("attn_bwd", true, attn_bytes() * 2, 2.5 * attn_fwd_flops() + sink_flops(2), false,
                  false, attention_math(true));
      mark_attention_dropout();
      dpa_cast("qkv_fp8_dpa_dgrad", true, qkv_elems(), false);
      if (fa2) fa2_input_copy("attn_bwd", true);
      return;
    }
    const double n = score_count(), d = static_cast<double>(w_.model.head_dim());
    elementwise("attn_bwd_context", true, bytes(4 * n) + qkv_read_bytes() / 3, 4 * n * d, false);
    if (w_.model.attention_dropout > 0)
      elementwise("attn_bwd_dropout", true, bytes(5 * n), n, false);
    elementwise("attn_bwd_softmax", true, bytes(6 * n), 4 * n, false);
    if (sinks()) elementwise("attn_bwd_sink", true, bytes(4 * n), 0, false);
    elementwise("attn_bwd", true, bytes(4 * n) + qkv_read_bytes(), 4 * n * d, false);
  }
  // The fused kernel's rate: cuDNN's fp8 attention under fp8_dpa (per-tensor or MXFP8 scales),
  // else its 16-bit kernel or FlashAttention-2's.
  elementwise_math attention_math(bool bwd) const {
    if (w_.model.fp8_dpa && dt_ == dtype::mxfp8)
      return bwd ? elementwise_math::mxfp8_attention_bwd : elementwise_math::mxfp8_attention_fwd;
    if (w_.model.fp8_dpa)
      return bwd ? elementwise_math::fp8_attention_bwd : elementwise_math::fp8_attention_fwd;
    if (w_.model.attention == attention_backend::flash2)
      return bwd ? elementwise_math::flash2_attention_bwd : elementwise_math::flash2_attention_fwd;
    return bwd ? elementwise_math::flash_attention_bwd : elementwise_math::flash_attention_fwd;
  }
  // The casts Transformer Engine's FusedAttnFunc adds around an fp8 kernel (docs/ARCHITECTURE.md
  // §5.1, item 5). `into_fp8`: Q, K, V before the forward, dO before the backward, quantized from
  // 16 bits; otherwise O after the forward and dQ, dK, dV after the backward, which only the
  // delayed-scaling kernel writes in fp8 and which are dequantized to 16 bits. MXFP8 writes a
  // row-wise and a column-wise copy with a scale byte per 32 elements; current scaling reads the
  // tensor once more for its amax first.
  void dpa_cast(const std::string& name, bool bwd, double elems, bool into_fp8) {
    if (!w_.model.fp8_dpa) return;
    const bool delayed = dt_ == dtype::fp8 && w_.model.scaling == fp8_scaling::delayed;
    if (!into_fp8) {
      if (delayed) elementwise(name, bwd, bytes(3 * elems), elems, false);
      return;
    }
    if (dt_ == dtype::mxfp8) {
      elementwise(name + "_cast", bwd, bytes((4 + 2.0 / 32) * elems), 2 * elems, false);
      return;
    }
    if (!delayed) elementwise(name + "_amax", bwd, bytes(2 * elems), elems, false);
    elementwise(name + "_cast", bwd, bytes(3 * elems), 2 * elems, false);
  }
  // Elements of Q, K and V on this rank (MLA: its per-head K and V).
  double qkv_elems() const { return static_cast<double>(T_) * static_cast<double>(qkv_ / t_); }
  // Transformer Engine hands FlashAttention-2 q, k and v as separate contiguous [b, s, heads, d]
  // tensors, where Megatron gives views of one [s, b, ...] QKV output (docs/ARCHITECTURE.md
  // §3.1 names the code). With head dim 128, at least 512 rows and the interleaved sbh3d layout (no
  // GQA) one kernel copies them out (`_PrepareQKVForFA`) and its backward copies dq, dk, dv back
  // into the interleaved gradient. Otherwise each is `transpose(0, 1).contiguous()`, forward only
  // (the gradient of a transpose is a view): k and v are strided views of the QKV output and copy;
  // the query (contiguous after Megatron's GQA reshape) only with more than one sequence.
  void fa2_input_copy(const std::string& prefix, bool bwd) {
    const auto& m = w_.model;
    const double q = static_cast<double>(m.heads * m.head_dim() / t_);
    const double kv = static_cast<double>(2 * m.kv_heads * m.head_dim() / t_);
    const double T = static_cast<double>(T_);
    if (!m.mla.enabled && m.kv_heads == m.heads && m.head_dim() == 128 && T_ >= 512) {
      elementwise(prefix + "_fa_prepare", bwd, bytes(4 * T * (q + kv)), 0, false);
    } else if (!bwd) {
      elementwise(prefix + "_fa_copy", bwd, bytes(4 * T * (kv + (m.micro_batch > 1 ? q : 0))), 0,
                  false);
    }
  }
  // The output's transpose back to [s, b, ...] copies, forward and backward, with more than one
  // sequence (with one, [b, s] and [s, b] are the same memory).
  void fa2_output_copy(const std::string& prefix, bool bwd) {
    if (w_.model.micro_batch > 1)
      elementwise(prefix + "_fa_out_copy", bwd, bytes(4 * rows(a_)), 0, false);
  }
  // A fused kernel draws the dropout mask of the scores itself (no mask in memory): the forward
  // draws it and the backward draws it again from the same seed, each at a lower rate.
  void mark_attention_dropout() {
    std::get<layer_elementwise>(w_.steps.back()).params.dropout = w_.model.attention_dropout > 0;
  }
  bool sinks() const { return w_.model.softmax != softmax_kind::vanilla; }
  bool arbitrary_mask() const { return sinks() || windowed_; }
  // A fused kernel adds a sink to each query row's softmax in the forward (the exp and the add)
  // and, for a learnable one, sums its gradient per head in the backward: `per_row` FLOPs a row.
  double sink_flops(double per_row) const {
    if (!sinks()) return 0;
    return per_row * static_cast<double>(T_) * static_cast<double>(w_.model.heads / t_);
  }
  // Scores per TP rank: micro-batch x local heads x seq x seq (unfused attention has no CP).
  double score_count() const {
    return static_cast<double>(T_) * static_cast<double>(w_.model.heads / t_) *
           static_cast<double>(w_.model.seq_length);
  }
  std::uint64_t qkv_read_bytes() const { return static_cast<std::uint64_t>(T_) * (qkv_ / t_) * 2; }
  static std::uint64_t bytes(double b) { return static_cast<std::uint64_t>(b); }

  struct comm_size {
    std::uint64_t bytes = 0;
    dtype type = dtype::bf16;
  };
  // Gathered activations travel in the GEMM input type; gradients and GEMM outputs in bf16
  // (TE's reduce-scatter buffers are bf16 unless fp8_buf says otherwise).
  comm_size activation_ag() const { return {TH_ * in_bytes_, dt_}; }
  comm_size output_comm() const { return {TH_ * dtype_bytes(dtype::bf16), dtype::bf16}; }

  std::uint64_t ln_bytes() const {
    return static_cast<std::uint64_t>(local_T_) * h_ * (2 + in_bytes_);
  }
  // The forward LayerNorm writes its output in the GEMM's input type, or in 16 bits under current
  // scaling, where the cast follows (quantize).
  std::uint64_t ln_fwd_bytes() const {
    return static_cast<std::uint64_t>(local_T_) * h_ * (current_ ? 4 : 2 + in_bytes_);
  }
  double ln_flops() const { return 8.0 * static_cast<double>(local_T_) * h_; }
  // Flash attention forward: two GEMM-like passes over the attended keys, QK^T (qk_dim wide)
  // and PV (v_dim wide), 2·T·keys·heads/t·(qk_dim + v_dim) FLOPs; it reads q, k, v and writes o.
  double attn_fwd_flops() const {
    if (!w_.model.mla.enabled && !windowed_)  // as before MLA and windows, to the last bit
      return 4.0 * static_cast<double>(T_) * w_.model.seq_length * a_ / t_ *
             (w_.model.causal ? 0.5 : 1.0);
    const double dims = static_cast<double>(w_.model.qk_dim() + w_.model.v_dim());
    return 2.0 * static_cast<double>(T_) * keys_ * static_cast<double>(w_.model.heads / t_) * dims;
  }
  std::uint64_t attn_bytes() const {
    return static_cast<std::uint64_t>(T_) * ((qkv_ + a_) / t_) * 2;
  }
  std::uint64_t act_bytes() const { return static_cast<std::uint64_t>(T_) * ((f1_ + f_) / t_) * 2; }

  void gemm(std::string slot, bool bwd, std::int64_t m, std::int64_t k, std::int64_t n,
            comm_relation rel, coll_op op, comm_size comm, std::string input = {}) {
    layer_gemm g;
    g.slot = std::move(slot);
    g.backward = bwd;
    g.gemm = gemm_params{m, n, k, dt_, 0};
    g.relation = sp_ ? rel : comm_relation::external;
    g.comm = op;
    g.comm_bytes = sp_ && rel != comm_relation::external ? comm.bytes : 0;
    g.comm_type = comm.type;
    // Without sequence parallelism, TP all-reduces the row-parallel outputs (proj, fc2) in the
    // forward and the column-parallel input gradients (qkv, fc1 dgrad) in the backward.
    const bool reduces_output = g.slot == "proj_fprop" || g.slot == "fc2_fprop" ||
                                g.slot == "qkv_dgrad" || g.slot == "fc1_dgrad" ||
                                g.slot == "q_up_dgrad" || g.slot == "kv_up_dgrad";
    if (!w_.layout.sequence_parallel && t_ > 1 && reduces_output) {
      g.relation = comm_relation::ar_output;
      g.comm = coll_op::all_reduce;
      g.comm_bytes = output_comm().bytes;
      g.comm_type = output_comm().type;
    }
    g.comm_input_slot = std::move(input);
    w_.steps.emplace_back(std::move(g));
  }

  // LayerNorms consume the residual stream, i.e. the reduce-scattered output before them.
  void elementwise(std::string slot, bool bwd, std::uint64_t bytes, double flops, bool persistent,
                   bool consumes_rs = false, elementwise_math math = elementwise_math::gemm) {
    layer_elementwise e;
    e.slot = std::move(slot);
    e.backward = bwd;
    e.params = elementwise_params{bytes, flops, 0, persistent, math};
    e.consumes_pending_rs = persistent || consumes_rs;
    w_.steps.emplace_back(std::move(e));
  }

  // Multi-latent attention as Megatron-Core's MLASelfAttention lays it out (docs/MOE.md §14): the
  // down-projections run replicated on each rank's sequence-parallel tokens, their compressed
  // outputs (with the rotary key) are all-gathered over TP, normalised, and the column-parallel
  // up-projections give every local head its query, key and value. Without q_lora_rank the
  // query is projected from the gathered hidden states directly.
  struct mla_widths {
    std::int64_t q_in, kv_down, q_up, kv_up;
  };
  mla_widths mla() const {
    const mla_shape& a = w_.model.mla;
    return {a.q_lora_rank > 0 ? a.q_lora_rank : h_, a.kv_lora_rank + a.qk_pos_emb_head_dim,
            w_.model.heads * w_.model.qk_dim(),
            w_.model.heads * (a.qk_head_dim + w_.model.v_dim())};
  }
  comm_size gathered(std::int64_t width, dtype type) const {
    return {static_cast<std::uint64_t>(T_) * static_cast<std::uint64_t>(width) * dtype_bytes(type),
            type};
  }
  void mla_forward() {
    const mla_widths m = mla();
    const bool q_lora = w_.model.mla.q_lora_rank > 0;
    if (q_lora)
      gemm("q_down_fprop", false, local_T_, h_, m.q_in, comm_relation::external,
           coll_op::all_gather, {});
    gemm("kv_down_fprop", false, local_T_, h_, m.kv_down, comm_relation::external,
         coll_op::all_gather, {});
    elementwise("mla_norm_fwd", false, mla_norm_bytes(), mla_norm_flops(), false);
    gemm("q_up_fprop", false, T_, m.q_in, m.q_up / t_, comm_relation::ag_input, coll_op::all_gather,
         gathered(m.q_in, dt_));
    gemm("kv_up_fprop", false, T_, w_.model.mla.kv_lora_rank, m.kv_up / t_, comm_relation::ag_input,
         coll_op::all_gather, gathered(m.kv_down, dt_));
  }
  // Each up-projection's dgrad beside the gather of its input for the wgrad, the wgrad beside the
  // reduce-scatter of that dgrad's output; the replicated down-projections need no TP traffic.
  void mla_backward() {
    const mla_widths m = mla();
    const std::int64_t kv_lora = w_.model.mla.kv_lora_rank;
    gemm("kv_up_dgrad", true, T_, m.kv_up / t_, kv_lora, comm_relation::independent_ag,
         coll_op::all_gather, gathered(m.kv_down, dt_));
    gemm("kv_up_wgrad", true, kv_lora, T_, m.kv_up / t_, comm_relation::independent_rs,
         coll_op::reduce_scatter, gathered(m.kv_down, dtype::bf16), "kv_up_dgrad");
    gemm("q_up_dgrad", true, T_, m.q_up / t_, m.q_in, comm_relation::independent_ag,
         coll_op::all_gather, gathered(m.q_in, dt_));
    gemm("q_up_wgrad", true, m.q_in, T_, m.q_up / t_, comm_relation::independent_rs,
         coll_op::reduce_scatter, gathered(m.q_in, dtype::bf16), "q_up_dgrad");
    elementwise("mla_norm_bwd", true, mla_norm_bytes() * 2, 2 * mla_norm_flops(), false);
    gemm("kv_down_dgrad", true, local_T_, m.kv_down, h_, comm_relation::external,
         coll_op::all_gather, {});
    gemm("kv_down_wgrad", true, h_, local_T_, m.kv_down, comm_relation::external,
         coll_op::all_gather, {});
    if (w_.model.mla.q_lora_rank == 0) return;
    gemm("q_down_dgrad", true, local_T_, m.q_in, h_, comm_relation::external, coll_op::all_gather,
         {});
    gemm("q_down_wgrad", true, h_, local_T_, m.q_in, comm_relation::external, coll_op::all_gather,
         {});
  }
  // The query and key-value latent norms (RMSNorm) on the rank's tokens.
  double mla_latent_width() const {
    const mla_shape& a = w_.model.mla;
    return static_cast<double>(a.q_lora_rank + a.kv_lora_rank);
  }
  std::uint64_t mla_norm_bytes() const {
    return bytes(static_cast<double>(local_T_) * mla_latent_width() * 2 * 2);
  }
  double mla_norm_flops() const { return 8.0 * static_cast<double>(local_T_) * mla_latent_width(); }

  layer_workload& w_;
  const bool windowed_;
  const double keys_;  // attended keys per query (attended_keys)
  const std::int64_t t_, T_, h_, f_, f1_, qkv_;
  const std::int64_t
      a_;  // the attention heads' width: heads x head_dim (hidden unless kv_channels)
  const dtype dt_;
  const std::uint64_t in_bytes_, TH_;
  const std::int64_t local_T_;
  const bool sp_, current_;
};

}  // namespace

double attended_keys(const model_spec& model, bool windowed) {
  const auto s = static_cast<double>(model.seq_length);
  if (!windowed || model.window_size <= 0) return model.causal ? 0.5 * s : s;
  const double w = std::min(s, static_cast<double>(model.window_size));
  if (!model.causal) return std::min(s, 2 * w + 1);
  // Queries 0 .. w-1 see i + 1 keys, the remaining s - w see w each.
  return (w * (w + 1) / 2 + (s - w) * w) / s;
}

double computed_keys(const model_spec& model, bool windowed) {
  if (!windowed || model.window_size <= 0 || !model.causal || !fused_attention(model.attention))
    return attended_keys(model, windowed);
  // Query tile q (rows qB .. qB + B - 1) reaches back to key qB - (w - 1): key tiles
  // floor((qB - w + 1) / B) .. q, each computed whole.
  const std::int64_t s = model.seq_length, B = attention_tile;
  const std::int64_t w = std::min(s, model.window_size), tiles = (s + B - 1) / B;
  double computed = 0;
  for (std::int64_t q = 0; q < tiles; ++q) {
    const std::int64_t first = std::max<std::int64_t>(0, q * B - w + 1) / B;
    const std::int64_t rows = std::min(B, s - q * B);
    computed +=
        static_cast<double>(rows) * static_cast<double>(std::min(s, (q + 1) * B) - first * B);
  }
  return computed / static_cast<double>(s);
}

void accumulate_weight_gradients(layer_workload& w, dtype main_grad) {
  for (auto& s : w.steps)
    if (auto* g = std::get_if<layer_gemm>(&s); g && g->slot.ends_with("_wgrad")) {
      g->gemm.accumulate = true;
      g->gemm.out = main_grad;
    }
}

layer_workload make_layer_workload(const model_spec& model, const parallel_layout& layout,
                                   bool windowed) {
  check_layout(model, layout);
  layer_workload w;
  w.model = model;
  w.layout = layout;
  w.tokens = model.tokens() / layout.cp;
  layer_builder b(w, windowed);
  b.forward();
  b.backward();
  return w;
}

}  // namespace ob
