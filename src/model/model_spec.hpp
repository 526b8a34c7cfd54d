#pragma once
// A transformer model's shape (configs/models/<name>.json).
#include <cstdint>
#include <string>
#include <vector>

#include "model/ir.hpp"

namespace ob {

// How the attention core runs (Megatron-Core's --attention-backend). flash: one fused kernel that
// never writes the s x s scores (FlashAttention, Transformer Engine's fused attention). unfused:
// Megatron's original core attention, a batched GEMM for the scores, the fused scale-mask-softmax
// kernel, attention dropout and a batched GEMM for the context, each writing and reading the
// scores in HBM; its memory traffic is why selective recomputation recomputes exactly this part
// (docs/ARCHITECTURE.md §3.1).
// flash2: a fused kernel too, FlashAttention-2 (the flash-attn package), which Transformer Engine
// runs when its cuDNN backend is switched off (NVTE_FUSED_ATTN=0): a slower kernel on Hopper
// and a layout copy of q, k, v into it and of their gradients out (docs/ARCHITECTURE.md §5.1).
enum class attention_backend { flash, unfused, flash2 };
template <>
struct enum_names<attention_backend> {
  static constexpr std::string_view noun = "attention backend";
  static constexpr std::array names = {enum_entry{attention_backend::flash, "flash"},
                                       enum_entry{attention_backend::unfused, "unfused"},
                                       enum_entry{attention_backend::flash2, "flash2"}};
};
// Both flash backends keep the scores on chip; only unfused attention writes them to HBM.
inline bool fused_attention(attention_backend a) { return a != attention_backend::unfused; }

// How fp8 GEMM inputs get their per-tensor scale (Transformer Engine's recipes, docs/CALIBRATION.md
// §3.8). delayed: DelayedScaling, the scale from the amax history, so the cast is one read and
// fuses into the op that produces the tensor (the LayerNorm writes fp8). current:
// Float8CurrentScaling, the scale from the tensor's own amax: an amax pass, then the cast, two
// reads of each quantized tensor (TE's "FP8 Delayed Scaling" guide compares the two).
enum class fp8_scaling { delayed, current };
template <>
struct enum_names<fp8_scaling> {
  static constexpr std::string_view noun = "fp8 recipe";
  static constexpr std::array names = {enum_entry{fp8_scaling::delayed, "delayed"},
                                       enum_entry{fp8_scaling::current, "current"}};
};

// Megatron-Core's softmax_type: the attention softmax with no sink (vanilla), with a fixed zero
// logit added to every row's denominator (off-by-one), or with a learned logit per head
// (learnable: GPT-OSS's attention sinks; docs/MOE.md §14.3).
enum class softmax_kind { vanilla, off_by_one, learnable };
template <>
struct enum_names<softmax_kind> {
  static constexpr std::string_view noun = "softmax type";
  static constexpr std::array names = {enum_entry{softmax_kind::vanilla, "vanilla"},
                                       enum_entry{softmax_kind::off_by_one, "off-by-one"},
                                       enum_entry{softmax_kind::learnable, "learnable"}};
};

// Megatron-Core's position_embedding_type. rope and yarn rotate each layer's queries and keys
// (a kernel per layer, docs/MOE.md §14.3); learned_absolute and none add nothing per layer.
enum class position_embedding { learned_absolute, rope, yarn, none };
template <>
struct enum_names<position_embedding> {
  static constexpr std::string_view noun = "position embedding type";
  static constexpr std::array names = {
      enum_entry{position_embedding::learned_absolute, "learned_absolute"},
      enum_entry{position_embedding::rope, "rope"}, enum_entry{position_embedding::yarn, "yarn"},
      enum_entry{position_embedding::none, "none"}};
};

// Mixture of experts, in Megatron-Core's argument names (docs/MOE.md).
struct moe_shape {
  std::int64_t experts = 0;            // num_moe_experts; 0: every MLP is dense
  std::int64_t topk = 0;               // moe_router_topk: experts each token goes to
  std::int64_t ffn_hidden = 0;         // moe_ffn_hidden_size: one routed expert's FFN width
  std::int64_t shared_ffn_hidden = 0;  // moe_shared_expert_intermediate_size; 0: none
  // moe_layer_freq expanded to one entry per layer: true where the layer's MLP is MoE.
  std::vector<bool> layers;

