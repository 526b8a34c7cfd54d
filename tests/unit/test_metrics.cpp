#include <gtest/gtest.h>

#include "analysis/metrics.hpp"
#include "base/error.hpp"
#include "model/collective_traits.hpp"

namespace ob {

namespace {

// One GEMM on the compute stream and one all-gather on the comm stream, independent.
schedule pair_schedule(std::uint64_t bytes = 8'000'000'000, int group = 8) {
  schedule s;
  s.name = "pair";
  const int compute = s.add_stream("compute", stream_role::compute, 0);
  const int comm = s.add_stream("comm", stream_role::comm, -1);
  s.add_op("gemm", compute, gemm_params{8192, 8192, 8192, dtype::bf16, 0});
  collective_params c;
  c.op = coll_op::all_gather;
  c.bytes = bytes;
  c.group_size = group;
  s.add_op("ag", comm, c);
  return s;
}

variant_measurement times(std::vector<double> ms) {
  variant_measurement m;
  m.iter_ms = std::move(ms);
  return m;
}

variant_measurement& of(variant_measurements& m, variant v) { return m[static_cast<int>(v)]; }

// compute 10, comm 6, serial 16, overlapped `overlapped` (ms medians).
variant_measurements basic(double overlapped) {
  variant_measurements m;
  of(m, variant::compute_only) = times({10, 9.5, 10.5});
  of(m, variant::compute_with_margin) = times({11, 11, 11});
  of(m, variant::comm_only) = times({6, 6, 6});
  of(m, variant::serial) = times({16, 16, 16});
  of(m, variant::overlapped) = times({overlapped, overlapped, overlapped});
  return m;
}

}  // namespace

TEST(Metrics, ExposedEfficiencySpeedupIdealHeadroom) {
  const auto vs = make_variant_schedules(pair_schedule());
  const case_metrics m = compute_metrics(vs, basic(12));
  EXPECT_DOUBLE_EQ(m.compute_ms.median, 10);
  EXPECT_DOUBLE_EQ(m.compute_with_margin_ms.median, 11);
  EXPECT_DOUBLE_EQ(m.exposed_comm_ms, 2);
  ASSERT_TRUE(m.overlap_efficiency);
  EXPECT_NEAR(*m.overlap_efficiency, 1 - 2.0 / 6, 1e-12);
  ASSERT_TRUE(m.speedup_vs_serial);
  EXPECT_NEAR(*m.speedup_vs_serial, 16.0 / 12, 1e-12);
  EXPECT_DOUBLE_EQ(m.ideal_ms, 10);
  EXPECT_DOUBLE_EQ(m.headroom_ms, 2);
  // No intervals recorded: interval metrics are unknown, not zero.
  EXPECT_FALSE(m.gemm_slowdown);
  EXPECT_FALSE(m.comm_slowdown);
  EXPECT_FALSE(m.timeline_overlap_pct);
  EXPECT_FALSE(m.gemm_tflops_overlapped);
}

TEST(Metrics, EfficiencyGoesNegativeWhenOverlapIsWorseThanSerial) {
  const auto vs = make_variant_schedules(pair_schedule());
  const case_metrics m = compute_metrics(vs, basic(17));
  EXPECT_DOUBLE_EQ(m.exposed_comm_ms, 7);
  EXPECT_NEAR(*m.overlap_efficiency, 1 - 7.0 / 6, 1e-12);
  EXPECT_LT(*m.overlap_efficiency, 0);
  EXPECT_LT(*m.speedup_vs_serial, 1);
}

TEST(Metrics, FullyHiddenCommIsEfficiencyOne) {
  const auto vs = make_variant_schedules(pair_schedule());
  const case_metrics m = compute_metrics(vs, basic(10));
  EXPECT_DOUBLE_EQ(*m.overlap_efficiency, 1);
  EXPECT_DOUBLE_EQ(m.headroom_ms, 0);
}

TEST(Metrics, NoCommMeansNoEfficiencyAndNoBusbw) {
  schedule s;
  const int compute = s.add_stream("compute", stream_role::compute, 0);
  s.add_op("gemm", compute, gemm_params{1024, 1024, 1024, dtype::bf16, 0});
  variant_measurements m = basic(10);
  of(m, variant::comm_only) = times({0, 0, 0});
  const case_metrics r = compute_metrics(make_variant_schedules(s), m);
  EXPECT_FALSE(r.overlap_efficiency);
  EXPECT_FALSE(r.comm_busbw_gbps);
  EXPECT_TRUE(r.gemm_tflops);
}

TEST(Metrics, BusbwFactorsFollowNcclTests) {
  EXPECT_DOUBLE_EQ(traits_of(coll_op::all_reduce).bus_factor(8), 2.0 * 7 / 8);
  EXPECT_DOUBLE_EQ(traits_of(coll_op::all_gather).bus_factor(8), 7.0 / 8);
  EXPECT_DOUBLE_EQ(traits_of(coll_op::reduce_scatter).bus_factor(8), 7.0 / 8);
  EXPECT_DOUBLE_EQ(traits_of(coll_op::all_reduce).bus_factor(1), 0);

  schedule s;
  const int comm = s.add_stream("comm", stream_role::comm, 0);
  for (coll_op op : {coll_op::all_reduce, coll_op::all_gather, coll_op::reduce_scatter}) {
    collective_params c;
    c.op = op;
    c.bytes = 800;
    c.group_size = 8;
    s.add_op(std::string(to_string(op)), comm, c);
  }
  p2p_params p;
  p.bytes = 100;
  p.group_size = 8;
  s.add_op("send_recv", comm, p);
  // AR 800·14/8 + AG 800·7/8 + RS 800·7/8 + p2p 100·1
  EXPECT_DOUBLE_EQ(bus_bytes(s), 1400 + 700 + 700 + 100);
}

TEST(Metrics, BusbwAndTflopsFromMedians) {
  auto vs = make_variant_schedules(pair_schedule(8'000'000'000, 8));
  variant_measurements m = basic(12);
  of(m, variant::compute_only) = times({2, 2, 2});
  of(m, variant::comm_only) = times({10, 10, 10});
  const case_metrics r = compute_metrics(vs, m);
  // 8e9 B · 7/8 over 10 ms = 700 GB/s.
  ASSERT_TRUE(r.comm_busbw_gbps);
  EXPECT_NEAR(*r.comm_busbw_gbps, 700, 1e-9);
  // 2·8192³ FLOP over 2 ms.
  ASSERT_TRUE(r.gemm_tflops);
  EXPECT_NEAR(*r.gemm_tflops, 2.0 * 8192.0 * 8192 * 8192 / 2e-3 / 1e12, 1e-9);
}

TEST(Metrics, SlowdownsFromPerOpIntervals) {
  const auto vs = make_variant_schedules(pair_schedule());
  // Op ids are each variant's own: compute_only {0: gemm}, comm_only {0: ag},
  // overlapped {0: gemm, 1: ag}.
  ASSERT_EQ(vs[static_cast<int>(variant::comm_only)].ops.size(), 1u);
  variant_measurements m = basic(12);
  of(m, variant::compute_only).ops = {{0, 0, 100}};
  of(m, variant::comm_only).ops = {{0, 0, 80}};
  of(m, variant::overlapped).ops = {{0, 0, 115}, {1, 10, 110}};
  const case_metrics r = compute_metrics(vs, m);
  ASSERT_TRUE(r.gemm_slowdown);
  EXPECT_NEAR(*r.gemm_slowdown, 1.15, 1e-12);
  ASSERT_TRUE(r.comm_slowdown);
  EXPECT_NEAR(*r.comm_slowdown, 1.25, 1e-12);
  EXPECT_NEAR(*r.gemm_tflops_overlapped, *r.gemm_tflops / 1.15, 1e-9);
  EXPECT_NEAR(*r.comm_busbw_gbps_overlapped, *r.comm_busbw_gbps / 1.25, 1e-9);
  // The whole AG [10, 110] lies inside the GEMM [0, 115].
  EXPECT_NEAR(*r.timeline_overlap_pct, 100, 1e-12);
}

TEST(Metrics, TimelineOverlapUsesUnionsOfIntervals) {
  schedule s;
  const int compute = s.add_stream("compute", stream_role::compute, 0);
  const int comm = s.add_stream("comm", stream_role::comm, -1);
  const int comm2 = s.add_stream("comm2", stream_role::p2p, -1);
  s.add_op("gemm_a", compute, gemm_params{64, 64, 64, dtype::bf16, 0});  // 0
  s.add_op("ln", compute, elementwise_params{1024, 0, 0, false});        // 1
  collective_params c;
  c.group_size = 8;
  c.bytes = 1024;
  s.add_op("ag", comm, c);  // 2
  p2p_params p;
  p.bytes = 64;
  s.add_op("send", comm2, p);  // 3
  const auto vs = make_variant_schedules(s);
  variant_measurements m = basic(12);
  // compute ∪ = [0, 60) ∪ [40, 100) = [0, 100); comm ∪ = [50, 150) ∪ [140, 200) = [50, 200)
  // = 150 µs, of which [50, 100) = 50 µs overlaps compute: 33.3 %.
  of(m, variant::overlapped).ops = {{0, 0, 60}, {1, 40, 100}, {2, 50, 150}, {3, 140, 200}};
  const case_metrics r = compute_metrics(vs, m);
  ASSERT_TRUE(r.timeline_overlap_pct);
  EXPECT_NEAR(*r.timeline_overlap_pct, 100.0 / 3, 1e-9);
}

TEST(Metrics, IntervalHelpers) {
  EXPECT_DOUBLE_EQ(union_length({{0, 10}, {5, 15}, {20, 30}}), 25);
  EXPECT_DOUBLE_EQ(union_length({}), 0);
  EXPECT_DOUBLE_EQ(union_length({{5, 5}, {7, 3}}), 0);  // empty and inverted ignored
  EXPECT_DOUBLE_EQ(intersection_length({{0, 10}, {20, 30}}, {{5, 25}}), 10);
  EXPECT_DOUBLE_EQ(intersection_length({{0, 10}}, {{10, 20}}), 0);
}

TEST(Metrics, IntervalForUnknownOpIsARuntimeFailure) {
  const auto vs = make_variant_schedules(pair_schedule());
  variant_measurements m = basic(12);
  of(m, variant::overlapped).ops = {{0, 0, 10}, {7, 0, 10}};
  of(m, variant::compute_only).ops = {{0, 0, 10}};
  EXPECT_THROW(compute_metrics(vs, m), runtime_failure);
}

TEST(Metrics, WrongIsSummedOverVariants) {
  const auto vs = make_variant_schedules(pair_schedule());
  variant_measurements m = basic(12);
  of(m, variant::comm_only).wrong = 3;
  of(m, variant::overlapped).wrong = 4;
  EXPECT_EQ(compute_metrics(vs, m).wrong, 7);
}

TEST(Metrics, CollRowFollowsNcclTests) {
  collective_params c;
  c.op = coll_op::all_reduce;
  c.bytes = 1 << 20;
  c.group_size = 8;
  const coll_row r = make_coll_row(c, compute_stats({0.1, 0.1, 0.1}), 0);
  EXPECT_EQ(r.size, 1u << 20);
  EXPECT_EQ(r.count, (1u << 20) / 2);
  EXPECT_EQ(r.type, "bf16");
  EXPECT_EQ(r.redop, "sum");
  EXPECT_NEAR(r.time_us, 100, 1e-9);
  EXPECT_NEAR(r.algbw_gbps, 1048576.0 / 100e-6 / 1e9, 1e-9);
  EXPECT_NEAR(r.busbw_gbps, r.algbw_gbps * 14 / 8, 1e-9);

  c.op = coll_op::all_gather;  // size = total gathered bytes; count = size / sizeof(type)
  c.type = dtype::fp8;
  const coll_row g = make_coll_row(c, compute_stats({0.1}), 2);
  EXPECT_EQ(g.count, 1u << 20);
  EXPECT_EQ(g.redop, "none");
  EXPECT_NEAR(g.busbw_gbps, g.algbw_gbps * 7 / 8, 1e-9);
  EXPECT_EQ(g.wrong, 2);

  const json j = json::parse(to_json(g).dump());
  EXPECT_EQ(to_json(coll_row_from_json(json_object(j, "c.json", "rows[0]"))), to_json(g));
}

}  // namespace ob
