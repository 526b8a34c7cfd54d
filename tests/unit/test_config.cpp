#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "base/config_paths.hpp"
#include "base/error.hpp"
#include "base/json_util.hpp"
#include "dist/communicator.hpp"
#include "model/cluster.hpp"
#include "model/gpu_spec.hpp"
#include "model/model_spec.hpp"
#include "scratch_path.hpp"

namespace ob {
namespace {

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const config_error& e) {
    return e.what();
  }
  return "";
}

TEST(JsonObject, ErrorsNameFileAndPath) {
  const json doc = json::parse(R"({"model": {"hidden_size": -5, "typo": 1}})");
  const json_object top(doc, "x.json", "");
  const json_object model = top.get_object("model");
  EXPECT_EQ(message_of([&] { model.get_positive_int("hidden_size"); }),
            "x.json: model.hidden_size: expected a positive integer, got -5");
  EXPECT_NE(message_of([&] { model.finish(); }).find("x.json: model.typo: unknown key"),
            std::string::npos);
  EXPECT_NE(message_of([&] { model.get_string("missing"); }).find("required field is missing"),
            std::string::npos);
  EXPECT_NE(message_of([&] { top.get_enum("model", {"a"}); }).find("expected a string"),
            std::string::npos);
}

TEST(JsonObject, UnusedKeysAreThoseNeverRead) {
  const json doc = json::parse(R"({"a": 1, "b": 2, "c": 3})");
  const json_object o(doc, "f", "");
  o.get_int("b");
  EXPECT_EQ(o.unused_keys(), (std::vector<std::string>{"a", "c"}));
}

TEST(JsonFile, BadJsonAndMissingFileAreConfigErrors) {
  const auto dir = test::scratch_path("config");
  std::filesystem::create_directories(dir);
  const auto bad = (dir / "bad.json").string();
  std::ofstream(bad) << "{\"a\": ";
  EXPECT_NE(message_of([&] { load_json_file(bad); }).find(bad + ": invalid JSON"),
            std::string::npos);
  EXPECT_THROW(load_json_file((dir / "absent.json").string()), config_error);
}

