#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "base/config_paths.hpp"
#include "base/error.hpp"
#include "base/json_util.hpp"
#include "dist/communicator.hpp"
#include "model/gpu_spec.hpp"
#include "model/model_spec.hpp"

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
  const auto dir = std::filesystem::temp_directory_path() / "ob_test_config";
  std::filesystem::create_directories(dir);
  const auto bad = (dir / "bad.json").string();
  std::ofstream(bad) << "{\"a\": ";
  EXPECT_NE(message_of([&] { load_json_file(bad); }).find(bad + ": invalid JSON"),
            std::string::npos);
  EXPECT_THROW(load_json_file((dir / "absent.json").string()), config_error);
}

TEST(JsonFile, AtomicWriteReplacesWholeFile) {
  const auto dir = std::filesystem::temp_directory_path() / "ob_test_atomic";
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
  EXPECT_EQ(models.size(), 8u);
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

// One table of GPU families (model/gpu_spec.hpp): every GPU file belongs to a family whose
// compute capability it repeats, and the Blackwell test follows the capability.
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
