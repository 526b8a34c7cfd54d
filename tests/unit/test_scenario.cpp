#include <gtest/gtest.h>

#include "base/error.hpp"
#include "spec/scenario.hpp"

namespace ob {
namespace {

TEST(Scenario, DefaultSweepIsThirtyOneCasesCdmcOutermost) {
  const layer_scenario sc = load_layer_scenario("default_layer");
  EXPECT_EQ(sc.layout.tp, 4);
  EXPECT_EQ(sc.preset, "userbuffers_bf16_h100_h12288_tp4_mbs1_seqlen2048");
  const auto cases = expand_cases(sc);
  // preset over cdmc x order x sm_margin; none once (those axes change nothing for it).
  ASSERT_EQ(cases.size(), 3u * 2 * 5 + 1);
  EXPECT_EQ(cases.front().cdmc, 1);
  EXPECT_EQ(cases.back().cdmc, 32);
  EXPECT_EQ(cases.front().id,
            "cdmc=1,method=preset,order=comm_first,sm_margin=0,comm_ctas=0,priority=comm_high");
  EXPECT_EQ(cases[1].params["sm_margin"], 8);
}

TEST(Scenario, SetReplacesAxesAndScalars) {
  layer_scenario sc = load_layer_scenario("default_layer");
  apply_override(sc, "comm_ctas=8,16,24,32,48");
  EXPECT_EQ(expand_cases(sc).size(), 3u * 2 * 5 * 5 + 5);
  apply_override(sc, "tp=8");
  EXPECT_EQ(sc.layout.tp, 8);
  apply_override(sc, "passes=fwd");
  EXPECT_TRUE(sc.forward);
  EXPECT_FALSE(sc.backward);
  EXPECT_THROW(apply_override(sc, "tp=2,4"), config_error);  // not an axis
  EXPECT_THROW(apply_override(sc, "nonsense=1"), config_error);
  EXPECT_THROW(apply_override(sc, "cdmc"), config_error);
  // Out of 1..32: refused at once, naming --set rather than the scenario file.
  try {
    apply_override(sc, "cdmc=0");
    FAIL();
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("--set cdmc: 0 is out of range"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(apply_override(sc, "cdmc=1,8,1"), config_error);  // two cases with one id
}

TEST(Scenario, SmMarginPresetMeansTheSlotsOwnChoice) {
  layer_scenario sc = load_layer_scenario("default_layer");
  apply_override(sc, "sm_margin=preset,16");
  const auto cases = expand_cases(sc);
  EXPECT_FALSE(cases[0].knobs.sm_margin.has_value());
  EXPECT_EQ(cases[1].knobs.sm_margin, 16);
}

TEST(Scenario, ExpandAxesNamesTheAxisInErrors) {
  try {
    expand_axes({{"order", {"sideways"}}}, "x.json: sweep.", plan_knobs{});
    FAIL();
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("x.json: sweep.order"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ob
