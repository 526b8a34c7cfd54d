// The diagnosis of exposed communication (docs/ARCHITECTURE.md §7.1): one hand-built schedule
// per cause, simulated, must be diagnosed with that cause; the causes add up to the exposed time;
// the rules that infer waits from start/end intervals alone (real backends) agree with the
// simulator's recorded ready times.
#include <gtest/gtest.h>

#include <cmath>

#include "analysis/critical_path.hpp"
#include "analysis/diagnosis.hpp"
#include "analysis/metrics.hpp"
#include "run/run_spec.hpp"
#include "sim/simulator.hpp"
#include "spec/scenario.hpp"
#include "test_sim_schedules.hpp"

namespace ob {
namespace {

using test::collective;
using test::delay;
using test::gemm;

struct diagnosed {
  case_metrics m;
  std::optional<diagnosis> d;
};

class Diagnosis : public ::testing::Test {
 protected:
  // Simulates the case's five variants; `measured_only` drops what a real backend cannot see.
  diagnosed run(const schedule& s, int cdmc, bool measured_only = false) const {
    sim_executor ex(gpu);
    const variant_schedules v = make_variant_schedules(s);
    measure_options o;
    o.cdmc = cdmc;
    variant_measurements m = ex.measure(v, o);
    if (measured_only)
      for (auto& vm : m)
        for (op_interval& i : vm.ops) i.enqueue_us = i.deps_met_us = i.ready_us = std::nullopt;
    diagnosed out;
    out.m = compute_metrics(v, m);
    out.d = diagnose_case(v, m, out.m.exposed_comm_ms, out.m.overlapped_ms.median, cdmc);
    return out;
  }

  // The main cause, every cause positive, the sum equal to the exposed time, and (for the
  // simulator) the critical path attributing exactly the exposed time before any scaling.
  static void expect_cause(const diagnosed& r, exposure_cause want, bool exact = true) {
    ASSERT_TRUE(r.d.has_value()) << "exposed " << r.m.exposed_comm_ms;
    EXPECT_EQ(to_string(r.d->main_cause), to_string(want)) << why_text(*r.d);
    double sum = 0;
    for (const cause_share& c : r.d->causes) {
      EXPECT_GT(c.ms, 0) << to_string(c.cause);
      sum += c.ms;
    }
    EXPECT_NEAR(sum, r.m.exposed_comm_ms, 1e-9 + 1e-6 * r.m.exposed_comm_ms);
    if (exact) {
      EXPECT_NEAR(r.d->attributed_ms, r.m.exposed_comm_ms, 0.01 * r.m.exposed_comm_ms);
    }
  }

  static double share(const diagnosis& d, exposure_cause c) {
    double total = 0, part = 0;
    for (const cause_share& x : d.causes) {
      total += x.ms;
      if (x.cause == c) part += x.ms;
    }
    return total > 0 ? part / total : 0;
  }

