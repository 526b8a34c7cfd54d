#include <gtest/gtest.h>

#include "report/compare.hpp"

namespace ob {

namespace {

// A case whose overlapped median is `median` with a p10..p90 band of ±`half_spread_pct` %.
case_record timed_case(const std::string& id, double median, double half_spread_pct,
                       std::int64_t wrong = 0) {
  case_record c;
  c.id = id;
  c.scenario = "pair";
  const double h = median * half_spread_pct / 100;
  // Three samples: p10 = median − 0.8·h', p90 = median + 0.8·h' with h' = h / 0.8.
  c.m.overlapped_ms = compute_stats({median - h / 0.8, median, median + h / 0.8});
  c.m.exposed_comm_ms = median - 10;
  c.m.wrong = wrong;
  return c;
}

result_doc doc(std::vector<case_record> cases, bool simulated = false) {
  result_doc d;
  d.env = {{"backend", simulated ? "sim" : "cuda"}, {"simulated", simulated}};
  d.cases = std::move(cases);
  return d;
}

const compare_row& row(const compare_outcome& o, const std::string& id) {
  for (const compare_row& r : o.rows)
    if (r.id == id) return r;
  throw std::runtime_error("no row " + id);
}

}  // namespace

TEST(Compare, ChangeBeyondThresholdButWithinNoiseIsSame) {
  // +8 % with a 5 % threshold, but each side spreads ±5 %: combined noise 10 % > 8 %.
  const auto o = compare_results(doc({timed_case("a", 100, 5)}), doc({timed_case("a", 108, 5)}), 5);
  const compare_row& r = row(o, "a");
  EXPECT_NEAR(r.delta_pct, 8, 1e-9);
  EXPECT_NEAR(r.noise_pct, 10, 1e-9);
  EXPECT_EQ(r.verdict, "SAME");
  EXPECT_FALSE(has_regression(o));
}

TEST(Compare, ChangeBeyondBothThresholdAndNoiseIsSlowerAndARegression) {
  const auto o = compare_results(doc({timed_case("a", 100, 1)}), doc({timed_case("a", 108, 1)}), 5);
  EXPECT_EQ(row(o, "a").verdict, "SLOWER");
  EXPECT_TRUE(has_regression(o));
  EXPECT_NE(format_compare(o).find("REGRESSION"), std::string::npos);
}

TEST(Compare, ChangeWithinThresholdButBeyondNoiseIsSame) {
  // Simulated runs have no spread: only the threshold decides.
  const auto o = compare_results(doc({timed_case("a", 100, 0)}, true),
                                 doc({timed_case("a", 104, 0)}, true), 5);
  EXPECT_EQ(row(o, "a").verdict, "SAME");
  EXPECT_DOUBLE_EQ(row(o, "a").noise_pct, 0);
}

TEST(Compare, FasterIsNotARegression) {
  const auto o = compare_results(doc({timed_case("a", 100, 0)}), doc({timed_case("a", 80, 0)}), 5);
  EXPECT_EQ(row(o, "a").verdict, "FASTER");
  EXPECT_NEAR(row(o, "a").delta_pct, -20, 1e-9);
  EXPECT_FALSE(has_regression(o));
}

TEST(Compare, MissingAndNewCases) {
  const auto o = compare_results(doc({timed_case("a", 100, 0), timed_case("gone", 50, 0)}),
                                 doc({timed_case("a", 100, 0), timed_case("added", 70, 0)}), 5);
  ASSERT_EQ(o.rows.size(), 3u);
  EXPECT_EQ(row(o, "gone").verdict, "MISSING");
  EXPECT_EQ(row(o, "added").verdict, "NEW");
  EXPECT_EQ(o.rows.back().id, "added");  // BASE order, then NEW-only cases
  EXPECT_FALSE(has_regression(o));
  const std::string text = format_compare(o);
  EXPECT_NE(text.find("MISSING"), std::string::npos);
  EXPECT_NE(text.find("1 SAME, 1 MISSING, 1 NEW"), std::string::npos) << text;
}

TEST(Compare, WrongDataIsARegressionEvenWhenFaster) {
  const auto o =
      compare_results(doc({timed_case("a", 100, 0)}), doc({timed_case("a", 50, 0, 12)}), 5);
  EXPECT_EQ(row(o, "a").verdict, "WRONG");
  EXPECT_TRUE(has_regression(o));
}

TEST(Compare, WarnsWhenComparingSimulatedWithMeasured) {
  result_doc base = doc({timed_case("a", 100, 0)}, true);
  result_doc neu = doc({timed_case("a", 100, 0)}, false);
  neu.env["variables"] = {{"NCCL_ALGO", "Tree"}};
  const auto o = compare_results(base, neu, 5);
  const std::string text = format_compare(o);
  EXPECT_NE(text.find("comparing a simulated BASE with a measured NEW"), std::string::npos) << text;
  EXPECT_NE(text.find("NCCL_ALGO"), std::string::npos) << text;
  const auto same = compare_results(base, base, 5);
  EXPECT_TRUE(same.warnings.empty());
}

// No case in both documents: there is no verdict to give, least of all "no regression".
TEST(Compare, NothingInCommonComparesNothing) {
  const result_doc base = doc({timed_case("a", 100, 0)});
  const auto empty = compare_results(base, doc({}), 5);
  EXPECT_EQ(empty.matched(), 0u);
  EXPECT_FALSE(empty.has_regression());
  const std::string text = format_compare(empty);
  EXPECT_NE(text.find("NOTHING COMPARED"), std::string::npos) << text;
  EXPECT_EQ(text.find("no regression"), std::string::npos) << text;
  const auto other = compare_results(base, doc({timed_case("b", 100, 0)}), 5);
  EXPECT_EQ(other.matched(), 0u);
  EXPECT_NE(format_compare(other).find("NOTHING COMPARED"), std::string::npos);
  EXPECT_EQ(compare_results(base, base, 5).matched(), 1u);
}

// A model change (env.sim_model) moves every simulated time; it must not pass for a regression.
TEST(Compare, WarnsWhenTheSimulatorModelDiffers) {
  result_doc base = doc({timed_case("a", 100, 0)}, true);
  result_doc neu = doc({timed_case("a", 120, 0)}, true);
  base.env["sim_model"] = "sim-v2";
  neu.env["sim_model"] = "sim-v2.1";
  const auto o = compare_results(base, neu, 5);
  const std::string text = format_compare(o);
  EXPECT_NE(text.find("warning: simulator model differs: BASE sim-v2, NEW sim-v2.1"),
            std::string::npos)
      << text;
  neu.env["sim_model"] = "sim-v2";
  EXPECT_TRUE(compare_results(base, neu, 5).warnings.empty());
}

// A stopped sweep's missing cases are not cases dropped on purpose.
TEST(Compare, WarnsWhenASideIsPartial) {
  result_doc base = doc({timed_case("a", 100, 0), timed_case("b", 100, 0)});
  result_doc neu = doc({timed_case("a", 100, 0)});
  neu.planned_cases = 2;
  const auto o = compare_results(base, neu, 5);
  ASSERT_EQ(o.warnings.size(), 1u);
  EXPECT_EQ(o.warnings[0].rfind("NEW is PARTIAL: 1 of 2 cases", 0), 0u) << o.warnings[0];
}

}  // namespace ob
