#include <gtest/gtest.h>

#include "base/error.hpp"
#include "base/stats.hpp"

namespace ob {

TEST(Stats, PercentilesInterpolateLinearly) {
  // numpy.percentile([1..10], p): p10 = 1.9, median = 5.5, p90 = 9.1.
  const stats s = compute_stats({10, 9, 8, 7, 6, 5, 4, 3, 2, 1});
  EXPECT_EQ(s.n, 10);
  EXPECT_DOUBLE_EQ(s.median, 5.5);
  EXPECT_DOUBLE_EQ(s.p10, 1.9);
  EXPECT_DOUBLE_EQ(s.p90, 9.1);
  EXPECT_DOUBLE_EQ(s.min, 1);
  EXPECT_DOUBLE_EQ(s.max, 10);
  EXPECT_DOUBLE_EQ(s.mean, 5.5);
}

TEST(Stats, OddCountMedianIsTheMiddleSample) {
  const stats s = compute_stats({3, 1, 2});
  EXPECT_DOUBLE_EQ(s.median, 2);
  EXPECT_DOUBLE_EQ(s.p10, 1.2);
  EXPECT_DOUBLE_EQ(s.p90, 2.8);
}

TEST(Stats, SampleStdevAndCv) {
  // Sample stdev of {2,4,4,4,5,5,7,9} is sqrt(32/7).
  const stats s = compute_stats({2, 4, 4, 4, 5, 5, 7, 9});
  EXPECT_DOUBLE_EQ(s.mean, 5);
  EXPECT_NEAR(s.stdev, std::sqrt(32.0 / 7.0), 1e-12);
  EXPECT_NEAR(s.cv, std::sqrt(32.0 / 7.0) / 5, 1e-12);
}

TEST(Stats, SingleSampleHasZeroSpread) {
  const stats s = compute_stats({4.25});
  EXPECT_EQ(s.n, 1);
  EXPECT_DOUBLE_EQ(s.median, 4.25);
  EXPECT_DOUBLE_EQ(s.p10, 4.25);
  EXPECT_DOUBLE_EQ(s.p90, 4.25);
  EXPECT_DOUBLE_EQ(s.stdev, 0);
  EXPECT_DOUBLE_EQ(s.cv, 0);
}

TEST(Stats, EmptyMeansNotMeasured) {
  const stats s = compute_stats({});
  EXPECT_EQ(s.n, 0);
  EXPECT_DOUBLE_EQ(s.median, 0);
  EXPECT_DOUBLE_EQ(s.cv, 0);
}

TEST(Stats, NonFiniteSampleIsARuntimeFailure) {
  EXPECT_THROW(compute_stats({1.0, std::nan("")}), runtime_failure);
}

TEST(Stats, PercentilesStayOrderedUnderRounding) {
  // Values whose differences do not round-trip exactly; the reader's order check must hold.
  std::vector<double> v;
  for (int i = 0; i < 37; ++i) v.push_back(0.1 * i + 1e-9 * (i % 3) + 1e15 * (i == 36));
  const stats s = compute_stats(v);
  EXPECT_LE(s.min, s.p10);
  EXPECT_LE(s.p10, s.median);
  EXPECT_LE(s.median, s.p90);
  EXPECT_LE(s.p90, s.max);
}

TEST(Stats, JsonRoundTrip) {
  const stats s = compute_stats({1.5, 2.25, 3.125, 10});
  const ordered_json j = to_json(s);
  const json plain = json::parse(j.dump());
  const stats back = stats_from_json(json_object(plain, "f.json", "x"));
  EXPECT_EQ(to_json(back), j);
  EXPECT_EQ(j.begin().key(), "median");
}

TEST(Stats, StrictReaderNamesFileAndPath) {
  json j = json::parse(to_json(compute_stats({1, 2, 3})).dump());
  j["p99"] = 3;
  try {
    stats_from_json(json_object(j, "r.json", "cases[0].overlapped_ms"));
    FAIL() << "accepted an unknown key";
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("r.json: cases[0].overlapped_ms.p99"), std::string::npos)
        << e.what();
  }
  j.erase("p99");
  j["p10"] = 100;  // above the median
  EXPECT_THROW(stats_from_json(json_object(j, "r.json", "s")), config_error);
  j = json::parse(to_json(compute_stats({1, 2, 3})).dump());
  j["n"] = -1;
  EXPECT_THROW(stats_from_json(json_object(j, "r.json", "s")), config_error);
}

}  // namespace ob
