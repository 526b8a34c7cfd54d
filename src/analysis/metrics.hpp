#pragma once
// Per-case metrics (docs/ARCHITECTURE.md §7), computed from the medians of the five variants and,
// where the executor recorded them, from per-op intervals. Metrics never know which backend ran.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/stats.hpp"
#include "model/executor.hpp"
#include "model/ir.hpp"

namespace ob {

struct case_metrics {
  stats compute_ms;              // compute_only variant
  stats compute_with_margin_ms;  // compute_with_margin variant
  stats comm_ms;                 // comm_only variant
  stats serial_ms;
  stats overlapped_ms;
  // overlapped − compute_only; may exceed comm_only when interference hurts, may be < 0 by noise.
  double exposed_comm_ms = 0;
  // 1 − exposed / comm_only. 1: fully hidden, 0: nothing hidden, < 0: worse than serial.
  // nullopt when comm_only's median is 0 (nothing to hide, so no efficiency to claim).
  std::optional<double> overlap_efficiency;
  // serial / overlapped; nullopt when overlapped's median is 0 (an empty schedule).
  std::optional<double> speedup_vs_serial;
  double ideal_ms = 0;     // max(compute_only, comm_only)
  double headroom_ms = 0;  // overlapped − ideal
  // Σ GEMM op durations in overlapped / Σ in compute_only (per-op intervals); nullopt when
  // either variant has no intervals or no GEMM intervals.
  std::optional<double> gemm_slowdown;
  // Σ collective+p2p op durations in overlapped / Σ in comm_only; nullopt likewise.
  std::optional<double> comm_slowdown;
  // |∪comm ∩ ∪compute| / |∪comm| × 100 in the overlapped variant (HTA's definition); compute is
  // every op that is not collective or p2p. nullopt without intervals or comm intervals.
  std::optional<double> timeline_overlap_pct;
  // Schedule GEMM FLOPs / compute_only median, TFLOP/s (1e12); nullopt when the case has no
  // GEMM. Compute_only holds the elementwise ops too, so for a layer this is the effective rate.
  std::optional<double> gemm_tflops;
  // gemm_tflops / gemm_slowdown: the same work at the rate GEMMs ran while overlapped.
  std::optional<double> gemm_tflops_overlapped;
  // Σ comm ops (bytes × nccl-tests bus factor) / comm_only median, GB/s (1e9); nullopt when the
  // case has no comm op.
  std::optional<double> comm_busbw_gbps;
  // comm_busbw_gbps / comm_slowdown.
  std::optional<double> comm_busbw_gbps_overlapped;
  std::int64_t wrong = 0;  // Σ over the five variants of elements that failed verification
};

case_metrics compute_metrics(const variant_schedules& schedules,
                             const variant_measurements& measurements);

// Σ over the schedule's collective and p2p ops of bytes × bus factor (p2p factor 1).
double bus_bytes(const schedule& s);

// Length of the union of [start, end) intervals, in the intervals' unit.
struct interval {
  double start = 0, end = 0;
};
double union_length(std::vector<interval> intervals);
// Length of (∪a) ∩ (∪b).
double intersection_length(std::vector<interval> a, std::vector<interval> b);

// Σ durations (µs) of intervals whose op matches `pred`; op ids index `s.ops`. Throws
// runtime_failure on an id outside the schedule (an executor bug must not become a metric).
double sum_durations_us(const schedule& s, const std::vector<op_interval>& ops,
                        bool (*pred)(const op&));

// One row of `coll` output, nccl-tests conventions (see results/README.md).
struct coll_row {
  std::uint64_t size = 0;   // nccl-tests size: AG total gathered, RS total input, AR buffer
  std::uint64_t count = 0;  // size / sizeof(type), as nccl-tests prints for every collective
  std::string type;         // "bf16" | "fp16" | "fp8"
  std::string redop;        // "sum" for all_reduce / reduce_scatter, "none" for all_gather
  std::string op;           // "all_gather" | "reduce_scatter" | "all_reduce"
  int ranks = 0;            // group size n the bus factor used
  stats time_ms;            // per-iteration times
  double time_us = 0;       // median
  double algbw_gbps = 0;    // size / time_us, GB/s (1e9)
  double busbw_gbps = 0;    // algbw × bus factor
  std::int64_t wrong = 0;
};

coll_row make_coll_row(const collective_params& p, const stats& time_ms, std::int64_t wrong);
ordered_json to_json(const coll_row& r);
coll_row coll_row_from_json(const json_object& obj);

}  // namespace ob