  bool enabled() const { return experts > 0; }
  // Megatron builds an MTP layer as the model's last layer: MoE when that one is.
  bool last_is_moe() const { return enabled() && (layers.empty() || layers.back()); }
  std::int64_t moe_layer_count() const;
};

// Multi-latent attention (DeepSeek-V2/V3), in Megatron-Core's argument names.
struct mla_shape {
  bool enabled = false;                  // multi_latent_attention
  std::int64_t q_lora_rank = 0;          // 0: queries are not compressed
  std::int64_t kv_lora_rank = 0;         // the compressed key-value width
  std::int64_t qk_head_dim = 0;          // a head's query/key width without the rotary part
  std::int64_t qk_pos_emb_head_dim = 0;  // the rotary part of a query/key head
  std::int64_t v_head_dim = 0;
};

struct model_spec {
  std::string name;  // file stem
  std::string display_name;
  std::int64_t hidden = 0;
  std::int64_t ffn_hidden = 0;
  std::int64_t heads = 0;
  std::int64_t kv_heads = 0;  // = heads without GQA
  std::int64_t seq_length = 0;
  std::int64_t micro_batch = 1;
  std::int64_t layers = 0;
  std::int64_t vocab_size = 0;  // padded, as Megatron-LM pads it
  dtype type = dtype::bf16;
  fp8_scaling scaling = fp8_scaling::delayed;  // fp8 only; the step's fp8_recipe axis sets it
  bool gated_mlp = false;                      // SwiGLU: fc1 produces 2·ffn_hidden
  bool causal = true;
  // GPT ties the input embedding to the output layer: their gradients are all-reduced between the
  // first and the last pipeline stage.
  bool tie_embeddings = false;
  attention_backend attention = attention_backend::flash;
  // Transformer Engine's fp8_dpa (Megatron's fp8_dot_product_attention): the fused attention
  // runs on fp8 Q, K, V and dO under the fp8 recipe; the step's axis sets it (docs/ARCHITECTURE.md
  // §5.1, item 5).
  bool fp8_dpa = false;
  double attention_dropout = 0;  // probability; unfused attention runs a dropout kernel when > 0
  double hidden_dropout = 0;     // after each sub-layer, in the bias-dropout-add
  // kv_channels: a head's width where it is not hidden / heads (Qwen3, GPT-OSS); 0: hidden / heads.
  std::int64_t kv_channels = 0;
  // Sliding-window attention: window_size tokens (0: every layer attends to the whole sequence);
  // every window_attn_skip_freq-th layer attends fully (GPT-OSS alternates: 2).
  std::int64_t window_size = 0;
  std::int64_t window_attn_skip_freq = 0;
  std::int64_t mtp_num_layers = 0;  // multi-token prediction layers after the last (DeepSeek-V3)
  softmax_kind softmax = softmax_kind::vanilla;  // softmax_type: attention sinks
  // add_bias_linear: biases on the linear layers (the model files leave it false unless the model
  // has them); add_qkv_bias: on the QKV projection only. bias_dropout_fusion: Megatron's fused
  // bias-dropout-add; false adds the bias in a kernel of its own (docs/MOE.md §14.3).
  bool add_bias_linear = false;
  bool add_qkv_bias = false;
  bool bias_dropout_fusion = true;
  position_embedding position = position_embedding::learned_absolute;
  bool apply_rope_fusion = true;
  double yarn_rotary_scaling_factor = 1;  // YaRN's scale s; its concentration 0.1 ln s + 1
  moe_shape moe;
  mla_shape mla;

  std::int64_t head_dim() const { return kv_channels > 0 ? kv_channels : hidden / heads; }
  std::int64_t qkv_width() const { return (heads + 2 * kv_heads) * head_dim(); }
  // A query/key head's width in the attention core: MLA's qk_head_dim + qk_pos_emb_head_dim.
  std::int64_t qk_dim() const {
    return mla.enabled ? mla.qk_head_dim + mla.qk_pos_emb_head_dim : head_dim();
  }
  // A value head's width (MLA's v_head_dim): the attention output is heads x v_dim wide.
  std::int64_t v_dim() const { return mla.enabled ? mla.v_head_dim : head_dim(); }
  // Megatron's window_attn_skip_freq k: layer i (from 0) attends fully when (i + 1) % k == 0,
  // every other layer of a model with window_size through its window (docs/MOE.md §14).
  bool windowed_layer(std::int64_t i) const {
    return window_size > 0 && (window_attn_skip_freq == 0 || (i + 1) % window_attn_skip_freq != 0);
  }
  std::int64_t tokens() const { return seq_length * micro_batch; }
  bool rotary() const {
    return position == position_embedding::rope || position == position_embedding::yarn;
  }
  // Megatron-Core runs Transformer Engine's fused RoPE only where the rotation carries no scale:
  // YaRN's concentration factor (0.1 ln s + 1 for s > 1, yarn_mscale unset) sends it to the
  // unfused PyTorch path (rope_utils.py; docs/MOE.md §14.3).
  bool rope_fused() const {
    return rotary() && apply_rope_fusion &&
           !(position == position_embedding::yarn && yarn_rotary_scaling_factor > 1);
  }
};

// A name in configs/models/ or a path to a file with the same fields: num_layers, hidden_size,
// ffn_hidden_size, num_attention_heads, num_query_groups (default: no GQA), seq_length,
// vocab_size, micro_batch_size (default 1), dtype (bf16 | fp16 | fp8 | mxfp8 | nvfp4,
// default bf16),
// gated_linear_unit, causal, share_embeddings_and_output_weights, attention_backend (flash |
// unfused | flash2, default flash), attention_dropout and hidden_dropout (default 0), kv_channels,
// window_size, window_attn_skip_freq, mtp_num_layers, softmax_type (vanilla | off-by-one |
// learnable), add_bias_linear, add_qkv_bias, bias_dropout_fusion, position_embedding_type
// (learned_absolute | rope | yarn | none), apply_rope_fusion, yarn_rotary_scaling_factor, the MoE
// fields (num_moe_experts,
// moe_router_topk, moe_ffn_hidden_size, moe_shared_expert_intermediate_size, moe_layer_freq: an
// integer k, MoE on every k-th layer from the first, or one 0/1 per layer) and the MLA fields
// (multi_latent_attention, q_lora_rank, kv_lora_rank, qk_head_dim, qk_pos_emb_head_dim,
// v_head_dim), display_name, comment, source.
// Unknown keys and bad values are config errors naming the file and key (exit 2).
model_spec load_model_spec(const std::string& ref, const std::string& field = "model");

// The layer planner builds dense layers with multi-head (or grouped-query) attention, heads
// hidden / heads or kv_channels wide; the step planner also builds MoE layers, MLA, sliding
// windows and MTP layers (`step_planner`, docs/MOE.md §5, §14). A layer scenario with any of them
// is refused (config_error naming `field`, exit 2), rather than simulated as the dense model it is
// not.
void require_dense_planner_support(const model_spec& m, const std::string& field,
                                   bool step_planner = false);

}  // namespace ob
