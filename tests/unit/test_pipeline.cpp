// The pipeline's shared pieces: enum names, collective traits, sweep axes, the run stage and the
// sweep that every measuring subcommand goes through.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "base/error.hpp"
#include "dist/communicator.hpp"
#include "model/collective_traits.hpp"
#include "run/pipeline.hpp"
#include "sim/simulator.hpp"

namespace ob {
namespace {

TEST(EnumNames, RoundTripAndAliases) {
  for (const auto& e : enum_names<coll_op>::names)
    EXPECT_EQ(parse_enum<coll_op>(to_string(e.value), "f"), e.value);
  EXPECT_EQ(parse_enum<coll_op>("ar", "f"), coll_op::all_reduce);
  EXPECT_EQ(parse_enum<dtype>("fp8_e4m3", "f"), dtype::fp8);
  EXPECT_EQ(enum_choices<launch_order>(), "comm_first or gemm_first");
  EXPECT_EQ(enum_choices<dtype>(), "bf16, fp16, fp8, fp32, mxfp8 or nvfp4");
  try {
    parse_enum<priority_mode>("loud", "--priority");
    FAIL();
  } catch (const config_error& e) {
    EXPECT_STREQ(e.what(),
                 "--priority: unknown priority 'loud' (expected comm_high, equal or compute_high)");
  }
}

TEST(CollectiveTraits, FollowNcclTestsConventions) {
  const auto& ag = traits_of(coll_op::all_gather);
  const auto& rs = traits_of(coll_op::reduce_scatter);
  const auto& ar = traits_of(coll_op::all_reduce);
  EXPECT_DOUBLE_EQ(ar.bus_factor(8), 2.0 * 7 / 8);
  EXPECT_DOUBLE_EQ(ag.bus_factor(8), 7.0 / 8);
  EXPECT_EQ(ar.ring_steps(8), 14);
  EXPECT_EQ(rs.ring_steps(8), 7);
  EXPECT_EQ(ag.ring_steps(1), 0);
  EXPECT_DOUBLE_EQ(ag.bytes_moved(1 << 20, 4), (1 << 20) * 3.0 / 4);
  EXPECT_EQ(ag.nccl_call, "ncclAllGather");
  EXPECT_EQ(rs.redop, "sum");
  EXPECT_EQ(ag.redop, "none");
  // 1 MiB of bf16 over 4 ranks: 131072 per-rank elements.
  const collective_counts cag = ag.counts(1 << 20, 4, dtype::bf16);
  EXPECT_EQ(cag.per_rank, 131072u);
  EXPECT_EQ(cag.send_elems, 131072u);
  EXPECT_EQ(cag.recv_elems, 524288u);
  const collective_counts crs = rs.counts(1 << 20, 4, dtype::bf16);
  EXPECT_EQ(crs.send_elems, 524288u);
  EXPECT_EQ(crs.recv_elems, 131072u);
  EXPECT_EQ(ar.counts(1 << 20, 4, dtype::fp8).per_rank, 1u << 20);  // one byte per element
  EXPECT_EQ(ag.size_multiple(8, dtype::bf16), 16u);
  EXPECT_EQ(ar.size_multiple(8, dtype::bf16), 2u);
  EXPECT_EQ(ag.verify, verify_kind::all_gather);
}

TEST(CollectiveTraits, AllToAllFollowsAlltoallPerf) {
  const auto& a2a = traits_of(coll_op::all_to_all);
  // alltoall_perf: size is one rank's send buffer, busbw = algbw × (n−1)/n.
  EXPECT_DOUBLE_EQ(a2a.bus_factor(8), 7.0 / 8);
  EXPECT_DOUBLE_EQ(a2a.bus_factor(1), 0);
  EXPECT_EQ(a2a.ring_steps(8), 7);
  const collective_counts c = a2a.counts(1 << 20, 4, dtype::bf16);
  EXPECT_EQ(c.per_rank, 131072u);  // one peer's shard
  EXPECT_EQ(c.send_elems, 524288u);
  EXPECT_EQ(c.recv_elems, 524288u);
  EXPECT_EQ(a2a.size_multiple(8, dtype::bf16), 16u);
  EXPECT_EQ(a2a.verify, verify_kind::all_to_all);
  // Grouped send/recv spread over NCCL's p2p channels: the GPU file's count of them, apart from
  // the channels of one send/recv ("p2p").
  EXPECT_EQ(a2a.ctas_key, "all_to_all");
  EXPECT_FALSE(a2a.sim.nvls || a2a.sim.tree || a2a.sim.simple_plateau);
  EXPECT_EQ(a2a.sim.across_nodes, network_shape::pairwise);
  EXPECT_EQ(parse_enum<coll_op>("alltoall", "--op"), coll_op::all_to_all);
}

TEST(CollectiveTraits, OneRowPerCollectiveInEnumOrder) {
  ASSERT_EQ(all_collectives().size(), collective_names().size());
  for (std::size_t i = 0; i < all_collectives().size(); ++i) {
    EXPECT_EQ(static_cast<std::size_t>(all_collectives()[i].op), i);
    EXPECT_EQ(to_string(all_collectives()[i].op), collective_names()[i]);
    EXPECT_FALSE(all_collectives()[i].nccl_call.empty());
  }
}

TEST(SweepAxes, ProductIsLastAxisFastestAndTyped) {
  const auto cases = expand_axes({{"cdmc", {"1", "8"}}, {"method", {"preset", "none"}}},
                                 "x.json: sweep.", plan_knobs{});
  // Without overlap CDMC changes nothing: one `none` case, at the axis' first value.
  ASSERT_EQ(cases.size(), 3u);
  EXPECT_EQ(cases[1].id, "method=none");
  EXPECT_EQ(cases[1].method, overlap_setting::none);
  EXPECT_EQ(cases[1].cdmc, 1);
  EXPECT_FALSE(cases[1].params.contains("cdmc"));
  EXPECT_EQ(cases[2].cdmc, 8);
  EXPECT_EQ(cases[2].params["cdmc"], 8);
  EXPECT_THROW(expand_axes({{"speed", {"1"}}}, "x: ", plan_knobs{}), config_error);
  EXPECT_THROW(expand_axes({{"cdmc", {"33"}}}, "x: ", plan_knobs{}), config_error);
  EXPECT_THROW(expand_axes({{"method", {"fastest"}}}, "x: ", plan_knobs{}), config_error);
}

TEST(SweepAxes, NoneIsSweptOnlyOverTheAxesThatChangeIt) {
  const auto cases = expand_axes({{"cdmc", {"1", "8"}},
                                  {"method", {"none", "preset"}},
                                  {"order", {"comm_first", "gemm_first"}},
                                  {"sm_margin", {"0", "16"}},
                                  {"comm_ctas", {"0", "8"}},
                                  {"priority", {"comm_high", "equal"}}},
                                 "x.json: sweep.", plan_knobs{});
  std::vector<std::string> none;
  for (const auto& c : cases)
    if (c.method == overlap_setting::none) none.push_back(c.id);
  EXPECT_EQ(none, (std::vector<std::string>{"method=none,comm_ctas=0", "method=none,comm_ctas=8"}));
  EXPECT_EQ(cases.size(), 2u + 2 * 2 * 2 * 2 * 2);

  // What the axis table claims: a `none` layer simulates the same whatever the dropped axes say,
  // and its collectives' CTAs do matter.
  layer_scenario sc = load_layer_scenario("default_layer");
  const run_spec r = resolve_run(sc);
  sim_executor ex(r.gpu);
  auto simulate_case = [&](int cdmc, plan_knobs k) {
    sweep_case c;
    c.method = overlap_setting::none;
    c.cdmc = cdmc;
    c.knobs = k;
    measure_options o;
    o.cdmc = cdmc;
    std::vector<double> out;
    for (const auto& v : ex.measure(make_variant_schedules(plan_case(r, c)), o))
      out.push_back(v.iter_ms.at(0));
    return out;
  };
  const auto base = simulate_case(1, plan_knobs{});
  plan_knobs other;
  other.order = launch_order::gemm_first;
  other.sm_margin = 32;
  other.priority = priority_mode::compute_high;
  EXPECT_EQ(simulate_case(32, other), base);
  plan_knobs ctas;
  ctas.comm_ctas = 4;
  EXPECT_NE(simulate_case(1, ctas), base);
}

TEST(RunSpec, LaunchOrderingFollowsTransformerEngine) {
  const gpu_spec h100 = load_gpu_spec("h100_sxm");
  const gpu_spec b200 = load_gpu_spec("b200");
  using enum launch_ordering;
  EXPECT_FALSE(te_launch_ordering_applies(automatic, h100, 1, overlap_setting::preset));
  EXPECT_TRUE(te_launch_ordering_applies(automatic, h100, 8, overlap_setting::preset));
  EXPECT_FALSE(te_launch_ordering_applies(automatic, b200, 8, overlap_setting::preset));
  EXPECT_TRUE(te_launch_ordering_applies(on, b200, 1, overlap_setting::te_default));
  EXPECT_FALSE(te_launch_ordering_applies(on, h100, 8, overlap_setting::none));
  EXPECT_FALSE(te_launch_ordering_applies(off, h100, 8, overlap_setting::preset));
}

TEST(RunSpec, DefaultScenarioResolvesToItsPresetAndNamesMismatches) {
  layer_scenario sc = load_layer_scenario("default_layer");
  const run_spec r = resolve_run(sc);
  EXPECT_EQ(r.cases.size(), 3u * 2 * 5 + 1);  // `none` once: no axis but comm_ctas applies
  EXPECT_EQ(r.overlap.of(overlap_setting::preset).at("fc2_fprop").method,
            overlap_method::ring_exchange);  // the preset's choice
  EXPECT_EQ(r.overlap.of(overlap_setting::te_default).at("fc2_fprop").method,
            overlap_method::pipeline);  // TE's default
  EXPECT_TRUE(r.overlap.of(overlap_setting::none).empty());
  EXPECT_TRUE(r.warnings.empty());
  EXPECT_EQ(r.config["scenario"], "layer");

  apply_override(sc, "tp=8");
  const run_spec r8 = resolve_run(sc);
  ASSERT_EQ(r8.warnings.size(), 1u);
  EXPECT_NE(r8.warnings[0].find("preset_mismatch"), std::string::npos) << r8.warnings[0];
  EXPECT_NE(r8.warnings[0].find("TP 4 but the run has 8"), std::string::npos) << r8.warnings[0];
}

TEST(Sweep, RunsEveryCaseInOrderAndReducesAcrossRanks) {
  layer_scenario sc = load_layer_scenario("default_layer");
  apply_override(sc, "sm_margin=0");
  apply_override(sc, "order=comm_first");
  const run_spec r = resolve_run(sc);
  sweep_request req;
  req.scenario = "layer";
  req.cases = r.cases;
  req.plan = [&r](const sweep_case& c) { return plan_case(r, c); };
  req.config = r.config;
  req.warnings = {"a note"};
  sim_executor exec(r.gpu);
  auto comm = make_single_communicator();
  std::vector<std::string> progressed;
  sweep_hooks hooks;
  hooks.progress = [&](std::size_t, std::size_t, const std::string& id) {
    progressed.push_back(id);
  };
  hooks.trace_cases = 2;
  const sweep_result out = run_sweep(req, exec, *comm, r.gpu, hooks);
  ASSERT_EQ(out.doc.cases.size(), r.cases.size());
  for (std::size_t i = 0; i < r.cases.size(); ++i) EXPECT_EQ(out.doc.cases[i].id, r.cases[i].id);
  EXPECT_EQ(progressed.size(), r.cases.size());
  EXPECT_EQ(out.exit_code, 0);
  EXPECT_TRUE(out.doc.simulated());
  EXPECT_EQ(out.doc.config["warnings"][0], "a note");
  // Two cases traced: the first with four variants, the second with its overlapped one.
  std::set<int> pids;
  const json trace = out.trace.to_json();
  for (const auto& e : trace["traceEvents"])
    if (e.contains("pid")) pids.insert(e["pid"].get<int>());
  EXPECT_EQ(pids.size(), 5u);
}

// A stand-in for a real backend: the simulator's timeline, 10 % slower, flagged measured.
class slower_measured_executor final : public executor {
 public:
  explicit slower_measured_executor(gpu_spec gpu) : sim_(std::move(gpu)) {}
  std::string backend() const override { return "cuda"; }
  bool simulated() const override { return false; }
  std::string label() const override { return "measured (test)"; }
  json environment() const override { return json{{"backend", "cuda"}, {"simulated", false}}; }
  using executor::measure;
  program_measurements measure(const program_variants& v, const measure_options& o) override {
    program_measurements m = sim_.measure(v, o);
    for (auto& stages : m)
      for (auto& vm : stages) {
        for (double& t : vm.iter_ms) t *= 1.1;
        for (op_interval& i : vm.ops) {  // a real backend sees start and end only
          i.start_us *= 1.1;
          i.end_us *= 1.1;
          i.enqueue_us = i.deps_met_us = i.ready_us = std::nullopt;
        }
      }
    return m;
  }

