#pragma once
// A transformer model's shape (configs/models/<name>.json).
#include <cstdint>
#include <string>

#include "core/ir.hpp"

namespace ob {

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
  dtype type = dtype::bf16;
  bool gated_mlp = false;  // SwiGLU: fc1 produces 2·ffn_hidden
  bool causal = true;

  std::int64_t head_dim() const { return hidden / heads; }
  std::int64_t qkv_width() const { return (heads + 2 * kv_heads) * head_dim(); }
  std::int64_t tokens() const { return seq_length * micro_batch; }
};

model_spec load_model_spec(const std::string& ref, const std::string& field = "model");

}  // namespace ob
