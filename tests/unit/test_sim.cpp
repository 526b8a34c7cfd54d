// Simulator mechanism tests (docs/ARCHITECTURE.md §8): each states a mechanism and checks it on the
// timeline (op start/end), not only on totals.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "model/executor.hpp"
#include "model/gpu_spec.hpp"
#include "sim/simulator.hpp"
#include "test_sim_schedules.hpp"

namespace ob {
namespace {

using test::collective;
using test::delay;
using test::gemm;

class SimMechanism : public ::testing::Test {
 protected:
  sim_result run(const schedule& s, int cdmc, bool graphs = false) const {
    return simulate(s, gpu, sim_options{cdmc, graphs});
  }
  // Mechanisms in whole tile times: GEMM fixed costs and split-K off (test::plain_tiles).
  gpu_spec gpu = test::plain_tiles(load_gpu_spec("h100_sxm"));
};

// The comm op waits on a long producer on another stream; the GEMM is independent of both but
// enqueued after the comm op.
schedule independent_gemm_behind_waiting_comm() {
  schedule s;
  s.name = "false_dependency";
  const int producer = s.add_stream("producer", stream_role::compute, 0);
  const int comm = s.add_stream("comm", stream_role::comm, -1);
  const int compute = s.add_stream("compute", stream_role::compute, 0);
  const int p = s.add_op("producer", producer, delay(100, 1));
  s.add_op("ag", comm, collective(coll_op::all_gather, 64u << 20, 8, 16), {p});
  s.add_op("gemm", compute, gemm(8192, 8192, 4096));
  return s;
}

TEST_F(SimMechanism, OneQueueMakesIndependentGemmWaitBehindNotReadyComm) {
  const schedule s = independent_gemm_behind_waiting_comm();
  const sim_result r = run(s, 1);
  const auto &p = r.ops[0], &comm = r.ops[1], &g = r.ops[2];
  ASSERT_EQ(comm.queue, g.queue);
  // The comm op is the head and not ready until the producer ends (same queue: at once).
  EXPECT_EQ(comm.ready_us, p.end_us);
  // False dependency: the GEMM needs nothing from either, yet waits behind the comm head.
  EXPECT_GE(g.start_us, comm.ready_us);
  EXPECT_GE(g.start_us, comm.start_us);
  EXPECT_EQ(g.start_us, p.end_us);  // the moment the comm head gets out of the way
  EXPECT_GT(g.start_us - g.enqueue_us, 80.0);

  // With its own queue the same GEMM starts as soon as it is enqueued, long before the comm op.
  const sim_result r8 = run(s, 8);
  EXPECT_NE(r8.ops[1].queue, r8.ops[2].queue);
  EXPECT_EQ(r8.ops[2].start_us, r8.ops[2].enqueue_us);
  EXPECT_LT(r8.ops[2].start_us, r8.ops[0].end_us);
  EXPECT_LT(r8.ops[2].end_us, r.ops[2].end_us);
}

// Transformer Engine's bulk shape: a producer on the compute stream, the collective waits on it
// through an event, the GEMM follows it on the compute stream.
schedule bulk_shape(std::int64_t gemm_k) {
  schedule s;
  s.name = "bulk";
  const int compute = s.add_stream("compute", stream_role::compute, 0);
  const int comm = s.add_stream("comm", stream_role::comm, -1);
  const int p = s.add_op("producer", compute, delay(50, 132));
  s.add_op("ag", comm, collective(coll_op::all_gather, 64u << 20, 8, 16), {p});
  s.add_op("gemm", compute, gemm(8192, 8192, gemm_k));  // 64x32 = 2048 tiles
  return s;
}

TEST_F(SimMechanism, SeparateQueuesLetGemmTakeEverySmFirst) {
  const std::int64_t k = 2048;
  const sim_result r = run(bulk_shape(k), 8);
  const auto &p = r.ops[0], &comm = r.ops[1], &g = r.ops[2];
  // The GEMM's dependency resolves inside its queue, the collective's in another queue.
  EXPECT_EQ(g.start_us, p.end_us);
  EXPECT_EQ(comm.ready_us, p.end_us + gpu.cross_queue_event_us);
  EXPECT_EQ(g.ctas, gpu.sm_count);
  EXPECT_LT(g.start_us, comm.start_us);
  // Its persistent CTAs hold every SM: the collective gets SMs only when CTAs run out of tiles
  // after floor(2048 / 132) = 15 full waves, while the GEMM is still finishing.
  const double waves_before_free = std::floor(2048.0 / gpu.sm_count);
  EXPECT_NEAR(comm.start_us, g.start_us + waves_before_free * test::tile_us(gpu, k), 1e-6);
  EXPECT_LT(comm.start_us, g.end_us);

  // CDMC=1: one FIFO, host order wins: the collective, enqueued first, dispatches first.
  const sim_result r1 = run(bulk_shape(k), 1);
  EXPECT_EQ(r1.ops[1].ready_us, r1.ops[0].end_us);
  EXPECT_EQ(r1.ops[1].start_us, r1.ops[0].end_us);
  EXPECT_LE(r1.ops[1].start_us, r1.ops[2].start_us);
  EXPECT_LT(r1.ops[1].end_us, r.ops[1].end_us);
}

// Transformer Engine's launch-ordering event on Hopper with CDMC > 1 (docs/BRIDGE_RULES.md §6.3):
// the GEMM may dispatch only once the comm kernel has started.
schedule bulk_shape_ordered(std::int64_t gemm_k) {
  schedule s = bulk_shape(gemm_k);
  s.ops[2].waits_started = {1};
  return s;
}

TEST_F(SimMechanism, LaunchOrderingEventPutsCommBeforePersistentGemm) {
  const std::int64_t k = 2048;
  const sim_result plain = run(bulk_shape(k), 8);
  ASSERT_LT(plain.ops[2].start_us, plain.ops[1].start_us);  // what the event is for
  const sim_result r = run(bulk_shape_ordered(k), 8);
  const auto &p = r.ops[0], &comm = r.ops[1], &g = r.ops[2];
  ASSERT_NE(comm.queue, g.queue);
  // The GEMM's producer resolves in its own queue at once, yet the GEMM, head of that queue, is
  // not ready until the comm op's start is seen there (a cross-queue event).
  EXPECT_EQ(comm.start_us, p.end_us + gpu.cross_queue_event_us);
  EXPECT_EQ(g.ready_us, comm.start_us + gpu.cross_queue_event_us);
  EXPECT_EQ(g.start_us, g.ready_us);
  EXPECT_LE(comm.start_us, g.start_us);
  // The comm op has its SMs before the GEMM takes the rest: it runs beside the GEMM and ends
  // before it would even have started without the event.
  EXPECT_EQ(comm.ctas, 16);
  EXPECT_LT(comm.end_us, plain.ops[1].start_us);
  EXPECT_LT(comm.end_us, g.end_us);
  // The GEMM still launches its full persistent grid; the CTAs that found no SM wait for the
  // comm op's, so it ends later than without the event, which was the price of the overlap.
  EXPECT_EQ(g.ctas, gpu.sm_count);
  EXPECT_GT(g.end_us, plain.ops[2].end_us);
  EXPECT_LT(r.total_us, plain.total_us);
}

TEST_F(SimMechanism, LaunchOrderingEventChangesNothingWithOneQueue) {
  // CDMC=1: the comm op, enqueued first, already dispatches before the GEMM behind it.
  const std::int64_t k = 2048;
  for (bool graphs : {false, true}) {
    const sim_result a = run(bulk_shape(k), 1, graphs);
    const sim_result b = run(bulk_shape_ordered(k), 1, graphs);
    ASSERT_EQ(b.ops[1].queue, b.ops[2].queue);
    EXPECT_EQ(b.total_us, a.total_us);
    for (std::size_t i = 0; i < a.ops.size(); ++i) {
      EXPECT_EQ(b.ops[i].ready_us, a.ops[i].ready_us) << i;
      EXPECT_EQ(b.ops[i].start_us, a.ops[i].start_us) << i;
      EXPECT_EQ(b.ops[i].end_us, a.ops[i].end_us) << i;
    }
    // Only the host pays for the edge, eagerly: one event record + wait.
    EXPECT_DOUBLE_EQ(b.ops[2].enqueue_us, a.ops[2].enqueue_us + (graphs ? 0 : gpu.event_us));
  }
}

TEST_F(SimMechanism, WaitsStartedHeadBlocksItsQueue) {
  // The comm op waits on a long producer; the GEMM waits for the comm op to start; an
  // independent op sharing the GEMM's queue (stream 3 mod 2 = queue 1) waits behind it.
  schedule s;
  s.name = "blocked_head";
  const int producer = s.add_stream("producer", stream_role::compute, 0);
  const int compute = s.add_stream("compute", stream_role::compute, 0);
  const int comm = s.add_stream("comm", stream_role::comm, -1);
  const int other = s.add_stream("other", stream_role::compute, 0);
  const int p = s.add_op("producer", producer, delay(100, 1));
  const int c = s.add_op("ag", comm, collective(coll_op::all_gather, 1u << 20, 8, 16), {p});
  s.add_op("gemm", compute, gemm(4096, 4096, 1024));
  s.ops.back().waits_started = {c};
  s.add_op("independent", other, delay(1, 1));
  const sim_result r = run(s, 2);
  ASSERT_EQ(r.ops[2].queue, r.ops[3].queue);
  EXPECT_EQ(r.ops[2].ready_us, r.ops[1].start_us + gpu.cross_queue_event_us);
  EXPECT_GE(r.ops[3].start_us, r.ops[2].start_us);  // false dependency behind the GEMM
  EXPECT_GT(r.ops[3].start_us, r.ops[0].end_us);
  // Own queue: the independent op runs at once.
  const sim_result r8 = run(s, 8);
  EXPECT_EQ(r8.ops[3].start_us, r8.ops[3].enqueue_us);
}

TEST_F(SimMechanism, PersistentGemmLaunchedFirstStarvesLaterComm) {
  schedule s;
  s.name = "starve";
  const int compute = s.add_stream("compute", stream_role::compute, 0);
  const int comm = s.add_stream("comm", stream_role::comm, -1);  // even at high priority
  s.add_op("gemm", compute, gemm(8192, 8192, 8192));
  s.add_op("ag", comm, collective(coll_op::all_gather, 64u << 20, 8, 16));
  const sim_result r = run(s, 8);
  const auto &g = r.ops[0], &c = r.ops[1];
  EXPECT_EQ(c.ready_us, c.enqueue_us);  // ready long before it gets an SM
  EXPECT_GE(c.start_us, g.start_us + 15 * test::tile_us(gpu, 8192) - 1e-6);
  EXPECT_GT(c.start_us - c.ready_us, 0.9 * (g.end_us - g.start_us));

  schedule alone;
  alone.name = "comm_alone";
  alone.add_stream("comm", stream_role::comm, -1);
  alone.add_op("ag", 0, collective(coll_op::all_gather, 64u << 20, 8, 16));
  const sim_result a = run(alone, 8);
  EXPECT_EQ(a.ops[0].start_us, a.ops[0].enqueue_us);
  EXPECT_GT(c.end_us - c.enqueue_us, 3 * (a.ops[0].end_us - a.ops[0].enqueue_us));
}

TEST_F(SimMechanism, SmMarginMovesGemmTimeInWaveSteps) {
  const std::int64_t k = 4096;
  const std::int64_t tiles = (4096 / 128) * (4096 / 256);  // 512
  const double tile = test::tile_us(gpu, k);
  double prev_dur = 0;
  std::int64_t prev_waves = 0;
  int steps = 0;
  for (int target = gpu.sm_count; target >= 40; --target) {
    schedule s;
    s.name = "margin";
    s.add_stream("compute", stream_role::compute, 0);
    s.add_op("gemm", 0, gemm(4096, 4096, k, gpu.sm_count - target));
    const sim_result r = run(s, 8);
    const double dur = r.ops[0].end_us - r.ops[0].start_us;
    const std::int64_t waves = (tiles + target - 1) / target;
    EXPECT_NEAR(dur, waves * tile, 1e-6) << "sm_target " << target;
    if (prev_waves != 0) {
      if (waves == prev_waves) {
        EXPECT_EQ(dur, prev_dur) << "sm_target " << target;  // flat inside a wave count
      } else {
        EXPECT_GT(dur, prev_dur + 0.9 * tile) << "sm_target " << target;  // one wave up
        ++steps;
      }
    }
    prev_dur = dur;
    prev_waves = waves;
  }
  EXPECT_EQ(steps, 13 - 4);  // ceil(512/132) = 4 ... ceil(512/40) = 13
}

TEST_F(SimMechanism, MoreSplitsHideMoreRsUntilFixedCostsDominate) {
  const std::vector<int> splits = {1, 2, 4, 8, 16, 32, 64, 128, 256};
  std::vector<double> exposed;
  for (int n : splits) {
    const schedule s = test::pipeline_rs(n, 16384, 8192, 4096);
    const sim_result over = run(s, 8);
    const sim_result compute = run(derive_variant(s, variant::compute_only), 8);
    exposed.push_back(over.total_us - compute.total_us);
    // Each chunk costs the host a GEMM launch, an event and an NCCL call; the first GEMM's
    // launch lies before the origin.
    EXPECT_NEAR(over.origin_us, gpu.launch_us, 1e-12);
    EXPECT_NEAR(over.host_us,
                n * (gpu.launch_us + gpu.event_us + gpu.nccl_launch_us) - gpu.launch_us, 1e-9);
  }
  std::size_t best = 0;
  for (std::size_t i = 1; i < exposed.size(); ++i)
    if (exposed[i] < exposed[best]) best = i;
  // Splitting hides RS behind the next chunk's GEMM ...
  EXPECT_LT(exposed[1], exposed[0]);
  EXPECT_GT(best, 0u);
  EXPECT_LT(exposed[best], 0.75 * exposed[0]);
  // ... until the per-chunk fixed costs (launches, per-collective latency, small chunks
  // quantizing into waves) outgrow what the extra overlap hides. Wave quantization makes the
  // curve jagged in between, so only its ends are asserted.
  ASSERT_LT(best, exposed.size() - 1);
  EXPECT_GT(exposed.back(), 1.5 * exposed[best]);
}

void expect_identical(const sim_result& a, const sim_result& b) {
  EXPECT_EQ(a.total_us, b.total_us);
  EXPECT_EQ(a.host_us, b.host_us);
  EXPECT_EQ(a.origin_us, b.origin_us);
  EXPECT_EQ(a.queues, b.queues);
  ASSERT_EQ(a.ops.size(), b.ops.size());
  for (std::size_t i = 0; i < a.ops.size(); ++i) {
    EXPECT_EQ(a.ops[i].op_id, b.ops[i].op_id);
    EXPECT_EQ(a.ops[i].enqueue_us, b.ops[i].enqueue_us) << i;
    EXPECT_EQ(a.ops[i].ready_us, b.ops[i].ready_us) << i;
    EXPECT_EQ(a.ops[i].start_us, b.ops[i].start_us) << i;
    EXPECT_EQ(a.ops[i].end_us, b.ops[i].end_us) << i;
    EXPECT_EQ(a.ops[i].queue, b.ops[i].queue) << i;
    EXPECT_EQ(a.ops[i].ctas, b.ops[i].ctas) << i;
  }
}

TEST_F(SimMechanism, ResultsAreBitIdenticalAcrossRuns) {
  const variant_schedules variants = make_variant_schedules(test::layer_like());
  for (bool ordering : {false, true})
    for (const schedule& s : make_variant_schedules(test::layer_like(16, ordering)))
      for (int cdmc : {1, 2, 8, 32})
        for (bool graphs : {false, true}) {
          const schedule copy = s;
          expect_identical(run(s, cdmc, graphs), run(copy, cdmc, graphs));
        }
  sim_executor ex(gpu);
  const variant_measurements a = ex.measure(variants, {});
  const variant_measurements b = ex.measure(variants, {});
  for (std::size_t v = 0; v < a.size(); ++v) {
    EXPECT_EQ(a[v].iter_ms, b[v].iter_ms);
    ASSERT_EQ(a[v].ops.size(), b[v].ops.size());
    for (std::size_t i = 0; i < a[v].ops.size(); ++i) {
      EXPECT_EQ(a[v].ops[i].op_id, b[v].ops[i].op_id);
      EXPECT_EQ(a[v].ops[i].start_us, b[v].ops[i].start_us);
      EXPECT_EQ(a[v].ops[i].end_us, b[v].ops[i].end_us);
    }
  }
}

TEST_F(SimMechanism, EveryOpRunsAfterItsDependencies) {
  const schedule s = test::layer_like(16, true);
  for (int cdmc : {1, 4, 8}) {
    const sim_result r = run(s, cdmc);
    std::vector<int> last_on_stream(s.streams.size(), -1);
    for (const op& o : s.ops) {
      const auto& x = r.ops[o.id];
      EXPECT_LE(x.enqueue_us, x.ready_us);
      EXPECT_LE(x.ready_us, x.start_us);
      EXPECT_LE(x.start_us, x.end_us);
      for (int w : o.waits) EXPECT_GE(x.start_us, r.ops[w].end_us) << o.name;
      for (int w : o.waits_started) EXPECT_GE(x.start_us, r.ops[w].start_us) << o.name;
      if (last_on_stream[o.stream] >= 0) {
        EXPECT_GE(x.start_us, r.ops[last_on_stream[o.stream]].end_us) << o.name;
      }
      last_on_stream[o.stream] = o.id;
      EXPECT_LE(x.end_us, r.total_us);
    }
  }
}

}  // namespace
}  // namespace ob