 private:
  sim_executor sim_;
};

TEST(Sweep, MeasuredCasesCarryTheSimulatorsPredictionAndAreDiagnosed) {
  layer_scenario sc = load_layer_scenario("default_layer");
  // The process's own CDMC: a real backend measures only that one.
  apply_override(sc, "cdmc=" + std::to_string(process_cdmc()));
  apply_override(sc, "sm_margin=0,16");
  apply_override(sc, "order=comm_first");
  const run_spec r = resolve_run(sc);
  sweep_request req;
  req.scenario = "layer";
  req.cases = r.cases;
  req.plan = [&r](const sweep_case& c) { return plan_case(r, c); };
  req.config = r.config;
  slower_measured_executor exec(r.gpu);
  sim_executor predictor(r.gpu);
  auto comm = make_single_communicator();
  sweep_hooks hooks;
  hooks.predictor = &predictor;
  const sweep_result out = run_sweep(req, exec, *comm, r.gpu, hooks);
  ASSERT_EQ(out.doc.cases.size(), 3u);
  EXPECT_FALSE(out.doc.simulated());
  for (const case_record& c : out.doc.cases) {
    ASSERT_TRUE(c.predicted.has_value()) << c.id;
    EXPECT_NEAR(c.predicted->deviation_pct, 10.0, 1e-6) << c.id;
    EXPECT_NEAR(c.predicted->overlapped_ms * 1.1, c.m.overlapped_ms.median, 1e-9);
    // Diagnosed from start/end intervals alone, adding up to the measured exposed time.
    ASSERT_TRUE(c.diag.has_value()) << c.id;
    double sum = 0;
    for (const cause_share& x : c.diag->causes) sum += x.ms;
    EXPECT_NEAR(sum, c.m.exposed_comm_ms, 1e-9);
  }
  ASSERT_TRUE(out.doc.rec.has_value());
  const auto best = std::min_element(out.doc.cases.begin(), out.doc.cases.end(),
                                     [](const case_record& a, const case_record& b) {
                                       return a.m.overlapped_ms.median < b.m.overlapped_ms.median;
                                     });
  EXPECT_EQ(out.doc.rec->best_case, best->id);
}

TEST(Sweep, PlanErrorsNameTheSourceAndCase) {
  sweep_request req;
  req.source = "s.json";
  req.cases = expand_axes({{"order", {"comm_first"}}}, "s.json: sweep.", plan_knobs{});
  req.plan = [](const sweep_case&) -> schedule { throw config_error("sm_margin too large"); };
  const gpu_spec gpu = load_gpu_spec("h100_sxm");
  sim_executor exec(gpu);
  auto comm = make_single_communicator();
  try {
    run_sweep(req, exec, *comm, gpu, sweep_hooks{});
    FAIL();
  } catch (const config_error& e) {
    EXPECT_STREQ(e.what(), "s.json: case order=comm_first: sm_margin too large");
  }
}

TEST(MicroSweeps, SizeRangeAndMultiples) {
  EXPECT_EQ(size_range(1024, 8192, 2), (std::vector<std::uint64_t>{1024, 2048, 4096, 8192}));
  EXPECT_EQ(size_range(1024, 5000, 4), (std::vector<std::uint64_t>{1024, 4096}));
  EXPECT_EQ(size_range(~0ull - 10, ~0ull, 2).size(), 1u);  // no overflow past the top
  coll_request r;
  r.c.op = coll_op::all_gather;
  r.c.group_size = 8;
  r.sizes = {16, 24};
  EXPECT_THROW(check_coll_sizes(r, "--bytes"), config_error);  // 24 bytes: 12 elements over 8
  r.sizes = {16, 32};
  EXPECT_NO_THROW(check_coll_sizes(r, "--bytes"));
}

TEST(MicroSweeps, CollMeasuresOnlyTheCommVariant) {
  const gpu_spec gpu = load_gpu_spec("h100_sxm");
  sim_executor exec(gpu);
  auto comm = make_single_communicator();
  coll_request r;
  r.c.op = coll_op::all_reduce;
  r.c.group_size = 8;
  r.sizes = {1 << 20, 1 << 26};
  const auto rows = run_coll(r, exec, *comm);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_LT(rows[0].busbw_gbps, rows[1].busbw_gbps);  // small messages pay latency
  EXPECT_EQ(rows[1].time_ms.n, 1);
}

}  // namespace
}  // namespace ob
