#include "model/model_spec.hpp"

#include <filesystem>

#include "base/config_paths.hpp"
#include "base/json_util.hpp"
#include "base/units.hpp"

namespace ob {

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
      top.get_enum("attention_backend", {"flash", "unfused"}, "flash"),
      path + ": attention_backend");
  m.attention_dropout = top.get_number("attention_dropout", 0.0);
  m.hidden_dropout = top.get_number("hidden_dropout", 0.0);
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
