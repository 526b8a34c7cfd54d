// The EP dispatchers' own protocols (docs/MOE.md §7, sim/ep_dispatch.hpp): DeepEP's normal and
// low-latency kernels and HybridEP, against the given 8x B200 figures (deepseek-ai/DeepEP
// hybrid-ep branch docs/README_Hybrid-EP.md), the rows of the same tables the constants were not
// fitted on, and their mechanisms on timelines.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "base/error.hpp"
#include "model/cluster.hpp"
#include "model/gpu_spec.hpp"
#include "run/step_run.hpp"
#include "sim/ep_dispatch.hpp"
#include "sim/simulator.hpp"
#include "test_sim_schedules.hpp"

namespace ob {
namespace {

// The README's benchmark: 8 ranks, 4096 tokens a rank, hidden 7168, top-8, 8 local experts.
collective_params bench_exchange(ep_backend b, bool combine, dtype type, int sms, int ranks = 8,
                                 int nodes = 1) {
  collective_params c = test::collective(coll_op::all_to_all, 1, ranks, sms);
  c.type = type;
  c.nodes = nodes;
  c.ep = ep_exchange{b, combine, 4096, 7168, 8, 8 * ranks, 1.0};
  return c;
}

// The exchange alone on the GPU, as its test times it: algorithm bandwidth = the bytes a rank
// receives (its own copies included) over the call's time.
double algbw(const collective_params& c, const gpu_spec& gpu, const cluster_spec& net) {
  schedule s;
  s.name = "ep";
  s.add_stream("ep", stream_role::comm, 0);
  s.add_op("x", 0, c);
  const sim_result r = simulate(s, gpu, sim_options{1, false, &net});
  const sim::ep_cost e = sim::plan_ep_exchange(c, gpu, net);
  return e.recv_bytes / (r.ops[0].end_us - r.ops[0].start_us) / 1e3;
}

struct point {
  ep_backend backend;
  int sms;
  dtype type;
  bool combine;
  double gbps;
};

void expect_within(const std::vector<point>& pts, const char* gpu_name, double tol) {
  const gpu_spec gpu = load_gpu_spec(gpu_name);
  const cluster_spec net = default_cluster(gpu);
  for (const point& p : pts) {
    const double model = algbw(bench_exchange(p.backend, p.combine, p.type, p.sms), gpu, net);
    EXPECT_NEAR(model / p.gbps, 1.0, tol)
        << gpu_name << " " << p.sms << " SMs " << (p.combine ? "combine" : to_string(p.type))
        << ": model " << model << " GB/s against " << p.gbps;
  }
}

TEST(EpDispatch, DistinctTargetsOfUniformRouting) {
  EXPECT_DOUBLE_EQ(sim::distinct_targets(64, 8, 1), 1);
  EXPECT_NEAR(sim::distinct_targets(64, 8, 64), 8, 1e-9);  // one expert a rank: every copy
  const double ranks = sim::distinct_targets(64, 8, 8);
  EXPECT_GT(ranks, 5.3);
  EXPECT_LT(ranks, 5.5);
  EXPECT_LT(sim::distinct_targets(256, 8, 4), sim::distinct_targets(256, 8, 32));
}

TEST(EpDispatch, GivenB200PointsWithinTenPercent) {
  expect_within({{ep_backend::hybridep, 16, dtype::fp8, false, 410},
                 {ep_backend::hybridep, 16, dtype::bf16, false, 536},
                 {ep_backend::hybridep, 16, dtype::bf16, true, 531},
                 {ep_backend::deepep, 48, dtype::fp8, false, 554},
                 {ep_backend::deepep, 48, dtype::bf16, false, 646},
                 {ep_backend::deepep, 48, dtype::bf16, true, 586}},
                "b200", 0.10);
}

// DeepEP's 24-44 SM rows of the same table: the constants saw only its 16- and 48-SM rows.
TEST(EpDispatch, DeepEpSmSweepRowsNotFittedWithinTenPercent) {
  std::vector<point> pts;
  const double rows[][4] = {{24, 349, 494, 420}, {28, 397, 560, 477}, {32, 443, 619, 524},
                            {36, 482, 635, 549}, {40, 519, 629, 570}, {44, 544, 640, 577}};
  for (const auto& r : rows) {
    const int sms = static_cast<int>(r[0]);
    pts.push_back({ep_backend::deepep, sms, dtype::fp8, false, r[1]});
    pts.push_back({ep_backend::deepep, sms, dtype::bf16, false, r[2]});
    pts.push_back({ep_backend::deepep, sms, dtype::bf16, true, r[3]});
  }
  expect_within(pts, "b200", 0.10);
}

// GB200, 8 ranks on 16 SMs (same README): the GB200 file takes the B200's constants.
TEST(EpDispatch, Gb200HybridEpRowNotFittedWithinTenPercent) {
  expect_within({{ep_backend::hybridep, 16, dtype::fp8, false, 421.67},
                 {ep_backend::hybridep, 16, dtype::bf16, false, 550.10},
                 {ep_backend::hybridep, 16, dtype::bf16, true, 538.44}},
                "gb200", 0.10);
}

TEST(EpDispatch, Fp8DispatchIsFasterButNotTwiceAndCombineIsBf16) {
  const gpu_spec gpu = load_gpu_spec("b200");
  const cluster_spec net = default_cluster(gpu);
  const auto us = [&](dtype t, bool combine) {
    return sim::plan_ep_exchange(bench_exchange(ep_backend::deepep, combine, t, 24), gpu, net)
        .est_us();
  };
  EXPECT_LT(us(dtype::fp8, false), us(dtype::bf16, false));
  EXPECT_GT(us(dtype::fp8, false), 0.5 * us(dtype::bf16, false));  // fixed and per-token costs
  EXPECT_DOUBLE_EQ(us(dtype::fp8, true), us(dtype::bf16, true));   // the combine moves bf16
}

TEST(EpDispatch, AcrossNodesNormalCrossesRdmaOncePerNodeLowLatencyPerExpert) {
  const gpu_spec gpu = load_gpu_spec("b200");
  const cluster_spec net = load_cluster("dgx_b200");
  const auto normal = sim::plan_ep_exchange(
      bench_exchange(ep_backend::deepep, false, dtype::fp8, 24, 32, 4), gpu, net);
  const auto ll = sim::plan_ep_exchange(
      bench_exchange(ep_backend::deepep_low_latency, false, dtype::fp8, 24, 32, 4), gpu, net);
  const double row = sim::ep_row_bytes(dtype::fp8, 7168);
  // Normal: each token reaches distinct_targets(256, 8, 4) nodes, 3/4 of them remote.
  EXPECT_NEAR(normal.rdma_bytes, 4096 * sim::distinct_targets(256, 8, 4) * 0.75 * row, 1);
  EXPECT_GT(normal.nvlink_bytes, 0);
  // Low latency: all eight copies, every one that leaves the rank, on RDMA.
  EXPECT_NEAR(ll.rdma_bytes, 4096 * 8 * 31.0 / 32 * row, 1);
  EXPECT_EQ(ll.nvlink_bytes, 0);
  EXPECT_GT(ll.rdma_bytes, 2 * normal.rdma_bytes);
  // Both are NIC-bound: the bytes over the GPU's NIC share.
  const double nic = net.node_egress_gbps() / net.gpus_per_node * 1e3;
  EXPECT_NEAR(ll.move_us, ll.rdma_bytes / nic, 1e-6 * ll.move_us);
  EXPECT_NEAR(normal.move_us, normal.rdma_bytes / nic, 1e-6 * normal.move_us);
}

// Beside a persistent GEMM: DeepEP's SMs are held for the whole call (fixed cost included),
// HybridEP's fewer; the GEMM's CTAs that find those SMs taken wait, so it ends later than alone.
TEST(EpDispatch, TimelineHeldSmsBesideAPersistentGemm) {
  const gpu_spec gpu = test::plain_tiles(load_gpu_spec("b200"));
  const auto run = [&](ep_backend b, int sms, bool with_exchange = true) {
    schedule s;
    s.name = "ep_gemm";
    s.add_stream("ep", stream_role::comm, -1);
    s.add_stream("compute", stream_role::compute, 0);
    if (with_exchange) s.add_op("dispatch", 0, bench_exchange(b, false, dtype::bf16, sms));
    s.add_op("gemm", 1, test::gemm(8192, 8192, 8192));
    return simulate(s, gpu, sim_options{8, false});
  };
  const sim_result deepep = run(ep_backend::deepep, 20), hybrid = run(ep_backend::hybridep, 16);
  const sim_result alone = run(ep_backend::deepep, 20, false);
  const auto length = [](const sim_op_result& r) { return r.end_us - r.start_us; };
  EXPECT_EQ(deepep.ops[0].ctas, 20);
  EXPECT_EQ(hybrid.ops[0].ctas, 16);
  // The dispatch lasts at least its fixed cost, and the GEMM starts while it still runs.
  EXPECT_GE(length(deepep.ops[0]), gpu.deepep.dispatch_us);
  EXPECT_LT(deepep.ops[1].start_us, deepep.ops[0].end_us);
  // Losing SMs (and sharing HBM) for the exchange's length slows the GEMM.
  EXPECT_GT(length(deepep.ops[1]), 1.02 * length(alone.ops[0]));
  EXPECT_GT(length(hybrid.ops[1]), 1.02 * length(alone.ops[0]));
  // 20 SMs of DeepEP move less than 16 of HybridEP's TMA copies: a longer exchange.
  EXPECT_GT(length(deepep.ops[0]) - gpu.deepep.dispatch_us,
            length(hybrid.ops[0]) - gpu.hybridep.dispatch_us);
}

// In a step on B200: --moe-dispatcher deepep hands the planner's exchanges to DeepEP's protocol
// (the forward's dispatch a dispatch call, its combine a combine call), each as long alone as
// the protocol says; the NCCL dispatcher keeps NCCL's all-to-all.
TEST(EpDispatch, StepDispatchersUseTheProtocolOnBlackwell) {
  const auto plan = [](const std::string& dispatcher) {
    step_scenario sc;
    sc.model = "qwen3_30b_a3b";
    sc.cluster = "dgx_b200";
    sc.allow_oom = true;
    sc.axes = {{"gpus", {"8"}},
               {"ep", {"8"}},
               {"layers", {"2"}},
               {"gbs", {"16"}},
               {"moe_dispatcher", {dispatcher}}};
    const step_spec spec = resolve_step(sc);
    sim_options o;
    o.cluster = &spec.cases.at(0).cluster;
    program prog = plan_step_case(spec, spec.cases.at(0)).prog;
    const auto ops = simulate_program(prog, spec.gpu, o).front().ops;
    return std::make_tuple(prog, ops, spec.gpu, spec.cases.at(0).cluster);
  };
  const auto find = [](const program& p, const std::string& name) -> const op& {
    for (const op& o : p.stages[0].ops)
      if (o.name == name) return o;
    throw std::out_of_range(name);
  };
  const auto [prog, ops, gpu, net] = plan("deepep");
  const op& dispatch = find(prog, "c0.mb0.L0.moe_dispatch");
  const op& combine = find(prog, "c0.mb0.L0.moe_combine");
  const auto& d = dispatch.as<collective_params>();
  EXPECT_EQ(d.ep.backend, ep_backend::deepep);
  EXPECT_FALSE(d.ep.combine);
  EXPECT_TRUE(combine.as<collective_params>().ep.combine);
  EXPECT_EQ(d.ep.topk, 8);
  EXPECT_EQ(d.ep.experts, 128);
  EXPECT_EQ(d.ctas, 20);
  const double alone = sim::plan_ep_exchange(d, gpu, net).est_us();
  const auto& r = ops[dispatch.id];
  EXPECT_NEAR(r.end_us - r.start_us, alone, 0.02 * alone);
  const auto [nprog, nops, ngpu, nnet] = plan("alltoall");
  EXPECT_EQ(find(nprog, "c0.mb0.L0.moe_dispatch").as<collective_params>().ep.backend,
            ep_backend::nccl);
}

TEST(EpDispatch, MissingConstantsOrBadRoutesAreRefused) {
  const gpu_spec h100 = load_gpu_spec("h100_sxm");
  EXPECT_EQ(sim::ep_constants(bench_exchange(ep_backend::deepep, false, dtype::bf16, 20), h100),
            nullptr);
  const gpu_spec b200 = load_gpu_spec("b200");
  collective_params c = bench_exchange(ep_backend::deepep, false, dtype::bf16, 20);
  c.ep.experts = 60;  // not a multiple of 8 ranks
  try {
    sim::plan_ep_exchange(c, b200, default_cluster(b200));
    ADD_FAILURE() << "accepted 60 experts on 8 ranks";
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("60 experts"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ob
