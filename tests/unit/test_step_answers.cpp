// What a step sweep answers besides its numbers (docs/ARCHITECTURE.md §7.2–7.4): the
// recommendation, the document read back strictly, compare and --expect on step medians with the
// breakdown part that moved, and Google Benchmark JSON. Synthetic documents: nothing simulated.
#include <gtest/gtest.h>

#include "base/error.hpp"
#include "report/step_compare.hpp"
#include "results/gbench.hpp"
#include "results/step_result.hpp"

namespace ob {
namespace {

// A simulated case (one iteration) of `ms`: 80 % compute, the rest split between DP and bubble.
step_record step_case(const std::string& id, ordered_json params, double ms,
                      double dp_share = 0.1) {
  step_record r;
  r.id = id;
  r.params = std::move(params);
  r.config = {{"tp", 2}, {"pp", 2}, {"vp", 1}, {"cp", 1}, {"dp", 2}, {"microbatches", 4}};
  r.step_ms = compute_stats({ms});
  r.breakdown_ms.compute = 0.8 * ms;
  r.breakdown_ms.dp_exposed = dp_share * ms;
  r.breakdown_ms.bubble = (0.2 - dp_share) * ms;
  r.exposed_ms = 0.2 * ms;
  r.tokens_per_s_per_gpu = 1e6 / ms;
  r.model_tflops_per_gpu = 4e4 / ms;
  r.mfu = r.model_tflops_per_gpu / 989;
  return r;
}

// cdmc × dp_overlap: dp_overlap moves the best step most (90 against 125 ms), cdmc=8 wins.
step_doc grid() {
  step_doc d;
  d.env = {{"backend", "sim"}, {"simulated", true}};
  d.tool = {{"version", "test"}};
  d.config = {{"scenario", "step"}, {"model", "gpt3_175b"}};
  d.cases = {step_case("cdmc=1,dp_overlap=on", {{"cdmc", 1}, {"dp_overlap", "on"}}, 100),
             step_case("cdmc=8,dp_overlap=on", {{"cdmc", 8}, {"dp_overlap", "on"}}, 90),
             step_case("cdmc=1,dp_overlap=off", {{"cdmc", 1}, {"dp_overlap", "off"}}, 130),
             step_case("cdmc=8,dp_overlap=off", {{"cdmc", 8}, {"dp_overlap", "off"}}, 125)};
  d.rec = recommend(d);
  return d;
}

TEST(StepAnswers, RecommendsTheLowestStepAndTheAxisThatMattered) {
  const step_doc d = grid();
  ASSERT_TRUE(d.rec);
  EXPECT_EQ(d.rec->best_case, "cdmc=8,dp_overlap=on");
  EXPECT_EQ(d.rec->default_case, "cdmc=1,dp_overlap=on");
  EXPECT_NEAR(d.rec->gain_vs_default_pct, 10, 1e-9);
  EXPECT_FALSE(d.rec->none_case);  // a step sweeps no `method`
  ASSERT_TRUE(d.rec->knob);
  EXPECT_EQ(d.rec->knob->axis, "dp_overlap");
  EXPECT_EQ(d.rec->knob->best, "on");
  EXPECT_EQ(d.rec->knob->worst, "off");
  EXPECT_NEAR(d.rec->knob->spread, 35, 1e-9);
  EXPECT_EQ(recommendation_line(*d.rec, d),
            "recommendation (SIMULATED): from the default case, set cdmc=8 — 90.000 ms, 10.0 % "
            "faster than the default; mattered most: dp_overlap (on best, off worst: +35.000 ms); "
            "ranked by step time (every case has the same gpus, gbs and seq)");
  EXPECT_NE(format_step_table(d).find("recommendation (SIMULATED): from the default case"),
            std::string::npos);
  const ordered_json j = to_json(d)["recommendation"];
  EXPECT_EQ(j["best_step_ms"], 90);
  EXPECT_EQ(j["default_step_ms"], 100);
  EXPECT_FALSE(j.contains("none_case"));
  EXPECT_FALSE(j.contains("best_overlapped_ms"));
  EXPECT_EQ(j["ranked_by"], "step_ms");
  EXPECT_EQ(j["knob"]["spread_ms"], 35);
}

// A gbs (or gpus) sweep: the smaller batch finishes its step sooner but moves fewer tokens per
// second; ranking by step time would call it faster (issue 15, item 2).
step_doc work_sweep(const char* axis, int small, int large) {
  step_doc d = grid();
  step_record a = step_case(std::string(axis) + "=" + std::to_string(small), {{axis, small}}, 100);
  step_record b = step_case(std::string(axis) + "=" + std::to_string(large), {{axis, large}}, 350);
  a.config[axis] = small;
  b.config[axis] = large;
  a.tokens_per_s_per_gpu = 1000;
  b.tokens_per_s_per_gpu = 1150;
  d.cases = {a, b};
  d.rec = recommend(d);
  return d;
}

TEST(StepAnswers, DifferentWorkPerStepIsRankedByThroughput) {
  for (const char* axis : {"gbs", "gpus", "seq"}) {
    SCOPED_TRACE(axis);
    const step_doc d = work_sweep(axis, 512, 2048);
    ASSERT_TRUE(d.rec);
    EXPECT_EQ(d.rec->measure, rank_measure::throughput);
    EXPECT_EQ(d.rec->best_case, std::string(axis) + "=2048");
    EXPECT_NEAR(d.rec->gain_vs_default_pct, 15, 1e-9);
    ASSERT_TRUE(d.rec->knob);
    EXPECT_EQ(d.rec->knob->best, 2048);
    EXPECT_NEAR(d.rec->knob->spread, 150, 1e-9);
    const std::string line = recommendation_line(*d.rec, d);
    EXPECT_NE(line.find("1150 tokens/s/GPU (step 350.000 ms), 15.0 % faster than the default"),
              std::string::npos)
        << line;
    EXPECT_NE(line.find("ranked by tokens/s/GPU, not step time (" + std::string(axis) +
                        " differ between cases)"),
              std::string::npos)
        << line;
    const ordered_json j = to_json(d)["recommendation"];
    EXPECT_EQ(j["ranked_by"], "tokens_per_s_per_gpu");
    EXPECT_EQ(j["best_tokens_per_s_per_gpu"], 1150);
    EXPECT_EQ(j["knob"]["spread_tokens_per_s_per_gpu"], 150);
    EXPECT_FALSE(j["knob"].contains("spread_ms"));
    // Read back as written.
    EXPECT_EQ(to_json(step_from_json(to_json(d), "s.json")).dump(), to_json(d).dump());
  }
}

// A capacity factor that drops tokens changes what the step trains (docs/MOE.md §9): the faster
// case that drops more than the sweep's least is shown but never recommended.
TEST(StepAnswers, ACaseThatDropsMoreTokensIsNeverTheAnswer) {
  step_doc d = grid();
  d.cases = {step_case("moe_capacity_factor=0", {{"moe_capacity_factor", 0}}, 100),
             step_case("moe_capacity_factor=1", {{"moe_capacity_factor", 1}}, 80)};
  d.cases[0].config["experts"] = {{"moe_dropped", 0.0}};
  d.cases[1].config["experts"] = {{"moe_dropped", 0.25}};
  d.rec = recommend(d);
  ASSERT_TRUE(d.rec);
  EXPECT_EQ(d.rec->best_case, "moe_capacity_factor=0");
  // When every case drops the same share, they are the same work again and rank by time.
  d.cases[0].config["experts"]["moe_dropped"] = 0.25;
  d.rec = recommend(d);
  ASSERT_TRUE(d.rec);
  EXPECT_EQ(d.rec->best_case, "moe_capacity_factor=1");
}

TEST(StepAnswers, NoMeasuredStepNoRecommendation) {
  step_doc d = grid();
  for (step_record& r : d.cases) r.step_ms = stats{};
  EXPECT_FALSE(recommend(d));
  EXPECT_TRUE(to_json(step_doc{})["recommendation"].is_null());
}

TEST(StepAnswers, TheDocumentReadsBackAsWritten) {
  const step_doc d = grid();
  const ordered_json j = to_json(d);
  const step_doc back = step_from_json(j, "s.json");
  EXPECT_EQ(to_json(back).dump(), j.dump());
  ordered_json old = j;
  old.erase("recommendation");  // written before it existed
  EXPECT_FALSE(step_from_json(old, "s.json").rec);
}

TEST(StepAnswers, TheReaderIsStrictAndNamesTheField) {
  ordered_json j = to_json(grid());
  j["cases"][1]["step_msec"] = 1;
  try {
    step_from_json(j, "s.json");
    FAIL() << "an unknown key was accepted";
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("s.json: cases[1].step_msec"), std::string::npos)
        << e.what();
  }
  ordered_json layer = to_json(grid());
  layer["schema"] = "overlap-bench/result/v1";
  EXPECT_THROW(step_from_json(layer, "r.json"), config_error);
}

TEST(StepAnswers, CompareJudgesStepMediansAndMarksThePartThatMoved) {
  const step_doc base = grid();
  step_doc neu = grid();
  // The second case's DP traffic is exposed for 20 ms more: its step is 22 % slower.
  neu.cases[1].breakdown_ms.dp_exposed += 20;
  neu.cases[1].step_ms = compute_stats({110});
  const compare_outcome o = compare_steps(base, neu, 5);
  ASSERT_EQ(o.rows.size(), 4u);
  EXPECT_EQ(o.rows[0].verdict, "SAME");
  EXPECT_EQ(o.rows[1].verdict, "SLOWER");
  EXPECT_DOUBLE_EQ(o.rows[1].noise_pct, 0);  // simulated: one iteration, no spread
  EXPECT_TRUE(o.has_regression());
  ASSERT_EQ(o.notes.size(), 1u);
  EXPECT_NE(o.notes[0].find("BASE and NEW are simulated"), std::string::npos);
  const std::string text = format_step_compare(o, base, neu);
  EXPECT_NE(text.find("+20.0*"), std::string::npos) << text;
  EXPECT_NE(text.find("times are step medians"), std::string::npos);
  EXPECT_NE(text.find("REGRESSION"), std::string::npos);
  EXPECT_FALSE(compare_steps(base, base, 5).has_regression());
}

TEST(StepAnswers, ExpectListsTheCasesOutsideWithWhatMoved) {
  const step_doc base = grid();
  step_doc run = grid();
  run.cases[2].breakdown_ms.dp_exposed += 30;
  run.cases[2].step_ms = compute_stats({160});
  const expect_outcome o = check_step_expectation(base, run, 10, "base.json");
  EXPECT_FALSE(o.passed());
  ASSERT_EQ(o.outside.size(), 1u);
  EXPECT_EQ(o.outside[0].id, "cdmc=1,dp_overlap=off");
  EXPECT_EQ(o.outside[0].hint, "moved: dp_exposed +30.0 ms");
  EXPECT_NE(format_expectation(o, "base.json").find("expect: FAIL: 1 of 4 cases outside"),
            std::string::npos);
  EXPECT_TRUE(check_step_expectation(base, run, 30, "base.json").passed());
  // Cases are matched on the params that vary; another sweep's values leave none in common.
  step_doc other = grid();
  for (step_record& r : other.cases) {
    r.params["cdmc"] = r.params["cdmc"].get<int>() * 2;
    r.id = "cdmc=" + r.params["cdmc"].dump() +
           ",dp_overlap=" + r.params["dp_overlap"].get<std::string>();
  }
  EXPECT_THROW(check_step_expectation(base, other, 10, "base.json"), config_error);
}

// Every flag of `step` is an axis, so a flag changed between two runs (--tp 2 to --tp 4) is a
// param held constant in each document: the cases are still matched on the params that vary.
TEST(StepAnswers, CompareMatchesCasesOnTheParamsThatVary) {
  step_doc base = grid(), neu = grid();
  for (step_record& r : base.cases) {
    r.params["tp"] = 2;
    r.id = "tp=2," + r.id;
  }
  for (step_record& r : neu.cases) {
    r.params["tp"] = 4;
    r.id = "tp=4," + r.id;
  }
  neu.cases[3].step_ms = compute_stats({150});
  const compare_outcome o = compare_steps(base, neu, 5);
  ASSERT_EQ(o.rows.size(), 4u);
  EXPECT_EQ(o.matched(), 4u);
  EXPECT_EQ(o.rows[0].id, "cdmc=1,dp_overlap=on");
  EXPECT_EQ(o.rows[0].base_id, "tp=2,cdmc=1,dp_overlap=on");
  EXPECT_EQ(o.rows[0].new_id, "tp=4,cdmc=1,dp_overlap=on");
  EXPECT_EQ(o.rows[3].verdict, "SLOWER");
  const std::string text = format_step_compare(o, base, neu);
  EXPECT_EQ(text.find("MISSING"), std::string::npos) << text;
  EXPECT_NE(text.find("tp: BASE 2, NEW 4"), std::string::npos) << text;
  // One case each, every param constant: the one case is compared with the other.
  step_doc one_base = base, one_new = neu;
  one_base.cases.resize(1);
  one_new.cases.resize(1);
  const compare_outcome single = compare_steps(one_base, one_new, 5);
  ASSERT_EQ(single.rows.size(), 1u);
  EXPECT_EQ(single.matched(), 1u);
  EXPECT_NE(format_step_compare(single, one_base, one_new).find("no regression"),
            std::string::npos);
  // The same documents keep their ids and say nothing about matching.
  const compare_outcome same = compare_steps(base, base, 5);
  EXPECT_EQ(same.rows[0].id, "tp=2,cdmc=1,dp_overlap=on");
  EXPECT_EQ(same.notes.size(), 1u);
}

TEST(StepAnswers, ReportAndTableSayPartialAndDropTheRecommendationWithoutCases) {
  step_doc d = grid();
  d.planned_cases = 10;
  const ordered_json j = to_json(d);
  EXPECT_EQ(j["complete"], false);
  EXPECT_EQ(j["planned_cases"], 10);
  EXPECT_EQ(step_from_json(j, "s.json").planned_cases, 10u);
  EXPECT_NE(format_step_table(d).find("PARTIAL: 4 of 10 cases"), std::string::npos);
  const ordered_json complete = to_json(grid());
  EXPECT_FALSE(complete.contains("complete"));
  EXPECT_FALSE(step_from_json(complete, "s.json").planned_cases);
  ordered_json bad = j;
  bad["planned_cases"] = 3;  // fewer than the 4 cases it holds
  EXPECT_THROW(step_from_json(bad, "s.json"), config_error);
  step_doc empty = grid();
  empty.cases.clear();  // the recommendation stays, as in a file edited by hand
  EXPECT_EQ(format_step_table(empty).find("recommend"), std::string::npos)
      << format_step_table(empty);
}

TEST(StepAnswers, GoogleBenchmarkJsonHasOneBenchmarkPerCase) {
  const ordered_json g = gbench_json(grid(), "2025-01-01T00:00:00+00:00");
  ASSERT_EQ(g["benchmarks"].size(), 4u);
  const ordered_json& b = g["benchmarks"][1];
  EXPECT_EQ(b["name"], "step/cdmc=8,dp_overlap=on");
  EXPECT_EQ(b["real_time"], 90);
  EXPECT_EQ(b["time_unit"], "ms");
  EXPECT_EQ(b["label"], "SIMULATED");
  EXPECT_NEAR(b["dp_exposed_ms"].get<double>(), 9, 1e-9);
  EXPECT_TRUE(b.contains("mfu"));
  EXPECT_EQ(g["context"]["overlap_bench_simulated"], "true");
}

}  // namespace
}  // namespace ob
