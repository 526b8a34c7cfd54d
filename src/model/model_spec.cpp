#include "model/model_spec.hpp"

#include <filesystem>

#include "base/config_paths.hpp"
#include "base/error.hpp"
#include "base/json_util.hpp"
#include "base/units.hpp"

namespace ob {

std::int64_t moe_shape::moe_layer_count() const {
  std::int64_t n = 0;
  for (bool b : layers) n += b ? 1 : 0;
  return n;
}

namespace {

// moe_layer_freq: an integer k (Megatron: layer i is MoE when i % k == 0) or one 0/1 per layer.
std::vector<bool> moe_layer_pattern(const json_object& top, std::int64_t layers) {
  std::vector<bool> out(static_cast<std::size_t>(layers), true);
  if (!top.has("moe_layer_freq")) return out;
  const json& f = top.get_raw("moe_layer_freq");
  if (f.is_number_integer()) {
    const std::int64_t k = top.get_int_in("moe_layer_freq", 1, layers);
    for (std::int64_t i = 0; i < layers; ++i) out[static_cast<std::size_t>(i)] = i % k == 0;
    return out;
  }
  const auto bad = [&](const std::string& why) { top.fail("moe_layer_freq", why); };
  if (!f.is_array()) bad("expected an integer or an array of 0/1, got " + describe_json(f));
  if (static_cast<std::int64_t>(f.size()) != layers)
    bad("expected one entry per layer (" + std::to_string(layers) + "), got " +
        std::to_string(f.size()));
  for (std::size_t i = 0; i < f.size(); ++i) {
    if (!f[i].is_number_integer() || (f[i] != 0 && f[i] != 1))
      bad("entry " + std::to_string(i) + ": expected 0 or 1, got " + describe_json(f[i]));
    out[i] = f[i] == 1;
  }
  return out;
}

void read_moe(const json_object& top, model_spec& m) {
  const bool any = top.has("num_moe_experts");
  for (const char* key : {"moe_router_topk", "moe_ffn_hidden_size",
                          "moe_shared_expert_intermediate_size", "moe_layer_freq"})
    if (!any && top.has(key)) top.fail(key, "needs num_moe_experts");
  if (!any) return;
  moe_shape& e = m.moe;
  e.experts = top.get_int_in("num_moe_experts", 1, 1 << 16);
  e.topk = top.get_int_in("moe_router_topk", 1, e.experts);
  e.ffn_hidden = top.get_int_in("moe_ffn_hidden_size", 1, max_gemm_dim, m.ffn_hidden);
  e.shared_ffn_hidden = top.get_int_in("moe_shared_expert_intermediate_size", 0, max_gemm_dim, 0);
  e.layers = moe_layer_pattern(top, m.layers);
}

void read_mla(const json_object& top, model_spec& m) {
  mla_shape& a = m.mla;
  a.enabled = top.get_bool("multi_latent_attention", false);
  for (const char* key :
       {"q_lora_rank", "kv_lora_rank", "qk_head_dim", "qk_pos_emb_head_dim", "v_head_dim"}) {
    if (!a.enabled && top.has(key)) top.fail(key, "needs multi_latent_attention: true");
  }
  if (!a.enabled) return;
  a.q_lora_rank = top.get_int_in("q_lora_rank", 0, max_gemm_dim, 0);
  a.kv_lora_rank = top.get_int_in("kv_lora_rank", 1, max_gemm_dim);
  a.qk_head_dim = top.get_int_in("qk_head_dim", 1, 1 << 16);
  a.qk_pos_emb_head_dim = top.get_int_in("qk_pos_emb_head_dim", 0, 1 << 16);
  a.v_head_dim = top.get_int_in("v_head_dim", 1, 1 << 16);
}

void read_attention_extras(const json_object& top, model_spec& m) {
  m.kv_channels = top.get_int_in("kv_channels", 1, 1 << 16, 0);
  m.window_size = top.get_int_in("window_size", 1, 1 << 24, 0);
  m.window_attn_skip_freq = top.get_int_in("window_attn_skip_freq", 1, m.layers, 0);
  if (m.window_attn_skip_freq > 0 && m.window_size == 0)
    top.fail("window_attn_skip_freq", "needs window_size");
  m.mtp_num_layers = top.get_int_in("mtp_num_layers", 0, 1 << 8, 0);
  m.softmax = parse_enum<softmax_kind>(
      top.get_enum("softmax_type", {"vanilla", "off-by-one", "learnable"}, "vanilla"),
      top.where("softmax_type"));
}

// Biases and the rotary embedding, in Megatron-Core's names (docs/MOE.md §14.3).
void read_layer_extras(const json_object& top, model_spec& m) {
  m.add_bias_linear = top.get_bool("add_bias_linear", false);
  m.add_qkv_bias = top.get_bool("add_qkv_bias", m.add_bias_linear);
  m.bias_dropout_fusion = top.get_bool("bias_dropout_fusion", true);
  m.position = parse_enum<position_embedding>(
      top.get_enum("position_embedding_type", {"learned_absolute", "rope", "yarn", "none"},
                   "learned_absolute"),
      top.where("position_embedding_type"));
  m.apply_rope_fusion = top.get_bool("apply_rope_fusion", true);
  const bool yarn = m.position == position_embedding::yarn;
  if (!yarn && top.has("yarn_rotary_scaling_factor"))
    top.fail("yarn_rotary_scaling_factor", "needs position_embedding_type: yarn");
  m.yarn_rotary_scaling_factor = top.get_number("yarn_rotary_scaling_factor", 1.0);
  if (!(m.yarn_rotary_scaling_factor >= 1 && m.yarn_rotary_scaling_factor <= 1e6))
    top.fail("yarn_rotary_scaling_factor",
             "must be in [1, 1e6], got " + std::to_string(m.yarn_rotary_scaling_factor));
}

}  // namespace

void require_dense_planner_support(const model_spec& m, const std::string& field,
                                   bool step_planner) {
  if (step_planner) return;
  std::vector<std::string> parts;
  if (m.moe.enabled()) parts.emplace_back("mixture-of-experts layers (num_moe_experts)");
  if (m.mla.enabled) parts.emplace_back("multi-latent attention");
  if (m.window_size > 0) parts.emplace_back("sliding-window attention (window_size)");
  if (m.mtp_num_layers > 0) parts.emplace_back("multi-token prediction (mtp_num_layers)");
  if (parts.empty()) return;
  std::string what = parts.front();
  for (std::size_t i = 1; i < parts.size(); ++i) what += ", " + parts[i];
  throw config_error(field + ": model '" + m.name + "' has " + what +
                     ", which the layer planner does not model (only step does; docs/MOE.md)");
}

model_spec load_model_spec(const std::string& ref, const std::string& field) {
  const std::string path = find_config("models", ref, field);
  const json doc = load_json_file(path);
  const json_object top(doc, path, "");
  model_spec m;
  m.name = std::filesystem::path(path).stem().string();
  top.get_string("comment", "");
  top.get_string("source", "");
  m.display_name = top.get_string("display_name", m.name);
  // Sizes a layer's GEMMs can take (units.hpp's max_gemm_dim); the sequence and micro-batch as
  // --set allows them.
  m.hidden = top.get_int_in("hidden_size", 1, max_gemm_dim);
  m.ffn_hidden = top.get_int_in("ffn_hidden_size", 1, max_gemm_dim);
  m.heads = top.get_int_in("num_attention_heads", 1, 1 << 16);
  m.kv_heads = top.get_int_in("num_query_groups", 1, 1 << 16, m.heads);
  m.seq_length = top.get_int_in("seq_length", 1, 1 << 24);
  m.micro_batch = top.get_int_in("micro_batch_size", 1, 1 << 16, 1);
  m.layers = top.get_int_in("num_layers", 1, 1 << 16);
  m.vocab_size = top.get_int_in("vocab_size", 1, 1 << 24);
  m.type = parse_enum<dtype>(
      top.get_enum("dtype", {"bf16", "fp16", "fp8", "mxfp8", "nvfp4"}, "bf16"), path + ": dtype");
  m.gated_mlp = top.get_bool("gated_linear_unit", false);
  m.causal = top.get_bool("causal", true);
  m.tie_embeddings = top.get_bool("share_embeddings_and_output_weights", false);
  m.attention = parse_enum<attention_backend>(
      top.get_enum("attention_backend", {"flash", "unfused", "flash2"}, "flash"),
      path + ": attention_backend");
  m.attention_dropout = top.get_number("attention_dropout", 0.0);
  m.hidden_dropout = top.get_number("hidden_dropout", 0.0);
  read_attention_extras(top, m);
  read_layer_extras(top, m);
  read_moe(top, m);
  read_mla(top, m);
  top.finish();
  if (m.attention_dropout < 0 || m.attention_dropout >= 1)
    top.fail("attention_dropout", "must be in [0, 1), got " + std::to_string(m.attention_dropout));
  if (m.hidden_dropout < 0 || m.hidden_dropout >= 1)
    top.fail("hidden_dropout", "must be in [0, 1), got " + std::to_string(m.hidden_dropout));
  if (m.hidden % m.heads != 0)
    top.fail("hidden_size", "must be divisible by num_attention_heads (" + std::to_string(m.heads) +
                                "), got " + std::to_string(m.hidden));
  if (m.heads % m.kv_heads != 0)
    top.fail("num_query_groups", "must divide num_attention_heads (" + std::to_string(m.heads) +
                                     "), got " + std::to_string(m.kv_heads));
  return m;
}

}  // namespace ob
