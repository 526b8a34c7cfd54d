#pragma once
// Hand-built schedules shared by the simulator tests.
#include <cstdint>
#include <string>

#include "model/gpu_spec.hpp"
#include "model/ir.hpp"

namespace ob::test {

inline gemm_params gemm(std::int64_t m, std::int64_t n, std::int64_t k, int sm_margin = 0) {
  return gemm_params{m, n, k, dtype::bf16, sm_margin};
}

inline collective_params collective(coll_op op, std::uint64_t bytes, int group_size, int ctas) {
  collective_params c;
  c.op = op;
  c.bytes = bytes;
  c.group_size = group_size;
  c.ctas = ctas;
  return c;
}

inline delay_params delay(double us, int ctas) { return delay_params{us, ctas}; }

// The GPU with GEMM model v2's fixed costs and split-K turned off: the mechanism tests check
// waves, dispatch and late CTAs exactly, in whole tile times (docs/ARCHITECTURE.md §5.1).
inline gpu_spec plain_tiles(gpu_spec g) {
  g.gemm_setup_us = 0;
  g.gemm_unit_overhead_us = 0;
  g.gemm_splitk_fixup_us = 0;
  g.gemm_splitk_max = 1;
  g.gemm_mem_overlap_loss = 0;
  return g;
}

// Uncontended time of one GEMM tile of a compute-bound GEMM on plain_tiles(g).
inline double tile_us(const gpu_spec& g, std::int64_t k, dtype t = dtype::bf16) {
  const double per_sm = g.peak_tflops(t) * 1e12 / g.sm_count * g.gemm_efficiency(t);
  return 2.0 * g.gemm_tile_m * g.gemm_tile_n * static_cast<double>(k) / per_sm * 1e6;
}

// A chunked GEMM + reduce-scatter (TE's pipeline method): chunk i's RS waits on chunk i; the
// GEMM leaves the RS's SMs free.
inline schedule pipeline_rs(int splits, std::int64_t m, std::int64_t n, std::int64_t k) {
  schedule s;
  s.name = "pipeline_" + std::to_string(splits);
  const int compute = s.add_stream("compute", stream_role::compute, 0);
  const int comm = s.add_stream("comm", stream_role::comm, -1);
  const int comm_ctas = 16;
  for (int i = 0; i < splits; ++i) {
    const std::int64_t rows = m / splits;
    const int g = s.add_op("gemm_" + std::to_string(i), compute, gemm(rows, n, k, comm_ctas), {},
                           "fc2_fprop");
    s.add_op(
        "rs_" + std::to_string(i), comm,
        collective(coll_op::reduce_scatter, static_cast<std::uint64_t>(rows * n * 2), 8, comm_ctas),
        {g}, "fc2_fprop");
  }
  return s;
}

// A layer-like schedule (TP=8, 8192 tokens, hidden 8192): forward and backward with ring
// exchange (copy-engine p2p), pipeline RS, bulk AG/RS and elementwise ops on four streams;
// `splits` sets the pipeline chunking, so the op count is about 150 at the default.
// `launch_ordering` gives each bulk GEMM TE's launch-ordering edge (waits_started) on its
// collective.
inline schedule layer_like(int splits = 16, bool launch_ordering = false) {
  const std::int64_t T = 8192, h = 8192, f = 28672, w = 10240, tp = 8;
  schedule s;
  s.name = "layer_like";
  const int compute = s.add_stream("compute", stream_role::compute, 0);
  const int comm = s.add_stream("comm", stream_role::comm, -1);
  const int p2p = s.add_stream("p2p", stream_role::p2p, -1);
  const int bulk = s.add_stream("bulk", stream_role::comm, -1);
  int last = -1;
  auto elementwise = [&](const std::string& name, std::uint64_t bytes, double flops) {
    elementwise_params e;
    e.bytes = bytes;
    e.flops = flops;
    e.sm_margin = 16;
    e.persistent = name.rfind("ln", 0) == 0;
    last = s.add_op(name, compute, e, {}, name);
  };
  auto ring = [&](const std::string& slot, std::int64_t n, std::int64_t k) {
    int prev_chunk = last;
    for (int j = 0; j < tp; ++j) {
      p2p_params x;
      x.bytes = static_cast<std::uint64_t>(T / tp * k * 2);
      x.group_size = tp;
      x.send_peer = 1;
      x.recv_peer = -1;
      const int send = s.add_op(slot + "_send_" + std::to_string(j), p2p, x, {prev_chunk}, slot);
      prev_chunk =
          s.add_op(slot + "_gemm_" + std::to_string(j), compute, gemm(T / tp, n, k), {send}, slot);
    }
    last = prev_chunk;
  };
  auto pipeline = [&](const std::string& slot, std::int64_t n, std::int64_t k) {
    for (int i = 0; i < splits; ++i) {
      const int g = s.add_op(slot + "_gemm_" + std::to_string(i), compute,
                             gemm(T / splits, n, k, 16), {}, slot);
      s.add_op(slot + "_rs_" + std::to_string(i), comm,
               collective(coll_op::reduce_scatter, static_cast<std::uint64_t>(T / splits * n * 2),
                          tp, 16),
               {g}, slot);
      last = g;
    }
  };
  auto bulk_pair = [&](const std::string& slot, gemm_params g, coll_op op, std::uint64_t bytes) {
    const int c = s.add_op(slot + "_" + std::string(to_string(op)), bulk,
                           collective(op, bytes, tp, 8), {last}, slot);
    last = s.add_op(slot + "_gemm", compute, g, {}, slot);
    if (launch_ordering) s.ops[last].waits_started = {c};
    return c;
  };
  const auto act_bytes = static_cast<std::uint64_t>(T * h * 2);
  // Forward.
  elementwise("ln1_fwd", act_bytes / tp * 2, 0);
  ring("qkv_fprop", w / tp, h);
  elementwise("attn_fwd", act_bytes * 3 / tp, 4.0 * T * 8192 * h / tp / 2);
  pipeline("proj_fprop", h, h / tp);
  elementwise("ln2_fwd", act_bytes / tp * 2, 0);
  ring("fc1_fprop", 2 * f / tp, h);
  elementwise("act_fwd", static_cast<std::uint64_t>(T * f * 2 * 3 / tp), 0);
  pipeline("fc2_fprop", h, f / tp);
  // Backward.
  ring("fc2_dgrad", f / tp, h);
  last = s.add_op("fc2_wgrad", compute, gemm(f / tp, h, T), {}, "fc2_wgrad");
  elementwise("act_bwd", static_cast<std::uint64_t>(T * f * 2 * 4 / tp), 0);
  const int ag1 = bulk_pair("fc1_dgrad", gemm(T, h, 2 * f / tp), coll_op::all_gather, act_bytes);
  const int rs1 =
      bulk_pair("fc1_wgrad", gemm(h, 2 * f / tp, T), coll_op::reduce_scatter, act_bytes);
  elementwise("ln2_bwd", act_bytes / tp * 3, 0);
  s.ops[s.ops.size() - 1].waits = {ag1, rs1};
  ring("proj_dgrad", h / tp, h);
  last = s.add_op("proj_wgrad", compute, gemm(h / tp, h, T), {}, "proj_wgrad");
  elementwise("attn_bwd", act_bytes * 6 / tp, 2.5 * 4.0 * T * 8192 * h / tp / 2);
  const int ag2 = bulk_pair("qkv_dgrad", gemm(T, h, w / tp), coll_op::all_gather, act_bytes);
  const int rs2 = bulk_pair("qkv_wgrad", gemm(h, w / tp, T), coll_op::reduce_scatter, act_bytes);
  elementwise("ln1_bwd", act_bytes / tp * 3, 0);
  s.ops[s.ops.size() - 1].waits = {ag2, rs2};
  return s;
}

}  // namespace ob::test
