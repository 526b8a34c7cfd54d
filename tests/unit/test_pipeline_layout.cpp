// Megatron's pipeline_model_parallel_layout in the step planner (docs/MOE.md §14.2): the parser,
// the rules it is checked against (named by the flag), each virtual stage's own layer count in
// the plan, and a stage with fewer layers ending its forward sooner on the simulated timeline.
#include <gtest/gtest.h>

#include <string>
#include <tuple>

#include "plan/step_plan.hpp"
#include "run/step_run.hpp"
#include "sim/simulator.hpp"
#include "spec/pipeline_layout.hpp"
#include "step_test_util.hpp"

namespace ob {
namespace {

// Megatron-Bridge's DeepSeek-V3 layout for 1,024 H100 at PP 8 x VP 4 (docs/MOE.md §14.2).
constexpr const char* dsv3_h100 = "Et|(tt|)*30mL";

TEST(PipelineLayout, ParsesMegatronsSyntax) {
  const pipeline_layout l = parse_pipeline_layout(dsv3_h100, "--pipeline-layout");
  ASSERT_EQ(l.stages.size(), 32u);
  EXPECT_EQ(l.stages.front(), "Et");
  EXPECT_EQ(l.stages[1], "tt");
  EXPECT_EQ(l.stages[30], "tt");
  EXPECT_EQ(l.stages.back(), "mL");
  EXPECT_EQ(l.count('t'), 61);
  // Megatron's own example: groups unroll before single repeats.
  const pipeline_layout m = parse_pipeline_layout("Et*3|(tt|)*29m|L", "x");
  ASSERT_EQ(m.stages.size(), 32u);
  EXPECT_EQ(m.stages.front(), "Ettt");
  EXPECT_EQ(m.stages[30], "m");
  EXPECT_EQ(m.stages[31], "L");
  EXPECT_EQ(parse_pipeline_layout("E|t||tL", "x").stages[2], "");  // an empty stage
}

std::string parse_error(const std::string& text) {
  try {
    parse_pipeline_layout(text, "--pipeline-layout");
  } catch (const config_error& e) {
    return e.what();
  }
  return "";
}

TEST(PipelineLayout, BadSyntaxIsNamed) {
  EXPECT_NE(parse_error("Et|x|L").find("--pipeline-layout: 'x' is not a layer"), std::string::npos);
  EXPECT_NE(parse_error("Et*|L").find("needs a repeat count"), std::string::npos);
  EXPECT_NE(parse_error("E(tt|L").find("')*N'"), std::string::npos);
  EXPECT_NE(parse_error("E(t)*99999999|L").find("repeat count"), std::string::npos);
  EXPECT_NE(parse_error("E(t|)*60000L").find("more than"), std::string::npos);
  EXPECT_EQ(parse_error(dsv3_h100), "");
}

step_scenario scenario(const std::string& model, const std::string& layout,
                       std::vector<sweep_axis> axes) {
  step_scenario sc;
  sc.model = model;
  sc.cluster = "dgx_h100";
  sc.allow_oom = true;
  sc.axes = std::move(axes);
  if (!layout.empty()) sc.axes.push_back({"pipeline_layout", {layout}});
  return sc;
}

step_scenario dsv3(const std::string& layout, const std::string& vp = "4") {
  return scenario("deepseek_v3", layout,
                  {{"gpus", {"1024"}},
                   {"tp", {"2"}},
                   {"pp", {"8"}},
                   {"vp", {vp}},
                   {"ep", {"64"}},
                   {"gbs", {"8192"}}});
}

TEST(PipelineLayout, RulesAreNamedByTheFlag) {
  using test::resolve_message;
  EXPECT_EQ(resolve_message(dsv3(dsv3_h100)), "");
  const auto says = [](const step_scenario& sc, const std::string& what) {
    const std::string m = resolve_message(sc);
    EXPECT_NE(m.find("--pipeline-layout"), std::string::npos) << m;
    EXPECT_NE(m.find(what), std::string::npos) << m;
  };
  says(dsv3(dsv3_h100, "2"), "32 virtual stages, but pp x vp = 8 x 2 = 16");
  says(dsv3("Et|(tt|)*29mL|t"), "the loss (L) must appear once, last");
  says(dsv3("t|(tt|)*30mLE"), "the embedding (E) must appear once, first");
  says(dsv3("Et|(tt|)*30tmL"), "62 transformer layers (t), but the model has 61");
  says(dsv3("Et|(tt|)*30L"), "0 MTP layers (m), but the model has 1");
  EXPECT_EQ(resolve_message(dsv3("Et|(tt|)*29t|tmL")), "");  // the same layers another way
  says(dsv3("Et*3|(tt|)*29m|L"), "must share the loss's virtual stage");  // Megatron's example
  says(dsv3("Et|(tt|)*29t|mtL"), "before the MTP layers");
}

// Virtual stage v is chunk v / pp of stage v % pp: Bridge's layout gives stage 0 one layer in
// chunk 0 (beside the embedding) and stage 7 none in chunk 3 (the MTP layer and the loss).
TEST(PipelineLayout, EachVirtualStageGetsItsOwnLayers) {
  const step_spec spec = resolve_step(dsv3(dsv3_h100));
  const step_config& c = spec.cases.at(0).c.cfg;
  EXPECT_EQ(stage_chunk_layers(c, 0), (std::vector<int>{1, 2, 2, 2}));
  EXPECT_EQ(stage_chunk_layers(c, 3), (std::vector<int>{2, 2, 2, 2}));
  EXPECT_EQ(stage_chunk_layers(c, 7), (std::vector<int>{2, 2, 2, 0}));
  int total = 0;
  for (int s = 0; s < 8; ++s)
    for (int n : stage_chunk_layers(c, s)) total += n;
  EXPECT_EQ(total, 61);
}

using test::simulate;
using test::timeline;

// DeepSeek-V3 cut to 6 layers over PP 2 x VP 2: "Et|ttt|t|tmL" puts the embedding and one layer
// on stage 0 chunk 0, three layers on stage 1 chunk 0, one on stage 0 chunk 1, and one, the MTP
// layer and the loss on stage 1 chunk 1.
TEST(PipelineLayout, PlanPutsLayersEmbeddingMtpAndLossWhereTheLayoutSays) {
  const timeline t = simulate(scenario("deepseek_v3", "Et|ttt|t|tmL",
                                       {{"gpus", {"8"}},
                                        {"pp", {"2"}},
                                        {"vp", {"2"}},
                                        {"ep", {"4"}},
                                        {"layers", {"6"}},
                                        {"gbs", {"8"}}}));
  // (stage, op, planned there)
  const std::tuple<int, const char*, bool> where[] = {{0, "c0.mb0.embedding", true},
                                                      {1, "c0.mb0.embedding", false},
                                                      {0, "c0.mb0.L0.q_down_fprop", true},
                                                      {0, "c0.mb0.L1.q_down_fprop", false},
                                                      {1, "c0.mb0.L2.q_down_fprop", true},
                                                      {1, "c0.mb0.L3.q_down_fprop", false},
                                                      {0, "c1.mb0.L0.q_down_fprop", true},
                                                      {0, "c1.mb0.L1.q_down_fprop", false},
                                                      {1, "c1.mb0.loss", true},
                                                      {1, "c1.mb0.mtp0.mtp_eh_proj", true},
                                                      {0, "c1.mb0.loss", false},
                                                      {1, "c0.mb0.loss", false},
                                                      {0, "c1.mb0.mtp0.mtp_eh_proj", false}};
  for (const auto& [stage, name, planned] : where)
    EXPECT_EQ(t.find(stage, name) != nullptr, planned) << stage << " " << name;
}

// The same 8-layer dense model over PP 2, even ("Etttt|ttttL") and uneven ("Et|tttttttL"): stage
// 0 with one layer ends its first forward sooner, and stage 1 with seven starts it sooner and
// runs it longer than with four.
TEST(PipelineLayout, FewerLayersFinishTheForwardSooner) {
  const auto run = [](const std::string& layout) {
    return simulate(scenario("llama3_8b", layout,
                             {{"gpus", {"2"}}, {"pp", {"2"}}, {"layers", {"8"}}, {"gbs", {"2"}}}));
  };
  const timeline even = run("Etttt|ttttL"), uneven = run("Et|tttttttL");
  const auto forward_end = [](const timeline& t, int stage, int layers) {
    return t.at(stage, "c0.mb0.L" + std::to_string(layers - 1) + ".fc2_fprop").end_us;
  };
  const double even0 = forward_end(even, 0, 4), uneven0 = forward_end(uneven, 0, 1);
  EXPECT_LT(uneven0, even0 / 2);
  EXPECT_LT(uneven.at(1, "c0.mb0.L0.qkv_fprop").start_us,
            even.at(1, "c0.mb0.L0.qkv_fprop").start_us);
  const auto forward_length = [&](const timeline& t, int layers) {
    return forward_end(t, 1, layers) - t.at(1, "c0.mb0.L0.qkv_fprop").start_us;
  };
  EXPECT_GT(forward_length(uneven, 7), 1.5 * forward_length(even, 4));
  EXPECT_EQ(uneven.find(0, "c0.mb0.L1.qkv_fprop"), nullptr);
  // Without a layout the even split stays: the same plan as "Etttt|ttttL".
  const timeline none = run("");
  EXPECT_DOUBLE_EQ(forward_end(none, 0, 4), even0);
}

}  // namespace
}  // namespace ob