TEST(JsonFile, AtomicWriteReplacesWholeFile) {
  const auto dir = test::scratch_path("atomic");
  std::filesystem::remove_all(dir);
  const auto path = (dir / "sub" / "out.json").string();
  write_file_atomic(path, "first");
  write_file_atomic(path, "second");
  std::ifstream in(path);
  std::string content((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(content, "second");
  for (const auto& e : std::filesystem::directory_iterator(dir / "sub"))
    EXPECT_EQ(e.path().filename(), "out.json");
  EXPECT_THROW(write_file_atomic("/proc/forbidden/out.json", "x"), runtime_failure);
}

TEST(ConfigFiles, EveryGpuAndModelLoads) {
  for (const auto& name : list_configs("gpus")) {
    const gpu_spec g = load_gpu_spec(name);
    EXPECT_GT(g.sm_count, 0) << name;
    // FP8 doubles the tensor rate where it exists; A100 has none and refuses fp8 runs.
    if (g.supports(dtype::fp8))
      EXPECT_GT(g.peak_tflops(dtype::fp8), g.peak_tflops(dtype::bf16)) << name;
    else
      EXPECT_THROW(g.require(dtype::fp8, "--dtype"), config_error) << name;
    EXPECT_LT(g.nvlink_effective_gbps(), g.nvlink_gbps) << name;
  }
  EXPECT_EQ(list_configs("gpus"), (std::vector<std::string>{"a100_sxm", "b200", "b300", "gb200",
                                                            "gb300", "h100_sxm", "h200"}));
  const auto models = list_configs("models");
  EXPECT_EQ(models.size(), 15u);
  for (const auto& name : models) {
    const model_spec m = load_model_spec(name);
    EXPECT_GT(m.qkv_width(), 0) << name;
    EXPECT_GT(m.vocab_size, 0) << name;
  }
  EXPECT_FALSE(load_gpu_spec("a100_sxm").supports(dtype::fp8));
  const model_spec l = load_model_spec("llama31_405b");
  EXPECT_EQ(l.hidden, 16384);
  EXPECT_EQ(l.ffn_hidden, 53248);
  EXPECT_EQ(l.kv_heads, 8);
  EXPECT_TRUE(l.gated_mlp);
  EXPECT_EQ(load_model_spec("nemotron_340b").hidden, 18432);
}

// The MoE models (docs/MOE.md): their published shapes in Megatron's argument names.
TEST(ConfigFiles, MoeModelsCarryTheirPublishedShape) {
  const model_spec ds = load_model_spec("deepseek_v3");
  EXPECT_EQ(ds.moe.experts, 256);
  EXPECT_EQ(ds.moe.topk, 8);
  EXPECT_EQ(ds.moe.shared_ffn_hidden, 2048);
  ASSERT_EQ(ds.moe.layers.size(), 61u);
  EXPECT_FALSE(ds.moe.layers[2]);
  EXPECT_TRUE(ds.moe.layers[3]);
  EXPECT_EQ(ds.moe.moe_layer_count(), 58);
  EXPECT_TRUE(ds.mla.enabled);
  EXPECT_EQ(ds.mla.kv_lora_rank, 512);
  EXPECT_EQ(ds.mla.qk_pos_emb_head_dim, 64);
  EXPECT_EQ(ds.mtp_num_layers, 1);
  const model_spec q = load_model_spec("qwen3_235b_a22b");
  EXPECT_EQ(q.moe.moe_layer_count(), 94);
  EXPECT_EQ(q.head_dim(), 128);  // kv_channels, not 4096 / 64
  EXPECT_EQ(q.moe.shared_ffn_hidden, 0);
  EXPECT_EQ(load_model_spec("qwen3_30b_a3b").moe.ffn_hidden, 768);
  EXPECT_EQ(load_model_spec("mixtral_8x22b").moe.topk, 2);
  const model_spec g = load_model_spec("gpt_oss_120b");
  EXPECT_EQ(g.window_size, 128);
  EXPECT_EQ(g.window_attn_skip_freq, 2);
  EXPECT_EQ(g.moe.experts, 128);
  // Dense models stay dense; the planners refuse what they do not model, naming it.
  EXPECT_FALSE(load_model_spec("llama3_70b").moe.enabled());
  EXPECT_NO_THROW(require_dense_planner_support(load_model_spec("llama3_70b"), "--model"));
  try {
    require_dense_planner_support(ds, "--model");
    FAIL();
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("--model: model 'deepseek_v3' has mixture-of-experts"),
              std::string::npos)
        << e.what();
  }
}

// One table of GPU families (model/gpu_spec.hpp): every GPU file belongs to a family whose
// compute capability it repeats, and the Blackwell test follows the capability.
// Megatron's expert rank order "tp-ep-dp-pp" with etp as its tp (docs/MOE.md §2): ETP ranks are
// neighbours, EP groups etp apart, expert DP etp x ep apart, and every rank keeps the pipeline
// stage the dense order gives it.
TEST(ExpertLayout, MegatronRankOrder) {
  const expert_grid g{2, 4, 2, 2};
  ASSERT_EQ(g.world(), 32);
  EXPECT_EQ(g.of(0), (expert_grid::coords{0, 0, 0, 0}));
  EXPECT_EQ(g.of(1), (expert_grid::coords{1, 0, 0, 0}));
  EXPECT_EQ(g.of(2), (expert_grid::coords{0, 1, 0, 0}));
  EXPECT_EQ(g.of(7), (expert_grid::coords{1, 3, 0, 0}));
  EXPECT_EQ(g.of(8), (expert_grid::coords{0, 0, 1, 0}));
  EXPECT_EQ(g.of(16), (expert_grid::coords{0, 0, 0, 1}));
  const rank_grid dense{4, 1, 4, 2};  // tp 4, dp 4, pp 2 over the same 32 ranks
  for (int r = 0; r < 32; ++r) EXPECT_EQ(g.of(r).pp, r / dense.stride(comm_group::pp)) << r;
  // EP 4 two ranks apart fits a node of 8; EP 8 two apart spans two.
  EXPECT_EQ(ep_span(g, 8).nodes, 1);
  EXPECT_EQ(ep_span(expert_grid{2, 8, 1, 2}, 8).nodes, 2);
  EXPECT_EQ(ep_span(expert_grid{2, 8, 1, 2}, 8).ranks_per_node, 4);
}

TEST(ConfigFiles, EveryGpuFileBelongsToAFamilyWithItsCapability) {
  for (const auto& name : list_configs("gpus")) {
    const gpu_spec g = load_gpu_spec(name);
    const gpu_family_info* f = find_gpu_family(name);
    ASSERT_NE(f, nullptr) << name << ": no family in gpu_families";
    EXPECT_EQ(f->compute_capability_major, g.compute_capability_major) << name;
    EXPECT_EQ(is_sm100_or_newer(name), g.compute_capability_major >= 10) << name;
  }
  EXPECT_TRUE(is_sm100_or_newer("gb300"));
  EXPECT_FALSE(is_sm100_or_newer("h200"));
  EXPECT_FALSE(is_sm100_or_newer("h900"));  // unknown: not assumed new
}

TEST(ConfigFiles, UnknownNamesListTheKnownOnes) {
  const std::string msg = message_of([] { load_gpu_spec("h900", "--gpu"); });
  EXPECT_NE(msg.find("--gpu: unknown gpu 'h900'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("h100_sxm"), std::string::npos) << msg;
}

TEST(Communicator, SingleRankReductionsAreIdentity) {
  auto c = make_single_communicator();
  EXPECT_EQ(c->rank(), 0);
  EXPECT_EQ(c->size(), 1);
  EXPECT_TRUE(c->is_root());
  std::vector<double> v{1.5, 2.5};
  c->max_reduce(v);
  EXPECT_EQ(v, (std::vector<double>{1.5, 2.5}));
  std::string s = "id";
  c->broadcast(s, 0);
  EXPECT_EQ(s, "id");
}

}  // namespace
}  // namespace ob
