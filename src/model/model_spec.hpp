#pragma once
// A transformer model's shape (configs/models/<name>.json).
#include <cstdint>
#include <string>

#include "model/ir.hpp"

namespace ob {

// How the attention core runs (Megatron-Core's --attention-backend). flash: one fused kernel that
// never writes the s x s scores (FlashAttention, Transformer Engine's fused attention). unfused:
// Megatron's original core attention, a batched GEMM for the scores, the fused scale-mask-softmax
// kernel, attention dropout and a batched GEMM for the context, each writing and reading the
// scores in HBM; its memory traffic is why selective recomputation recomputes exactly this part
// (docs/ARCHITECTURE.md §3.1).
enum class attention_backend { flash, unfused };
template <>
struct enum_names<attention_backend> {
  static constexpr std::string_view noun = "attention backend";
  static constexpr std::array names = {enum_entry{attention_backend::flash, "flash"},
                                       enum_entry{attention_backend::unfused, "unfused"}};
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
  bool gated_mlp = false;  // SwiGLU: fc1 produces 2·ffn_hidden
  bool causal = true;
  // GPT ties the input embedding to the output layer: their gradients are all-reduced between the
  // first and the last pipeline stage.
  bool tie_embeddings = false;
  attention_backend attention = attention_backend::flash;
  double attention_dropout = 0;  // probability; unfused attention runs a dropout kernel when > 0
  double hidden_dropout = 0;     // after each sub-layer, in the bias-dropout-add

  std::int64_t head_dim() const { return hidden / heads; }
  std::int64_t qkv_width() const { return (heads + 2 * kv_heads) * head_dim(); }
  std::int64_t tokens() const { return seq_length * micro_batch; }
};

// A name in configs/models/ or a path to a file with the same fields: num_layers, hidden_size,
// ffn_hidden_size, num_attention_heads, num_query_groups (default: no GQA), seq_length,
// vocab_size, micro_batch_size (default 1), dtype (bf16 | fp16 | fp8 | mxfp8 | nvfp4, default
// bf16), gated_linear_unit, causal, share_embeddings_and_output_weights, attention_backend (flash |
// unfused, default flash), attention_dropout and hidden_dropout (default 0), display_name,
// comment, source.
// Unknown keys and bad values are config errors naming the file and key (exit 2).
model_spec load_model_spec(const std::string& ref, const std::string& field = "model");

}  // namespace ob
