// A host sync (op_kind::host_sync, docs/ARCHITECTURE.md §5.1 item 12): the host stops enqueuing
// until a device-to-host copy has run, so the GPU's queue drains and the launches after it are
// exposed; and the MoE layer's token-count sync that uses it (docs/MOE.md §16).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "model/gpu_spec.hpp"
#include "run/step_run.hpp"
#include "sim/gemm_model.hpp"
#include "sim/simulator.hpp"
#include "step_test_util.hpp"
#include "test_sim_schedules.hpp"

namespace ob {
namespace {

using test::delay;

class HostSync : public ::testing::Test {
 protected:
  // compute: g (long), then `between` (enqueued before the sync), then k; the sync, on a copy
  // stream, waits on g.
  static schedule chain(double g_us, double between_us, bool sync) {
    schedule s;
    s.name = "host_sync";
    const int compute = s.add_stream("compute", stream_role::compute, 0);
    const int copy = s.add_stream("d2h", stream_role::p2p, 0);
    const int g = s.add_op("g", compute, delay(g_us, 8));
    if (between_us > 0) s.add_op("between", compute, delay(between_us, 8));
    if (sync) s.add_op("sync", copy, host_sync_params{1024}, {g});
    s.add_op("k", compute, delay(5, 8));
    return s;
  }
  sim_result run(const schedule& s) const { return simulate(s, gpu, sim_options{}); }
  const sim_op_result& named(const schedule& s, const sim_result& r, const std::string& n) const {
    for (const op& o : s.ops)
      if (o.name == n) return r.ops[static_cast<std::size_t>(o.id)];
    throw std::out_of_range(n);
  }
  gpu_spec gpu = load_gpu_spec("h100_sxm");
};

TEST_F(HostSync, TheHostWaitsForTheCopyAndTheGpuIdlesForItsNextLaunch) {
  const schedule plain = chain(500, 0, false), synced = chain(500, 0, true);
  const sim_result a = run(plain), b = run(synced);
  // Without the sync the host is far ahead: k is queued long before g ends and follows it at once.
  EXPECT_LT(named(plain, a, "k").enqueue_us, 50.0);
  EXPECT_DOUBLE_EQ(named(plain, a, "k").start_us, named(plain, a, "g").end_us);
  // With it the copy starts once g's end is seen from its queue and takes host_sync_us (its 1 KiB
  // adds next to nothing); only then does the host launch k, which the idle GPU runs at once.
  const sim_op_result& sync = named(synced, b, "sync");
  const sim_op_result& k = named(synced, b, "k");
  EXPECT_DOUBLE_EQ(sync.start_us, named(synced, b, "g").end_us + gpu.cross_queue_event_us);
  EXPECT_NEAR(sync.end_us - sync.start_us, gpu.host_sync_us, 0.01);
  EXPECT_DOUBLE_EQ(k.enqueue_us, sync.end_us + gpu.launch_us);
  EXPECT_DOUBLE_EQ(k.start_us, k.enqueue_us);
  EXPECT_NEAR(b.total_us - a.total_us, gpu.cross_queue_event_us + gpu.host_sync_us + gpu.launch_us,
              0.05);
}

TEST_F(HostSync, WorkEnqueuedBeforeTheSyncHidesIt) {
  // An op queued behind g before the host blocks keeps the GPU busy while the host waits: k
  // follows it without a gap once it is longer than the sync and k's launch.
  const double hide = gpu.cross_queue_event_us + gpu.host_sync_us + gpu.launch_us;
  const schedule longer = chain(500, 4 * hide, true), shorter = chain(500, hide / 4, true);
  const sim_result l = run(longer), s = run(shorter);
  EXPECT_DOUBLE_EQ(named(longer, l, "k").start_us, named(longer, l, "between").end_us);
  const double gap = named(shorter, s, "k").start_us - named(shorter, s, "between").end_us;
  EXPECT_NEAR(gap, hide - hide / 4, 0.05);
}

TEST_F(HostSync, GraphsKeepTheWait) {
  // A graph cannot hold a host wait: the ops after it are still launched only after it ends.
  const schedule synced = chain(500, 0, true);
  const sim_result r = simulate(synced, gpu, sim_options{8, true});
  EXPECT_DOUBLE_EQ(named(synced, r, "k").enqueue_us,
                   named(synced, r, "sync").end_us + gpu.graph_node_us);
}

// Host-only framework ops (op::host_ops, docs/MOE.md §17): each costs the host a launch before
// its op. Behind a host sync the host cannot run ahead, so the GPU idles for all of them; a CUDA
// graph scope turns each into a graph node.
TEST_F(HostSync, HostOpsAfterTheSyncLeaveTheGpuIdleForTheirLaunches) {
  constexpr int n = 30;
  schedule eager = chain(500, 0, true);
  eager.ops.back().host_ops = n;
  schedule graphed = eager;
  graphed.ops.back().graphed = true;
  const sim_result e = run(eager), g = run(graphed);
  const double sync_end = named(eager, e, "sync").end_us;
  // k is the harness's delay (a bare launch); each of its host ops an eager framework op.
  const double host = gpu.launch_us + n * gpu.eager_op_us;
  EXPECT_DOUBLE_EQ(named(eager, e, "k").enqueue_us, sync_end + host);
  // The GPU has nothing queued from g's end until k: it idles for the copy and k's host work.
  EXPECT_DOUBLE_EQ(named(eager, e, "k").start_us, named(eager, e, "k").enqueue_us);
  EXPECT_DOUBLE_EQ(named(graphed, g, "k").enqueue_us,
                   named(graphed, g, "sync").end_us + (1 + n) * gpu.graph_node_us);
  EXPECT_NEAR(e.total_us - g.total_us, host - (1 + n) * gpu.graph_node_us, 0.05);
}

// An eager framework (PyTorch, as a training step is issued; docs/MOE.md §20) costs the host
// eager_op_us per GEMM or elementwise kernel, measured in public profiles, against a bare launch
// from a benchmark harness. Kernels shorter than that leave the GPU idle between them: the
// host-bound gaps of an eager profile. Longer ones let the host run ahead.
schedule small_kernels(bool eager, std::uint64_t bytes) {
  schedule s;
  s.name = "small_kernels";
  s.eager_framework = eager;
  const int compute = s.add_stream("compute", stream_role::compute, 0);
  for (int i = 0; i < 8; ++i)
    s.add_op("e" + std::to_string(i), compute, elementwise_params{bytes, 0});
  return s;
}

TEST_F(HostSync, AnEagerFrameworkOpCostsTheHostItsMeasuredTimeAndIdlesTheGpuBehindShortKernels) {
  ASSERT_GT(gpu.eager_op_us, 2 * gpu.launch_us);  // the measured figure, not a bare launch
  const std::uint64_t small = 1 << 20;            // 1 MiB: well under a µs of HBM on an H100
  const schedule eager = small_kernels(true, small), harness = small_kernels(false, small);
  const sim_result e = run(eager), h = run(harness);
  for (int i = 1; i < 8; ++i) {
    const auto& prev = e.ops[static_cast<std::size_t>(i - 1)];
    const auto& cur = e.ops[static_cast<std::size_t>(i)];
    EXPECT_DOUBLE_EQ(cur.enqueue_us - prev.enqueue_us, gpu.eager_op_us);
    EXPECT_DOUBLE_EQ(h.ops[static_cast<std::size_t>(i)].enqueue_us -
                         h.ops[static_cast<std::size_t>(i - 1)].enqueue_us,
                     gpu.launch_us);
    // Host-bound: each kernel starts when the host hands it over, after the GPU idled since the
    // last one ended.
    EXPECT_DOUBLE_EQ(cur.start_us, cur.enqueue_us);
    EXPECT_GT(cur.start_us - prev.end_us, 0.5 * gpu.eager_op_us);
  }
  EXPECT_NEAR(e.total_us - h.total_us, 7 * (gpu.eager_op_us - gpu.launch_us), 0.05);
  // Kernels longer than an eager op: the host runs ahead and the GPU never waits.
  const std::uint64_t big = 1ull << 30;
  const schedule long_eager = small_kernels(true, big);
  const sim_result l = run(long_eager);
  for (int i = 1; i < 8; ++i)
    EXPECT_DOUBLE_EQ(l.ops[static_cast<std::size_t>(i)].start_us,
                     l.ops[static_cast<std::size_t>(i - 1)].end_us);
  // The step's variants keep the flag: the same host issues them.
  EXPECT_TRUE(derive_variant(eager, variant::compute_only).eager_framework);
}

// A collective Megatron issues through torch.distributed (a DP bucket's, an EP exchange on
// NCCL) costs an eager framework's host a c10d call, c10d_call_us, measured in public profiles
// (docs/MOE.md §20); a TP collective (Transformer Engine's own) keeps nccl_launch_us, as does
// every collective a benchmark harness launches. Small ones leave the comm stream idle between
// them: each starts when the host hands it over.
schedule small_collectives(bool eager) {
  schedule s;
  s.name = "small_collectives";
  s.eager_framework = eager;
  const int comm = s.add_stream("comm", stream_role::comm, 0);
  const comm_group groups[] = {comm_group::dp, comm_group::dp, comm_group::ep, comm_group::tp,
                               comm_group::dp};
  for (int i = 0; i < 5; ++i) {
    collective_params c =
        test::collective(i == 2 ? coll_op::all_to_all : coll_op::all_gather, 64 << 10, 8, 0);
    c.group = groups[i];
    s.add_op("c" + std::to_string(i), comm, c);
  }
  return s;
}

TEST_F(HostSync, AC10dCollectiveCostsTheHostItsMeasuredCallAndTeCollectivesKeepTheLaunch) {
  ASSERT_GT(gpu.c10d_call_us, 2 * gpu.nccl_launch_us);  // the measured figure, not a launch
  const schedule eager = small_collectives(true), harness = small_collectives(false);
  const sim_result e = run(eager), h = run(harness);
  const double expected[] = {0, gpu.c10d_call_us, gpu.c10d_call_us, gpu.nccl_launch_us,
                             gpu.c10d_call_us};
  for (std::size_t i = 1; i < 5; ++i) {
    const auto& prev = e.ops[i - 1];
    const auto& cur = e.ops[i];
    EXPECT_DOUBLE_EQ(cur.enqueue_us - prev.enqueue_us, expected[i]) << i;
    EXPECT_DOUBLE_EQ(h.ops[i].enqueue_us - h.ops[i - 1].enqueue_us, gpu.nccl_launch_us) << i;
    if (expected[i] == gpu.c10d_call_us) {
      // Host-bound: the 64 KiB collective before it ended long ago; it starts as it is handed
      // over.
      EXPECT_DOUBLE_EQ(cur.start_us, cur.enqueue_us) << i;
      EXPECT_GT(cur.start_us - prev.end_us, 0.3 * gpu.c10d_call_us) << i;
    }
  }
  EXPECT_GT(e.total_us - h.total_us, 1.5 * gpu.c10d_call_us);  // three c10d calls, host-bound
}

TEST_F(HostSync, HostOpsWithoutASyncHideBehindTheGpu) {
  // 30 eager ops (about 1 ms of host at the measured eager_op_us) behind a 5 ms kernel.
  schedule plain = chain(5000, 0, false);
  plain.ops.back().host_ops = 30;
  ASSERT_LT(30 * gpu.eager_op_us, 5000);
  const sim_result r = run(plain);
  EXPECT_DOUBLE_EQ(named(plain, r, "k").start_us, named(plain, r, "g").end_us);
}

TEST_F(HostSync, CommOnlyVariantDropsItComputeVariantsKeepIt) {
  const schedule synced = chain(500, 0, true);
  for (variant v : {variant::compute_only, variant::serial, variant::overlapped}) {
    const schedule d = derive_variant(synced, v);
    EXPECT_EQ(d.ops.size(), synced.ops.size()) << to_string(v);
  }
}

// Qwen3-30B-A3B, two layers, two micro-batches a rank on 8 GPUs at EP 8.
struct moe_timeline {
  program prog;
  std::vector<sim_op_result> ops;
  int id(const std::string& name) const {
    for (const op& o : prog.stages[0].ops)
      if (o.name == name) return o.id;
    throw std::out_of_range(name);
  }
  const sim_op_result& at(const std::string& name) const {
    return ops[static_cast<std::size_t>(id(name))];
  }
};

moe_timeline step_timeline(const std::string& model, std::vector<sweep_axis> axes,
                           const std::string& cluster = "dgx_h100") {
  step_scenario sc;
  sc.model = model;
  sc.cluster = cluster;
  sc.allow_oom = true;
  sc.axes = std::move(axes);
  const step_spec spec = resolve_step(sc);
  moe_timeline t;
  t.prog = plan_step_case(spec, spec.cases.at(0)).prog;
  sim_options o;
  o.cluster = &spec.cases.at(0).cluster;
  o.cdmc = spec.cases.at(0).cdmc;
  t.ops = simulate_program(t.prog, spec.gpu, o).front().ops;
  return t;
}

moe_timeline moe_step(std::vector<sweep_axis> extra = {}, const std::string& cluster = "dgx_h100") {
  std::vector<sweep_axis> axes = {
      {"gpus", {"8"}}, {"ep", {"8"}}, {"layers", {"2"}}, {"gbs", {"16"}}};
  axes.insert(axes.end(), extra.begin(), extra.end());
  return step_timeline("qwen3_30b_a3b", std::move(axes), cluster);
}

// Llama 3 8B, two layers, two micro-batches a rank on 8 GPUs at TP 2 (SP), so that the attention
// block holds TP collectives too.
moe_timeline dense_step(std::vector<sweep_axis> extra = {}) {
  std::vector<sweep_axis> axes = {
      {"gpus", {"8"}}, {"tp", {"2"}}, {"layers", {"2"}}, {"gbs", {"8"}}};
  axes.insert(axes.end(), extra.begin(), extra.end());
  return step_timeline("llama3_8b", std::move(axes));
}

TEST(MoeTokenCountSync, EachForwardMoeLayerSyncsOnTheRoutersCountsBeforeTheDispatch) {
  const moe_timeline t = moe_step();
  int syncs = 0;
  for (const op& o : t.prog.stages[0].ops) syncs += o.kind() == op_kind::host_sync;
  EXPECT_EQ(syncs, 2 * 2);  // forward only: 2 layers x 2 micro-batches; the backward reuses them
  const std::string l = "c0.mb1.L1.";
  const op& sync = t.prog.stages[0].ops[static_cast<std::size_t>(t.id(l + "moe_counts_sync"))];
  // Megatron's alltoall dispatcher first all-gathers the counts over EP (128 experts x 8 bytes a
  // rank), on the compute stream; the host copy waits for them.
  const op& ag = t.prog.stages[0].ops[static_cast<std::size_t>(t.id(l + "moe_counts_ag"))];
  EXPECT_EQ(ag.stream,
            t.prog.stages[0].ops[static_cast<std::size_t>(t.id(l + "moe_permute"))].stream);
  EXPECT_EQ(ag.as<collective_params>().op, coll_op::all_gather);
  EXPECT_EQ(ag.as<collective_params>().group, comm_group::ep);
  EXPECT_EQ(ag.as<collective_params>().bytes, 128ull * 8 * 8);
  EXPECT_EQ(sync.waits, std::vector<int>{ag.id});
  EXPECT_EQ(t.prog.stages[0].streams[static_cast<std::size_t>(sync.stream)].name, "moe_counts_d2h");
  // The router's scores after its GEMM, sized from [4096 tokens, 128 experts] in fp32.
  const op& scores = t.prog.stages[0].ops[static_cast<std::size_t>(t.id(l + "moe_router_scores"))];
  EXPECT_EQ(scores.as<elementwise_params>().bytes, 4096ull * 128 * 17);
  EXPECT_EQ(t.prog.stages[0]
                .ops[static_cast<std::size_t>(t.id(l + "moe_router_scores_bwd"))]
                .as<elementwise_params>()
                .bytes,
            4096ull * 128 * 12);
  // Megatron's dropless alltoall dispatcher: the permutation is enqueued, then the host waits.
  EXPECT_LT(t.id(l + "moe_permute"), sync.id);
  EXPECT_LT(sync.id, t.id(l + "moe_dispatch"));
  // On the timeline: the copy starts once the router has counted, and nothing after it is
  // enqueued before it ends, the dispatch included.
  const sim_op_result& s = t.at(l + "moe_counts_sync");
  EXPECT_GE(t.at(l + "moe_counts_ag").start_us, t.at(l + "moe_router_scores").end_us);
  EXPECT_GE(s.start_us, t.at(l + "moe_counts_ag").end_us);
  EXPECT_GE(t.at(l + "moe_dispatch").enqueue_us, s.end_us);
  for (std::size_t i = static_cast<std::size_t>(sync.id) + 1; i < t.ops.size(); ++i)
    ASSERT_GE(t.ops[i].enqueue_us, s.end_us) << t.prog.stages[0].ops[i].name;
}

TEST(MoeTokenCountSync, ACapacityFactorSyncsBeforeThePermutation) {
  const moe_timeline t = moe_step({{"moe_capacity_factor", {"1.5"}}});
  const std::string l = "c0.mb0.L0.";
  EXPECT_LT(t.id(l + "moe_counts_sync"), t.id(l + "moe_permute"));
  EXPECT_GE(t.at(l + "moe_permute").enqueue_us, t.at(l + "moe_counts_sync").end_us);
}

// Megatron's batch_p2p_sync: 1F1B without virtual stages synchronizes the device after every
// batched p2p call; the interleaved schedule (overlap_p2p_comm) does not.
TEST(PipelineDeviceSync, OneFOneBSynchronizesTheDeviceAfterEachBatchedCall) {
  step_scenario sc;
  sc.model = "llama3_8b";
  sc.cluster = "dgx_h100";
  sc.allow_oom = true;
  sc.axes = {{"gpus", {"2"}}, {"pp", {"2"}}, {"layers", {"4"}}, {"gbs", {"4"}}, {"vp", {"1"}}};
  const step_spec spec = resolve_step(sc);
  const program prog = plan_step_case(spec, spec.cases.at(0)).prog;
  sim_options o;
  o.cluster = &spec.cases.at(0).cluster;
  const std::vector<sim_result> r = simulate_program(prog, spec.gpu, o);
  for (std::size_t st = 0; st < prog.stages.size(); ++st) {
    const schedule& s = prog.stages[st];
    int syncs = 0, transfers = 0;
    for (const op& x : s.ops) {
      transfers += x.kind() == op_kind::p2p;
      if (x.kind() != op_kind::host_sync) continue;
      ++syncs;
      ASSERT_TRUE(x.as<host_sync_params>().device);
      // Right after its call's transfers, waiting on them and on every other busy stream.
      ASSERT_EQ(s.ops[static_cast<std::size_t>(x.id - 1)].kind(), op_kind::p2p);
      std::vector<bool> seen(s.streams.size(), false);
      for (int w : x.waits) seen[static_cast<std::size_t>(s.ops[w].stream)] = true;
      for (int before = 0; before < x.id; ++before)
        if (s.ops[before].stream != x.stream)
          ASSERT_TRUE(seen[static_cast<std::size_t>(s.ops[before].stream)]) << x.id;
      // Nothing behind it is enqueued before every stream has drained and the host woke up.
      const auto& ops = r[st].ops;
      for (int w : x.waits) ASSERT_GE(ops[x.id].start_us, ops[w].end_us);
      if (x.id + 1 < static_cast<int>(s.ops.size()))
        ASSERT_GE(ops[x.id + 1].enqueue_us, ops[x.id].end_us);
    }
    EXPECT_GT(syncs, 0);
    EXPECT_LE(syncs, transfers);  // one per call; a call holds one or two transfers
  }
  sc.axes = {{"gpus", {"2"}}, {"pp", {"2"}}, {"layers", {"4"}}, {"gbs", {"4"}}, {"vp", {"2"}}};
  const step_spec inter = resolve_step(sc);
  for (const schedule& s : plan_step_case(inter, inter.cases.at(0)).prog.stages)
    for (const op& x : s.ops) EXPECT_NE(x.kind(), op_kind::host_sync) << x.name;
}

}  // namespace

// The MoE layer's host ops sit on the plan's ops in Megatron's issue order, and the recipes'
// cuda_graph_scope captures the router's and the preprocessing's (docs/MOE.md §17).
TEST(MoeHostOps, TheRouterAndPreprocessOpsCostLaunchesUnlessAGraphScopeCapturesThem) {
  const std::string l = "c0.mb1.L1.";
  const moe_timeline eager = moe_step();
  const moe_timeline graphed = moe_step({{"cuda_graph_scope", {"moe_router+moe_preprocess"}}});
  const auto plan_op = [&](const moe_timeline& t, const std::string& n) -> const op& {
    return t.prog.stages[0].ops[static_cast<std::size_t>(t.id(l + n))];
  };
  const int router = plan_op(eager, "moe_router_scores").host_ops;
  const int pre = plan_op(eager, "moe_permute").host_ops;
  EXPECT_GT(router, 0);
  EXPECT_GT(pre, 0);
  EXPECT_GT(plan_op(eager, "moe_counts_sync").host_ops, 0);
  EXPECT_GT(plan_op(eager, "moe_router_scores_bwd").host_ops, 0);
  for (const char* n : {"moe_router", "moe_router_scores", "moe_counts_ag", "moe_permute",
                        "moe_router_scores_bwd", "moe_router_wgrad", "moe_permute_bwd"}) {
    EXPECT_FALSE(plan_op(eager, n).graphed) << n;
    EXPECT_TRUE(plan_op(graphed, n).graphed) << n;
  }
  // The host's own copy and wait stay eager: a graph cannot hold them.
  EXPECT_FALSE(plan_op(graphed, "moe_counts_sync").graphed);
  EXPECT_FALSE(plan_op(graphed, "moe_dispatch").graphed);
  // On the host's timeline, from the gating GEMM's enqueue to the permutation's: eager, a launch
  // for each host op and op; graphed, a node each.
  const auto span = [&](const moe_timeline& t) {
    return t.at(l + "moe_permute").enqueue_us - t.at(l + "moe_router").enqueue_us;
  };
  const gpu_spec gpu = load_gpu_spec("h100_sxm");
  EXPECT_GE(span(eager), (router + pre + 3) * gpu.launch_us);
  EXPECT_NEAR(span(graphed), (router + pre + 3) * gpu.graph_node_us, 1e-6);
  const auto end = [](const moe_timeline& t) {
    double e = 0;
    for (const sim_op_result& r : t.ops) e = std::max(e, r.end_us);
    return e;
  };
  EXPECT_LE(end(graphed), end(eager));
}

// Transformer Engine's GroupedLinear launches one cuBLAS GEMM per local expert over its 4 compute
// streams (docs/MOE.md §19): Qwen3-30B-A3B at EP 8 has 16 local experts, so each grouped GEMM is
// 4 waves of 4 on the compute stream, each an eager op plus 3 host ops, each wave with its own
// tail of tiles.
TEST(MoeHostOps, TheGroupedGemmLaunchesEveryExpertFourAtATime) {
  const moe_timeline t = moe_step();
  const schedule& s = t.prog.stages[0];
  const gpu_spec gpu = load_gpu_spec("h100_sxm");
  const std::string l = "c0.mb1.L1.";
  const std::vector<std::string> waves = {l + "moe_fc1", l + "moe_fc1_w2", l + "moe_fc1_w3",
                                          l + "moe_fc1_w4"};
  for (std::size_t w = 0; w < waves.size(); ++w) {
    const op& o = s.ops[static_cast<std::size_t>(t.id(waves[w]))];
    EXPECT_EQ(o.as<gemm_params>().group, 4) << waves[w];
    if (w == 0) continue;
    EXPECT_EQ(o.host_ops, 3) << waves[w];  // the wave's other three experts
    EXPECT_EQ(o.stream, s.ops[static_cast<std::size_t>(t.id(waves[0]))].stream);
    // On the host: the wave's own launch and its three members', nothing else between them.
    EXPECT_NEAR(t.at(waves[w]).enqueue_us - t.at(waves[w - 1]).enqueue_us, 4 * gpu.eager_op_us,
                1e-9);
    // On the GPU: one wave after the other.
    EXPECT_GE(t.at(waves[w]).start_us, t.at(waves[w - 1]).end_us);
  }
  EXPECT_THROW(t.id(l + "moe_fc1_w5"), std::out_of_range);
  // Four waves' tails cost at least one kernel over all 16 members' tiles (the tile model's
  // estimate, alone on the GPU).
  const gemm_params& g = s.ops[static_cast<std::size_t>(t.id(waves[0]))].as<gemm_params>();
  const std::vector<gemm_params> all(16, g), four(4, g);
  const double pooled = sim::choose_grouped_gemm(all, gpu, gpu.sm_count).est_us;
  const double wave = sim::choose_grouped_gemm(four, gpu, gpu.sm_count).est_us;
  EXPECT_GE(4 * wave, pooled);
  double on_gpu = 0;
  for (const std::string& w : waves) on_gpu += t.at(w).end_us - t.at(w).start_us;
  EXPECT_GE(on_gpu, 0.95 * 4 * wave);
}

TEST(MoeHostOps, APreprocessScopeWithoutTheRoutersIsRefused) {
  EXPECT_THROW(moe_step({{"cuda_graph_scope", {"moe_preprocess"}}}), config_error);
}

// cuda_graph_scope "attn" (TE's per-layer graph of the attention block; docs/MOE.md §18): the
// LayerNorm, QKV, RoPE, attention core, output projection, bias-dropout-add and their TP
// collectives are graph nodes on the host, the MLP's ops stay eager launches.
TEST(AttentionGraphScope, GraphedAttentionOpsCostAGraphNodeInsteadOfALaunch) {
  const std::string l = "c0.mb1.L1.";
  const moe_timeline eager = dense_step();
  const moe_timeline graphed = dense_step({{"cuda_graph_scope", {"attn"}}});
  const schedule& s = graphed.prog.stages[0];
  ASSERT_EQ(s.ops.size(), eager.prog.stages[0].ops.size());  // the same ops, only captured
  // The forward ops from the attention's LayerNorm up to the MLP's: every one captured; the MLP's
  // and the optimizer's not.
  const int first = graphed.id(l + "ln1_fwd"), mlp = graphed.id(l + "ln2_fwd");
  int attn_ops = 0;
  for (int i = first; i < mlp; ++i) {
    const op& o = s.ops[static_cast<std::size_t>(i)];
    ASSERT_TRUE(o.name.starts_with(l)) << o.name;  // the layer's own ops only, in enqueue order
    EXPECT_TRUE(o.graphed) << o.name;
    EXPECT_FALSE(eager.prog.stages[0].ops[static_cast<std::size_t>(i)].graphed) << o.name;
    EXPECT_EQ(o.host_ops, 0) << o.name;
    ++attn_ops;
  }
  // ln1, qkv's ring exchange and GEMMs, the attention, proj's GEMMs and reduce-scatters, the add.
  EXPECT_GE(attn_ops, 10);
  for (const char* n : {"ln2_fwd", "act_fwd", "fc2_wgrad", "fc1_dgrad", "fc1_wgrad"})
    EXPECT_FALSE(s.ops[static_cast<std::size_t>(graphed.id(l + n))].graphed) << n;
  for (const char* n :
       {"attn_bwd", "qkv_dgrad", "qkv_wgrad", "proj_wgrad", "ln1_bwd", "residual_attn_bwd"})
    EXPECT_TRUE(s.ops[static_cast<std::size_t>(graphed.id(l + n))].graphed) << n;
  EXPECT_FALSE(s.ops[static_cast<std::size_t>(graphed.id("optimizer_step"))].graphed);
  // On the host's timeline, from the LayerNorm's enqueue to the block's last op's (its
  // bias-dropout-add), each op after the first costs a graph node instead of a launch (and an
  // event per cross-stream wait).
  const gpu_spec gpu = load_gpu_spec("h100_sxm");
  const auto span = [&](const moe_timeline& t) {
    return t.ops[static_cast<std::size_t>(mlp - 1)].enqueue_us - t.at(l + "ln1_fwd").enqueue_us;
  };
  EXPECT_EQ(s.ops[static_cast<std::size_t>(mlp - 1)].name, l + "bda_attn_fwd");
  EXPECT_NEAR(span(graphed), (mlp - first - 1) * gpu.graph_node_us, 1e-6);
  EXPECT_GE(span(eager), (mlp - first - 1) * gpu.launch_us);
  EXPECT_LT(span(graphed), span(eager));
}

// MLA's projections and norm are the attention block's too (DeepSeek-V3's layers); the MoE
// layer's router stays eager without its own scope.
TEST(AttentionGraphScope, MlaProjectionsAreInTheAttentionScope) {
  const moe_timeline t = step_timeline("deepseek_v3", {{"gpus", {"8"}},
                                                       {"ep", {"8"}},
                                                       {"layers", {"4"}},
                                                       {"gbs", {"8"}},
                                                       {"cuda_graph_scope", {"attn"}}});
  int mla = 0;
  for (const op& o : t.prog.stages[0].ops) {
    if (o.slot.starts_with("q_down_") || o.slot.starts_with("kv_up_") ||
        o.slot.starts_with("mla_norm_")) {
      EXPECT_TRUE(o.graphed) << o.name;
      ++mla;
    }
    if (o.slot == "moe_router") EXPECT_FALSE(o.graphed) << o.name;
  }
  EXPECT_GT(mla, 0);
}

TEST(AttentionGraphScope, FullIterationGraphsEveryPassOpButTheOptimizer) {
  const moe_timeline t = dense_step({{"cuda_graph_scope", {"full_iteration"}}});
  for (const op& o : t.prog.stages[0].ops) EXPECT_EQ(o.graphed, o.slot != "optimizer") << o.name;
}

TEST(AttentionGraphScope, TheScopesMegatronRefusesExitAsConfigErrors) {
  // The MoE scopes on a dense model (Megatron-Core: "moe cuda graph is only supported for MoE").
  EXPECT_THROW(dense_step({{"cuda_graph_scope", {"moe_router"}}}), config_error);
  EXPECT_THROW(dense_step({{"cuda_graph_scope", {"attn+moe_router+moe_preprocess"}}}),
               config_error);
  // Full recomputation only with a full-iteration graph.
  EXPECT_THROW(dense_step({{"cuda_graph_scope", {"attn"}}, {"recompute", {"full"}}}), config_error);
  EXPECT_NO_THROW(dense_step({{"cuda_graph_scope", {"full_iteration"}}, {"recompute", {"full"}}}));
  // full_iteration alone; and on a MoE model only with the sync-free dispatch (below).
  EXPECT_THROW(dense_step({{"cuda_graph_scope", {"attn+full_iteration"}}}), config_error);
  EXPECT_THROW(moe_step({{"cuda_graph_scope", {"full_iteration"}}}), config_error);
  EXPECT_THROW(
      moe_step({{"moe_dispatcher", {"hybridep"}}, {"cuda_graph_scope", {"full_iteration"}}}),
      config_error);
  EXPECT_NO_THROW(moe_step({{"cuda_graph_scope", {"attn+moe_router+moe_preprocess"}}}));
}

// moe_expert_rank_capacity_factor, Megatron-Core's sync-free dispatch (docs/MOE.md §21): HybridEP's
// buffers have a static size and the fused grouped MLP reads the counts on the device, so no MoE
// layer's forward stops the host, and a full-iteration graph can hold the layer. On a DGX B200 at
// MXFP8 with Transformer Engine's fused grouped MLP, as Megatron-Core requires.
std::vector<sweep_axis> hybridep(bool sync_free, std::vector<sweep_axis> extra = {}) {
  std::vector<sweep_axis> axes = {{"moe_dispatcher", {"hybridep"}},
                                  {"dtype", {"mxfp8"}},
                                  {"use_transformer_engine_op_fuser", {"on"}}};
  if (sync_free) axes.push_back({"moe_expert_rank_capacity_factor", {"1.5"}});
  axes.insert(axes.end(), extra.begin(), extra.end());
  return axes;
}
moe_timeline b200_step(std::vector<sweep_axis> axes) {
  return moe_step(std::move(axes), "dgx_b200");
}

TEST(SyncFreeMoe, NoForwardMoeLayerWaitsForTheHostOnItsTokenCounts) {
  const std::string l = "c0.mb1.L1.";
  const moe_timeline synced = b200_step(hybridep(false)), free = b200_step(hybridep(true));
  const auto syncs = [](const moe_timeline& t) {
    int n = 0;
    for (const op& o : t.prog.stages[0].ops) n += o.kind() == op_kind::host_sync;
    return n;
  };
  EXPECT_EQ(syncs(synced), 2 * 2);  // each forward MoE layer of each micro-batch
  EXPECT_EQ(syncs(free), 0);
  EXPECT_THROW(free.id(l + "moe_counts_sync"), std::out_of_range);
  // With the sync, the dispatch is enqueued only once the router's counts reached the host; without
  // it, the host hands the dispatch over right after the permutation, its own cost apart
  // (HybridEP's launch and the event of its wait on the compute stream), whatever the GPU is doing.
  EXPECT_GE(synced.at(l + "moe_dispatch").enqueue_us, synced.at(l + "moe_counts_sync").end_us);
  EXPECT_GE(synced.at(l + "moe_counts_sync").end_us, synced.at(l + "moe_router_scores").end_us);
  const gpu_spec gpu = load_gpu_spec("b200");
  EXPECT_EQ(free.id(l + "moe_dispatch"), free.id(l + "moe_permute") + 1);
  EXPECT_NEAR(free.at(l + "moe_dispatch").enqueue_us - free.at(l + "moe_permute").enqueue_us,
              gpu.nccl_launch_us + gpu.event_us, 1e-6);
  // The GPU's work is the same: only the host's wait went.
  EXPECT_EQ(free.prog.stages[0].ops.size() + 4, synced.prog.stages[0].ops.size());
}

TEST(SyncFreeMoe, AFullIterationGraphHoldsTheMoeLayerAndItsHostOps) {
  const std::string l = "c0.mb1.L1.";
  const moe_timeline eager = b200_step(hybridep(true));
  const moe_timeline graphed =
      b200_step(hybridep(true, {{"cuda_graph_scope", {"full_iteration"}}}));
  const schedule& s = graphed.prog.stages[0];
  for (const op& o : s.ops) EXPECT_EQ(o.graphed, o.slot != "optimizer") << o.name;
  // On the host's timeline, from the gating GEMM's enqueue to the unpermutation's: a graph node for
  // each op and for each of its host ops (the router's, the grouped GEMMs' further experts, the
  // MXFP8 casts'), no events, no wait.
  const int first = graphed.id(l + "moe_router"), last = graphed.id(l + "moe_unpermute");
  double nodes = 0;
  int host_ops = 0;
  for (int i = first + 1; i <= last; ++i) {
    const op& o = s.ops[static_cast<std::size_t>(i)];
    ASSERT_TRUE(o.name.starts_with(l)) << o.name;
    nodes += 1 + o.host_ops;
    host_ops += o.host_ops;
  }
  EXPECT_GT(host_ops, 20);  // the router's 20 at least
  const gpu_spec gpu = load_gpu_spec("b200");
  const auto span = [&](const moe_timeline& t) {
    return t.at(l + "moe_unpermute").enqueue_us - t.at(l + "moe_router").enqueue_us;
  };
  EXPECT_NEAR(span(graphed), nodes * gpu.graph_node_us, 1e-6);
  EXPECT_GE(span(eager), nodes * gpu.launch_us);
  const auto end = [](const moe_timeline& t) {
    double e = 0;
    for (const sim_op_result& r : t.ops) e = std::max(e, r.end_us);
    return e;
  };
  // At this size the GPU sets the pace either way (the host runs ahead once nothing syncs it):
  // the graph shortens the host's timeline, not the step.
  EXPECT_LE(end(graphed), end(eager) + 1e-6);
  EXPECT_LT(graphed.ops.back().enqueue_us, 0.5 * eager.ops.back().enqueue_us);
}

TEST(SyncFreeMoe, TheSettingsMegatronRefusesExitAsConfigErrors) {
  const std::vector<sweep_axis> budget = {{"moe_expert_rank_capacity_factor", {"1.5"}}};
  // Megatron-Core takes the rank budget with the hybridep backend only, and with it only beside
  // the op fuser's grouped MLP.
  EXPECT_THROW(b200_step(budget), config_error);
  EXPECT_THROW(b200_step({{"moe_dispatcher", {"deepep"}},
                          {"dtype", {"mxfp8"}},
                          {"use_transformer_engine_op_fuser", {"on"}},
                          {"moe_expert_rank_capacity_factor", {"1.5"}}}),
               config_error);
  EXPECT_THROW(b200_step({{"moe_dispatcher", {"hybridep"}},
                          {"dtype", {"mxfp8"}},
                          {"moe_expert_rank_capacity_factor", {"1.5"}}}),
               config_error);
  // A busiest rank over the budget: Megatron's runner would rerun every step.
  EXPECT_THROW(b200_step(hybridep(true, {{"moe_imbalance", {"2"}}})), config_error);
  EXPECT_NO_THROW(b200_step(hybridep(true, {{"moe_imbalance", {"1.5"}}})));
  // A dense model has nothing to dispatch.
  EXPECT_THROW(dense_step(budget), config_error);
  // The fused grouped MLP: Transformer Engine fuses it under MXFP8 (or NVFP4) on compute
  // capability 10 only, and Megatron-Core without expert TP.
  const std::vector<sweep_axis> fuser = {{"moe_dispatcher", {"hybridep"}},
                                         {"use_transformer_engine_op_fuser", {"on"}}};
  EXPECT_THROW(b200_step(fuser), config_error);           // the model's bf16
  EXPECT_THROW(moe_step(hybridep(false)), config_error);  // an H100
  EXPECT_THROW(b200_step(hybridep(false, {{"tp", {"2"}}, {"etp", {"2"}}})), config_error);
  // The flex dispatcher's SMs: a flex backend only, no more than the GPU has.
  EXPECT_THROW(b200_step({{"moe_flex_dispatcher_num_sms", {"32"}}}), config_error);
  EXPECT_THROW(b200_step(hybridep(false, {{"moe_flex_dispatcher_num_sms", {"1000"}}})),
               config_error);
}

// Transformer Engine's fused grouped MLP (use_transformer_engine_op_fuser, docs/MOE.md §21): each
// grouped GEMM one persistent kernel over the 16 local experts, the GLU and the quantization of
// fc2's input in fc1's epilogue, the GLU's backward and fc1's output gradient's quantization in
// fc2's dgrad epilogue.
TEST(FusedGroupedMlp, EachGroupedGemmIsOneKernelAndTheGluAndItsCastsLeaveTheTimeline) {
  const std::string l = "c0.mb1.L1.";
  const moe_timeline te = b200_step({{"moe_dispatcher", {"hybridep"}}, {"dtype", {"mxfp8"}}});
  const moe_timeline fused = b200_step(hybridep(false));
  const schedule& s = fused.prog.stages[0];
  const auto plan_op = [&](const moe_timeline& t, const std::string& n) -> const op& {
    return t.prog.stages[0].ops[static_cast<std::size_t>(t.id(l + n))];
  };
  for (const char* n : {"moe_fc1", "moe_fc2", "moe_fc2_dgrad", "moe_fc1_dgrad", "moe_fc1_wgrad"}) {
    EXPECT_EQ(plan_op(fused, n).as<gemm_params>().group, 16) << n;
    EXPECT_EQ(plan_op(te, n).as<gemm_params>().group, 4) << n;
    // fc1 keeps the HybridEP manager's two ops on the counts (their cast and sum), nothing else.
    EXPECT_EQ(plan_op(fused, n).host_ops, std::string(n) == "moe_fc1" ? 2 : 0) << n;
    EXPECT_THROW(fused.id(l + n + "_w2"), std::out_of_range) << n;
  }
  for (const char* n : {"moe_act", "moe_act_bwd", "moe_fc2_mxfp8_in", "moe_fc1_mxfp8_dout"}) {
    EXPECT_NO_THROW(te.id(l + n)) << n;
    EXPECT_THROW(fused.id(l + n), std::out_of_range) << n;
  }
  // The casts of the inputs read from 16-bit tensors stay, one grouped kernel each.
  EXPECT_EQ(plan_op(fused, "moe_fc1_mxfp8_in").host_ops, 0);
  EXPECT_EQ(plan_op(te, "moe_fc1_mxfp8_in").host_ops, 15);
  // On the timeline: fc2 follows fc1 on the compute stream with nothing between them, and fc1's
  // dgrad follows fc2's with only fc2's weight gradient between (no delay_wgrad here).
  for (const auto& [a, b] :
       {std::pair{"moe_fc1", "moe_fc2"}, std::pair{"moe_fc2_dgrad", "moe_fc1_dgrad"}}) {
    const op& first = plan_op(fused, a);
    const op& second = plan_op(fused, b);
    EXPECT_EQ(first.stream, second.stream);
    for (const op& o : s.ops)
      if (o.stream == first.stream && o.id > first.id && o.id < second.id &&
          o.name != l + "moe_fc2_wgrad")
        ADD_FAILURE() << o.name << " between " << a << " and " << b;
    EXPECT_GE(fused.at(l + b).start_us, fused.at(l + a).end_us);
  }
}

// moe_flex_dispatcher_num_sms: the HybridEP kernels hold the SMs asked for (Bridge's recipes set
// 32; the model's default is 16).
TEST(FusedGroupedMlp, TheFlexDispatcherHoldsTheSmsAskedFor) {
  const std::string l = "c0.mb1.L1.";
  const moe_timeline d16 = b200_step(hybridep(false));
  const moe_timeline d32 = b200_step(hybridep(false, {{"moe_flex_dispatcher_num_sms", {"32"}}}));
  const auto ctas = [&](const moe_timeline& t) {
    return t.prog.stages[0]
        .ops[static_cast<std::size_t>(t.id(l + "moe_dispatch"))]
        .as<collective_params>()
        .ctas;
  };
  EXPECT_EQ(ctas(d16), 16);
  EXPECT_EQ(ctas(d32), 32);
  // Inside one DGX B200 the dispatch is NVLink-bound from 16 SMs on; with 4 its SMs' copies set
  // its time.
  const moe_timeline d4 = b200_step(hybridep(false, {{"moe_flex_dispatcher_num_sms", {"4"}}}));
  EXPECT_EQ(ctas(d4), 4);
  const auto took = [&](const moe_timeline& t) {
    return t.at(l + "moe_dispatch").end_us - t.at(l + "moe_dispatch").start_us;
  };
  EXPECT_LE(took(d32), took(d16));
  EXPECT_GT(took(d4), took(d16));
}

// add_bias_linear on a MoE layer (GPT-OSS, docs/MOE.md §14.3): Megatron-Core adds fc2's bias per
// local expert in a Python loop after fc2 (a multiply and an add an expert, then a cat), and
// autograd runs five kernels an expert back (two multiplies, two reductions, DDP's main_grad add)
// before fc2's dgrad; fc1's biases cost DDP's add an expert after its weight gradient; the
// router's bias one reduction of the logits' gradient and its add. Each kernel is one eager op on
// the host. GPT-OSS-120B at EP 8 has 16 local experts.
moe_timeline gpt_oss_step() {
  return step_timeline("gpt_oss_120b",
                       {{"gpus", {"8"}}, {"ep", {"8"}}, {"layers", {"2"}}, {"gbs", {"16"}}},
                       "dgx_b200");
}

TEST(MoeExpertBias, TheFc2BiasLoopRunsBetweenFc2AndTheCombineAnEagerOpAnExpertOp) {
  const moe_timeline t = gpt_oss_step();
  const schedule& s = t.prog.stages[0];
  const gpu_spec gpu = load_gpu_spec("b200");
  const std::string l = "c0.mb1.L1.";
  const auto plan_op = [&](const std::string& n) -> const op& {
    return s.ops[static_cast<std::size_t>(t.id(l + n))];
  };
  const op& bias = plan_op("moe_fc2_bias");
  const op& cat = plan_op("moe_fc2_bias_cat");
  EXPECT_EQ(bias.host_ops, 2 * 16 - 1);  // the plan op is one of the 32 multiplies and adds
  EXPECT_EQ(cat.host_ops, 0);
  // [16384 routed copies, 2880] in bf16: the multiply writes 2 bytes, the add moves 6; the cat 4.
  EXPECT_EQ(bias.as<elementwise_params>().bytes, 16384ull * 2880 * 8);
  EXPECT_EQ(cat.as<elementwise_params>().bytes, 16384ull * 2880 * 4);
  // Issue order: fc2's last wave of four, the loop, the cat, the combine.
  const std::string fc2_last = l + "moe_fc2_w4";
  EXPECT_EQ(bias.id, t.id(fc2_last) + 1);
  EXPECT_EQ(cat.id, bias.id + 1);
  EXPECT_LT(cat.id, t.id(l + "moe_combine"));
  // On the host: the loop's 32 kernels, then the cat's one, each an eager op.
  EXPECT_NEAR(t.at(l + "moe_fc2_bias").enqueue_us - t.at(fc2_last).enqueue_us, 32 * gpu.eager_op_us,
              1e-9);
  EXPECT_NEAR(t.at(l + "moe_fc2_bias_cat").enqueue_us - t.at(l + "moe_fc2_bias").enqueue_us,
              gpu.eager_op_us, 1e-9);
  // On the GPU: after fc2, before the combine.
  EXPECT_GE(t.at(l + "moe_fc2_bias").start_us, t.at(fc2_last).end_us);
  EXPECT_GE(t.at(l + "moe_fc2_bias_cat").start_us, t.at(l + "moe_fc2_bias").end_us);
  EXPECT_GE(t.at(l + "moe_combine").start_us, t.at(l + "moe_fc2_bias_cat").end_us);
  // Backward: after the combine's gradient, before fc2's dgrad; 80 kernels, then the cat of the
  // output's gradient and the routing weights' two.
  const op& bwd = plan_op("moe_fc2_bias_bwd");
  const op& cat_bwd = plan_op("moe_fc2_bias_cat_bwd");
  EXPECT_EQ(bwd.host_ops, 5 * 16 - 1);
  EXPECT_EQ(cat_bwd.host_ops, 2);
  EXPECT_EQ(bwd.as<elementwise_params>().bytes, 16384ull * 2880 * 12);
  EXPECT_EQ(bwd.waits, std::vector<int>{t.id(l + "moe_combine_bwd")});
  EXPECT_EQ(cat_bwd.id, bwd.id + 1);
  EXPECT_EQ(t.id(l + "moe_fc2_dgrad"), cat_bwd.id + 1);
  EXPECT_NEAR(t.at(l + "moe_fc2_bias_cat_bwd").enqueue_us - t.at(l + "moe_fc2_bias_bwd").enqueue_us,
              3 * gpu.eager_op_us, 1e-9);
  EXPECT_GE(t.at(l + "moe_fc2_bias_bwd").enqueue_us - t.at(l + "moe_combine_bwd").enqueue_us,
            80 * gpu.eager_op_us);
  EXPECT_GE(t.at(l + "moe_fc2_bias_bwd").start_us, t.at(l + "moe_combine_bwd").end_us);
  EXPECT_GE(t.at(l + "moe_fc2_dgrad").start_us, t.at(l + "moe_fc2_bias_cat_bwd").end_us);
  // fc1's bias gradients: DDP's add an expert beside the wave's three further GEMMs.
  EXPECT_EQ(plan_op("moe_fc1_wgrad").host_ops, 3 + 16);
  // The router's bias: the logits' gradient [4096, 128] summed in bf16 after its weight
  // gradient, then DDP's add.
  const op& router = plan_op("moe_router_bgrad");
  EXPECT_EQ(router.id, t.id(l + "moe_router_wgrad") + 1);
  EXPECT_EQ(router.as<elementwise_params>().bytes, 4096ull * 128 * 2);
  EXPECT_EQ(router.host_ops, 1);
}

// Without add_bias_linear (Qwen3-30B-A3B), and under the fused grouped MLP, nothing of it.
TEST(MoeExpertBias, ModelsWithoutBiasesPlanNoneOfIt) {
  const moe_timeline t = moe_step();
  const std::string l = "c0.mb1.L1.";
  for (const char* n : {"moe_fc2_bias", "moe_fc2_bias_cat", "moe_fc2_bias_bwd",
                        "moe_fc2_bias_cat_bwd", "moe_router_bgrad"})
    EXPECT_THROW(t.id(l + n), std::out_of_range) << n;
  EXPECT_EQ(t.prog.stages[0].ops[static_cast<std::size_t>(t.id(l + "moe_fc1_wgrad"))].host_ops, 3);
}

}  // namespace ob
