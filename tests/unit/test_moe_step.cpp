// MoE layers in a training step (docs/MOE.md §5): the router, the permutation, the dispatch and
// combine all-to-alls on the EP stream, the grouped expert GEMMs, imbalance and
// delay_wgrad_compute, checked on the simulated timeline.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "analysis/step_metrics.hpp"
#include "base/config_paths.hpp"
#include "model/model_spec.hpp"
#include "model/moe_layer.hpp"
#include "plan/pp_schedule.hpp"
#include "run/step_run.hpp"
#include "scratch_path.hpp"
#include "sim/simulator.hpp"
#include "step_test_util.hpp"

namespace ob {
namespace {

step_scenario moe_scenario(std::vector<sweep_axis> axes) {
  step_scenario sc;
  sc.model = "qwen3_30b_a3b";  // 48 MoE layers: 128 experts, top-8
  sc.cluster = "dgx_h100";
  sc.allow_oom = true;
  const auto has = [&](const char* name) {
    return std::any_of(axes.begin(), axes.end(),
                       [&](const sweep_axis& a) { return a.name == name; });
  };
  // Two layers, and two micro-batches per rank on 8 GPUs, unless the test says otherwise.
  if (!has("layers")) axes.push_back({"layers", {"2"}});
  if (!has("gbs")) axes.push_back({"gbs", {"16"}});
  sc.axes = std::move(axes);
  return sc;
}

struct timeline {
  program prog;
  std::vector<sim_op_result> ops;  // stage 0
  const op& named(const std::string& name) const {
    for (const op& o : prog.stages[0].ops)
      if (o.name == name) return o;
    throw std::out_of_range(name);
  }
  const sim_op_result& at(const std::string& name) const { return ops[named(name).id]; }
  double length(const std::string& name) const { return at(name).end_us - at(name).start_us; }
};

timeline simulate_case(const step_scenario& sc, std::size_t i = 0) {
  const step_spec spec = resolve_step(sc);
  timeline t;
  t.prog = plan_step_case(spec, spec.cases.at(i)).prog;
  sim_options o;
  o.cluster = &spec.cases.at(i).cluster;
  o.cdmc = spec.cases.at(i).cdmc;
  t.ops = simulate_program(t.prog, spec.gpu, o).front().ops;
  return t;
}

std::vector<step_record> run(const step_scenario& sc) { return test::run_sim_steps(sc); }

std::string message_of(const step_scenario& sc) { return test::resolve_message(sc); }

TEST(MoeStep, DispatchAndCombineBracketTheGroupedExperts) {
  const timeline t = simulate_case(moe_scenario({{"gpus", {"8"}}, {"ep", {"8"}}}));
  const op& dispatch = t.named("c0.mb0.L0.moe_dispatch");
  const stream& ep = t.prog.stages[0].streams[dispatch.stream];
  EXPECT_EQ(ep.name, "ep");
  const auto& a2a = dispatch.as<collective_params>();
  EXPECT_EQ(a2a.op, coll_op::all_to_all);
  EXPECT_EQ(a2a.group, comm_group::ep);
  EXPECT_EQ(a2a.group_size, 8);
  EXPECT_EQ(a2a.nodes, 1);
  // 4096 tokens x top-8 copies, hidden 2048, bf16.
  EXPECT_EQ(a2a.bytes, 4096ull * 8 * 2048 * 2);
  // 16 local experts, run as Transformer Engine launches them: 4 at a time on its 4 streams.
  const auto& fc1 = t.named("c0.mb0.L0.moe_fc1").as<gemm_params>();
  EXPECT_EQ(fc1.group, 4);
  EXPECT_EQ(fc1.m, 4096 * 8 / 16);
  for (const char* wave : {"c0.mb0.L0.moe_fc1_w2", "c0.mb0.L0.moe_fc1_w3", "c0.mb0.L0.moe_fc1_w4"})
    EXPECT_EQ(t.named(wave).as<gemm_params>().group, 4) << wave;
  EXPECT_THROW(t.named("c0.mb0.L0.moe_fc1_w5"), std::out_of_range);
  // On the timeline: permute, then the dispatch, then the experts; the combine after fc2, the
  // unpermutation after the combine.
  EXPECT_GE(t.at("c0.mb0.L0.moe_dispatch").start_us, t.at("c0.mb0.L0.moe_permute").end_us);
  EXPECT_GE(t.at("c0.mb0.L0.moe_fc1").start_us, t.at("c0.mb0.L0.moe_dispatch").end_us);
  EXPECT_GE(t.at("c0.mb0.L0.moe_combine").start_us, t.at("c0.mb0.L0.moe_fc2_w4").end_us);
  EXPECT_GE(t.at("c0.mb0.L0.moe_unpermute").start_us, t.at("c0.mb0.L0.moe_combine").end_us);
  EXPECT_GT(t.length("c0.mb0.L0.moe_dispatch"), 0);
  // Backward: the combine's gradient before the experts' dgrad, the dispatch's after fc1_dgrad.
  EXPECT_GE(t.at("c0.mb0.L0.moe_fc2_dgrad").start_us, t.at("c0.mb0.L0.moe_combine_bwd").end_us);
  EXPECT_GE(t.at("c0.mb0.L0.moe_permute_bwd").start_us, t.at("c0.mb0.L0.moe_dispatch_bwd").end_us);
}

// MXFP8 quantizes each expert GEMM's activation input and output gradient on the compute stream
// right before the grouped GEMM that reads it: one HBM pass that reads bf16 and writes the
// rowwise and columnwise fp8 copies with their E8M0 scales (docs/MOE.md §4.1). bf16 and fp8
// (per-tensor, delayed) add none.
TEST(MoeStep, Mxfp8CastsEachExpertInputBeforeItsGroupedGemm) {
  step_scenario sc = moe_scenario({{"gpus", {"8"}}, {"ep", {"8"}}, {"dtype", {"mxfp8"}}});
  sc.gpu = "b200";
  sc.cluster = "dgx_b200";
  const timeline t = simulate_case(sc);
  const std::uint64_t copies = 4096ull * 8, h = 2048, f = 768;  // balanced: as many as it routes
  const auto bytes = [&](std::uint64_t width) { return copies * width * 4 + copies * width / 16; };
  const std::vector<std::pair<std::string, std::uint64_t>> want = {
      {"moe_fc1_mxfp8_in", bytes(h)},
      {"moe_fc2_mxfp8_in", bytes(f)},
      {"moe_fc2_mxfp8_dout", bytes(h)},
      {"moe_fc1_mxfp8_dout", bytes(2 * f)}};
  const std::vector<std::string> gemm = {"moe_fc1", "moe_fc2", "moe_fc2_dgrad", "moe_fc1_dgrad"};
  const int compute = t.named("c0.mb0.L0.moe_fc1").stream;
  for (std::size_t i = 0; i < want.size(); ++i) {
    const std::string cast = "c0.mb0.L0." + want[i].first, next = "c0.mb0.L0." + gemm[i];
    EXPECT_EQ(t.named(cast).as<elementwise_params>().bytes, want[i].second) << cast;
    EXPECT_EQ(t.named(cast).stream, compute) << cast;
    // TE's split_quantize: a kernel per local expert, the 15 after the first host launches.
    EXPECT_EQ(t.named(cast).host_ops, 128 / 8 - 1) << cast;
    // On the timeline the cast takes time and its GEMM starts after it.
    EXPECT_GT(t.length(cast), 0) << cast;
    EXPECT_GE(t.at(next).start_us, t.at(cast).end_us) << cast;
  }
  // The inputs' casts wait for the tokens (the dispatch) and their gradients (the combine's).
  EXPECT_GE(t.at("c0.mb0.L0.moe_fc1_mxfp8_in").start_us, t.at("c0.mb0.L0.moe_dispatch").end_us);
  EXPECT_GE(t.at("c0.mb0.L0.moe_fc2_mxfp8_dout").start_us,
            t.at("c0.mb0.L0.moe_combine_bwd").end_us);
  for (const char* type : {"bf16", "fp8"}) {
    sc.axes = moe_scenario({{"gpus", {"8"}}, {"ep", {"8"}}, {"dtype", {type}}}).axes;
    const timeline other = simulate_case(sc);
    EXPECT_THROW(other.named("c0.mb0.L0.moe_fc1_mxfp8_in"), std::out_of_range) << type;
  }
}

// Megatron-Core's router computes its gating GEMM with a plain matmul in the input's dtype,
// outside Transformer Engine's fp8 autocast (docs/MOE.md §19.4): under mxfp8 and fp8 the router's
// three GEMMs are bf16 while the experts' stay quantized, each taking time on the compute stream.
TEST(MoeStep, TheRoutersGemmsRunInBf16UnderAnFp8Recipe) {
  const std::vector<std::pair<const char*, dtype>> types = {
      {"mxfp8", dtype::mxfp8}, {"fp8", dtype::fp8}, {"bf16", dtype::bf16}};
  for (const auto& [type, expert_type] : types) {
    step_scenario sc = moe_scenario({{"gpus", {"8"}}, {"ep", {"8"}}, {"dtype", {type}}});
    sc.gpu = "b200";
    sc.cluster = "dgx_b200";
    const timeline t = simulate_case(sc);
    for (const char* op : {"moe_router", "moe_router_dgrad", "moe_router_wgrad"}) {
      const std::string name = std::string("c0.mb0.L0.") + op;
      EXPECT_EQ(t.named(name).as<gemm_params>().type, dtype::bf16) << type << " " << name;
      EXPECT_EQ(t.named(name).stream, t.named("c0.mb0.L0.moe_fc1").stream) << name;
      EXPECT_GT(t.length(name), 0) << type << " " << name;
    }
    EXPECT_EQ(t.named("c0.mb0.L0.moe_fc1").as<gemm_params>().type, expert_type) << type;
    // The gating GEMM runs after the layer's norm and before the scores' pass on the stream.
    EXPECT_GE(t.at("c0.mb0.L0.moe_router_scores").start_us, t.at("c0.mb0.L0.moe_router").end_us);
  }
  EXPECT_EQ(router_gemm_type(dtype::nvfp4), dtype::bf16);
  EXPECT_EQ(router_gemm_type(dtype::fp16), dtype::fp16);
}

TEST(MoeStep, ExposedAllToAllsAreEpTimeAndTheBreakdownAddsUp) {
  for (const step_record& r : run(moe_scenario({{"gpus", {"16"}}, {"ep", {"8", "16"}}}))) {
    EXPECT_GT(r.breakdown_ms.ep_exposed, 0) << r.id;
    // The result carries the expert layout.
    EXPECT_EQ(r.config.at("experts").at("ep"), r.params.at("ep").get<int>()) << r.id;
    EXPECT_EQ(r.config.at("experts").at("edp"), 16 / r.params.at("ep").get<int>()) << r.id;
    EXPECT_NEAR(r.breakdown_ms.total(), r.step_ms.median, 0.01 * r.step_ms.median) << r.id;
  }
}

// Across two nodes each rank's shards for the other node go through its NIC: slower.
TEST(MoeStep, AnEpGroupAcrossNodesIsCostedOnTheNetwork) {
  const timeline one = simulate_case(moe_scenario({{"gpus", {"16"}}, {"ep", {"8"}}}));
  const timeline two = simulate_case(moe_scenario({{"gpus", {"16"}}, {"ep", {"16"}}}));
  EXPECT_EQ(two.named("c0.mb0.L0.moe_dispatch").as<collective_params>().nodes, 2);
  EXPECT_GT(two.length("c0.mb0.L0.moe_dispatch"), 1.5 * one.length("c0.mb0.L0.moe_dispatch"));
}

// The busiest rank's experts get imbalance x the mean tokens: the grouped GEMMs and the dispatch
// it receives grow with it.
TEST(MoeStep, ImbalanceLengthensTheHottestRanksExpertsAndDispatch) {
  const auto sc = [](const char* f) {
    return moe_scenario({{"gpus", {"8"}}, {"ep", {"8"}}, {"moe_imbalance", {f}}});
  };
  const timeline even = simulate_case(sc("1")), hot = simulate_case(sc("2"));
  EXPECT_EQ(hot.named("c0.mb0.L0.moe_fc1").as<gemm_params>().m,
            2 * even.named("c0.mb0.L0.moe_fc1").as<gemm_params>().m);
  EXPECT_GT(hot.length("c0.mb0.L0.moe_fc1"), 1.6 * even.length("c0.mb0.L0.moe_fc1"));
  EXPECT_GT(hot.length("c0.mb0.L0.moe_dispatch"), 1.5 * even.length("c0.mb0.L0.moe_dispatch"));
}

// delay_wgrad_compute: the experts' weight gradients run while the dispatch's backward
// all-to-all is in flight, instead of before it is issued.
TEST(MoeStep, DelayedWgradRunsBesideTheDispatchBackward) {
  const auto sc = [](const char* d) {
    // Four sequences a micro-batch: the experts' GEMMs outlast the host's eager ops (at one, 16
    // local experts' launches at the measured eager_op_us take longer than their GEMMs, docs/MOE.md
    // §20), so the timeline shows the GPU's order, not the host's issue.
    return moe_scenario({{"gpus", {"8"}},
                         {"ep", {"8"}},
                         {"mbs", {"4"}},
                         {"gbs", {"64"}},
                         {"moe_a2a_overlap", {"on"}},
                         {"delay_wgrad", {d}}});
  };
  const timeline off = simulate_case(sc("off")), on = simulate_case(sc("on"));
  const std::string a2a = "c0.mb0.L0.moe_dispatch_bwd", wgrad = "c0.mb0.L0.moe_fc1_wgrad";
  EXPECT_GE(off.at(a2a).start_us, off.at(wgrad).end_us);
  EXPECT_LT(on.at(wgrad).start_us, on.at(a2a).end_us);
  EXPECT_GT(on.at(wgrad).end_us, on.at(a2a).start_us);
  EXPECT_LT(on.at(a2a).start_us, on.at(wgrad).start_us);
}

// overlap_moe_expert_parallel_comm: micro-batch 1's forward is merged with micro-batch 0's
// backward, so each one's all-to-all runs beside the other's compute.
TEST(MoeStep, A2aOverlapRunsOneMicroBatchsDispatchBesideTheOthersBackward) {
  const auto sc = [](const char* on) {
    return moe_scenario(
        {{"gpus", {"16"}}, {"ep", {"16"}}, {"gbs", {"32"}}, {"moe_a2a_overlap", {on}}});
  };
  const timeline off = simulate_case(sc("off")), on = simulate_case(sc("on"));
  // Layers 0 and 1: the forward's layer 0 pairs with the backward's layer 1.
  const std::string f = "c0.mb1.L0.moe_dispatch";
  const auto& b_first = on.at("c0.mb0.L1.moe_fc2_dgrad");
  const auto& b_last = on.at("c0.mb0.L1.moe_fc1_dgrad");
  EXPECT_LT(on.at(f).start_us, b_last.end_us);
  EXPECT_GT(on.at(f).end_us, b_first.start_us);
  EXPECT_LT(on.named(f).id, on.named("c0.mb0.L1.moe_fc2_dgrad").id);
  // Without it the backward of micro-batch 0 ends before micro-batch 1's forward begins.
  EXPECT_LT(off.at("c0.mb0.L0.moe_router_wgrad").end_us, off.at(f).start_us);
  const auto runs = run(sc("on"));
  const auto base = run(sc("off"));
  EXPECT_LT(runs.front().step_ms.median, base.front().step_ms.median);
  EXPECT_LT(runs.front().breakdown_ms.ep_exposed, base.front().breakdown_ms.ep_exposed);
}

// Under an interleaved pipeline the combined 1F1B step merges each steady-state forward with its
// backward (Megatron's combined_1f1b_schedule_for_interleaved_pipelining), after one more warm-up
// forward. Stage 0 of pp 2 x vp 2 warms up (2 - 1) x 2 + (2 - 1) x 2 + 1 = 5 virtual
// micro-batches, so its first combined step is virtual 5 (chunk 0, micro-batch 3) with the
// backward of virtual 0 (chunk 1, micro-batch 0). Four sequences a micro-batch here and below: at
// one, the 16 local experts' eager launches (docs/MOE.md §20) outlast their GEMMs and the host,
// not the overlap, sets the step.
TEST(MoeStep, A2aOverlapUnderAnInterleavedPipelinePairsTheSteadyState) {
  const pp_layout plain{2, 2, 4, false}, combined{2, 2, 4, true};
  EXPECT_EQ(pp_warmup(combined, 0), pp_warmup(plain, 0) + 1);
  const auto actions = pp_actions(combined, 0, true);
  const auto first = std::find_if(actions.begin(), actions.end(), [](const pp_action& a) {
    return a.what == pp_action::kind::forward_backward;
  });
  ASSERT_NE(first, actions.end());
  EXPECT_EQ(first->chunk, 0);
  EXPECT_EQ(first->microbatch, 3);
  EXPECT_EQ(first->b_chunk, 1);
  EXPECT_EQ(first->b_microbatch, 0);
  const auto sc = [](const char* on) {
    return moe_scenario({{"gpus", {"16"}},
                         {"ep", {"8"}},
                         {"pp", {"2"}},
                         {"vp", {"2"}},
                         {"layers", {"4"}},
                         {"mbs", {"4"}},
                         {"gbs", {"128"}},
                         {"moe_a2a_overlap", {on}}});
  };
  const timeline off = simulate_case(sc("off")), on = simulate_case(sc("on"));
  const std::string f = "c0.mb3.L0.moe_dispatch";
  EXPECT_LT(on.at(f).start_us, on.at("c1.mb0.L0.moe_fc1_dgrad").end_us);
  EXPECT_GT(on.at(f).end_us, on.at("c1.mb0.L0.moe_fc2_dgrad").start_us);
  EXPECT_GT(off.at(f).start_us, off.at("c1.mb0.L0.moe_router_wgrad").end_us);
  const auto runs = run(sc("on")), base = run(sc("off"));
  EXPECT_LT(runs.front().step_ms.median, base.front().step_ms.median);
  EXPECT_LT(runs.front().breakdown_ms.ep_exposed, base.front().breakdown_ms.ep_exposed);
  // One micro-batch more in flight: the memory model counts its activations.
  EXPECT_GT(runs.front().memory->gib.activations, base.front().memory->gib.activations);
}

// Megatron runs the a2a overlap beside TP (with sequence parallelism) and CP: the attention's
// TP and CP communication stays where the dense planner puts it.
TEST(MoeStep, A2aOverlapRunsWithTensorAndContextParallelism) {
  for (const char* dim : {"tp", "cp"}) {
    const auto sc = [&](const char* on) {
      return moe_scenario({{"gpus", {"16"}},
                           {dim, {"2"}},
                           {"ep", {"8"}},
                           {"mbs", {"4"}},
                           {"gbs", {"128"}},
                           {"moe_a2a_overlap", {on}}});
    };
    const auto on = run(sc("on")), off = run(sc("off"));
    EXPECT_LT(on.front().step_ms.median, off.front().step_ms.median) << dim;
    EXPECT_LT(on.front().breakdown_ms.ep_exposed, off.front().breakdown_ms.ep_exposed) << dim;
  }
}

TEST(MoeStep, A2aOverlapPreconditionsAreNamed) {
  const auto msg = [](std::vector<sweep_axis> axes) {
    return message_of(moe_scenario(std::move(axes)));
  };
  EXPECT_NE(msg({{"gpus", {"8"}}, {"ep", {"8"}}, {"delay_wgrad", {"on"}}}).find("--delay-wgrad"),
            std::string::npos);
  EXPECT_NE(msg({{"gpus", {"8"}}, {"ep", {"1"}}, {"moe_a2a_overlap", {"on"}}})
                .find("expert_model_parallel_size > 1"),
            std::string::npos);
  EXPECT_NE(
      msg({{"gpus", {"8"}}, {"ep", {"8"}}, {"moe_a2a_overlap", {"on"}}, {"recompute", {"full"}}})
          .find("--moe-a2a-overlap"),
      std::string::npos);
  EXPECT_NE(msg({{"gpus", {"16"}}, {"ep", {"8"}}, {"pp", {"2"}}, {"moe_a2a_overlap", {"on"}}})
                .find("virtual pipeline"),
            std::string::npos);
}

// A model with a shared expert: Qwen3-30B-A3B's shape plus a 2048-wide shared expert, written
// where the test can point at it.
step_scenario shared_scenario(std::vector<sweep_axis> axes, int width = 2048) {
  const auto path = test::scratch_path("moe_shared_" + std::to_string(width) + ".json");
  nlohmann::json m =
      nlohmann::json::parse(std::ifstream(config_root() + "/models/qwen3_30b_a3b.json"));
  m["moe_shared_expert_intermediate_size"] = width;
  std::ofstream(path) << m.dump();
  step_scenario sc = moe_scenario(std::move(axes));
  sc.model = path.string();
  return sc;
}

// moe_shared_expert_overlap: the shared expert runs on its own stream beside the dispatch and the
// combine instead of on the compute stream after the combine.
TEST(MoeStep, SharedExpertOverlapRunsBesideTheDispatch) {
  const auto sc = [](const char* on) {
    return shared_scenario({{"gpus", {"8"}}, {"ep", {"8"}}, {"moe_shared_overlap", {on}}});
  };
  const timeline off = simulate_case(sc("off")), on = simulate_case(sc("on"));
  const std::string fc1 = "c0.mb0.L0.moe_shared_fc1", dispatch = "c0.mb0.L0.moe_dispatch";
  EXPECT_GE(off.at(fc1).start_us, off.at("c0.mb0.L0.moe_combine").end_us);
  EXPECT_EQ(on.prog.stages[0].streams[on.named(fc1).stream].name, "moe_shared");
  EXPECT_LT(on.at(fc1).start_us, on.at(dispatch).end_us);
  EXPECT_GE(on.at("c0.mb0.L0.moe_unpermute").start_us, on.at("c0.mb0.L0.moe_shared_fc2").end_us);
  const std::string dgrad = "c0.mb0.L0.moe_shared_fc1_dgrad";
  EXPECT_LT(on.at(dgrad).start_us, on.at("c0.mb0.L0.moe_dispatch_bwd").end_us);
  EXPECT_LT(run(sc("on")).front().step_ms.median, run(sc("off")).front().step_ms.median);
  // A shared expert that outlasts the routed path: waiting for its stream is compute, not an
  // unexplained stretch.
  const auto wide =
      run(shared_scenario({{"gpus", {"8"}}, {"ep", {"8"}}, {"moe_shared_overlap", {"on"}}}, 65536));
  EXPECT_LT(wide.front().breakdown_ms.other, 0.01);
  const auto msg = [](step_scenario s) { return message_of(s); };
  EXPECT_NE(msg(shared_scenario({{"gpus", {"8"}},
                                 {"ep", {"8"}},
                                 {"moe_shared_overlap", {"on"}},
                                 {"moe_a2a_overlap", {"on"}}}))
                .find("moe_shared_expert_overlap"),
            std::string::npos);
  EXPECT_NE(msg(moe_scenario({{"gpus", {"8"}}, {"ep", {"8"}}, {"moe_shared_overlap", {"on"}}}))
                .find("--moe-shared-overlap"),
            std::string::npos);
}

// moe_expert_capacity_factor: the busiest rank keeps min(imbalance, F) times the mean and drops
// the rest; the result says the dropped share.
TEST(MoeStep, CapacityFactorDropsTheHottestRanksExcess) {
  const auto sc = [](const char* cap) {
    return moe_scenario(
        {{"gpus", {"8"}}, {"ep", {"8"}}, {"moe_imbalance", {"2"}}, {"moe_capacity_factor", {cap}}});
  };
  const timeline dropless = simulate_case(sc("0")), capped = simulate_case(sc("1.25"));
  const std::string fc1 = "c0.mb0.L0.moe_fc1", dispatch = "c0.mb0.L0.moe_dispatch";
  EXPECT_NEAR(static_cast<double>(capped.named(fc1).as<gemm_params>().m),
              0.625 * static_cast<double>(dropless.named(fc1).as<gemm_params>().m), 1);
  EXPECT_EQ(capped.named(dispatch).as<collective_params>().bytes, 4096ull * 8 * 2048 * 2 * 5 / 4);
  EXPECT_LT(capped.length(fc1), dropless.length(fc1));
  const auto r = run(sc("1.25"));
  EXPECT_DOUBLE_EQ(r.front().config["experts"]["moe_dropped"].get<double>(), 0.375);
  EXPECT_DOUBLE_EQ(run(sc("0")).front().config["experts"]["moe_dropped"].get<double>(), 0);
}

// ETP > 1 with the alltoall dispatcher: the experts' tokens are all-gathered over the expert TP
// group after the dispatch and reduce-scattered before the combine.
TEST(MoeStep, ExpertTensorParallelGathersTokensAroundTheExperts) {
  const auto sc = [](const char* d) {
    return moe_scenario({{"gpus", {"8"}}, {"tp", {"2"}}, {"ep", {"4"}}, {"moe_dispatcher", {d}}});
  };
  const timeline t = simulate_case(sc("alltoall"));
  const op& ag = t.named("c0.mb0.L0.moe_etp_ag");
  const auto& c = ag.as<collective_params>();
  EXPECT_EQ(c.op, coll_op::all_gather);
  EXPECT_EQ(c.group_size, 2);
  const auto& fc1 = t.named("c0.mb0.L0.moe_fc1").as<gemm_params>();
  // 32 local experts over 8 waves of 4 (Transformer Engine's streams).
  EXPECT_EQ(c.bytes, static_cast<std::uint64_t>(fc1.m * fc1.group * 8) * 2048 * 2);
  EXPECT_EQ(t.named("c0.mb0.L0.moe_fc1_w8").as<gemm_params>().group, 4);
  EXPECT_GE(t.at("c0.mb0.L0.moe_fc1").start_us, t.at("c0.mb0.L0.moe_etp_ag").end_us);
  EXPECT_GE(t.at("c0.mb0.L0.moe_etp_rs").start_us, t.at("c0.mb0.L0.moe_fc2").end_us);
  EXPECT_LE(t.at("c0.mb0.L0.moe_etp_rs").end_us, t.at("c0.mb0.L0.moe_combine").start_us);
  EXPECT_EQ(t.named("c0.mb0.L0.moe_etp_rs_bwd").as<collective_params>().op, coll_op::all_gather);
  const timeline deep = simulate_case(sc("deepep"));
  EXPECT_THROW(deep.named("c0.mb0.L0.moe_etp_ag"), std::out_of_range);
}

// Under imbalance the other EP ranks wait at the combine for the busiest rank's experts: the
// diagnosis names it, with the share of the experts' time the mean rank does not need.
TEST(MoeStep, DiagnosisNamesTheWaitOnTheHottestExpert) {
  const auto sc = [](const char* imb) {
    return moe_scenario({{"gpus", {"8"}}, {"ep", {"8"}}, {"moe_imbalance", {imb}}});
  };
  const auto cause_ms = [](const step_record& r) {
    double ms = 0;
    for (const cause_share& c : r.diagnosis->causes)
      if (c.cause == exposure_cause::hottest_expert) ms += c.ms;
    return ms;
  };
  const auto hot = run(sc("2")), even = run(sc("1"));
  EXPECT_EQ(cause_ms(even.front()), 0);
  const double ms = cause_ms(hot.front());
  EXPECT_GT(ms, 0);
  EXPECT_LE(ms, hot.front().breakdown_ms.ep_exposed + 1e-9);
  // Half of the busiest rank's expert time: the mean rank computes half its tokens.
  const timeline t = simulate_case(sc("2"));
  double experts_ms = 0;
  for (const op& o : t.prog.stages[0].ops)
    if (o.slot == "moe_experts") experts_ms += (t.ops[o.id].end_us - t.ops[o.id].start_us) / 1000;
  EXPECT_NEAR(ms, experts_ms / 2, 0.02 * experts_ms);
  EXPECT_NEAR(hot.front().breakdown_ms.total(), hot.front().step_ms.median, 1e-6);
}

// The dispatchers: allgather gathers every rank's tokens and reduce-scatters them back; DeepEP
// and HybridEP are all-to-alls on the SMs they hold, and Bridge's launcher gives them CDMC 32.
TEST(MoeStep, DispatchersChangeTheExchangeAndTheSmsItHolds) {
  const auto sc = [](const char* d) {
    return moe_scenario({{"gpus", {"8"}}, {"ep", {"8"}}, {"moe_dispatcher", {d}}});
  };
  const std::string dispatch = "c0.mb0.L0.moe_dispatch", combine = "c0.mb0.L0.moe_combine";
  const timeline ag = simulate_case(sc("allgather"));
  EXPECT_EQ(ag.named(dispatch).as<collective_params>().op, coll_op::all_gather);
  EXPECT_EQ(ag.named(combine).as<collective_params>().op, coll_op::reduce_scatter);
  EXPECT_EQ(ag.named("c0.mb0.L0.moe_combine_bwd").as<collective_params>().op, coll_op::all_gather);
  EXPECT_EQ(ag.named(dispatch).as<collective_params>().bytes, 4096ull * 2048 * 2 * 8);
  const timeline a2a = simulate_case(sc("alltoall"));
  const timeline deep = simulate_case(sc("deepep")), hybrid = simulate_case(sc("hybridep"));
  EXPECT_EQ(deep.named(dispatch).as<collective_params>().ctas, deepep_default_sms);
  EXPECT_EQ(hybrid.named(dispatch).as<collective_params>().ctas, hybridep_default_sms);
  EXPECT_EQ(deep.ops[deep.named(dispatch).id].ctas, deepep_default_sms);
  // More channels than NCCL's p2p default move the same bytes sooner inside the node.
  EXPECT_LT(deep.length(dispatch), a2a.length(dispatch));
  const step_spec spec = resolve_step(sc("deepep"));
  EXPECT_EQ(spec.cases.front().cdmc, 32);
  EXPECT_NE(message_of(moe_scenario({{"gpus", {"8"}},
                                     {"ep", {"8"}},
                                     {"moe_dispatcher", {"allgather"}},
                                     {"moe_a2a_overlap", {"on"}}}))
                .find("dispatcher"),
            std::string::npos);
}

// Megatron's model FLOPs count the experts a token is routed to: Mixtral's top-2 of 16384-wide
// experts are a dense 32768-wide MLP's FLOPs.
TEST(MoeStep, ModelFlopsCountTheRoutedExperts) {
  const model_spec moe = load_model_spec("mixtral_8x22b");
  model_spec dense = moe;
  dense.moe = moe_shape{};
  dense.ffn_hidden = 2 * moe.moe.ffn_hidden;
  EXPECT_DOUBLE_EQ(model_flops_per_step(moe, 64, 4096, moe.layers),
                   model_flops_per_step(dense, 64, 4096, moe.layers));
  dense.ffn_hidden = moe.moe.ffn_hidden;
  EXPECT_GT(model_flops_per_step(moe, 64, 4096, moe.layers),
            1.3 * model_flops_per_step(dense, 64, 4096, moe.layers));
}

TEST(MoeStep, DenseLayersOfAMoeModelKeepTheDenseMlp) {
  step_scenario sc = moe_scenario({{"gpus", {"8"}}, {"ep", {"8"}}});
  const timeline t = simulate_case(sc);
  int fc1 = 0, moe = 0;
  for (const op& o : t.prog.stages[0].ops) {
    fc1 += o.slot == "fc1_fprop";
    moe += o.slot == "moe_experts";
  }
  EXPECT_EQ(fc1, 0);  // every Qwen3 layer is MoE
  EXPECT_GT(moe, 0);
}

TEST(MoeStep, BadImbalanceAndUnplannedModelsAreNamed) {
  EXPECT_NE(message_of(moe_scenario({{"gpus", {"8"}}, {"ep", {"8"}}, {"moe_imbalance", {"9"}}}))
                .find("--moe-imbalance"),
            std::string::npos);
  EXPECT_NE(message_of(moe_scenario({{"gpus", {"8"}}, {"ep", {"8"}}, {"moe_imbalance", {"0.5"}}}))
                .find("--moe-imbalance"),
            std::string::npos);
  step_scenario mla = moe_scenario({{"gpus", {"8"}}, {"ep", {"8"}}});
  mla.model = "deepseek_v3";
  EXPECT_EQ(message_of(mla), "");  // MLA and MTP are planned (docs/MOE.md §14)
}

}  // namespace
}  // namespace ob
