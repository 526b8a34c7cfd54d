// GPT-OSS's layer beyond its shapes (docs/MOE.md §14.3): attention sinks (softmax_type), the
// sliding window's computed tiles and its mask-only unfused path, the biases outside the
// bias-dropout-add, and YaRN's unfused rotary embedding, each on the simulated timeline.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "base/config_paths.hpp"
#include "base/error.hpp"
#include "model/model_spec.hpp"
#include "model/workload.hpp"
#include "scratch_path.hpp"
#include "step_test_util.hpp"

namespace ob {
namespace {

using test::simulate;
using test::timeline;

// gpt_oss_120b.json with `changes` applied, written where the test can point at it.
std::string gpt_oss_variant(const std::string& tag, const nlohmann::json& changes) {
  const auto path = test::scratch_path("gpt_oss_" + tag + ".json");
  nlohmann::json m =
      nlohmann::json::parse(std::ifstream(config_root() + "/models/gpt_oss_120b.json"));
  for (const auto& [key, value] : changes.items()) {
    if (value.is_null())
      m.erase(key);
    else
      m[key] = value;
  }
  std::ofstream(path) << m.dump();
  return path.string();
}

timeline two_layers(const std::string& model) {
  step_scenario sc;
  sc.model = model;
  sc.cluster = "dgx_b200";
  sc.allow_oom = true;
  sc.axes = {{"gpus", {"8"}}, {"ep", {"8"}}, {"layers", {"2"}}, {"gbs", {"8"}}};
  return simulate(sc);
}

const elementwise_params& step_params(const layer_workload& w, const std::string& slot) {
  for (const layer_step& s : w.steps)
    if (const auto* e = std::get_if<layer_elementwise>(&s); e && e->slot == slot) return e->params;
  throw std::out_of_range(slot);
}
bool has_step(const layer_workload& w, const std::string& slot) {
  try {
    step_params(w, slot);
    return true;
  } catch (const std::out_of_range&) {
    return false;
  }
}

std::string load_error(const std::string& path) {
  try {
    load_model_spec(path);
  } catch (const config_error& e) {
    return e.what();
  }
  return "";
}

TEST(GptOssConfig, FieldsReadWithMegatronsNamesAndBadValuesNameTheField) {
  const model_spec m = load_model_spec("gpt_oss_120b");
  EXPECT_EQ(m.softmax, softmax_kind::learnable);
  EXPECT_TRUE(m.add_bias_linear && m.add_qkv_bias);
  EXPECT_FALSE(m.bias_dropout_fusion);
  EXPECT_EQ(m.position, position_embedding::yarn);
  EXPECT_TRUE(m.rotary());
  EXPECT_FALSE(m.rope_fused());  // YaRN's concentration factor: Megatron's unfused RoPE
  const model_spec llama = load_model_spec("llama3_8b");  // leaves every new field out
  EXPECT_EQ(llama.softmax, softmax_kind::vanilla);
  EXPECT_FALSE(llama.add_bias_linear || llama.rotary());
  const std::string sinks = load_error(gpt_oss_variant("bad_softmax", {{"softmax_type", "sink"}}));
  EXPECT_NE(sinks.find("softmax_type"), std::string::npos) << sinks;
  const std::string yarn = load_error(gpt_oss_variant(
      "bad_yarn", {{"position_embedding_type", "rope"}, {"yarn_rotary_scaling_factor", 4}}));
  EXPECT_NE(yarn.find("yarn_rotary_scaling_factor"), std::string::npos) << yarn;
  EXPECT_NE(yarn.find("needs position_embedding_type: yarn"), std::string::npos) << yarn;
}

// A fused kernel takes the sink into each row's softmax: two FLOPs a row in each direction, the
// same bytes, and no time to speak of on the timeline.
TEST(GptOssSinks, FusedCoreCarriesTheSinkInTheKernel) {
  model_spec m = load_model_spec("gpt_oss_120b");
  const parallel_layout l;
  const layer_workload sink = make_layer_workload(m, l);
  m.softmax = softmax_kind::vanilla;
  const layer_workload plain = make_layer_workload(m, l);
  const double rows = 4096.0 * 64;  // tokens x heads
  for (const char* slot : {"attn_fwd", "attn_bwd"}) {
    EXPECT_EQ(step_params(sink, slot).bytes, step_params(plain, slot).bytes);
    EXPECT_DOUBLE_EQ(step_params(sink, slot).flops - step_params(plain, slot).flops, 2 * rows);
  }
  EXPECT_FALSE(has_step(sink, "attn_fwd_sink"));
  const timeline with = two_layers("gpt_oss_120b");
  const timeline without = two_layers(gpt_oss_variant("vanilla", {{"softmax_type", "vanilla"}}));
  const double a = with.length(0, "c0.mb0.L1.attn_fwd"),
               b = without.length(0, "c0.mb0.L1.attn_fwd");
  EXPECT_GE(a, b);
  EXPECT_LT(a, b * 1.001);
}

// Unfused attention: a window only masks, so the windowed layer computes and stores the same s x s
// scores as a full one (and its softmax reads the mask); a sink concatenates a column, one more
// pass over the scores each way. On the timeline the unfused windowed layer costs what the full
// one does, many times the fused windowed core.
TEST(GptOssSinks, UnfusedWindowIsMaskOnlyAndTheSinkCopiesTheScores) {
  model_spec m = load_model_spec("gpt_oss_120b");
  m.attention = attention_backend::unfused;
  m.softmax = softmax_kind::vanilla;
  const parallel_layout l;
  const layer_workload win = make_layer_workload(m, l, true), full = make_layer_workload(m, l);
  const double n = 4096.0 * 64 * 4096;  // scores: tokens x heads x keys
  EXPECT_EQ(step_params(win, "attn_fwd_scores").bytes, step_params(full, "attn_fwd_scores").bytes);
  EXPECT_EQ(step_params(win, "attn_fwd_scores").flops, step_params(full, "attn_fwd_scores").flops);
  EXPECT_EQ(step_params(win, "attn_fwd_softmax").bytes,
            step_params(full, "attn_fwd_softmax").bytes + static_cast<std::uint64_t>(n));
  m.softmax = softmax_kind::learnable;
  const layer_workload sink = make_layer_workload(m, l, true);
  EXPECT_EQ(step_params(sink, "attn_fwd_sink").bytes, static_cast<std::uint64_t>(4 * n));
  EXPECT_EQ(step_params(sink, "attn_bwd_sink").bytes, static_cast<std::uint64_t>(4 * n));

  const timeline fused = two_layers("gpt_oss_120b");
  const timeline unfused =
      two_layers(gpt_oss_variant("unfused", {{"attention_backend", "unfused"}}));
  const auto core = [](const timeline& t, const std::string& L, const char* dir) {
    double total = 0;
    for (const op& o : t.prog.stages[0].ops)
      if (o.name.rfind("c0.mb0." + L + "." + dir, 0) == 0) total += t.length(0, o.name);
    return total;
  };
  EXPECT_GT(unfused.length(0, "c0.mb0.L0.attn_fwd_sink"), 0);
  // Not cheaper than the full layer (equal up to the timeline's rounding).
  EXPECT_GE(core(unfused, "L0", "attn_fwd"), core(unfused, "L1", "attn_fwd") * (1 - 1e-9));
  EXPECT_GT(core(unfused, "L0", "attn_fwd"), 20 * core(fused, "L0", "attn_fwd"));
}

// A fused kernel computes whole 128 x 128 tiles: at a 128-token window each query tile touches
// two key tiles, 252 keys a query on average against the 126 it attends.
TEST(GptOssWindow, FusedWindowComputesTheTilesItsBandTouches) {
  const model_spec m = load_model_spec("gpt_oss_120b");
  EXPECT_DOUBLE_EQ(computed_keys(m, true), (128.0 * 128 + 31 * 128.0 * 256) / 4096);
  EXPECT_DOUBLE_EQ(computed_keys(m, false), attended_keys(m, false));
  model_spec wide = m;
  wide.window_size = 1024;  // 9 key tiles a query tile once the band is full
  EXPECT_NEAR(computed_keys(wide, true),
              (128.0 * 128 * (1 + 2 + 3 + 4 + 5 + 6 + 7 + 8) + 24 * 128.0 * 9 * 128) / 4096, 1e-9);
  const timeline t = two_layers("gpt_oss_120b");
  const double flops = t.named(0, "c0.mb0.L0.attn_fwd").as<elementwise_params>().flops;
  EXPECT_DOUBLE_EQ(flops, 2.0 * 4096 * 252 * 64 * 128 + 2 * 4096.0 * 64);
  // Still far shorter than the full layer's core, by less than the attended-key ratio.
  const double ratio = t.length(0, "c0.mb0.L1.attn_fwd") / t.length(0, "c0.mb0.L0.attn_fwd");
  EXPECT_GT(ratio, 3);
  EXPECT_LT(ratio, 2048 / 126.0);
}

// Without bias_dropout_fusion the output projection's bias is a kernel of its own between the
// projection and the residual add; the backward sums its gradient over the tokens. A MoE layer's
// MLP returns no bias (no fc2_ bias ops); QKV's bias is in its GEMM (no op).
TEST(GptOssBias, UnfusedBiasAddRunsBetweenProjectionAndResidual) {
  const timeline t = two_layers("gpt_oss_120b");
  const std::string L = "c0.mb0.L0.";
  EXPECT_GE(t.at(0, L + "proj_bias_fwd").start_us, t.at(0, L + "proj_fprop").end_us);
  EXPECT_GE(t.at(0, L + "bda_attn_fwd").start_us, t.at(0, L + "proj_bias_fwd").end_us);
  EXPECT_GT(t.length(0, L + "proj_bias_fwd"), 0);
  EXPECT_GE(t.at(0, L + "proj_dgrad").start_us, t.at(0, L + "proj_bias_bgrad").end_us);
  EXPECT_EQ(t.find(0, L + "fc2_bias_fwd"), nullptr);
  EXPECT_EQ(t.find(0, L + "qkv_bias_fwd"), nullptr);
  const timeline fused = two_layers(gpt_oss_variant("bda_fused", {{"bias_dropout_fusion", true}}));
  EXPECT_EQ(fused.find(0, L + "proj_bias_fwd"), nullptr);
  EXPECT_NE(fused.find(0, L + "proj_bias_bgrad"), nullptr);
  // A dense model with biases adds fc2's too; bytes: read the output, write it, read the bias.
  model_spec dense = load_model_spec("llama3_8b");
  dense.add_bias_linear = true;
  dense.bias_dropout_fusion = false;
  const layer_workload w = make_layer_workload(dense, parallel_layout{});
  const double th = 8192.0 * 4096;  // tokens x hidden
  EXPECT_EQ(step_params(w, "fc2_bias_fwd").bytes, static_cast<std::uint64_t>(th * 4 + 2 * 4096));
  EXPECT_EQ(step_params(w, "fc2_bias_bgrad").bytes, static_cast<std::uint64_t>(th * 2));
}

// YaRN's concentration factor sends Megatron to the unfused RoPE: 12 two-byte accesses a
// rotated element forward and 10 backward, against one read and one write fused; it runs between
// the QKV GEMM and the core, and its backward between the core's and QKV's dgrad.
TEST(GptOssRope, YarnRunsTheUnfusedRotaryBetweenQkvAndTheCore) {
  const double rotated = 4096.0 * (64 + 8) * 64;  // tokens x (query + key heads) x head_dim
  const layer_workload yarn = make_layer_workload(load_model_spec("gpt_oss_120b"), {});
  EXPECT_EQ(step_params(yarn, "rope_fwd").bytes, static_cast<std::uint64_t>(rotated * 24));
  EXPECT_EQ(step_params(yarn, "rope_bwd").bytes, static_cast<std::uint64_t>(rotated * 20));
  const timeline t = two_layers("gpt_oss_120b");
  const std::string L = "c0.mb0.L1.";
  EXPECT_GE(t.at(0, L + "rope_fwd").start_us, t.at(0, L + "qkv_fprop").end_us);
  EXPECT_GE(t.at(0, L + "attn_fwd").start_us, t.at(0, L + "rope_fwd").end_us);
  EXPECT_GE(t.at(0, L + "rope_bwd").start_us, t.at(0, L + "attn_bwd").end_us);
  EXPECT_GE(t.at(0, L + "qkv_dgrad").start_us, t.at(0, L + "rope_bwd").end_us);
  const timeline fused = two_layers(gpt_oss_variant(
      "rope", {{"position_embedding_type", "rope"}, {"yarn_rotary_scaling_factor", nullptr}}));
  EXPECT_EQ(fused.named(0, L + "rope_fwd").as<elementwise_params>().bytes,
            static_cast<std::uint64_t>(rotated * 4));
  EXPECT_GT(t.length(0, L + "rope_fwd"), 3 * fused.length(0, L + "rope_fwd"));
  const timeline none = two_layers(gpt_oss_variant(
      "no_rope", {{"position_embedding_type", nullptr}, {"yarn_rotary_scaling_factor", nullptr}}));
  EXPECT_EQ(none.find(0, L + "rope_fwd"), nullptr);
}

}  // namespace
}  // namespace ob