  gpu_spec gpu = load_gpu_spec("h100_sxm");
};

// CDMC=1: a GEMM that needs nothing waits behind a collective whose producer (another stream)
// is still running: one FIFO, a not-ready head blocks it (docs/ARCHITECTURE.md §5.1).
schedule queue_blocked_shape() {
  schedule s;
  s.name = "queue_blocked";
  const int producer = s.add_stream("producer", stream_role::compute, 0);
  const int comm = s.add_stream("comm", stream_role::comm, -1);
  const int compute = s.add_stream("compute", stream_role::compute, 0);
  const int p = s.add_op("producer", producer, delay(300, 1), {}, "ln1_fwd");
  s.add_op("ag", comm, collective(coll_op::all_gather, 1u << 20, 8, 16), {p}, "qkv_fprop");
  s.add_op("gemm", compute, gemm(8192, 8192, 4096), {}, "fc1_fprop");
  return s;
}

TEST_F(Diagnosis, QueueBlocked) {
  const diagnosed r = run(queue_blocked_shape(), 1);
  expect_cause(r, exposure_cause::queue_blocked);
  EXPECT_GT(share(*r.d, exposure_cause::queue_blocked), 0.8);
  // Own queues: the GEMM runs at once, beside the producer; what little is exposed is not the
  // queue's doing.
  const diagnosed own = run(queue_blocked_shape(), 8);
  EXPECT_LT(own.m.exposed_comm_ms, 0.2 * r.m.exposed_comm_ms);
  if (own.d) {
    EXPECT_EQ(share(*own.d, exposure_cause::queue_blocked), 0);
  }
}

// CDMC > 1 without the launch-ordering event: the GEMM behind the producer takes every SM
// before the collective, which waits in another queue (docs/ARCHITECTURE.md §5.1, item 2).
schedule sm_starved_shape() {
  schedule s;
  s.name = "sm_starved";
  const int compute = s.add_stream("compute", stream_role::compute, 0);
  const int comm = s.add_stream("comm", stream_role::comm, -1);
  const int p = s.add_op("producer", compute, delay(50, 132), {}, "ln2_bwd");
  s.add_op("ag", comm, collective(coll_op::all_gather, 64u << 20, 8, 16), {p}, "fc1_dgrad");
  s.add_op("gemm", compute, gemm(8192, 8192, 2048), {}, "fc1_dgrad");
  return s;
}

TEST_F(Diagnosis, SmStarved) {
  const diagnosed r = run(sm_starved_shape(), 8);
  expect_cause(r, exposure_cause::sm_starved);
  EXPECT_GT(share(*r.d, exposure_cause::sm_starved), 0.7);
}

// The collective is launched first and gets its SMs; the GEMM beside it keeps 16 SMs free and
// outlasts it: nothing waits, but the GEMM runs on fewer SMs and slower beside the traffic.
schedule contention_shape() {
  schedule s;
  s.name = "contention";
  const int compute = s.add_stream("compute", stream_role::compute, 0);
  const int comm = s.add_stream("comm", stream_role::comm, -1);
  s.add_op("ag", comm, collective(coll_op::all_gather, 32u << 20, 8, 16), {}, "qkv_dgrad");
  s.add_op("gemm", compute, gemm(8192, 8192, 8192, 116), {}, "qkv_dgrad");
  return s;
}

TEST_F(Diagnosis, ContentionSlowdown) {
  const diagnosed r = run(contention_shape(), 8);
  expect_cause(r, exposure_cause::contention_slowdown);
  EXPECT_GT(share(*r.d, exposure_cause::contention_slowdown), 0.9);
  // Part of it is the SM margin: the GEMM on 116 of 132 SMs (compute_with_margin).
  const cause_share& c = r.d->causes.front();
  ASSERT_TRUE(c.sm_margin_ms.has_value());
  EXPECT_GT(*c.sm_margin_ms, 0.1 * c.ms);
  EXPECT_LT(*c.sm_margin_ms, c.ms);
  EXPECT_EQ(c.where, "qkv_dgrad");
}

// A ring exchange whose copies outlast the GEMM chunks: each chunk waits for the previous
// chunk's send/recv (TE's ring-exchange all-gather, docs/ARCHITECTURE.md §3.3).
schedule chunking_shape() {
  schedule s;
  s.name = "chunking";
  const int compute = s.add_stream("compute", stream_role::compute, 0);
  const int p2p = s.add_stream("p2p", stream_role::p2p, -1);
  const int producer = s.add_op("ln", compute, delay(20, 132), {}, "ln1_fwd");
  int prev = -1;
  for (int j = 0; j < 4; ++j) {
    p2p_params x;
    x.bytes = 48u << 20;
    x.group_size = 4;
    x.send_peer = 1;
    x.recv_peer = -1;
    const int send =
        j < 3 ? s.add_op("send" + std::to_string(j), p2p, x, {producer}, "qkv_fprop") : -1;
    s.add_op("gemm" + std::to_string(j), compute, gemm(2048, 4096, 4096),
             prev >= 0 ? std::vector<int>{prev} : std::vector<int>{}, "qkv_fprop");
    prev = send;
  }
  return s;
}

TEST_F(Diagnosis, ChunkingCost) {
  const diagnosed r = run(chunking_shape(), 8);
  expect_cause(r, exposure_cause::chunking_cost);
  EXPECT_GT(share(*r.d, exposure_cause::chunking_cost), 0.6);
  EXPECT_EQ(r.d->causes.front().where, "qkv_fprop");
}

// A reduce-scatter of the GEMM's whole output: it can only start when the GEMM is done, and
// nothing comes after it to hide it.
schedule tail_shape() {
  schedule s;
  s.name = "tail";
  const int compute = s.add_stream("compute", stream_role::compute, 0);
  const int comm = s.add_stream("comm", stream_role::comm, -1);
  const int g = s.add_op("gemm", compute, gemm(8192, 8192, 4096), {}, "fc2_fprop");
  s.add_op("rs", comm, collective(coll_op::reduce_scatter, 128u << 20, 8, 16), {g}, "fc2_fprop");
  return s;
}

TEST_F(Diagnosis, TailNotOverlapped) {
  const diagnosed r = run(tail_shape(), 8);
  expect_cause(r, exposure_cause::tail_not_overlapped);
  EXPECT_GT(share(*r.d, exposure_cause::tail_not_overlapped), 0.95);
}

// A pipeline stage waits for the previous stage's activations (pp send/recv) that arrive after
// its own independent work is done.
schedule bubble_shape() {
  schedule s;
  s.name = "bubble";
  const int compute = s.add_stream("compute", stream_role::compute, 0);
  const int p2p = s.add_stream("pp", stream_role::p2p, -1);
  p2p_params recv;
  recv.bytes = 256u << 20;
  recv.group = comm_group::pp;
  recv.group_size = 2;
  recv.send_peer = 1;
  recv.recv_peer = -1;
  const int r = s.add_op("recv_activations", p2p, recv, {}, "pp_recv");
  s.add_op("wgrad", compute, gemm(4096, 4096, 4096), {}, "fc1_wgrad");
  s.add_op("fwd_next", compute, gemm(4096, 4096, 4096), {r}, "qkv_fprop");
  return s;
}

TEST_F(Diagnosis, Bubble) {
  const diagnosed r = run(bubble_shape(), 8);
  expect_cause(r, exposure_cause::bubble);
  EXPECT_GT(share(*r.d, exposure_cause::bubble), 0.9);
}

// The last gradient bucket's data-parallel reduce-scatter is issued after the last backward
// GEMM: it runs alone at the end of the step.
schedule late_bucket_shape() {
  schedule s;
  s.name = "late_bucket";
  const int compute = s.add_stream("compute", stream_role::compute, 0);
  const int dp = s.add_stream("dp", stream_role::comm, -1);
  s.add_op("wgrad0", compute, gemm(4096, 4096, 8192), {}, "fc2_wgrad");
  const int last = s.add_op("wgrad1", compute, gemm(4096, 4096, 8192), {}, "fc1_wgrad");
  collective_params c = collective(coll_op::reduce_scatter, 256u << 20, 8, 16);
  c.group = comm_group::dp;
  s.add_op("bucket_rs", dp, c, {last}, "dp_bucket3");
  return s;
}

TEST_F(Diagnosis, LateBucket) {
  const diagnosed r = run(late_bucket_shape(), 8);
  expect_cause(r, exposure_cause::late_bucket);
  EXPECT_GT(share(*r.d, exposure_cause::late_bucket), 0.95);
  EXPECT_EQ(r.d->causes.front().where, "dp_bucket3");
}

// Without overlap: the all-gather sits on the compute stream between the GEMMs.
schedule serialized_shape() {
  schedule s;
  s.name = "serialized";
  const int compute = s.add_stream("compute", stream_role::compute, 0);
  s.add_op("gemm0", compute, gemm(4096, 8192, 4096), {}, "proj_fprop");
  s.add_op("ag", compute, collective(coll_op::all_gather, 64u << 20, 8, 0), {}, "fc1_fprop");
  s.add_op("gemm1", compute, gemm(4096, 8192, 4096), {}, "fc1_fprop");
  return s;
}

TEST_F(Diagnosis, SerializedSameStream) {
  const diagnosed r = run(serialized_shape(), 8);
  expect_cause(r, exposure_cause::serialized_same_stream);
  EXPECT_NEAR(share(*r.d, exposure_cause::serialized_same_stream), 1.0, 1e-9);
}

// Tiny GEMMs, each followed by a collective that waits on it: the host spends an event and an
// NCCL launch per step that compute-only does not, and the GPU waits for it. (A group of one
// rank costs the GPU nothing, so only the host's time is left.)
schedule launch_shape() {
  schedule s;
  s.name = "launch";
  const int compute = s.add_stream("compute", stream_role::compute, 0);
  const int comm = s.add_stream("comm", stream_role::comm, -1);
  for (int i = 0; i < 32; ++i) {
    const int g = s.add_op("gemm" + std::to_string(i), compute, gemm(256, 256, 256), {}, "tiny");
    s.add_op("ar" + std::to_string(i), comm, collective(coll_op::all_reduce, 4096, 1, 1), {g},
             "tiny_ar");
  }
  return s;
}

TEST_F(Diagnosis, LaunchOverhead) {
  const diagnosed r = run(launch_shape(), 8);
  expect_cause(r, exposure_cause::launch_overhead);
  EXPECT_GT(share(*r.d, exposure_cause::launch_overhead), 0.5);
}

// A measured timeline (start and end only) in which the collective started 300 µs after its
// GEMM with nothing else running and nothing ahead in its queue: the intervals cannot tell why
// (a late peer rank, a host stall).
TEST_F(Diagnosis, OtherWhenTheTimelineCannotTell) {
  schedule s;
  s.name = "stall";
  const int compute = s.add_stream("compute", stream_role::compute, 0);
  const int comm = s.add_stream("comm", stream_role::comm, -1);
  const int g = s.add_op("gemm0", compute, gemm(4096, 8192, 4096), {}, "proj_fprop");
  const int ag =
      s.add_op("ag", comm, collective(coll_op::all_gather, 16u << 20, 8, 16), {g}, "fc1_fprop");
  s.add_op("gemm1", compute, gemm(4096, 8192, 4096), {ag}, "fc1_fprop");
  sim_executor ex(gpu);
  const variant_schedules v = make_variant_schedules(s);
  variant_measurements m = ex.measure(v, measure_options{});
  for (auto& vm : m)
    for (op_interval& i : vm.ops) i.enqueue_us = i.deps_met_us = i.ready_us = std::nullopt;
  auto& over = m[static_cast<int>(variant::overlapped)];
  const double stall_us = 300;
  for (op_interval& i : over.ops)
    if (i.op_id >= ag) i.start_us += stall_us, i.end_us += stall_us;
  over.iter_ms[0] += stall_us / 1000;
  const case_metrics cm = compute_metrics(v, m);
  const diagnosed r{cm, diagnose_case(v, m, cm.exposed_comm_ms, cm.overlapped_ms.median, 8)};
  expect_cause(r, exposure_cause::other);
  EXPECT_GT(share(*r.d, exposure_cause::other), 0.5);
}

TEST_F(Diagnosis, InferredWaitsAgreeWithRecordedOnes) {
  // Without the simulator's ready times, queue and SM waits are inferred from the other ops'
  // intervals; they must name the same main cause.
  expect_cause(run(queue_blocked_shape(), 1, true), exposure_cause::queue_blocked);
  expect_cause(run(sm_starved_shape(), 8, true), exposure_cause::sm_starved);
  expect_cause(run(tail_shape(), 8, true), exposure_cause::tail_not_overlapped);
}

TEST_F(Diagnosis, NothingExposedNothingToDiagnose) {
  schedule s;
  s.name = "hidden";
  const int compute = s.add_stream("compute", stream_role::compute, 0);
  s.add_op("gemm", compute, gemm(4096, 4096, 4096), {}, "fc1_fprop");
  EXPECT_FALSE(run(s, 8).d.has_value());
}

TEST_F(Diagnosis, CriticalPathCoversTheTimeline) {
  const schedule s = test::layer_like(8, true);
  for (int cdmc : {1, 8}) {
    const sim_result r = simulate(s, gpu, sim_options{cdmc, false});
    const std::vector<path_segment> path = critical_path(s, r.intervals(), cdmc);
    ASSERT_FALSE(path.empty());
    EXPECT_EQ(path.front().start_us, 0);
    EXPECT_EQ(path.back().end_us, r.total_us);
    for (std::size_t i = 1; i < path.size(); ++i)
      EXPECT_EQ(path[i].start_us, path[i - 1].end_us) << i;
    for (const path_segment& g : path)
      if (!g.exec) {
        EXPECT_NEAR(g.launch_us + g.queue_us + g.sm_us + g.unexplained_us, g.end_us - g.start_us,
                    1e-9);
      }
  }
}

TEST_F(Diagnosis, DefaultLayerCasesAddUp) {
  // Every case of the default sweep: the critical path attributes the exposed time exactly.
  layer_scenario sc = load_layer_scenario(default_scenario_path());
  const run_spec spec = resolve_run(sc);
  sim_executor ex(spec.gpu);
  for (const sweep_case& c : spec.cases) {
    const variant_schedules v = make_variant_schedules(plan_case(spec, c));
    measure_options o;
    o.cdmc = c.cdmc;
    const variant_measurements m = ex.measure(v, o);
    const case_metrics cm = compute_metrics(v, m);
    const auto d = diagnose_case(v, m, cm.exposed_comm_ms, cm.overlapped_ms.median, c.cdmc);
    ASSERT_TRUE(d.has_value()) << c.id;
    EXPECT_NEAR(d->attributed_ms, cm.exposed_comm_ms, 0.01 * cm.exposed_comm_ms) << c.id;
  }
}

TEST_F(Diagnosis, JsonRoundTripAndWhyText) {
  const diagnosed r = run(contention_shape(), 8);
  ASSERT_TRUE(r.d.has_value());
  const ordered_json j = to_json(*r.d);
  const json plain = json::parse(j.dump());
  const diagnosis back = diagnosis_from_json(json_object(plain, "d.json", "diagnosis"));
  EXPECT_EQ(to_json(back).dump(), j.dump());
  EXPECT_EQ(why_text(*r.d).rfind("contention ", 0), 0u) << why_text(*r.d);
  json bad = plain;
  bad["causes"][0]["cause"] = "gremlins";
  try {
    diagnosis_from_json(json_object(bad, "d.json", "diagnosis"));
    FAIL() << "accepted an unknown cause";
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("d.json: diagnosis.causes[0].cause"), std::string::npos)
        << e.what();
  }
}

TEST_F(Diagnosis, EveryCauseHasItsWords) {
  for (const cause_info& c : cause_table()) {
    EXPECT_FALSE(c.short_name.empty());
    EXPECT_FALSE(c.meaning.empty());
    EXPECT_FALSE(c.try_this.empty());
    EXPECT_EQ(&info_of(c.cause), &c);
  }
}

}  // namespace
}  // namespace ob
