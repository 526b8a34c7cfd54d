#pragma once
// The host thread (docs/ARCHITECTURE.md §5.1): enqueues ops in schedule order. Its costs are known
// before the device model runs; where it waits for the GPU (a full launch queue, a host sync) the
// engine delays the ops behind the wait (sim/engine.cpp).
#include <vector>

#include "model/gpu_spec.hpp"
#include "model/ir.hpp"
#include "sim/kernel_model.hpp"

namespace ob::sim {

// When the host has handed each op to its hardware queue. Eager: every cross-stream edge in
// `waits` or `waits_started` costs one event_us (record + wait) before the launch, then the
// launch call itself (an eager framework op, eager_op_us, for a GEMM or elementwise kernel of a
// schedule::eager_framework schedule), and each of the op's host-only framework ops
// (op::host_ops) one eager op. Graphs (the whole step, or an op in a CUDA graph scope): every node,
// host ops included, costs graph_node_us; edges are free.
struct host_timeline {
  // Host time (from the host starting to enqueue) at which the first op was enqueued: the
  // iteration's origin. Nothing can reach the GPU before it.
  double origin_us = 0;
  std::vector<double> enqueue_us;  // by op id, µs from the origin (so op 0 is at 0)
};

host_timeline host_enqueue_times(const schedule& s, const std::vector<kernel_plan>& plans,
                                 const gpu_spec& gpu, bool graphs);

}  // namespace ob::sim
